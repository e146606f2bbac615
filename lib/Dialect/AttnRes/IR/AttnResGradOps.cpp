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
  if (failed(verifyRequiredOperandGroups(
          *this, getProperties().operandSegmentSizes,
          {{0, "query"}, {1, "norm_weight"}, {3, "lse"}, {5, "grad"}})))
    return failure();
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

//===----------------------------------------------------------------------===//
// BlockScoreGradOp
//===----------------------------------------------------------------------===//

/// `tensor<S x D x f32>`: the type of the query and gain gradients of
/// `block_score_grad`.
static RankedTensorType getStackedParamGradType(RankedTensorType sourceType,
                                                int64_t s) {
  return RankedTensorType::get({s, sourceType.getShape().back()},
                               Float32Type::get(sourceType.getContext()));
}

// attnres.block_score_grad %W, %G over %b0, %b1 stats %lse, %r0, %r1
//     grad %dout, %dlse [accumulate %a0, %a1] {epsilon = ...}
//     : tensor<...xDxE> -> tensor<Sx...xDxE>
ParseResult BlockScoreGradOp::parse(OpAsmParser &parser,
                                    OperationState &result) {
  OpAsmParser::UnresolvedOperand queries, gains, dout, dlse;
  SmallVector<OpAsmParser::UnresolvedOperand> sources, stats, accumulators;
  RankedTensorType type, outType;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parser.parseOperand(queries) || parser.parseComma() ||
      parser.parseOperand(gains) || parser.parseKeyword("over") ||
      parseOperandList1(parser, sources) || parser.parseKeyword("stats"))
    return failure();
  llvm::SMLoc statsLoc = parser.getCurrentLocation();
  if (parseOperandList1(parser, stats) || parser.parseKeyword("grad") ||
      parser.parseOperand(dout) || parser.parseComma() ||
      parser.parseOperand(dlse))
    return failure();
  if (succeeded(parser.parseOptionalKeyword("accumulate")))
    if (parseOperandList1(parser, accumulators))
      return failure();
  llvm::SMLoc typeLoc;
  if (parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parseSourceType(parser, type) || parser.parseArrow() ||
      parser.getCurrentLocation(&typeLoc) || parseSourceType(parser, outType))
    return failure();
  if (outType.getRank() != type.getRank() + 1)
    return parser.emitError(typeLoc)
           << "expected the output gradient type to have one more dimension "
              "(S) than the source type";
  if (stats.size() < 2)
    return parser.emitError(statsLoc)
           << "expected 'stats' to list the lse and one inv_rms per source";
  int64_t s = outType.getDimSize(0);
  RankedTensorType qType =
      RankedTensorType::get({s, type.getShape().back()}, type.getElementType());
  RankedTensorType lseType = getPerTokenType(type, s);
  if (parser.resolveOperand(queries, qType, result.operands) ||
      parser.resolveOperand(gains, qType, result.operands) ||
      parser.resolveOperands(sources, type, loc, result.operands) ||
      parser.resolveOperand(stats.front(), lseType, result.operands) ||
      parser.resolveOperands(ArrayRef(stats).drop_front(),
                             getPerTokenType(type), statsLoc,
                             result.operands) ||
      parser.resolveOperand(dout, outType, result.operands) ||
      parser.resolveOperand(dlse, lseType, result.operands) ||
      parser.resolveOperands(accumulators, type, loc, result.operands))
    return failure();
  result.addAttribute(getOperandSegmentSizesAttrName(result.name),
                      parser.getBuilder().getDenseI32ArrayAttr(
                          {1, 1, static_cast<int32_t>(sources.size()), 1,
                           static_cast<int32_t>(stats.size() - 1), 1, 1,
                           static_cast<int32_t>(accumulators.size())}));
  result.addTypes(SmallVector<Type>(sources.size(), type));
  RankedTensorType paramGrad = getStackedParamGradType(type, s);
  result.addTypes({paramGrad, paramGrad});
  return success();
}

void BlockScoreGradOp::print(OpAsmPrinter &p) {
  p << " " << getQueries() << ", " << getNormWeights() << " over ";
  p.printOperands(getSources());
  p << " stats " << getLse();
  for (Value r : getInvRms())
    p << ", " << r;
  p << " grad " << getOutGrad() << ", " << getLseGrad();
  if (isAccumulating()) {
    p << " accumulate ";
    p.printOperands(getAccumulators());
  }
  p.printOptionalAttrDict((*this)->getAttrs(),
                          {getOperandSegmentSizesAttrName()});
  p << " : " << getSourceType() << " -> " << getOutGrad().getType();
}

LogicalResult BlockScoreGradOp::verify() {
  if (failed(verifyRequiredOperandGroups(*this,
                                         getProperties().operandSegmentSizes,
                                         {{0, "queries"},
                                          {1, "norm_weights"},
                                          {3, "lse"},
                                          {5, "out_grad"},
                                          {6, "lse_grad"}})))
    return failure();
  // (C1) At least one source; (C2)-(C4) the sources' type.
  if (getSources().empty())
    return emitOpError("requires at least one source (C1)");
  RankedTensorType type = getSourceType();
  if (failed(verifySources(*this, getSources(), type, "first source")))
    return failure();
  // (C5) queries: tensor<S x D x E> with the sources' D and E; S is fixed
  // here (any size).
  Type elt = type.getElementType();
  int64_t d = type.getShape().back();
  auto qType = cast<RankedTensorType>(getQueries().getType());
  if (qType.getRank() != 2 || qType.getElementType() != elt ||
      qType.getDimSize(1) != d)
    return emitOpError() << "queries must have type "
                         << RankedTensorType::get({ShapedType::kDynamic, d},
                                                  elt)
                         << " with any S (S pseudo-queries of the sources' D "
                            "and E), got "
                         << qType << " (C5)";
  int64_t s = qType.getDimSize(0);
  // (C6) norm_weights has the queries' type.
  if (getNormWeights().getType() != qType)
    return emitOpError() << "norm_weights must have the queries' type " << qType
                         << ", got " << getNormWeights().getType() << " (C6)";
  // (C7) epsilon.
  if (failed(verifyEpsilon(*this, getEpsilonAttr(), "(C7)")))
    return failure();
  // (C8) lse: tensor<S x ... x f32>, (C9) one inv_rms per source.
  RankedTensorType lseType = getPerTokenType(type, s);
  if (getLse().getType() != lseType)
    return emitOpError() << "lse operand must have type " << lseType
                         << " (one f32 per query and token), got "
                         << getLse().getType() << " (C8)";
  unsigned n = getNumSources();
  if (getInvRms().size() != n)
    return emitOpError() << "has " << getInvRms().size()
                         << " inv_rms operands for " << n
                         << " sources; it needs one per source (C9)";
  RankedTensorType perToken = getPerTokenType(type);
  for (auto [i, r] : llvm::enumerate(getInvRms()))
    if (r.getType() != perToken)
      return emitOpError() << "inv_rms operand #" << i << " must have type "
                           << perToken << " (one f32 per token), got "
                           << r.getType() << " (C9)";
  // (C10) out_grad: tensor<S x ... x D x E>; (C11) lse_grad: lse's type.
  SmallVector<int64_t> outShape{s};
  llvm::append_range(outShape, type.getShape());
  RankedTensorType outType = RankedTensorType::get(outShape, elt);
  if (getOutGrad().getType() != outType)
    return emitOpError() << "out_grad must have type " << outType
                         << " (the gradient of block_score's out), got "
                         << getOutGrad().getType() << " (C10)";
  if (getLseGrad().getType() != lseType)
    return emitOpError() << "lse_grad must have type " << lseType
                         << " (the gradient of block_score's lse), got "
                         << getLseGrad().getType() << " (C11)";
  // (C12) accumulators, (C13) source gradients.
  if (isAccumulating() && getAccumulators().size() != n)
    return emitOpError() << "has " << getAccumulators().size()
                         << " accumulators for " << n
                         << " sources; give none or one per source (C12)";
  for (auto [i, a] : llvm::enumerate(getAccumulators()))
    if (a.getType() != type)
      return emitOpError() << "accumulator #" << i << " has type "
                           << a.getType() << " but the sources have type "
                           << type << " (C12)";
  if (getSourceGrads().size() != n)
    return emitOpError() << "has " << getSourceGrads().size()
                         << " source gradients for " << n
                         << " sources; it needs one per source (C13)";
  for (auto [i, r] : llvm::enumerate(getSourceGrads()))
    if (r.getType() != type)
      return emitOpError() << "source gradient #" << i << " has type "
                           << r.getType() << " but the sources have type "
                           << type << " (C13)";
  // (C14) queries_grad and norm_weights_grad: tensor<S x D x f32>.
  RankedTensorType expected = getStackedParamGradType(type, s);
  for (auto [what, v] :
       {std::pair<StringRef, Value>{"queries_grad", getQueriesGrad()},
        {"norm_weights_grad", getNormWeightsGrad()}})
    if (v.getType() != expected)
      return emitOpError() << what << " must have type " << expected
                           << " (f32 sums over the tokens), got " << v.getType()
                           << " (C14)";
  return success();
}

LogicalResult
BlockScoreGradOp::reifyResultShapes(OpBuilder &b,
                                    ReifiedRankedShapedTypeDims &shapes) {
  SmallVector<OpFoldResult> sizes =
      tensor::getMixedSizes(b, getLoc(), getSources().front());
  for (unsigned i = 0, e = getNumSources(); i < e; ++i)
    shapes.push_back(sizes);
  SmallVector<OpFoldResult> sd =
      tensor::getMixedSizes(b, getLoc(), getQueries());
  shapes.push_back(sd);
  shapes.push_back(sd);
  return success();
}

//===----------------------------------------------------------------------===//
// MergeGradOp
//===----------------------------------------------------------------------===//

// attnres.merge_grad %o, %lse, %w, %g update %y [partial %p] [norm %gn]
//     grad %dh, %dpn [, %dhn] {epsilon = ...[, norm_epsilon = ...]}
//     : tensor<...xDxE>
ParseResult MergeGradOp::parse(OpAsmParser &parser, OperationState &result) {
  OpAsmParser::UnresolvedOperand out, lse, query, gain, update, partial,
      normGain;
  SmallVector<OpAsmParser::UnresolvedOperand> grads;
  bool hasPartial = false, hasNorm = false;
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
  if (parser.parseKeyword("grad"))
    return failure();
  llvm::SMLoc gradLoc = parser.getCurrentLocation();
  RankedTensorType type;
  if (parseOperandList1(parser, grads) ||
      parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parseSourceType(parser, type))
    return failure();
  if (grads.size() != (hasNorm ? 3u : 2u))
    return parser.emitError(gradLoc)
           << "expected " << (hasNorm ? 3 : 2)
           << " incoming gradients after 'grad' (of h and new_partial"
           << (hasNorm ? ", and of normed with 'norm')" : ")") << ", got "
           << grads.size();
  RankedTensorType vecType = getVectorType(type);
  RankedTensorType perToken = getPerTokenType(type);
  if (parser.resolveOperand(out, type, result.operands) ||
      parser.resolveOperand(lse, perToken, result.operands) ||
      parser.resolveOperand(query, vecType, result.operands) ||
      parser.resolveOperand(gain, vecType, result.operands) ||
      parser.resolveOperand(update, type, result.operands) ||
      (hasPartial && parser.resolveOperand(partial, type, result.operands)) ||
      (hasNorm && parser.resolveOperand(normGain, vecType, result.operands)) ||
      parser.resolveOperands(grads, type, gradLoc, result.operands))
    return failure();
  result.addAttribute(getOperandSegmentSizesAttrName(result.name),
                      parser.getBuilder().getDenseI32ArrayAttr(
                          {1, 1, 1, 1, 1, hasPartial ? 1 : 0, hasNorm ? 1 : 0,
                           1, 1, hasNorm ? 1 : 0}));
  RankedTensorType paramGrad = RankedTensorType::get(
      vecType.getShape(), Float32Type::get(parser.getContext()));
  result.addTypes({type, perToken, paramGrad, paramGrad, type});
  if (hasNorm)
    result.addTypes(paramGrad);
  return success();
}

void MergeGradOp::print(OpAsmPrinter &p) {
  p << " " << getOut() << ", " << getLse() << ", " << getQuery() << ", "
    << getNormWeight() << " update " << getUpdate();
  if (getPartial())
    p << " partial " << getPartial();
  if (getNormGain())
    p << " norm " << getNormGain();
  p << " grad " << getGrad() << ", " << getNewPartialGrad();
  if (getNormedGrad())
    p << ", " << getNormedGrad();
  p.printOptionalAttrDict((*this)->getAttrs(),
                          {getOperandSegmentSizesAttrName()});
  p << " : " << getUpdate().getType();
}

LogicalResult MergeGradOp::verify() {
  if (failed(verifyRequiredOperandGroups(*this,
                                         getProperties().operandSegmentSizes,
                                         {{0, "out"},
                                          {1, "lse"},
                                          {2, "query"},
                                          {3, "norm_weight"},
                                          {4, "update"},
                                          {7, "grad"},
                                          {8, "new_partial_grad"}})))
    return failure();
  // (C1) rank >= 1, (C2) storage element type, of `update`.
  auto type = cast<RankedTensorType>(getUpdate().getType());
  if (failed(verifyValueType(*this, type, "update", "(C1)", "(C2)")))
    return failure();
  // (C3) The values and their gradients have update's type.
  SmallVector<std::pair<StringRef, Value>> values{
      {"out", getOut()},
      {"grad", getGrad()},
      {"new_partial_grad", getNewPartialGrad()},
      {"out_grad", getOutGrad()},
      {"update_grad", getUpdateGrad()}};
  if (getPartial())
    values.push_back({"partial", getPartial()});
  if (getNormedGrad())
    values.push_back({"normed_grad", getNormedGrad()});
  for (auto [what, v] : values)
    if (v.getType() != type)
      return emitOpError() << what << " must have update's type " << type
                           << ", got " << v.getType() << " (C3)";
  // (C4) lse and lse_grad: one f32 per token.
  RankedTensorType perToken = getPerTokenType(type);
  for (auto [what, v] : {std::pair<StringRef, Value>{"lse", getLse()},
                         {"lse_grad", getLseGrad()}})
    if (v.getType() != perToken)
      return emitOpError() << what << " must have type " << perToken
                           << " (one f32 per token), got " << v.getType()
                           << " (C4)";
  // (C5) query and (C6) norm_weight are tensor<DxE>, (C7) epsilon.
  SmallVector<int64_t> shape(type.getShape());
  Type elt = type.getElementType();
  if (failed(verifyVectorOperand(*this, getQuery().getType(), shape, elt,
                                 "query", "(C5)")) ||
      failed(verifyVectorOperand(*this, getNormWeight().getType(), shape, elt,
                                 "norm_weight", "(C6)")) ||
      failed(verifyEpsilon(*this, getEpsilonAttr(), "(C7)")))
    return failure();
  // (C8) The fused-norm pieces are all present or all absent.
  bool norm = hasNorm();
  if (static_cast<bool>(getNormGain()) != norm ||
      static_cast<bool>(getNormedGrad()) != norm ||
      static_cast<bool>(getNormGainGrad()) != norm)
    return emitOpError()
           << "the norm gain, norm_epsilon, the gradient of normed and the "
              "gradient of the norm gain must be all present or all absent "
              "(C8)";
  // (C9) The norm gain is tensor<DxE>, (C10) norm_epsilon.
  if (norm && (failed(verifyVectorOperand(*this, getNormGain().getType(), shape,
                                          elt, "norm gain", "(C9)")) ||
               failed(verifyEpsilon(*this, getNormEpsilonAttr(), "(C10)"))))
    return failure();
  // (C11) Parameter gradients: tensor<D x f32>, D of update's type.
  RankedTensorType expected = RankedTensorType::get(
      {type.getShape().back()}, Float32Type::get(getContext()));
  SmallVector<std::pair<StringRef, Value>> params{
      {"query_grad", getQueryGrad()},
      {"norm_weight_grad", getNormWeightGrad()}};
  if (norm)
    params.push_back({"norm_gain_grad", getNormGainGrad()});
  for (auto [what, v] : params)
    if (v.getType() != expected)
      return emitOpError() << what << " must have type " << expected
                           << " (f32 sums over the tokens), got " << v.getType()
                           << " (C11)";
  return success();
}

LogicalResult
MergeGradOp::reifyResultShapes(OpBuilder &b,
                               ReifiedRankedShapedTypeDims &shapes) {
  SmallVector<OpFoldResult> sizes =
      tensor::getMixedSizes(b, getLoc(), getUpdate());
  SmallVector<OpFoldResult> tokens(sizes);
  tokens.pop_back();
  SmallVector<OpFoldResult> d{sizes.back()};
  shapes.push_back(sizes);
  shapes.push_back(tokens);
  shapes.push_back(d);
  shapes.push_back(d);
  shapes.push_back(sizes);
  if (getNormGainGrad())
    shapes.push_back(d);
  return success();
}
