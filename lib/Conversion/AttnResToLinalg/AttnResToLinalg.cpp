//===- AttnResToLinalg.cpp - attnres to linalg on tensors -----------------===//
//
// Part of the attnres project.
//
// Lowers every attnres op to linalg.generic reductions and elementwise maps on
// tensors. All arithmetic is done in f32: storage elements (f16, bf16) are
// widened with arith.extf where they are read and the results are rounded
// once, with arith.truncf, where they are written. Softmaxes over the depth
// axis subtract their maximum before exponentiating.
//
// The building blocks, for sources of type tensor<T... x D x E> ("tokens" T
// are all leading dimensions) and an optional leading query dimension S (phase
// 1 scores S queries at once):
//   sumsq[t]      = sum_d x[t, d]^2                          (reduction)
//   r[t]          = rsqrt(sumsq[t] / D + eps)                (map)
//   dot[s, t]     = sum_d q[s, d] * g[s, d] * x[t, d]        (reduction)
//   a_i[s, t]     = softmax_i(r_i[t] * dot_i[s, t])          (map over S, T)
//   out[s, t, d]  = sum_i a_i[s, t] * x_i[t, d]              (map)
// where x is the f32 sum of one or more storage tensors (merge scores the
// updated partial sum `partial + update` without materialising it first).
//
//===----------------------------------------------------------------------===//

#include "attnres/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_CONVERTATTNRESTOLINALG
#include "attnres/Conversion/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

//===----------------------------------------------------------------------===//
// Scalar helpers (used inside linalg.generic bodies)
//===----------------------------------------------------------------------===//

/// Widens a storage element to f32 (no-op for f32).
static Value toF32(OpBuilder &b, Location loc, Value v) {
  if (v.getType().isF32())
    return v;
  return arith::ExtFOp::create(b, loc, b.getF32Type(), v);
}

/// Rounds an f32 value once to the storage element type `elt`.
static Value fromF32(OpBuilder &b, Location loc, Value v, Type elt) {
  if (elt.isF32())
    return v;
  return arith::TruncFOp::create(b, loc, elt, v);
}

/// The f32 sum of storage elements `xs` (one element: just widened).
static Value sumToF32(OpBuilder &b, Location loc, ValueRange xs) {
  Value acc = toF32(b, loc, xs.front());
  for (Value x : xs.drop_front())
    acc = arith::AddFOp::create(b, loc, acc, toF32(b, loc, x));
  return acc;
}

static Value f32Const(OpBuilder &b, Location loc, double v) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
}

//===----------------------------------------------------------------------===//
// Tensor helpers
//===----------------------------------------------------------------------===//

/// The identity-like map (d_first, ..., d_{first+count-1}) in a space of
/// `numDims` loops.
static AffineMap rangeMap(MLIRContext *ctx, unsigned numDims, unsigned first,
                          unsigned count) {
  SmallVector<AffineExpr> exprs;
  for (unsigned i = 0; i < count; ++i)
    exprs.push_back(getAffineDimExpr(first + i, ctx));
  return AffineMap::get(numDims, 0, exprs, ctx);
}

/// A map selecting the loops `dims` in a space of `numDims` loops.
static AffineMap selectMap(MLIRContext *ctx, unsigned numDims,
                           ArrayRef<unsigned> dims) {
  SmallVector<AffineExpr> exprs;
  for (unsigned d : dims)
    exprs.push_back(getAffineDimExpr(d, ctx));
  return AffineMap::get(numDims, 0, exprs, ctx);
}

/// All loops parallel except the last, which reduces.
static SmallVector<utils::IteratorType> reductionIterators(unsigned numDims) {
  SmallVector<utils::IteratorType> its(numDims, utils::IteratorType::parallel);
  its.back() = utils::IteratorType::reduction;
  return its;
}

static SmallVector<utils::IteratorType> parallelIterators(unsigned numDims) {
  return SmallVector<utils::IteratorType>(numDims,
                                          utils::IteratorType::parallel);
}

/// An f32 tensor of the given sizes filled with `value`.
static Value createFilledF32(OpBuilder &b, Location loc,
                             ArrayRef<OpFoldResult> sizes, double value) {
  Value empty = tensor::EmptyOp::create(b, loc, sizes, b.getF32Type());
  return linalg::FillOp::create(b, loc, ValueRange{f32Const(b, loc, value)},
                                ValueRange{empty})
      .getResult(0);
}

/// The number of features D of `source` (its last dimension) as an f32.
static Value featureCountF32(OpBuilder &b, Location loc, Value source) {
  auto type = cast<RankedTensorType>(source.getType());
  int64_t d = type.getShape().back();
  if (!ShapedType::isDynamic(d))
    return f32Const(b, loc, static_cast<double>(d));
  Value dim = tensor::DimOp::create(b, loc, source, type.getRank() - 1);
  Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), dim);
  return arith::UIToFPOp::create(b, loc, b.getF32Type(), i64);
}

/// Casts `v` to `type` when its static shape information differs.
static Value castTo(OpBuilder &b, Location loc, Value v, Type type) {
  if (v.getType() == type)
    return v;
  return tensor::CastOp::create(b, loc, type, v);
}

/// Sizes of the first `count` dimensions of `v` (tensor.dim only for the
/// dynamic ones).
static SmallVector<OpFoldResult> leadingSizes(OpBuilder &b, Location loc,
                                              Value v, unsigned count) {
  auto type = cast<RankedTensorType>(v.getType());
  SmallVector<OpFoldResult> sizes;
  for (unsigned i = 0; i < count; ++i) {
    if (type.isDynamicDim(i))
      sizes.push_back(tensor::DimOp::create(b, loc, v, i).getResult());
    else
      sizes.push_back(b.getIndexAttr(type.getDimSize(i)));
  }
  return sizes;
}

static unsigned rankOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getRank();
}

/// Sizes of every dimension of `v`.
static SmallVector<OpFoldResult> allSizes(OpBuilder &b, Location loc, Value v) {
  return leadingSizes(b, loc, v, rankOf(v));
}

/// An empty tensor of element type `elt` with the shape of `v`.
static Value emptyLike(OpBuilder &b, Location loc, Value v, Type elt) {
  return tensor::EmptyOp::create(b, loc, allSizes(b, loc, v), elt);
}

/// Sizes of all dimensions of `source` but the last (the tokens).
static SmallVector<OpFoldResult> tokenSizesOf(OpBuilder &b, Location loc,
                                              Value source) {
  return leadingSizes(b, loc, source, rankOf(source) - 1);
}

//===----------------------------------------------------------------------===//
// linalg.generic builders
//===----------------------------------------------------------------------===//

/// Computes a generic's scalar result(s) from its inputs' block arguments.
using ScalarFn = function_ref<Value(OpBuilder &, Location, ValueRange)>;
using ScalarsFn =
    function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange)>;

/// A linalg.generic whose loops are all parallel and span the shape of the
/// `outputs`, each written through the identity map; `inputMaps` index the
/// `inputs`. `body` gets the inputs' block arguments and returns one value per
/// output.
static linalg::GenericOp buildMapGeneric(OpBuilder &b, Location loc,
                                         ValueRange inputs,
                                         ArrayRef<AffineMap> inputMaps,
                                         ValueRange outputs, ScalarsFn body) {
  unsigned rank = rankOf(outputs.front());
  SmallVector<AffineMap> maps(inputMaps);
  maps.append(outputs.size(), b.getMultiDimIdentityMap(rank));
  unsigned n = inputs.size();
  return linalg::GenericOp::create(
      b, loc, outputs.getTypes(), inputs, outputs, maps,
      parallelIterators(rank),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        linalg::YieldOp::create(nb, nl, body(nb, nl, args.take_front(n)));
      });
}

/// buildMapGeneric with the one output `init`: returns its result.
static Value buildMap(OpBuilder &b, Location loc, ValueRange inputs,
                      ArrayRef<AffineMap> inputMaps, Value init,
                      ScalarFn body) {
  return buildMapGeneric(b, loc, inputs, inputMaps, init,
                         [&](OpBuilder &nb, Location nl, ValueRange args) {
                           return SmallVector<Value>{body(nb, nl, args)};
                         })
      .getResult(0);
}

/// out[i...] = sum_d term(i..., d) in f32, into a zero-filled tensor of
/// `outSizes`: a linalg.generic over the loops (i..., d) whose last loop
/// reduces. `term` gets the inputs' block arguments.
static Value buildSumOverLastLoop(OpBuilder &b, Location loc, ValueRange inputs,
                                  ArrayRef<AffineMap> inputMaps,
                                  ArrayRef<OpFoldResult> outSizes,
                                  ScalarFn term) {
  unsigned numLoops = outSizes.size() + 1;
  Value init = createFilledF32(b, loc, outSizes, 0.0);
  SmallVector<AffineMap> maps(inputMaps);
  maps.push_back(rangeMap(b.getContext(), numLoops, 0, numLoops - 1));
  return linalg::GenericOp::create(
             b, loc, init.getType(), inputs, init, maps,
             reductionIterators(numLoops),
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value t = term(nb, nl, args.drop_back());
               Value acc = arith::AddFOp::create(nb, nl, args.back(), t);
               linalg::YieldOp::create(nb, nl, acc);
             })
      .getResult(0);
}

//===----------------------------------------------------------------------===//
// The building blocks
//===----------------------------------------------------------------------===//

/// sumsq[t] = sum_d (sum_j xs_j[t, d])^2 in f32, over tokens of `tokenSizes`.
static Value buildSumSquares(OpBuilder &b, Location loc, ValueRange xs,
                             ArrayRef<OpFoldResult> tokenSizes) {
  SmallVector<AffineMap> maps(xs.size(),
                              b.getMultiDimIdentityMap(tokenSizes.size() + 1));
  return buildSumOverLastLoop(
      b, loc, xs, maps, tokenSizes,
      [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        Value x = sumToF32(nb, nl, args);
        return arith::MulFOp::create(nb, nl, x, x);
      });
}

/// r[t] = rsqrt(sumsq[t] / D + eps), elementwise.
static Value buildInvRmsFromSumSquares(OpBuilder &b, Location loc, Value sumSq,
                                       Value featureCount, float epsilon) {
  Value init = emptyLike(b, loc, sumSq, b.getF32Type());
  Value eps = f32Const(b, loc, epsilon);
  return buildMap(b, loc, sumSq, b.getMultiDimIdentityMap(rankOf(sumSq)), init,
                  [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                    Value mean =
                        arith::DivFOp::create(nb, nl, args[0], featureCount);
                    Value sum = arith::AddFOp::create(nb, nl, mean, eps);
                    return math::RsqrtOp::create(nb, nl, sum);
                  });
}

/// dot[(s,) t] = sum_d q[(s,) d] * g[(s,) d] * (sum_j xs_j[t, d]). With
/// `stacked`, q and g are tensor<S x D x E> and the result has a leading S
/// dimension of size `numQueries`.
static Value buildDot(OpBuilder &b, Location loc, ValueRange xs, Value query,
                      Value gain, ArrayRef<OpFoldResult> tokenSizes,
                      std::optional<OpFoldResult> numQueries) {
  MLIRContext *ctx = b.getContext();
  unsigned off = numQueries ? 1 : 0;
  unsigned tokenRank = tokenSizes.size();
  unsigned numLoops = off + tokenRank + 1;
  unsigned dLoop = numLoops - 1;
  SmallVector<OpFoldResult> outSizes;
  if (numQueries)
    outSizes.push_back(*numQueries);
  llvm::append_range(outSizes, tokenSizes);

  SmallVector<AffineMap> maps(xs.size(),
                              rangeMap(ctx, numLoops, off, tokenRank + 1));
  AffineMap qMap = numQueries ? selectMap(ctx, numLoops, {0, dLoop})
                              : selectMap(ctx, numLoops, {dLoop});
  maps.append(2, qMap);
  SmallVector<Value> inputs(xs);
  inputs.push_back(query);
  inputs.push_back(gain);
  unsigned n = xs.size();
  return buildSumOverLastLoop(
      b, loc, inputs, maps, outSizes,
      [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        Value x = sumToF32(nb, nl, args.take_front(n));
        Value q = toF32(nb, nl, args[n]);
        Value g = toF32(nb, nl, args[n + 1]);
        Value qg = arith::MulFOp::create(nb, nl, q, g);
        return arith::MulFOp::create(nb, nl, qg, x);
      });
}

/// Numerically stable softmax over the sources. `dots[i]` has shape
/// [(S,) T...], `invRms[i]` has shape [T...]. Returns the weights a_i
/// (shape of dots) and, when `lseInit` is given, lse = m + log(sum) written
/// into it.
static std::pair<SmallVector<Value>, Value>
buildSoftmax(OpBuilder &b, Location loc, ValueRange dots, ValueRange invRms,
             bool stacked, Value lseInit) {
  MLIRContext *ctx = b.getContext();
  unsigned numLoops = rankOf(dots.front());
  unsigned n = dots.size();
  SmallVector<OpFoldResult> sizes = allSizes(b, loc, dots.front());

  SmallVector<Value> inputs(dots);
  llvm::append_range(inputs, invRms);
  SmallVector<AffineMap> maps(n, b.getMultiDimIdentityMap(numLoops));
  maps.append(n, stacked ? rangeMap(ctx, numLoops, 1, numLoops - 1)
                         : b.getMultiDimIdentityMap(numLoops));

  SmallVector<Value> outputs;
  for (unsigned i = 0; i < n; ++i)
    outputs.push_back(tensor::EmptyOp::create(b, loc, sizes, b.getF32Type()));
  if (lseInit)
    outputs.push_back(lseInit);

  auto generic = buildMapGeneric(
      b, loc, inputs, maps, outputs,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        SmallVector<Value> z;
        for (unsigned i = 0; i < n; ++i)
          z.push_back(arith::MulFOp::create(nb, nl, args[i], args[n + i]));
        Value m = z.front();
        for (Value zi : ArrayRef(z).drop_front())
          m = arith::MaximumFOp::create(nb, nl, m, zi);
        SmallVector<Value> e;
        Value s;
        for (Value zi : z) {
          Value shifted = arith::SubFOp::create(nb, nl, zi, m);
          e.push_back(math::ExpOp::create(nb, nl, shifted));
          s = s ? arith::AddFOp::create(nb, nl, s, e.back()).getResult()
                : e.back();
        }
        SmallVector<Value> yields;
        for (Value ei : e)
          yields.push_back(arith::DivFOp::create(nb, nl, ei, s));
        if (lseInit) {
          Value logS = math::LogOp::create(nb, nl, s);
          yields.push_back(arith::AddFOp::create(nb, nl, m, logS));
        }
        return yields;
      });
  SmallVector<Value> weights(generic.getResults().take_front(n));
  Value lse = lseInit ? generic.getResult(n) : Value();
  return {weights, lse};
}

/// out[(s,) t, d] = sum_i a_i[(s,) t] * x_i[t, d], rounded once to the
/// element type of `init`, written into `init`.
static Value buildWeightedSum(OpBuilder &b, Location loc, ValueRange sources,
                              ValueRange weights, bool stacked, Value init) {
  MLIRContext *ctx = b.getContext();
  unsigned numLoops = rankOf(init);
  unsigned off = stacked ? 1 : 0;
  unsigned n = sources.size();
  Type elt = cast<RankedTensorType>(init.getType()).getElementType();

  SmallVector<Value> inputs(sources);
  llvm::append_range(inputs, weights);
  SmallVector<AffineMap> maps(n, rangeMap(ctx, numLoops, off, numLoops - off));
  maps.append(n, rangeMap(ctx, numLoops, 0, numLoops - 1));
  return buildMap(
      b, loc, inputs, maps, init,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value acc;
        for (unsigned i = 0; i < n; ++i) {
          Value x = toF32(nb, nl, args[i]);
          Value term = arith::MulFOp::create(nb, nl, args[n + i], x);
          acc =
              acc ? arith::AddFOp::create(nb, nl, acc, term).getResult() : term;
        }
        return fromF32(nb, nl, acc, elt);
      });
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

/// An aggregation of one source (its softmax gives it weight exactly 1) and a
/// block sum of one input are that operand: the same rule as
/// AggregateOp::fold and BlockSumOp::fold. Replaces `op` by it if so.
static bool replaceBySingleOperand(Operation *op, ValueRange operands,
                                   ConversionPatternRewriter &rewriter) {
  if (operands.size() != 1)
    return false;
  rewriter.replaceOp(op, operands.front());
  return true;
}

/// Replaces the one-result `op` by `v`, cast to the op's result type.
static LogicalResult replaceByCast(Operation *op, Value v,
                                   ConversionPatternRewriter &rewriter) {
  Type type = op->getResult(0).getType();
  rewriter.replaceOp(op, castTo(rewriter, op->getLoc(), v, type));
  return success();
}

/// attnres.aggregate: per-source inverse RMS and score, softmax over the
/// sources, weighted sum of the raw sources.
static LogicalResult lowerAggregate(AggregateOp op,
                                    AggregateOp::Adaptor adaptor,
                                    ConversionPatternRewriter &rewriter) {
  Location loc = op.getLoc();
  ValueRange sources = adaptor.getSources();
  if (replaceBySingleOperand(op, sources, rewriter))
    return success();
  Value first = sources.front();
  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(rewriter, loc, first);
  Value featureCount = featureCountF32(rewriter, loc, first);
  float eps = op.getEpsilon().convertToFloat();

  SmallVector<Value> dots, invRms;
  for (Value v : sources) {
    Value sumSq = buildSumSquares(rewriter, loc, v, tokenSizes);
    invRms.push_back(
        buildInvRmsFromSumSquares(rewriter, loc, sumSq, featureCount, eps));
    dots.push_back(buildDot(rewriter, loc, v, adaptor.getQuery(),
                            adaptor.getNormWeight(), tokenSizes, std::nullopt));
  }
  auto [weights, lse] = buildSoftmax(rewriter, loc, dots, invRms,
                                     /*stacked=*/false, Value());
  (void)lse;
  Value init =
      emptyLike(rewriter, loc, first, op.getSourceType().getElementType());
  Value result = buildWeightedSum(rewriter, loc, sources, weights,
                                  /*stacked=*/false, init);
  return replaceByCast(op, result, rewriter);
}

/// attnres.block_sum: elementwise f32 sum, rounded once.
static LogicalResult lowerBlockSum(BlockSumOp op, BlockSumOp::Adaptor adaptor,
                                   ConversionPatternRewriter &rewriter) {
  Location loc = op.getLoc();
  ValueRange inputs = adaptor.getInputs();
  if (replaceBySingleOperand(op, inputs, rewriter))
    return success();
  Type elt = cast<RankedTensorType>(op.getType()).getElementType();
  Value init = emptyLike(rewriter, loc, inputs.front(), elt);
  SmallVector<AffineMap> maps(inputs.size(),
                              rewriter.getMultiDimIdentityMap(rankOf(init)));
  Value result = buildMap(rewriter, loc, inputs, maps, init,
                          [&](OpBuilder &nb, Location nl, ValueRange args) {
                            Value acc = sumToF32(nb, nl, args);
                            return fromF32(nb, nl, acc, elt);
                          });
  return replaceByCast(op, result, rewriter);
}

/// attnres.inv_rms: sum of squares, then rsqrt(mean + eps).
static LogicalResult lowerInvRms(InvRmsOp op, InvRmsOp::Adaptor adaptor,
                                 ConversionPatternRewriter &rewriter) {
  Location loc = op.getLoc();
  Value input = adaptor.getInput();
  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(rewriter, loc, input);
  Value sumSq = buildSumSquares(rewriter, loc, input, tokenSizes);
  Value r = buildInvRmsFromSumSquares(rewriter, loc, sumSq,
                                      featureCountF32(rewriter, loc, input),
                                      op.getEpsilon().convertToFloat());
  return replaceByCast(op, r, rewriter);
}

/// attnres.block_score (phase 1): scores of S queries against every source,
/// softmax per query, weighted sum written into out_init, log-sum-exp written
/// into lse_init.
static LogicalResult lowerBlockScore(BlockScoreOp op,
                                     BlockScoreOp::Adaptor adaptor,
                                     ConversionPatternRewriter &rewriter) {
  Location loc = op.getLoc();
  ValueRange sources = adaptor.getSources();
  Value first = sources.front();
  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(rewriter, loc, first);
  OpFoldResult numQueries =
      leadingSizes(rewriter, loc, adaptor.getOutInit(), 1).front();
  float eps = op.getEpsilon().convertToFloat();

  SmallVector<Value> invRms;
  if (adaptor.getInvRms().empty()) {
    Value featureCount = featureCountF32(rewriter, loc, first);
    for (Value v : sources) {
      Value sumSq = buildSumSquares(rewriter, loc, v, tokenSizes);
      invRms.push_back(
          buildInvRmsFromSumSquares(rewriter, loc, sumSq, featureCount, eps));
    }
  } else {
    llvm::append_range(invRms, adaptor.getInvRms());
  }
  SmallVector<Value> dots;
  for (Value v : sources)
    dots.push_back(buildDot(rewriter, loc, v, adaptor.getQueries(),
                            adaptor.getNormWeights(), tokenSizes, numQueries));
  auto [weights, lse] = buildSoftmax(rewriter, loc, dots, invRms,
                                     /*stacked=*/true, adaptor.getLseInit());
  Value out = buildWeightedSum(rewriter, loc, sources, weights,
                               /*stacked=*/true, adaptor.getOutInit());
  rewriter.replaceOp(op, ValueRange{out, lse});
  return success();
}

/// attnres.merge (phase 2): p' = partial + update; c = r(p') (w*g).p';
/// h = out + sigmoid(c - lse) (p' - out). p' stays in f32 until both results
/// are rounded. With a fused norm, hn = h r_n(h) gain_n from the rounded h.
static LogicalResult lowerMerge(MergeOp op, MergeOp::Adaptor adaptor,
                                ConversionPatternRewriter &rewriter) {
  Location loc = op.getLoc();
  MLIRContext *ctx = rewriter.getContext();
  auto type = cast<RankedTensorType>(op.getResult().getType());
  Type elt = type.getElementType();
  unsigned rank = type.getRank();
  Value update = adaptor.getUpdate();
  // The optional operands: [partial] [norm gain] (spec E.2).
  ValueRange tail = adaptor.getOptionalOperands();
  Value partial = op.getPartial() ? tail.front() : Value();
  Value normGain = op.hasNorm() ? tail.back() : Value();
  SmallVector<Value> addends{update};
  if (partial)
    addends.push_back(partial);

  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(rewriter, loc, update);
  Value sumSq = buildSumSquares(rewriter, loc, addends, tokenSizes);
  Value r = buildInvRmsFromSumSquares(rewriter, loc, sumSq,
                                      featureCountF32(rewriter, loc, update),
                                      op.getEpsilon().convertToFloat());
  Value dot = buildDot(rewriter, loc, addends, adaptor.getQuery(),
                       adaptor.getNormWeight(), tokenSizes, std::nullopt);

  // gate[t] = sigmoid(c - lse) = 1 / (1 + exp(lse - c)), c = r * dot.
  Value gateInit =
      tensor::EmptyOp::create(rewriter, loc, tokenSizes, rewriter.getF32Type());
  SmallVector<AffineMap> gateMaps(3, rewriter.getMultiDimIdentityMap(rank - 1));
  Value gate = buildMap(
      rewriter, loc, ValueRange{r, dot, adaptor.getLse()}, gateMaps, gateInit,
      [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        Value c = arith::MulFOp::create(nb, nl, args[0], args[1]);
        Value diff = arith::SubFOp::create(nb, nl, args[2], c);
        Value e = math::ExpOp::create(nb, nl, diff);
        Value one = f32Const(nb, nl, 1.0);
        Value den = arith::AddFOp::create(nb, nl, one, e);
        return arith::DivFOp::create(nb, nl, one, den);
      });

  // h = out + gate * (p' - out), and p' rounded (only with a partial: p'
  // is `update` itself otherwise).
  SmallVector<OpFoldResult> sizes = allSizes(rewriter, loc, update);
  SmallVector<Value> outputs{
      tensor::EmptyOp::create(rewriter, loc, sizes, elt)};
  if (partial)
    outputs.push_back(tensor::EmptyOp::create(rewriter, loc, sizes, elt));
  SmallVector<Value> inputs{adaptor.getOut()};
  llvm::append_range(inputs, addends);
  inputs.push_back(gate);
  AffineMap id = rewriter.getMultiDimIdentityMap(rank);
  AffineMap rows = rangeMap(ctx, rank, 0, rank - 1);
  SmallVector<AffineMap> maps(inputs.size() - 1, id);
  maps.push_back(rows);
  unsigned n = addends.size();
  auto generic =
      buildMapGeneric(rewriter, loc, inputs, maps, outputs,
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Value o = toF32(nb, nl, args[0]);
                        Value p = sumToF32(nb, nl, args.slice(1, n));
                        Value g = args[1 + n];
                        Value delta = arith::SubFOp::create(nb, nl, p, o);
                        Value scaled = arith::MulFOp::create(nb, nl, g, delta);
                        Value h = arith::AddFOp::create(nb, nl, o, scaled);
                        SmallVector<Value> yields{fromF32(nb, nl, h, elt)};
                        if (n > 1)
                          yields.push_back(fromF32(nb, nl, p, elt));
                        return yields;
                      });
  Value h = castTo(rewriter, loc, generic.getResult(0), type);
  Value newPartial =
      partial ? castTo(rewriter, loc, generic.getResult(1), type) : update;
  if (!normGain) {
    rewriter.replaceOp(op, ValueRange{h, newPartial});
    return success();
  }

  // The fused RMSNorm of the rounded h (spec E.5): hn = h * rsqrt(mean_d
  // h^2 + norm_epsilon) * gain_n, in f32, rounded once.
  Value hStored = generic.getResult(0);
  Value normSumSq = buildSumSquares(rewriter, loc, hStored, tokenSizes);
  Value rn = buildInvRmsFromSumSquares(
      rewriter, loc, normSumSq, featureCountF32(rewriter, loc, update),
      op.getNormEpsilonAttr().getValueAsDouble());
  Value hnInit = tensor::EmptyOp::create(rewriter, loc, sizes, elt);
  Value normed =
      buildMap(rewriter, loc, ValueRange{hStored, rn, normGain},
               {id, rows, selectMap(ctx, rank, {rank - 1})}, hnInit,
               [&](OpBuilder &nb, Location nl, ValueRange args) {
                 Value x = toF32(nb, nl, args[0]);
                 Value xr = arith::MulFOp::create(nb, nl, x, args[1]);
                 Value hn =
                     arith::MulFOp::create(nb, nl, xr, toF32(nb, nl, args[2]));
                 return fromF32(nb, nl, hn, elt);
               });
  Value hn = castTo(rewriter, loc, normed, type);
  rewriter.replaceOp(op, ValueRange{h, newPartial, hn});
  return success();
}

namespace {
/// Lowers an OpTy by the function `lower`.
template <typename OpTy>
struct LoweringPattern : public OpConversionPattern<OpTy> {
  using LowerFn = LogicalResult (*)(OpTy, typename OpTy::Adaptor,
                                    ConversionPatternRewriter &);
  LoweringPattern(MLIRContext *ctx, LowerFn lower)
      : OpConversionPattern<OpTy>(ctx), lower(lower) {}

  LogicalResult
  matchAndRewrite(OpTy op, typename OpTy::Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    return lower(op, adaptor, rewriter);
  }

  LowerFn lower;
};
} // namespace

void mlir::attnres::populateAttnResToLinalgPatterns(
    RewritePatternSet &patterns) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<LoweringPattern<AggregateOp>>(ctx, lowerAggregate);
  patterns.add<LoweringPattern<BlockSumOp>>(ctx, lowerBlockSum);
  patterns.add<LoweringPattern<InvRmsOp>>(ctx, lowerInvRms);
  patterns.add<LoweringPattern<BlockScoreOp>>(ctx, lowerBlockScore);
  patterns.add<LoweringPattern<MergeOp>>(ctx, lowerMerge);
}

namespace {
struct ConvertAttnResToLinalgPass
    : public attnres::impl::ConvertAttnResToLinalgBase<
          ConvertAttnResToLinalgPass> {
  using Base::Base;

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    ConversionTarget target(*ctx);
    target.addIllegalDialect<AttnResDialect>();
    target.addLegalDialect<linalg::LinalgDialect, tensor::TensorDialect,
                           arith::ArithDialect, math::MathDialect>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    RewritePatternSet patterns(ctx);
    populateAttnResToLinalgPatterns(patterns);
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
