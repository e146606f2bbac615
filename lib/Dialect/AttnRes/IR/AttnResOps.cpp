//===- AttnResOps.cpp - AttnRes operations --------------------------------===//
//
// Part of the attnres project. Constraint numbers (Cn) refer to the op's
// section of docs/spec.md.
//
//===----------------------------------------------------------------------===//

#include "OpHelpers.h"
#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::detail;

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

// Declared in OpHelpers.h, shared with AttnResGradOps.cpp.
namespace mlir::attnres::detail {

/// The type `tensor<D x E>` of a pseudo-query or gain for sources of type
/// `sourceType` (`tensor<... x D x E>`).
RankedTensorType getVectorType(RankedTensorType sourceType) {
  int64_t d = sourceType.getRank() ? sourceType.getShape().back()
                                   : ShapedType::kDynamic;
  return RankedTensorType::get({d}, sourceType.getElementType());
}

/// The f32 per-token type `tensor<... x f32>` (the source shape without its
/// last dimension), optionally prefixed with `prefix` (the S of phase 1).
RankedTensorType getPerTokenType(RankedTensorType sourceType,
                                 std::optional<int64_t> prefix) {
  SmallVector<int64_t> shape;
  if (prefix)
    shape.push_back(*prefix);
  if (sourceType.getRank())
    llvm::append_range(shape, sourceType.getShape().drop_back());
  return RankedTensorType::get(shape,
                               Float32Type::get(sourceType.getContext()));
}

/// Shapes are compatible when every dimension is equal or dynamic on one side
/// (spec 0.4).
bool compatibleShapes(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  if (a.size() != b.size())
    return false;
  for (auto [x, y] : llvm::zip(a, b))
    if (!ShapedType::isDynamic(x) && !ShapedType::isDynamic(y) && x != y)
      return false;
  return true;
}

/// Replaces the dynamic dimensions of `known` by the static ones of `actual`
/// (same rank, already checked compatible). Verifiers refine what they know
/// of S, the token dimensions and D operand by operand, so that two static
/// sizes that disagree are caught even when the sources are dynamic.
void refineShape(MutableArrayRef<int64_t> known, ArrayRef<int64_t> actual) {
  for (auto [k, a] : llvm::zip(known, actual))
    if (ShapedType::isDynamic(k))
      k = a;
}

bool isStorageElementType(Type t) {
  return t.isF32() || t.isF16() || t.isBF16();
}

/// Checks the type that fixes the token dimensions, D and E of an op: rank
/// >= 1 (rule `rankRule`) and an f32, f16 or bf16 element type (`eltRule`).
LogicalResult verifyValueType(Operation *op, RankedTensorType type,
                              StringRef what, StringRef rankRule,
                              StringRef eltRule) {
  if (type.getRank() < 1)
    return op->emitOpError()
           << what << " must have rank >= 1 (the last dimension is D), got "
           << type << " " << rankRule;
  if (!isStorageElementType(type.getElementType()))
    return op->emitOpError()
           << what << " element type must be f32, f16 or "
           << "bf16, got " << type.getElementType() << " " << eltRule;
  return success();
}

/// Checks that `type` is `tensor<D x E>` where `shape` is what is known of
/// the sources' shape (`... x D`) and `elt` their element type; refines D.
LogicalResult verifyVectorOperand(Operation *op, Type type,
                                  MutableArrayRef<int64_t> shape, Type elt,
                                  StringRef what, StringRef rule) {
  auto tt = cast<RankedTensorType>(type);
  RankedTensorType expected = RankedTensorType::get({shape.back()}, elt);
  if (tt.getRank() != 1 || tt.getElementType() != elt ||
      !compatibleShapes(tt.getShape(), expected.getShape()))
    return op->emitOpError() << what << " must have type " << expected
                             << " (one value per feature of the sources), got "
                             << type << " " << rule;
  refineShape(shape.take_back(), tt.getShape());
  return success();
}

/// Checks that `type` is an f32 tensor compatible with `shape` and refines
/// `shape` with its static dimensions.
LogicalResult verifyF32Operand(Operation *op, Type type,
                               MutableArrayRef<int64_t> shape, StringRef what,
                               StringRef meaning, StringRef rule) {
  auto tt = cast<RankedTensorType>(type);
  RankedTensorType expected =
      RankedTensorType::get(shape, Float32Type::get(op->getContext()));
  if (!tt.getElementType().isF32() ||
      !compatibleShapes(tt.getShape(), expected.getShape()))
    return op->emitOpError() << what << " must have type " << expected << " ("
                             << meaning << "), got " << type << " " << rule;
  refineShape(shape, tt.getShape());
  return success();
}

LogicalResult verifyEpsilon(Operation *op, FloatAttr eps, StringRef rule) {
  double v = eps.getValueAsDouble();
  if (!std::isfinite(v) || v < 0.0)
    return op->emitOpError() << "epsilon must be finite and non-negative, got "
                             << v << " " << rule;
  return success();
}

LogicalResult
verifyRequiredOperandGroups(Operation *op, ArrayRef<int32_t> segmentSizes,
                            ArrayRef<std::pair<unsigned, StringRef>> required) {
  for (auto [group, name] : required)
    if (group >= segmentSizes.size() || segmentSizes[group] != 1)
      return op->emitOpError()
             << "needs exactly one '" << name << "' operand (operand group "
             << group << " of operandSegmentSizes), got "
             << (group < segmentSizes.size() ? segmentSizes[group] : 0);
  return success();
}

/// Parses `%a, %b, ...` (at least one operand).
ParseResult
parseOperandList1(OpAsmParser &parser,
                  SmallVectorImpl<OpAsmParser::UnresolvedOperand> &operands) {
  return parser.parseCommaSeparatedList([&]() -> ParseResult {
    return parser.parseOperand(operands.emplace_back());
  });
}

/// Parses a type and checks it is a ranked tensor type of rank >= 1.
ParseResult parseSourceType(OpAsmParser &parser, RankedTensorType &type) {
  llvm::SMLoc loc = parser.getCurrentLocation();
  Type t;
  if (parser.parseType(t))
    return failure();
  type = dyn_cast<RankedTensorType>(t);
  if (!type || type.getRank() < 1)
    return parser.emitError(loc)
           << "expected a ranked tensor type of rank >= 1, got " << t;
  return success();
}

} // namespace mlir::attnres::detail

//===----------------------------------------------------------------------===//
// Custom directives of the assembly formats
//===----------------------------------------------------------------------===//

/// custom<Operands1>: `%a, %b, ...` with at least one operand (a declarative
/// variadic operand would also accept none).
static ParseResult
parseOperands1(OpAsmParser &parser,
               SmallVectorImpl<OpAsmParser::UnresolvedOperand> &operands) {
  return parseOperandList1(parser, operands);
}

static void printOperands1(OpAsmPrinter &p, Operation *,
                           OperandRange operands) {
  p.printOperands(operands);
}

/// The types of the operands that the custom forms derive from the value
/// type (a query's `tensor<D x E>`, an f32 per-token tensor) need only be
/// compatible with the derived type (spec 0.4). When one of them differs
/// from its derived type, the custom form lists all of them, in operand
/// order, as `operand_types(t0, t1, ...)` after the value type, so that
/// every valid op has a custom form that parses back to it.
static ParseResult parseDerivedTypes(OpAsmParser &parser,
                                     MutableArrayRef<Type> types) {
  if (failed(parser.parseOptionalKeyword("operand_types")))
    return success();
  llvm::SMLoc loc = parser.getCurrentLocation();
  SmallVector<Type> given;
  if (parser.parseCommaSeparatedList(OpAsmParser::Delimiter::Paren, [&]() {
        return parser.parseType(given.emplace_back());
      }))
    return failure();
  if (given.size() != types.size())
    return parser.emitError(loc)
           << "expected " << types.size() << " types in 'operand_types', got "
           << given.size();
  llvm::copy(given, types.begin());
  return success();
}

static void printDerivedTypes(OpAsmPrinter &p, ArrayRef<Type> derived,
                              TypeRange actual) {
  if (llvm::equal(derived, actual))
    return;
  p << " operand_types(";
  llvm::interleaveComma(actual, p);
  p << ")";
}

/// custom<SameTypes>: one type for the result and every operand (block_sum).
static ParseResult
parseSameTypes(OpAsmParser &parser, Type &resultType,
               ArrayRef<OpAsmParser::UnresolvedOperand> operands,
               SmallVectorImpl<Type> &operandTypes) {
  RankedTensorType type;
  if (parseSourceType(parser, type))
    return failure();
  resultType = type;
  operandTypes.assign(operands.size(), type);
  return success();
}

static void printSameTypes(OpAsmPrinter &p, Operation *, Type resultType,
                           OperandRange, TypeRange) {
  p << resultType;
}

/// custom<AggregateTypes>: `tensor<...xDxE> [operand_types(q, g)]`.
static ParseResult
parseAggregateTypes(OpAsmParser &parser, Type &resultType,
                    ArrayRef<OpAsmParser::UnresolvedOperand> sources,
                    SmallVectorImpl<Type> &sourceTypes, Type &queryType,
                    Type &gainType) {
  RankedTensorType type;
  if (parseSourceType(parser, type))
    return failure();
  RankedTensorType vecType = getVectorType(type);
  SmallVector<Type, 2> derived{vecType, vecType};
  if (parseDerivedTypes(parser, derived))
    return failure();
  resultType = type;
  sourceTypes.assign(sources.size(), type);
  queryType = derived[0];
  gainType = derived[1];
  return success();
}

static void printAggregateTypes(OpAsmPrinter &p, Operation *, Type resultType,
                                OperandRange, TypeRange, Type queryType,
                                Type gainType) {
  p << resultType;
  Type vecType = getVectorType(cast<RankedTensorType>(resultType));
  printDerivedTypes(p, {vecType, vecType}, {queryType, gainType});
}

/// custom<BlockScoreTypes>: `tensor<...xDxE> -> tensor<Sx...xDxE>
/// [operand_types(queries, norm_weights, inv_rms..., lse_init)]`.
static ParseResult
parseBlockScoreTypes(OpAsmParser &parser,
                     ArrayRef<OpAsmParser::UnresolvedOperand> sources,
                     SmallVectorImpl<Type> &sourceTypes,
                     ArrayRef<OpAsmParser::UnresolvedOperand> invRms,
                     SmallVectorImpl<Type> &invRmsTypes, Type &outInitType,
                     Type &queriesType, Type &gainsType, Type &lseInitType,
                     Type &outResultType, Type &lseResultType) {
  RankedTensorType sourceType, outType;
  if (parseSourceType(parser, sourceType) || parser.parseArrow() ||
      parseSourceType(parser, outType))
    return failure();
  if (outType.getRank() != sourceType.getRank() + 1)
    return parser.emitError(parser.getNameLoc())
           << "expected the output type to have one more dimension (S) than "
              "the source type";
  int64_t s = outType.getDimSize(0);
  RankedTensorType qType = RankedTensorType::get(
      {s, sourceType.getShape().back()}, sourceType.getElementType());
  SmallVector<Type> derived{qType, qType};
  derived.append(invRms.size(), getPerTokenType(sourceType));
  derived.push_back(getPerTokenType(sourceType, s));
  if (parseDerivedTypes(parser, derived))
    return failure();
  sourceTypes.assign(sources.size(), sourceType);
  queriesType = derived[0];
  gainsType = derived[1];
  invRmsTypes.assign(derived.begin() + 2, derived.end() - 1);
  lseInitType = derived.back();
  outInitType = outType;
  outResultType = outType;
  lseResultType = lseInitType;
  return success();
}

static void printBlockScoreTypes(OpAsmPrinter &p, Operation *, OperandRange,
                                 TypeRange sourceTypes, OperandRange,
                                 TypeRange invRmsTypes, Type outInitType,
                                 Type queriesType, Type gainsType,
                                 Type lseInitType, Type, Type) {
  auto outType = cast<RankedTensorType>(outInitType);
  // An op that failed verification is printed in the generic form; stay
  // safe anyway on the shapes that the verifier rejects.
  auto sourceType = sourceTypes.empty()
                        ? outType
                        : cast<RankedTensorType>(sourceTypes.front());
  p << sourceType << " -> " << outType;
  int64_t s = outType.getRank() ? outType.getDimSize(0) : ShapedType::kDynamic;
  RankedTensorType qType =
      RankedTensorType::get({s, getVectorType(sourceType).getDimSize(0)},
                            sourceType.getElementType());
  SmallVector<Type> derived{qType, qType};
  derived.append(invRmsTypes.size(), getPerTokenType(sourceType));
  derived.push_back(getPerTokenType(sourceType, s));
  SmallVector<Type> actual{queriesType, gainsType};
  llvm::append_range(actual, invRmsTypes);
  actual.push_back(lseInitType);
  printDerivedTypes(p, derived, actual);
}

//===----------------------------------------------------------------------===//
// AggregateOp
//===----------------------------------------------------------------------===//

void AggregateOp::build(OpBuilder &builder, OperationState &state, Value query,
                        Value normWeight, ValueRange sources, float epsilon) {
  assert(!sources.empty() && "aggregate needs at least one source");
  build(builder, state, sources.front().getType(), query, normWeight, sources,
        builder.getF32FloatAttr(epsilon));
}

LogicalResult AggregateOp::verify() {
  // (C1) At least one source.
  if (getSources().empty())
    return emitOpError("requires at least one source (C1)");
  // (C2) rank >= 1, (C3) storage element type.
  RankedTensorType type = getSourceType();
  if (failed(verifyValueType(*this, type, "result", "(C2)", "(C3)")))
    return failure();
  // (C4) Every source has the result type.
  for (auto [i, v] : llvm::enumerate(getSources()))
    if (v.getType() != type)
      return emitOpError() << "source #" << i << " has type " << v.getType()
                           << " but the result has type " << type
                           << "; all sources and the result must have one "
                              "type (C4)";
  // (C5) query and (C6) norm_weight are tensor<DxE>.
  SmallVector<int64_t> shape(type.getShape());
  Type elt = type.getElementType();
  if (failed(verifyVectorOperand(*this, getQuery().getType(), shape, elt,
                                 "query", "(C5)")) ||
      failed(verifyVectorOperand(*this, getNormWeight().getType(), shape, elt,
                                 "norm_weight", "(C6)")))
    return failure();
  // (C7) epsilon.
  return verifyEpsilon(*this, getEpsilonAttr(), "(C7)");
}

OpFoldResult AggregateOp::fold(FoldAdaptor) {
  // The softmax over one source is exactly 1 and 1 * v rounds to v (spec
  // A.4, fold A-F1).
  if (getSources().size() == 1)
    return getSources().front();
  return {};
}

LogicalResult
AggregateOp::reifyResultShapes(OpBuilder &b,
                               ReifiedRankedShapedTypeDims &shapes) {
  shapes.push_back(tensor::getMixedSizes(b, getLoc(), getSources().front()));
  return success();
}

//===----------------------------------------------------------------------===//
// BlockSumOp
//===----------------------------------------------------------------------===//

void BlockSumOp::build(OpBuilder &builder, OperationState &state,
                       ValueRange inputs) {
  assert(!inputs.empty() && "block_sum needs at least one input");
  build(builder, state, inputs.front().getType(), inputs);
}

LogicalResult BlockSumOp::verify() {
  // (C1) At least one input.
  if (getInputs().empty())
    return emitOpError("requires at least one input (C1)");
  // (C2) rank >= 1, (C3) storage element type.
  auto type = cast<RankedTensorType>(getResult().getType());
  if (failed(verifyValueType(*this, type, "result", "(C2)", "(C3)")))
    return failure();
  // (C4) One type for all.
  for (auto [i, v] : llvm::enumerate(getInputs()))
    if (v.getType() != type)
      return emitOpError() << "input #" << i << " has type " << v.getType()
                           << " but the result has type " << type
                           << "; all inputs and the result must have one "
                              "type (C4)";
  return success();
}

OpFoldResult BlockSumOp::fold(FoldAdaptor) {
  // The f32 sum of one value is that value (spec B.4, fold B-F1).
  if (getInputs().size() == 1)
    return getInputs().front();
  return {};
}

LogicalResult
BlockSumOp::reifyResultShapes(OpBuilder &b,
                              ReifiedRankedShapedTypeDims &shapes) {
  shapes.push_back(tensor::getMixedSizes(b, getLoc(), getInputs().front()));
  return success();
}

namespace {
/// block_sum(a, 0, b) -> block_sum(a, b) for splat-zero constant inputs
/// (spec B.4, B-C1). The sign of a zero sum is not specified (spec 0.6), so
/// dropping +0 is exact; at least one input is kept.
struct BlockSumDropZeroInputs : public OpRewritePattern<BlockSumOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BlockSumOp op,
                                PatternRewriter &rewriter) const override {
    SmallVector<Value> kept;
    for (Value v : op.getInputs())
      if (!matchPattern(v, m_AnyZeroFloat()))
        kept.push_back(v);
    if (kept.size() == op.getInputs().size())
      return rewriter.notifyMatchFailure(op, "no zero input");
    if (kept.empty())
      kept.push_back(op.getInputs().front());
    if (kept.size() == 1) {
      rewriter.replaceOp(op, kept.front());
      return success();
    }
    rewriter.replaceOpWithNewOp<BlockSumOp>(op, kept);
    return success();
  }
};

/// block_sum(block_sum(a, b), c) -> block_sum(a, b, c) when the element type
/// is f32 and the inner sum has no other use (spec B.4, B-C2). The inner sum
/// is the first operand, so the f32 additions happen in the same order and
/// the f32 result of the inner op is not rounded again: the result is
/// bit-identical. With f16/bf16 storage the inner rounding would be lost, so
/// the pattern does not apply.
struct BlockSumFlattenFirstInput : public OpRewritePattern<BlockSumOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BlockSumOp op,
                                PatternRewriter &rewriter) const override {
    if (!getElementTypeOrSelf(op.getType()).isF32())
      return rewriter.notifyMatchFailure(op, "storage type is not f32");
    auto inner = op.getInputs().front().getDefiningOp<BlockSumOp>();
    if (!inner || !inner->hasOneUse())
      return rewriter.notifyMatchFailure(op, "no single-use inner block_sum");
    SmallVector<Value> inputs(inner.getInputs());
    llvm::append_range(inputs, op.getInputs().drop_front());
    rewriter.replaceOpWithNewOp<BlockSumOp>(op, inputs);
    return success();
  }
};
} // namespace

void BlockSumOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                             MLIRContext *context) {
  results.add<BlockSumDropZeroInputs, BlockSumFlattenFirstInput>(context);
}

//===----------------------------------------------------------------------===//
// InvRmsOp
//===----------------------------------------------------------------------===//

void InvRmsOp::build(OpBuilder &builder, OperationState &state, Value input,
                     float epsilon) {
  build(builder, state,
        getPerTokenType(cast<RankedTensorType>(input.getType())), input,
        builder.getF32FloatAttr(epsilon));
}

LogicalResult InvRmsOp::verify() {
  auto type = cast<RankedTensorType>(getInput().getType());
  // (C1) rank >= 1, (C2) storage element type.
  if (failed(verifyValueType(*this, type, "input", "(C1)", "(C2)")))
    return failure();
  // (C3) Result: f32, the input's shape without D.
  SmallVector<int64_t> tokens(type.getShape().drop_back());
  if (failed(verifyF32Operand(*this, getResult().getType(), tokens, "result",
                              "one f32 per token", "(C3)")))
    return failure();
  // (C4) epsilon.
  return verifyEpsilon(*this, getEpsilonAttr(), "(C4)");
}

LogicalResult InvRmsOp::reifyResultShapes(OpBuilder &b,
                                          ReifiedRankedShapedTypeDims &shapes) {
  // Result dimension i is input dimension i (spec C.2).
  auto resultType = cast<RankedTensorType>(getResult().getType());
  SmallVector<OpFoldResult> inputSizes =
      tensor::getMixedSizes(b, getLoc(), getInput());
  SmallVector<OpFoldResult> sizes;
  for (int64_t i = 0, e = resultType.getRank(); i < e; ++i)
    sizes.push_back(resultType.isDynamicDim(i)
                        ? inputSizes[i]
                        : b.getIndexAttr(resultType.getDimSize(i)));
  shapes.push_back(std::move(sizes));
  return success();
}

//===----------------------------------------------------------------------===//
// BlockScoreOp
//===----------------------------------------------------------------------===//

void BlockScoreOp::build(OpBuilder &builder, OperationState &state,
                         Value queries, Value normWeights, ValueRange sources,
                         ValueRange invRms, Value outInit, Value lseInit,
                         float epsilon) {
  build(builder, state, outInit.getType(), lseInit.getType(), queries,
        normWeights, sources, invRms, outInit, lseInit,
        builder.getF32FloatAttr(epsilon));
}

LogicalResult BlockScoreOp::verify() {
  if (failed(verifyRequiredOperandGroups(*this,
                                         getProperties().operandSegmentSizes,
                                         {{0, "queries"},
                                          {1, "norm_weights"},
                                          {4, "out_init"},
                                          {5, "lse_init"}})))
    return failure();
  // (C1) At least one source.
  if (getSources().empty())
    return emitOpError("requires at least one source (C1)");
  // (C2) rank >= 1, (C3) storage element type.
  auto type = cast<RankedTensorType>(getSources().front().getType());
  if (failed(verifyValueType(*this, type, "source #0", "(C2)", "(C3)")))
    return failure();
  // (C4) All sources share one type.
  for (auto [i, v] : llvm::enumerate(getSources()))
    if (v.getType() != type)
      return emitOpError() << "source #" << i << " has type " << v.getType()
                           << " but source #0 has type " << type
                           << "; all sources must have one type (C4)";
  Type elt = type.getElementType();
  // What is known of [S, tokens..., D]; refined operand by operand.
  SmallVector<int64_t> known{ShapedType::kDynamic};
  llvm::append_range(known, type.getShape());
  MutableArrayRef<int64_t> knownRef(known);

  // (C5) queries: tensor<S x D x E>.
  auto qType = cast<RankedTensorType>(getQueries().getType());
  RankedTensorType expectedQ =
      RankedTensorType::get({known.front(), known.back()}, elt);
  if (qType.getRank() != 2 || qType.getElementType() != elt ||
      !compatibleShapes(qType.getShape(), expectedQ.getShape()))
    return emitOpError() << "queries must have type " << expectedQ
                         << " (S pseudo-queries of the sources' D and E), got "
                         << qType << " (C5)";
  known.front() = qType.getDimSize(0);
  refineShape(knownRef.take_back(), qType.getShape().take_back());
  // (C6) norm_weights has the queries' type.
  if (getNormWeights().getType() != qType)
    return emitOpError() << "norm_weights must have the queries' type " << qType
                         << ", got " << getNormWeights().getType() << " (C6)";
  // (C7) inv_rms: none, or one per source.
  if (!getInvRms().empty() && getInvRms().size() != getSources().size())
    return emitOpError() << "has " << getInvRms().size()
                         << " inv_rms operands for " << getSources().size()
                         << " sources; give none or one per source (C7)";
  // (C8) Each inv_rms is tensor<... x f32> over the sources' tokens.
  for (auto [i, v] : llvm::enumerate(getInvRms()))
    if (failed(verifyF32Operand(*this, v.getType(),
                                knownRef.drop_front().drop_back(),
                                (Twine("inv_rms #") + Twine(i)).str(),
                                "one f32 per token", "(C8)")))
      return failure();
  // (C9) out_init: tensor<S x ... x D x E>.
  auto outType = cast<RankedTensorType>(getOutInit().getType());
  RankedTensorType expectedOut = RankedTensorType::get(known, elt);
  if (outType.getElementType() != elt ||
      !compatibleShapes(outType.getShape(), expectedOut.getShape()))
    return emitOpError() << "out_init must have type " << expectedOut
                         << " (one output per query), got " << outType
                         << " (C9)";
  refineShape(knownRef, outType.getShape());
  // (C10) lse_init: tensor<S x ... x f32>.
  if (failed(verifyF32Operand(*this, getLseInit().getType(),
                              knownRef.drop_back(), "lse_init",
                              "one f32 per query and token", "(C10)")))
    return failure();
  // (C11) Results have the types of their inits.
  if (getOut().getType() != outType ||
      getLse().getType() != getLseInit().getType())
    return emitOpError() << "results must have the types of out_init and "
                            "lse_init ("
                         << outType << ", " << getLseInit().getType()
                         << "), got (" << getOut().getType() << ", "
                         << getLse().getType() << ") (C11)";
  // (C12) epsilon.
  return verifyEpsilon(*this, getEpsilonAttr(), "(C12)");
}

LogicalResult
BlockScoreOp::reifyResultShapes(OpBuilder &b,
                                ReifiedRankedShapedTypeDims &shapes) {
  // Destination style: the results have the shapes of the inits.
  shapes.push_back(tensor::getMixedSizes(b, getLoc(), getOutInit()));
  shapes.push_back(tensor::getMixedSizes(b, getLoc(), getLseInit()));
  return success();
}

namespace {
/// block_score overwrites every element of its inits and never reads them
/// (spec D.4, D-C1): an init that is not already a `tensor.empty` becomes
/// one of the same type, which removes a false data dependence and lets
/// bufferization allocate the output instead of copying the init.
struct BlockScoreInitsToEmpty : public OpRewritePattern<BlockScoreOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BlockScoreOp op,
                                PatternRewriter &rewriter) const override {
    bool changed = false;
    for (OpOperand &init : op.getDpsInitsMutable()) {
      if (init.get().getDefiningOp<tensor::EmptyOp>())
        continue;
      auto type = cast<RankedTensorType>(init.get().getType());
      SmallVector<OpFoldResult> sizes =
          tensor::getMixedSizes(rewriter, op.getLoc(), init.get());
      Value empty =
          tensor::EmptyOp::create(rewriter, op.getLoc(), sizes,
                                  type.getElementType(), type.getEncoding());
      rewriter.modifyOpInPlace(op, [&] { init.set(empty); });
      changed = true;
    }
    return success(changed);
  }
};
} // namespace

void BlockScoreOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                               MLIRContext *context) {
  results.add<BlockScoreInitsToEmpty>(context);
}

//===----------------------------------------------------------------------===//
// MergeOp
//===----------------------------------------------------------------------===//

// attnres.merge %o, %lse, %q, %g update %y [partial %p] [norm %gn]
//     {epsilon[, norm_epsilon]} : tensor<..> [operand_types(...)]
//
// Hand-written: `partial` and the norm gain share one variadic operand group
// (so that the generic form of the two-result op has no segment sizes), and
// which one a lone trailing operand is depends on `norm_epsilon`, which the
// declarative format cannot express.
ParseResult MergeOp::parse(OpAsmParser &parser, OperationState &result) {
  OpAsmParser::UnresolvedOperand out, lse, query, gain, update, partial,
      normGain;
  bool hasPartial = false, hasNorm = false;
  RankedTensorType type;
  if (parser.parseOperand(out) || parser.parseComma() ||
      parser.parseOperand(lse) || parser.parseComma() ||
      parser.parseOperand(query) || parser.parseComma() ||
      parser.parseOperand(gain) || parser.parseKeyword("update") ||
      parser.parseOperand(update))
    return failure();
  if (succeeded(parser.parseOptionalKeyword("partial"))) {
    hasPartial = true;
    if (parser.parseOperand(partial))
      return failure();
  }
  if (succeeded(parser.parseOptionalKeyword("norm"))) {
    hasNorm = true;
    if (parser.parseOperand(normGain))
      return failure();
  }
  SMLoc attrLoc = parser.getCurrentLocation();
  if (parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parseSourceType(parser, type))
    return failure();
  StringAttr normEpsName = getNormEpsilonAttrName(result.name);
  if (hasNorm != static_cast<bool>(result.attributes.get(normEpsName)))
    return parser.emitError(attrLoc)
           << "'norm %gain' and the 'norm_epsilon' attribute go together "
              "(C8)";
  RankedTensorType vecType = getVectorType(type);
  // lse, query, norm_weight[, norm gain]: derived types unless given.
  SmallVector<Type, 4> derived{getPerTokenType(type), vecType, vecType};
  if (hasNorm)
    derived.push_back(vecType);
  if (parseDerivedTypes(parser, derived))
    return failure();
  if (parser.resolveOperand(out, type, result.operands) ||
      parser.resolveOperand(lse, derived[0], result.operands) ||
      parser.resolveOperand(query, derived[1], result.operands) ||
      parser.resolveOperand(gain, derived[2], result.operands) ||
      parser.resolveOperand(update, type, result.operands) ||
      (hasPartial && parser.resolveOperand(partial, type, result.operands)) ||
      (hasNorm && parser.resolveOperand(normGain, derived[3], result.operands)))
    return failure();
  result.addTypes({type, type});
  if (hasNorm)
    result.addTypes(type);
  return success();
}

void MergeOp::print(OpAsmPrinter &p) {
  p << " " << getOut() << ", " << getLse() << ", " << getQuery() << ", "
    << getNormWeight() << " update " << getUpdate();
  if (Value partial = getPartial())
    p << " partial " << partial;
  if (Value normGain = getNormGain())
    p << " norm " << normGain;
  p.printOptionalAttrDict((*this)->getAttrs());
  auto type = cast<RankedTensorType>(getResult().getType());
  p << " : " << type;
  RankedTensorType vecType = getVectorType(type);
  SmallVector<Type, 4> derived{getPerTokenType(type), vecType, vecType};
  SmallVector<Type, 4> actual{getLse().getType(), getQuery().getType(),
                              getNormWeight().getType()};
  if (Value normGain = getNormGain()) {
    derived.push_back(vecType);
    actual.push_back(normGain.getType());
  }
  printDerivedTypes(p, derived, actual);
}

void MergeOp::build(OpBuilder &builder, OperationState &state, Value out,
                    Value lse, Value query, Value normWeight, Value update,
                    Value partial, float epsilon) {
  build(builder, state, update.getType(), update.getType(), out, lse, query,
        normWeight, update, partial, builder.getF32FloatAttr(epsilon));
}

void MergeOp::build(OpBuilder &builder, OperationState &state, Value out,
                    Value lse, Value query, Value normWeight, Value update,
                    Value partial, Value normGain, float epsilon,
                    float normEpsilon) {
  SmallVector<Value> tail;
  if (partial)
    tail.push_back(partial);
  tail.push_back(normGain);
  Type type = update.getType();
  build(builder, state, type, type, type, out, lse, query, normWeight, update,
        tail, builder.getF32FloatAttr(epsilon),
        builder.getF32FloatAttr(normEpsilon));
}

void MergeOp::build(OpBuilder &builder, OperationState &state, Type resultType,
                    Type newPartialType, Value out, Value lse, Value query,
                    Value normWeight, Value update, Value partial,
                    FloatAttr epsilon) {
  SmallVector<Value> tail;
  if (partial)
    tail.push_back(partial);
  build(builder, state, resultType, newPartialType, /*normed=*/Type(), out, lse,
        query, normWeight, update, tail, epsilon,
        /*norm_epsilon=*/FloatAttr());
}

LogicalResult MergeOp::verify() {
  // (C1) rank >= 1, (C2) storage element type.
  auto type = cast<RankedTensorType>(getResult().getType());
  if (failed(verifyValueType(*this, type, "result", "(C1)", "(C2)")))
    return failure();
  // (C8) at most `partial` and the norm gain after `update`; the norm gain,
  // `norm_epsilon` and the `normed` result come together.
  unsigned numTail = getOptionalOperands().size();
  bool norm = hasNorm();
  if (numTail > (norm ? 2u : 1u))
    return emitOpError() << "takes at most "
                         << (norm ? "a partial sum and a "
                                    "norm gain"
                                  : "one partial sum")
                         << " after 'update', got " << numTail
                         << " more operands (C8)";
  if (norm && numTail == 0)
    return emitOpError() << "has 'norm_epsilon' but no norm gain operand (C8)";
  if (norm != static_cast<bool>(getNormed()))
    return emitOpError() << (norm ? "with a fused norm must have a third "
                                    "result 'normed'"
                                  : "without 'norm_epsilon' has no norm gain "
                                    "and must have two results")
                         << " (C8)";
  // (C3) out, update, partial, new_partial and normed have the result type.
  auto check = [&](Value v, StringRef what) -> LogicalResult {
    if (v.getType() != type)
      return emitOpError() << what << " has type " << v.getType()
                           << " but the result has type " << type << " (C3)";
    return success();
  };
  if (failed(check(getOut(), "out")) || failed(check(getUpdate(), "update")) ||
      (getPartial() && failed(check(getPartial(), "partial"))) ||
      failed(check(getNewPartial(), "new_partial")) ||
      (getNormed() && failed(check(getNormed(), "normed"))))
    return failure();
  SmallVector<int64_t> known(type.getShape());
  MutableArrayRef<int64_t> knownRef(known);
  // (C4) lse: tensor<... x f32>.
  if (failed(verifyF32Operand(*this, getLse().getType(), knownRef.drop_back(),
                              "lse", "one f32 per token", "(C4)")))
    return failure();
  // (C5) query and (C6) norm_weight: tensor<D x E>.
  Type elt = type.getElementType();
  if (failed(verifyVectorOperand(*this, getQuery().getType(), known, elt,
                                 "query", "(C5)")) ||
      failed(verifyVectorOperand(*this, getNormWeight().getType(), known, elt,
                                 "norm_weight", "(C6)")))
    return failure();
  // (C7) epsilon.
  if (failed(verifyEpsilon(*this, getEpsilonAttr(), "(C7)")))
    return failure();
  if (!norm)
    return success();
  // (C9) the norm gain: tensor<D x E>; (C10) norm_epsilon.
  if (failed(verifyVectorOperand(*this, getNormGain().getType(), known, elt,
                                 "norm gain", "(C9)")))
    return failure();
  double v = getNormEpsilonAttr().getValueAsDouble();
  if (!std::isfinite(v) || v < 0.0)
    return emitOpError() << "norm_epsilon must be finite and non-negative, got "
                         << v << " (C10)";
  return success();
}

LogicalResult MergeOp::reifyResultShapes(OpBuilder &b,
                                         ReifiedRankedShapedTypeDims &shapes) {
  SmallVector<OpFoldResult> sizes =
      tensor::getMixedSizes(b, getLoc(), getUpdate());
  for (unsigned i = 0, e = getNumResults(); i < e; ++i)
    shapes.push_back(sizes);
  return success();
}

namespace {
/// Creates a merge like `op` with the given partial sum and, when
/// `keepNorm`, its norm; replaces `op`'s results (a dropped norm's result
/// must be unused).
static void replaceMerge(PatternRewriter &rewriter, MergeOp op, Value partial,
                         bool keepNorm) {
  SmallVector<Value> tail;
  if (partial)
    tail.push_back(partial);
  if (keepNorm && op.hasNorm())
    tail.push_back(op.getNormGain());
  bool norm = keepNorm && op.hasNorm();
  Type type = op.getResult().getType();
  auto merge = MergeOp::create(
      rewriter, op.getLoc(), type, op.getNewPartial().getType(),
      norm ? type : Type(), op.getOut(), op.getLse(), op.getQuery(),
      op.getNormWeight(), op.getUpdate(), tail, op.getEpsilonAttr(),
      norm ? op.getNormEpsilonAttr() : FloatAttr());
  SmallVector<Value> results{merge.getResult(), merge.getNewPartial()};
  if (op.getNormed())
    results.push_back(norm ? merge.getNormed() : Value());
  rewriter.replaceOp(op, results);
}

/// merge with a splat-zero `partial` -> merge without `partial`: p' = 0 +
/// update = update up to the sign of zero, which is not specified (spec
/// 0.6, E.4, E-C1).
struct MergeDropZeroPartial : public OpRewritePattern<MergeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MergeOp op,
                                PatternRewriter &rewriter) const override {
    Value partial = op.getPartial();
    if (!partial || !matchPattern(partial, m_AnyZeroFloat()))
      return rewriter.notifyMatchFailure(op, "partial is not a zero splat");
    replaceMerge(rewriter, op, /*partial=*/Value(), /*keepNorm=*/true);
    return success();
  }
};

/// merge with a fused norm whose `normed` result is unused -> merge without
/// the norm (spec E.4, E-C2).
struct MergeDropUnusedNorm : public OpRewritePattern<MergeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MergeOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasNorm() || !op.getNormed() || !op.getNormed().use_empty())
      return rewriter.notifyMatchFailure(op, "no unused fused norm");
    replaceMerge(rewriter, op, op.getPartial(), /*keepNorm=*/false);
    return success();
  }
};
} // namespace

void MergeOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                          MLIRContext *context) {
  results.add<MergeDropZeroPartial, MergeDropUnusedNorm>(context);
}

#define GET_OP_CLASSES
#include "attnres/Dialect/AttnRes/IR/AttnResOps.cpp.inc"
