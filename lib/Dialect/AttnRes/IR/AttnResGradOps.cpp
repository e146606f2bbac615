//===- AttnResGradOps.cpp - AttnRes training operations -------------------===//
//
// Part of the attnres project. Constraint numbers (Cn) refer to the op's
// part of docs/spec.md section I. The op classes themselves are generated
// into AttnResOps.cpp.inc (AttnResGradOps.td is included by AttnResOps.td).
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "OpHelpers.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::detail;

/// The sizes of the leading (token) dimensions of `source`.
static SmallVector<OpFoldResult> tokenSizes(OpBuilder &b, Location loc,
                                            Value source) {
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, source);
  sizes.pop_back();
  return sizes;
}

/// Checks the per-token statistics `lse` and `invRms` (spec I (C8), (C9) of
/// both ops): each is exactly `perToken` (`tensor<... x f32>`, the value
/// type without D: the custom form implies it), one `inv_rms` per source.
static LogicalResult verifyStats(Operation *op, Type lseType,
                                 TypeRange invRmsTypes, unsigned numSources,
                                 RankedTensorType perToken, StringRef what) {
  if (lseType != perToken)
    return op->emitOpError()
           << "lse " << what << " must have type " << perToken
           << " (one f32 per token), got " << lseType << " (C8)";
  if (invRmsTypes.size() != numSources)
    return op->emitOpError()
           << "has " << invRmsTypes.size() << " inv_rms " << what << "s for "
           << numSources << " sources; it needs one per source (C9)";
  for (auto [i, t] : llvm::enumerate(invRmsTypes))
    if (t != perToken)
      return op->emitOpError()
             << "inv_rms " << what << " #" << i << " must have type "
             << perToken << " (one f32 per token), got " << t << " (C9)";
  return success();
}

/// Checks the sources of an aggregation (C1, C4) against `type` (whose rank
/// and element type, C2 and C3, `typeWhat` names).
static LogicalResult verifySources(Operation *op, OperandRange sources,
                                   RankedTensorType type, StringRef typeWhat) {
  // (C1) At least one source.
  if (sources.empty())
    return op->emitOpError("requires at least one source (C1)");
  // (C2) rank >= 1, (C3) storage element type.
  if (failed(verifyValueType(op, type, typeWhat, "(C2)", "(C3)")))
    return failure();
  // (C4) Every source has that type.
  for (auto [i, v] : llvm::enumerate(sources))
    if (v.getType() != type)
      return op->emitOpError()
             << "source #" << i << " has type " << v.getType() << " but the "
             << typeWhat << " has type " << type << "; all sources and the "
             << typeWhat << " must have one type (C4)";
  return success();
}

/// The constraints both training ops share with `attnres.aggregate`: the
/// sources against `type` (C1-C4), query (C5) and norm_weight (C6) of type
/// tensor<DxE>, and epsilon (C7).
static LogicalResult
verifyAggregateOperands(Operation *op, OperandRange sources,
                        RankedTensorType type, StringRef typeWhat, Value query,
                        Value normWeight, FloatAttr epsilon) {
  if (failed(verifySources(op, sources, type, typeWhat)))
    return failure();
  SmallVector<int64_t> shape(type.getShape());
  Type elt = type.getElementType();
  if (failed(verifyVectorOperand(op, query.getType(), shape, elt, "query",
                                 "(C5)")) ||
      failed(verifyVectorOperand(op, normWeight.getType(), shape, elt,
                                 "norm_weight", "(C6)")))
    return failure();
  return verifyEpsilon(op, epsilon, "(C7)");
}

//===----------------------------------------------------------------------===//
// AggregateStatsOp
//===----------------------------------------------------------------------===//

// attnres.aggregate_stats %q, %g over %v0, %v1 {epsilon = ...}
//     : tensor<...xDxE>
ParseResult AggregateStatsOp::parse(OpAsmParser &parser,
                                    OperationState &result) {
  OpAsmParser::UnresolvedOperand query, gain;
  SmallVector<OpAsmParser::UnresolvedOperand> sources;
  RankedTensorType type;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parser.parseOperand(query) || parser.parseComma() ||
      parser.parseOperand(gain) || parser.parseKeyword("over") ||
      parseOperandList1(parser, sources) ||
      parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parseSourceType(parser, type))
    return failure();
  RankedTensorType vecType = getVectorType(type);
  if (parser.resolveOperand(query, vecType, result.operands) ||
      parser.resolveOperand(gain, vecType, result.operands) ||
      parser.resolveOperands(sources, type, loc, result.operands))
    return failure();
  RankedTensorType perToken = getPerTokenType(type);
  result.addTypes({type, perToken});
  result.addTypes(SmallVector<Type>(sources.size(), perToken));
  return success();
}

void AggregateStatsOp::print(OpAsmPrinter &p) {
  p << " " << getQuery() << ", " << getNormWeight() << " over ";
  p.printOperands(getSources());
  p.printOptionalAttrDict((*this)->getAttrs());
  p << " : " << getResult().getType();
}

LogicalResult AggregateStatsOp::verify() {
  // (C1)-(C4): the sources and the result `h`.
  RankedTensorType type = getSourceType();
  // (C5) query and (C6) norm_weight are tensor<DxE>, (C7) epsilon.
  if (failed(verifyAggregateOperands(*this, getSources(), type, "result",
                                     getQuery(), getNormWeight(),
                                     getEpsilonAttr())))
    return failure();
  // (C8) lse, (C9) one inv_rms per source, all over the result's tokens.
  return verifyStats(*this, getLse().getType(), getInvRms().getTypes(),
                     getNumSources(), getPerTokenType(type), "result");
}

LogicalResult
AggregateStatsOp::reifyResultShapes(OpBuilder &b,
                                    ReifiedRankedShapedTypeDims &shapes) {
  Value first = getSources().front();
  shapes.push_back(tensor::getMixedSizes(b, getLoc(), first));
  SmallVector<OpFoldResult> tokens = tokenSizes(b, getLoc(), first);
  for (unsigned i = 1, e = getNumResults(); i < e; ++i)
    shapes.push_back(tokens);
  return success();
}

//===----------------------------------------------------------------------===//
// AggregateGradOp
//===----------------------------------------------------------------------===//

// attnres.aggregate_grad %q, %g over %v0, %v1 stats %lse, %r0, %r1
//     grad %dh [accumulate %a0, %a1] {epsilon = ...} : tensor<...xDxE>
ParseResult AggregateGradOp::parse(OpAsmParser &parser,
                                   OperationState &result) {
  OpAsmParser::UnresolvedOperand query, gain, grad;
  SmallVector<OpAsmParser::UnresolvedOperand> sources, stats, accumulators;
  RankedTensorType type;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parser.parseOperand(query) || parser.parseComma() ||
      parser.parseOperand(gain) || parser.parseKeyword("over") ||
      parseOperandList1(parser, sources) || parser.parseKeyword("stats"))
    return failure();
  llvm::SMLoc statsLoc = parser.getCurrentLocation();
  if (parseOperandList1(parser, stats) || parser.parseKeyword("grad") ||
      parser.parseOperand(grad))
    return failure();
  if (succeeded(parser.parseOptionalKeyword("accumulate")))
    if (parseOperandList1(parser, accumulators))
      return failure();
  if (parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parseSourceType(parser, type))
    return failure();
  // `stats` is the lse followed by the inverse RMS of each source.
  if (stats.size() < 2)
    return parser.emitError(statsLoc)
           << "expected 'stats' to list the lse and one inv_rms per source";
  RankedTensorType vecType = getVectorType(type);
  RankedTensorType perToken = getPerTokenType(type);
  if (parser.resolveOperand(query, vecType, result.operands) ||
      parser.resolveOperand(gain, vecType, result.operands) ||
      parser.resolveOperands(sources, type, loc, result.operands) ||
      parser.resolveOperands(stats, perToken, statsLoc, result.operands) ||
      parser.resolveOperand(grad, type, result.operands) ||
      parser.resolveOperands(accumulators, type, loc, result.operands))
    return failure();
  result.addAttribute(getOperandSegmentSizesAttrName(result.name),
                      parser.getBuilder().getDenseI32ArrayAttr(
                          {1, 1, static_cast<int32_t>(sources.size()), 1,
                           static_cast<int32_t>(stats.size() - 1), 1,
                           static_cast<int32_t>(accumulators.size())}));
  result.addTypes(SmallVector<Type>(sources.size(), type));
  RankedTensorType paramGrad = RankedTensorType::get(
      vecType.getShape(), Float32Type::get(parser.getContext()));
  result.addTypes({paramGrad, paramGrad});
  return success();
}

void AggregateGradOp::print(OpAsmPrinter &p) {
  p << " " << getQuery() << ", " << getNormWeight() << " over ";
  p.printOperands(getSources());
  p << " stats " << getLse();
  for (Value r : getInvRms())
    p << ", " << r;
  p << " grad " << getGrad();
  if (isAccumulating()) {
    p << " accumulate ";
    p.printOperands(getAccumulators());
  }
  p.printOptionalAttrDict((*this)->getAttrs(),
                          {getOperandSegmentSizesAttrName()});
  p << " : " << getGrad().getType();
}

LogicalResult AggregateGradOp::verify() {
  // (C1)-(C4): the sources and the incoming gradient `grad`.
  RankedTensorType type = getSourceType();
  // (C5) query and (C6) norm_weight are tensor<DxE>, (C7) epsilon.
  if (failed(verifyAggregateOperands(*this, getSources(), type, "grad",
                                     getQuery(), getNormWeight(),
                                     getEpsilonAttr())))
    return failure();
  // (C8) lse, (C9) one inv_rms per source.
  if (failed(verifyStats(*this, getLse().getType(), getInvRms().getTypes(),
                         getNumSources(), getPerTokenType(type), "operand")))
    return failure();
  // (C10) accumulators: none, or one per source of the sources' type.
  unsigned n = getNumSources();
  if (isAccumulating() && getAccumulators().size() != n)
    return emitOpError() << "has " << getAccumulators().size()
                         << " accumulators for " << n
                         << " sources; give none or one per source (C10)";
  for (auto [i, a] : llvm::enumerate(getAccumulators()))
    if (a.getType() != type)
      return emitOpError() << "accumulator #" << i << " has type "
                           << a.getType() << " but the sources have type "
                           << type << " (C10)";
  // (C11) One source gradient per source, of the sources' type.
  if (getSourceGrads().size() != n)
    return emitOpError() << "has " << getSourceGrads().size()
                         << " source gradients for " << n
                         << " sources; it needs one per source (C11)";
  for (auto [i, r] : llvm::enumerate(getSourceGrads()))
    if (r.getType() != type)
      return emitOpError() << "source gradient #" << i << " has type "
                           << r.getType() << " but the sources have type "
                           << type << " (C11)";
  // (C12) query_grad and norm_weight_grad are tensor<D x f32>, D of the
  // value type.
  RankedTensorType expected = RankedTensorType::get(
      {type.getShape().back()}, Float32Type::get(getContext()));
  for (auto [what, v] :
       {std::pair<StringRef, Value>{"query_grad", getQueryGrad()},
        {"norm_weight_grad", getNormWeightGrad()}})
    if (v.getType() != expected)
      return emitOpError() << what << " must have type " << expected
                           << " (f32 sums over the tokens), got " << v.getType()
                           << " (C12)";
  return success();
}

LogicalResult
AggregateGradOp::reifyResultShapes(OpBuilder &b,
                                   ReifiedRankedShapedTypeDims &shapes) {
  SmallVector<OpFoldResult> sizes =
      tensor::getMixedSizes(b, getLoc(), getGrad());
  for (unsigned i = 0, e = getNumSources(); i < e; ++i)
    shapes.push_back(sizes);
  // query_grad and norm_weight_grad: [D], D from the query (C5).
  SmallVector<OpFoldResult> d = tensor::getMixedSizes(b, getLoc(), getQuery());
  shapes.push_back(d);
  shapes.push_back(d);
  return success();
}
