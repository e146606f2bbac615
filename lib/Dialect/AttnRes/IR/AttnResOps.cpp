//===- AttnResOps.cpp - AttnRes operations --------------------------------===//
//
// Part of the attnres project. Constraint numbers (Cn) refer to the op's
// section of docs/spec.md.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::attnres;

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

/// The type `tensor<D x E>` of a pseudo-query or gain for sources of type
/// `sourceType` (`tensor<... x D x E>`).
static RankedTensorType getVectorType(RankedTensorType sourceType) {
  int64_t d = sourceType.getRank() ? sourceType.getShape().back()
                                   : ShapedType::kDynamic;
  return RankedTensorType::get({d}, sourceType.getElementType());
}

/// The f32 per-token type `tensor<... x f32>` (the source shape without its
/// last dimension), optionally prefixed with `prefix` (the S of phase 1).
static RankedTensorType getPerTokenType(RankedTensorType sourceType,
                                        std::optional<int64_t> prefix = {}) {
  SmallVector<int64_t> shape;
  if (prefix)
    shape.push_back(*prefix);
  if (sourceType.getRank())
    llvm::append_range(shape, sourceType.getShape().drop_back());
  return RankedTensorType::get(shape,
                               Float32Type::get(sourceType.getContext()));
}

/// `tensor<S x ... x D x E>` for phase-1 outputs.
static RankedTensorType getStackedType(RankedTensorType sourceType,
                                       int64_t s) {
  SmallVector<int64_t> shape{s};
  llvm::append_range(shape, sourceType.getShape());
  return RankedTensorType::get(shape, sourceType.getElementType());
}

/// Shapes are compatible when every dimension is equal or dynamic on one side.
static bool compatibleShapes(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  if (a.size() != b.size())
    return false;
  for (auto [x, y] : llvm::zip(a, b))
    if (!ShapedType::isDynamic(x) && !ShapedType::isDynamic(y) && x != y)
      return false;
  return true;
}

static bool isStorageElementType(Type t) {
  return t.isF32() || t.isF16() || t.isBF16();
}

/// Checks the common constraints on a source type: ranked tensor of rank
/// >= 1 with an f32, f16 or bf16 element type.
static LogicalResult verifySourceType(Operation *op, Type type,
                                      StringRef what, StringRef rankRule,
                                      StringRef eltRule) {
  auto tt = dyn_cast<RankedTensorType>(type);
  if (!tt)
    return op->emitOpError() << what << " must be a ranked tensor, got "
                             << type << " " << rankRule;
  if (tt.getRank() < 1)
    return op->emitOpError()
           << what << " must have rank >= 1 (the last dimension is D), got "
           << type << " " << rankRule;
  if (!isStorageElementType(tt.getElementType()))
    return op->emitOpError() << what << " element type must be f32, f16 or "
                             << "bf16, got " << tt.getElementType() << " "
                             << eltRule;
  return success();
}

/// Checks that `type` is `tensor<D x E>` for sources of type `sourceType`.
static LogicalResult verifyVectorOperand(Operation *op, Type type,
                                         RankedTensorType sourceType,
                                         StringRef what, StringRef rule) {
  auto tt = dyn_cast<RankedTensorType>(type);
  RankedTensorType expected = getVectorType(sourceType);
  if (!tt || tt.getRank() != 1 ||
      tt.getElementType() != sourceType.getElementType() ||
      !compatibleShapes(tt.getShape(), expected.getShape()))
    return op->emitOpError()
           << what << " must have type " << expected
           << " (one value per feature of the sources), got " << type << " "
           << rule;
  return success();
}

static LogicalResult verifyEpsilon(Operation *op, FloatAttr eps,
                                   StringRef rule) {
  double v = eps.getValueAsDouble();
  if (!std::isfinite(v) || v < 0.0)
    return op->emitOpError()
           << "epsilon must be finite and non-negative, got " << v << " "
           << rule;
  return success();
}

/// Parses `%a, %b, ...` (at least one operand).
static ParseResult
parseOperandList1(OpAsmParser &parser,
                  SmallVectorImpl<OpAsmParser::UnresolvedOperand> &operands) {
  return parser.parseCommaSeparatedList([&]() -> ParseResult {
    return parser.parseOperand(operands.emplace_back());
  });
}

/// Parses `: tensor<...>` and checks it is a ranked tensor of rank >= 1.
static ParseResult parseSourceType(OpAsmParser &parser,
                                   RankedTensorType &type) {
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

//===----------------------------------------------------------------------===//
// AggregateOp
//===----------------------------------------------------------------------===//

void AggregateOp::build(OpBuilder &builder, OperationState &state, Value query,
                        Value normWeight, ValueRange sources, float epsilon) {
  assert(!sources.empty() && "aggregate needs at least one source");
  build(builder, state, sources.front().getType(), query, normWeight, sources,
        builder.getF32FloatAttr(epsilon));
}

// attnres.aggregate %q, %g over %v0, %v1 {epsilon = ...} : tensor<...xDxE>
ParseResult AggregateOp::parse(OpAsmParser &parser, OperationState &result) {
  OpAsmParser::UnresolvedOperand query, gain;
  SmallVector<OpAsmParser::UnresolvedOperand> sources;
  RankedTensorType type;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parser.parseOperand(query) || parser.parseComma() ||
      parser.parseOperand(gain) || parser.parseKeyword("over") ||
      parseOperandList1(parser, sources) ||
      parser.parseOptionalAttrDict(result.attributes) ||
      parser.parseColon() || parseSourceType(parser, type))
    return failure();
  RankedTensorType vecType = getVectorType(type);
  if (parser.resolveOperand(query, vecType, result.operands) ||
      parser.resolveOperand(gain, vecType, result.operands) ||
      parser.resolveOperands(sources, type, loc, result.operands))
    return failure();
  result.addTypes(type);
  return success();
}

void AggregateOp::print(OpAsmPrinter &p) {
  p << " " << getQuery() << ", " << getNormWeight() << " over ";
  p.printOperands(getSources());
  p.printOptionalAttrDict((*this)->getAttrs());
  p << " : " << getResult().getType();
}

LogicalResult AggregateOp::verify() {
  // (C1) At least one source.
  if (getSources().empty())
    return emitOpError("requires at least one source (C1)");
  // (C2, C3) Ranked tensor of rank >= 1 with a storage element type.
  RankedTensorType type = getSourceType();
  if (failed(verifySourceType(*this, type, "result", "(C2)", "(C3)")))
    return failure();
  // (C2) Every source has the result type.
  for (auto [i, v] : llvm::enumerate(getSources()))
    if (v.getType() != type)
      return emitOpError() << "source #" << i << " has type " << v.getType()
                           << " but the result has type " << type
                           << "; all sources and the result must have one "
                              "type (C2)";
  // (C4) query and norm_weight are tensor<DxE>.
  if (failed(verifyVectorOperand(*this, getQuery().getType(), type, "query",
                                 "(C4)")) ||
      failed(verifyVectorOperand(*this, getNormWeight().getType(), type,
                                 "norm_weight", "(C4)")))
    return failure();
  // (C5) epsilon.
  return verifyEpsilon(*this, getEpsilonAttr(), "(C5)");
}

OpFoldResult AggregateOp::fold(FoldAdaptor) {
  // A softmax over one source gives it weight exactly 1 (spec A.3).
  if (getSources().size() == 1)
    return getSources().front();
  return {};
}

void AggregateOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *context) {}

//===----------------------------------------------------------------------===//
// BlockSumOp
//===----------------------------------------------------------------------===//

// attnres.block_sum %a, %b : tensor<...>
ParseResult BlockSumOp::parse(OpAsmParser &parser, OperationState &result) {
  SmallVector<OpAsmParser::UnresolvedOperand> inputs;
  RankedTensorType type;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parseOperandList1(parser, inputs) ||
      parser.parseOptionalAttrDict(result.attributes) ||
      parser.parseColon() || parseSourceType(parser, type) ||
      parser.resolveOperands(inputs, type, loc, result.operands))
    return failure();
  result.addTypes(type);
  return success();
}

void BlockSumOp::print(OpAsmPrinter &p) {
  p << " ";
  p.printOperands(getInputs());
  p.printOptionalAttrDict((*this)->getAttrs());
  p << " : " << getResult().getType();
}

LogicalResult BlockSumOp::verify() {
  // (C1) At least one input.
  if (getInputs().empty())
    return emitOpError("requires at least one input (C1)");
  Type type = getResult().getType();
  // (C3) Ranked tensor of rank >= 1 with a storage element type.
  if (failed(verifySourceType(*this, type, "result", "(C3)", "(C3)")))
    return failure();
  // (C2) One type for all.
  for (auto [i, v] : llvm::enumerate(getInputs()))
    if (v.getType() != type)
      return emitOpError() << "input #" << i << " has type " << v.getType()
                           << " but the result has type " << type << " (C2)";
  return success();
}

OpFoldResult BlockSumOp::fold(FoldAdaptor) {
  if (getInputs().size() == 1)
    return getInputs().front();
  return {};
}

void BlockSumOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                             MLIRContext *context) {}

//===----------------------------------------------------------------------===//
// InvRmsOp
//===----------------------------------------------------------------------===//

LogicalResult InvRmsOp::verify() {
  auto type = cast<RankedTensorType>(getInput().getType());
  // (C1) Input: rank >= 1, storage element type.
  if (failed(verifySourceType(*this, type, "input", "(C1)", "(C1)")))
    return failure();
  // (C2) Result: the input's shape without D, f32.
  RankedTensorType expected = getPerTokenType(type);
  auto resultType = cast<RankedTensorType>(getResult().getType());
  if (!compatibleShapes(resultType.getShape(), expected.getShape()))
    return emitOpError() << "result must have type " << expected
                         << " (one f32 per token), got " << resultType
                         << " (C2)";
  // (C3) epsilon.
  return verifyEpsilon(*this, getEpsilonAttr(), "(C3)");
}

//===----------------------------------------------------------------------===//
// BlockScoreOp
//===----------------------------------------------------------------------===//

// attnres.block_score %W, %G over %b0, %b1 [inv_rms %r0, %r1]
//     outs %o, %lse {epsilon = ...} : tensor<...xDxE> -> tensor<Sx...xDxE>
ParseResult BlockScoreOp::parse(OpAsmParser &parser, OperationState &result) {
  OpAsmParser::UnresolvedOperand queries, gains, outInit, lseInit;
  SmallVector<OpAsmParser::UnresolvedOperand> sources, invRms;
  RankedTensorType sourceType, outType;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parser.parseOperand(queries) || parser.parseComma() ||
      parser.parseOperand(gains) || parser.parseKeyword("over") ||
      parseOperandList1(parser, sources))
    return failure();
  if (succeeded(parser.parseOptionalKeyword("inv_rms")))
    if (parseOperandList1(parser, invRms))
      return failure();
  if (parser.parseKeyword("outs") || parser.parseOperand(outInit) ||
      parser.parseComma() || parser.parseOperand(lseInit) ||
      parser.parseOptionalAttrDict(result.attributes) ||
      parser.parseColon() || parseSourceType(parser, sourceType) ||
      parser.parseArrow() || parseSourceType(parser, outType))
    return failure();
  if (outType.getRank() != sourceType.getRank() + 1)
    return parser.emitError(loc)
           << "expected the output type to have one more dimension (S) than "
              "the source type";
  int64_t s = outType.getDimSize(0);
  RankedTensorType qType =
      RankedTensorType::get({s, sourceType.getShape().back()},
                            sourceType.getElementType());
  RankedTensorType lseType = getPerTokenType(sourceType, s);
  if (parser.resolveOperand(queries, qType, result.operands) ||
      parser.resolveOperand(gains, qType, result.operands) ||
      parser.resolveOperands(sources, sourceType, loc, result.operands) ||
      parser.resolveOperands(invRms, getPerTokenType(sourceType), loc,
                             result.operands) ||
      parser.resolveOperand(outInit, outType, result.operands) ||
      parser.resolveOperand(lseInit, lseType, result.operands))
    return failure();
  result.addAttribute(getOperandSegmentSizesAttrName(result.name),
                      parser.getBuilder().getDenseI32ArrayAttr(
                          {1, 1, static_cast<int32_t>(sources.size()),
                           static_cast<int32_t>(invRms.size()), 1, 1}));
  result.addTypes({outType, lseType});
  return success();
}

void BlockScoreOp::print(OpAsmPrinter &p) {
  p << " " << getQueries() << ", " << getNormWeights() << " over ";
  p.printOperands(getSources());
  if (!getInvRms().empty()) {
    p << " inv_rms ";
    p.printOperands(getInvRms());
  }
  p << " outs " << getOutInit() << ", " << getLseInit();
  p.printOptionalAttrDict((*this)->getAttrs(),
                          {getOperandSegmentSizesAttrName()});
  p << " : " << getSources().front().getType() << " -> "
    << getOut().getType();
}

LogicalResult BlockScoreOp::verify() {
  // (C1) At least one source.
  if (getSources().empty())
    return emitOpError("requires at least one source (C1)");
  Type srcType = getSources().front().getType();
  if (failed(verifySourceType(*this, srcType, "source #0", "(C2)", "(C2)")))
    return failure();
  auto type = cast<RankedTensorType>(srcType);
  // (C2) All sources share one type.
  for (auto [i, v] : llvm::enumerate(getSources()))
    if (v.getType() != type)
      return emitOpError() << "source #" << i << " has type " << v.getType()
                           << " but source #0 has type " << type << " (C2)";
  // (C3) queries and norm_weights are tensor<SxDxE> with one type.
  auto qType = dyn_cast<RankedTensorType>(getQueries().getType());
  RankedTensorType expectedQ = RankedTensorType::get(
      {ShapedType::kDynamic, type.getShape().back()}, type.getElementType());
  if (!qType || qType.getRank() != 2 ||
      qType.getElementType() != type.getElementType() ||
      !compatibleShapes(qType.getShape(), expectedQ.getShape()))
    return emitOpError() << "queries must have type tensor<SxDxE> matching "
                            "the sources' D and E, got "
                         << getQueries().getType() << " (C3)";
  if (getNormWeights().getType() != qType)
    return emitOpError() << "norm_weights must have the queries' type "
                         << qType << ", got " << getNormWeights().getType()
                         << " (C3)";
  int64_t s = qType.getDimSize(0);
  // (C4) inv_rms: none, or one per source of type tensor<...xf32>.
  if (!getInvRms().empty()) {
    if (getInvRms().size() != getSources().size())
      return emitOpError() << "has " << getInvRms().size()
                           << " inv_rms operands for " << getSources().size()
                           << " sources; give none or one per source (C4)";
    RankedTensorType rType = getPerTokenType(type);
    for (auto [i, v] : llvm::enumerate(getInvRms()))
      if (!compatibleShapes(cast<RankedTensorType>(v.getType()).getShape(),
                            rType.getShape()))
        return emitOpError() << "inv_rms #" << i << " must have type "
                             << rType << ", got " << v.getType() << " (C4)";
  }
  // (C5) out: tensor<Sx...xDxE>; lse: tensor<Sx...xf32>.
  auto outType = cast<RankedTensorType>(getOutInit().getType());
  RankedTensorType expectedOut = getStackedType(type, s);
  if (outType.getElementType() != type.getElementType() ||
      !compatibleShapes(outType.getShape(), expectedOut.getShape()))
    return emitOpError() << "out_init must have type " << expectedOut
                         << ", got " << outType << " (C5)";
  auto lseType = cast<RankedTensorType>(getLseInit().getType());
  RankedTensorType expectedLse = getPerTokenType(type, s);
  if (!compatibleShapes(lseType.getShape(), expectedLse.getShape()))
    return emitOpError() << "lse_init must have type " << expectedLse
                         << ", got " << lseType << " (C5)";
  // (C6) Results have the types of their inits.
  if (getOut().getType() != outType || getLse().getType() != lseType)
    return emitOpError("results must have the types of out_init and lse_init "
                       "(C6)");
  // (C7) epsilon.
  return verifyEpsilon(*this, getEpsilonAttr(), "(C7)");
}

//===----------------------------------------------------------------------===//
// MergeOp
//===----------------------------------------------------------------------===//

// attnres.merge %o, %lse, %q, %g update %y [partial %p] {epsilon} : tensor<..>
ParseResult MergeOp::parse(OpAsmParser &parser, OperationState &result) {
  OpAsmParser::UnresolvedOperand out, lse, query, gain, update, partial;
  bool hasPartial = false;
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
  if (parser.parseOptionalAttrDict(result.attributes) ||
      parser.parseColon() || parseSourceType(parser, type))
    return failure();
  RankedTensorType vecType = getVectorType(type);
  if (parser.resolveOperand(out, type, result.operands) ||
      parser.resolveOperand(lse, getPerTokenType(type), result.operands) ||
      parser.resolveOperand(query, vecType, result.operands) ||
      parser.resolveOperand(gain, vecType, result.operands) ||
      parser.resolveOperand(update, type, result.operands) ||
      (hasPartial && parser.resolveOperand(partial, type, result.operands)))
    return failure();
  result.addTypes({type, type});
  return success();
}

void MergeOp::print(OpAsmPrinter &p) {
  p << " " << getOut() << ", " << getLse() << ", " << getQuery() << ", "
    << getNormWeight() << " update " << getUpdate();
  if (getPartial())
    p << " partial " << getPartial();
  p.printOptionalAttrDict((*this)->getAttrs());
  p << " : " << getResult().getType();
}

LogicalResult MergeOp::verify() {
  Type type = getResult().getType();
  // (C1) out, update, partial and both results: one source type.
  if (failed(verifySourceType(*this, type, "result", "(C1)", "(C1)")))
    return failure();
  auto tt = cast<RankedTensorType>(type);
  auto check = [&](Value v, StringRef what) -> LogicalResult {
    if (v.getType() != type)
      return emitOpError() << what << " has type " << v.getType()
                           << " but the result has type " << type << " (C1)";
    return success();
  };
  if (failed(check(getOut(), "out")) || failed(check(getUpdate(), "update")) ||
      (getPartial() && failed(check(getPartial(), "partial"))) ||
      failed(check(getNewPartial(), "new_partial")))
    return failure();
  // (C2) lse: tensor<...xf32>.
  RankedTensorType expectedLse = getPerTokenType(tt);
  if (!compatibleShapes(cast<RankedTensorType>(getLse().getType()).getShape(),
                        expectedLse.getShape()))
    return emitOpError() << "lse must have type " << expectedLse << ", got "
                         << getLse().getType() << " (C2)";
  // (C3) query, norm_weight: tensor<DxE>.
  if (failed(verifyVectorOperand(*this, getQuery().getType(), tt, "query",
                                 "(C3)")) ||
      failed(verifyVectorOperand(*this, getNormWeight().getType(), tt,
                                 "norm_weight", "(C3)")))
    return failure();
  // (C4) epsilon.
  return verifyEpsilon(*this, getEpsilonAttr(), "(C4)");
}

#define GET_OP_CLASSES
#include "attnres/Dialect/AttnRes/IR/AttnResOps.cpp.inc"
