//===- DecompositionInterfaceImpl.cpp - attnres ops into linalg
//------------===//
//
// Part of the attnres project.
//
// External models of linalg::AggregatedOpInterface for every attnres op:
// `decomposeOperation` expresses the op as linalg.generic reductions and
// elementwise maps on tensors, the one description of each op's math used by
// both `transform.structured.decompose_interface` and the
// `convert-attnres-to-linalg` pass (a driver over this interface).
//
// All arithmetic is done in f32: storage elements (f16, bf16) are widened
// with arith.extf where they are read and the results are rounded once, with
// arith.truncf, where they are written. Softmaxes over the depth axis
// subtract their maximum before exponentiating.
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
// Each op's results are written into the destinations given by
// getResultDestinations: the op's destination operands when it has them
// (destination-passing style), otherwise a tensor.empty of each result's
// reified shape.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/DecompositionInterfaceImpl.h"

#include "DecompositionBuilders.h"

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"

#include <limits>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::detail;

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
Value mlir::attnres::detail::featureCountF32(OpBuilder &b, Location loc,
                                             Value source) {
  auto type = cast<RankedTensorType>(source.getType());
  int64_t d = type.getShape().back();
  if (!ShapedType::isDynamic(d))
    return f32Const(b, loc, static_cast<double>(d));
  Value dim = tensor::DimOp::create(b, loc, source, type.getRank() - 1);
  Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), dim);
  return arith::UIToFPOp::create(b, loc, b.getF32Type(), i64);
}

/// Casts `v` to `type` when its static shape information differs.
Value mlir::attnres::detail::castTo(OpBuilder &b, Location loc, Value v,
                                    Type type) {
  if (v.getType() == type)
    return v;
  return tensor::CastOp::create(b, loc, type, v);
}

/// Sizes of the first `count` dimensions of `v` (tensor.dim only for the
/// dynamic ones).
SmallVector<OpFoldResult> mlir::attnres::detail::leadingSizes(OpBuilder &b,
                                                              Location loc,
                                                              Value v,
                                                              unsigned count) {
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
SmallVector<OpFoldResult>
mlir::attnres::detail::tokenSizesOf(OpBuilder &b, Location loc, Value source) {
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

/// The parameter gradients from dwg (the f32 gradient of w * g): dquery =
/// dwg * gain and dgain = dwg * query, f32 and not rounded (spec I.2.1), one
/// map over dwg's shape ([D], or [S, D] for block_score_grad) into `dqInit`
/// and `dgInit`. Shared by the three backward decompositions.
static linalg::GenericOp buildParamGrads(OpBuilder &b, Location loc, Value dwg,
                                         Value query, Value gain, Value dqInit,
                                         Value dgInit) {
  AffineMap id = b.getMultiDimIdentityMap(rankOf(dwg));
  return buildMapGeneric(b, loc, ValueRange{dwg, query, gain}, {id, id, id},
                         ValueRange{dqInit, dgInit},
                         [&](OpBuilder &nb, Location nl, ValueRange args) {
                           Value q = toF32(nb, nl, args[1]);
                           Value g = toF32(nb, nl, args[2]);
                           Value dq = arith::MulFOp::create(nb, nl, args[0], g);
                           Value dg = arith::MulFOp::create(nb, nl, args[0], q);
                           return SmallVector<Value>{dq, dg};
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
Value mlir::attnres::detail::buildSumSquares(
    OpBuilder &b, Location loc, ValueRange xs,
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

/// r[t] = rsqrt(sumsq[t] / D + eps), elementwise, written into `init` (a new
/// f32 tensor of the shape of `sumSq` when null).
Value mlir::attnres::detail::buildInvRmsFromSumSquares(
    OpBuilder &b, Location loc, Value sumSq, Value featureCount, float epsilon,
    Value init) {
  if (!init)
    init = emptyLike(b, loc, sumSq, b.getF32Type());
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
Value mlir::attnres::detail::buildDot(OpBuilder &b, Location loc, ValueRange xs,
                                      Value query, Value gain,
                                      ArrayRef<OpFoldResult> tokenSizes,
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
std::pair<SmallVector<Value>, Value>
mlir::attnres::detail::buildSoftmax(OpBuilder &b, Location loc, ValueRange dots,
                                    ValueRange invRms, bool stacked,
                                    Value lseInit) {
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
        // (m starts null rather than at z.front(): g++ 12 cannot see that
        // n > 0 and warns -Wmaybe-uninitialized.)
        Value m;
        for (Value zi : z)
          m = m ? arith::MaximumFOp::create(nb, nl, m, zi).getResult() : zi;
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
Value mlir::attnres::detail::buildWeightedSum(OpBuilder &b, Location loc,
                                              ValueRange sources,
                                              ValueRange weights, bool stacked,
                                              Value init) {
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

/// gate[t] = sigmoid(c - lse) = 1 / (1 + exp(lse - c)) with c = r * dot
/// (spec E.1), over tokens of `tokenSizes`.
static Value buildGate(OpBuilder &b, Location loc, Value r, Value dot,
                       Value lse, ArrayRef<OpFoldResult> tokenSizes) {
  Value gateInit = tensor::EmptyOp::create(b, loc, tokenSizes, b.getF32Type());
  SmallVector<AffineMap> gateMaps(3,
                                  b.getMultiDimIdentityMap(tokenSizes.size()));
  return buildMap(b, loc, ValueRange{r, dot, lse}, gateMaps, gateInit,
                  [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                    Value c = arith::MulFOp::create(nb, nl, args[0], args[1]);
                    Value diff = arith::SubFOp::create(nb, nl, args[2], c);
                    Value e = math::ExpOp::create(nb, nl, diff);
                    Value one = f32Const(nb, nl, 1.0);
                    Value den = arith::AddFOp::create(nb, nl, one, e);
                    return arith::DivFOp::create(nb, nl, one, den);
                  });
}

/// out[d] = sum over the tokens of term(t..., d) in f32, over loops
/// [T..., D] of `rank` with the token loops reducing in order (outer loops,
/// spec I.2.1) and D parallel, into a zero-filled tensor of size `dSize`.
static Value buildSumOverTokens(OpBuilder &b, Location loc, ValueRange inputs,
                                ArrayRef<AffineMap> inputMaps, unsigned rank,
                                OpFoldResult dSize, ScalarFn term) {
  Value init = createFilledF32(b, loc, {dSize}, 0.0);
  SmallVector<AffineMap> maps(inputMaps);
  maps.push_back(selectMap(b.getContext(), rank, {rank - 1}));
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::reduction);
  iterators.back() = utils::IteratorType::parallel;
  return linalg::GenericOp::create(
             b, loc, init.getType(), inputs, init, maps, iterators,
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value t = term(nb, nl, args.drop_back());
               Value acc = arith::AddFOp::create(nb, nl, args.back(), t);
               linalg::YieldOp::create(nb, nl, acc);
             })
      .getResult(0);
}

//===----------------------------------------------------------------------===//
// Destinations
//===----------------------------------------------------------------------===//

/// The tensor each result of `op` is written into: the op's destination
/// operands when it is in destination-passing style (one init per result),
/// otherwise a tensor.empty with the result's element type and its shape from
/// reifyResultShapes. Results for which `wanted` is false get a null Value and
/// nothing is created for them (an empty `wanted` wants every result). This is
/// the one place that decides where a decomposed op writes its results.
static FailureOr<SmallVector<Value>>
getResultDestinations(OpBuilder &b, Operation *op, ArrayRef<bool> wanted = {}) {
  unsigned numResults = op->getNumResults();
  auto isWanted = [&](unsigned i) { return wanted.empty() || wanted[i]; };
  SmallVector<Value> destinations(numResults);
  if (auto dps = dyn_cast<DestinationStyleOpInterface>(op)) {
    if (dps.getNumDpsInits() == static_cast<int64_t>(numResults)) {
      for (unsigned i = 0; i < numResults; ++i)
        if (isWanted(i))
          destinations[i] = dps.getDpsInitOperand(i)->get();
      return destinations;
    }
  }
  ReifiedRankedShapedTypeDims shapes;
  if (failed(reifyResultShapes(b, op, shapes)) || shapes.size() != numResults)
    return op->emitOpError("could not reify its result shapes");
  for (unsigned i = 0; i < numResults; ++i) {
    if (!isWanted(i))
      continue;
    Type elt =
        cast<RankedTensorType>(op->getResult(i).getType()).getElementType();
    destinations[i] = tensor::EmptyOp::create(b, op->getLoc(), shapes[i], elt);
  }
  return destinations;
}

//===----------------------------------------------------------------------===//
// Decompositions
//===----------------------------------------------------------------------===//

using Decomposition = FailureOr<SmallVector<Value>>;

/// `v` cast to the type of `op`'s one result.
static Decomposition castToResult(OpBuilder &b, Operation *op, Value v) {
  Type type = op->getResult(0).getType();
  return SmallVector<Value>{castTo(b, op->getLoc(), v, type)};
}

/// attnres.aggregate: per-source inverse RMS and score, softmax over the
/// sources, weighted sum of the raw sources. An aggregation of one source
/// (its softmax gives it weight exactly 1) is that source: the rule of
/// AggregateOp::fold.
static Decomposition decompose(OpBuilder &b, AggregateOp op) {
  Location loc = op.getLoc();
  ValueRange sources = op.getSources();
  if (sources.size() == 1)
    return castToResult(b, op, sources.front());
  Value first = sources.front();
  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(b, loc, first);
  Value featureCount = featureCountF32(b, loc, first);
  float eps = op.getEpsilon().convertToFloat();

  SmallVector<Value> dots, invRms;
  for (Value v : sources) {
    Value sumSq = buildSumSquares(b, loc, v, tokenSizes);
    invRms.push_back(
        buildInvRmsFromSumSquares(b, loc, sumSq, featureCount, eps));
    dots.push_back(buildDot(b, loc, v, op.getQuery(), op.getNormWeight(),
                            tokenSizes, std::nullopt));
  }
  auto [weights, lse] =
      buildSoftmax(b, loc, dots, invRms, /*stacked=*/false, Value());
  (void)lse;
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op);
  if (failed(dest))
    return failure();
  Value result = buildWeightedSum(b, loc, sources, weights,
                                  /*stacked=*/false, dest->front());
  return castToResult(b, op, result);
}

//===----------------------------------------------------------------------===//
// Aggregation of stacked sources
//===----------------------------------------------------------------------===//

/// The aggregation of sources stacked along a new leading dimension:
/// `stacked` is tensor<n x T... x D x E>, slice i source i. With
/// `numQueries` (block_score), `query` and `gain` are tensor<S x D> and the
/// scores, weights and results have a leading query dimension S. `invRms`,
/// when given, is tensor<n x T...> (the sources' inverse RMS); otherwise it
/// is computed. The same math as the per-source decomposition with O(1) ops
/// and buffers in n:
///   r[i, t]        rsqrt(sum_d x^2 / D + eps)        (reduction, map)
///   dot[s, i, t]   sum_d q g x                       (reduction)
///   z[s, i, t]     dot * r                           (map)
///   m[s, t]        max over i of z, from -inf        (reduction)
///   e[s, t]        sum over i of exp(z - m), from 0  (reduction)
///   w[s, i, t]     exp(z - m) / e                    (map)
///   lse[s, t]      m + log(e)                        (map, into `lseInit`)
///   out[s, t, d]   sum over i of w x, from 0         (reduction, rounded)
/// The reductions over i run in source order for every (s, t), so every
/// value is the one the per-source decomposition computes, up to the sign
/// of a zero. Returns the result written into `init` and the lse (null
/// without `lseInit`).
static std::pair<Value, Value>
buildStackedAggregate(OpBuilder &b, Location loc, Value stacked, Value query,
                      Value gain, Value invRms, float epsilon,
                      std::optional<OpFoldResult> numQueries, Value init,
                      Value lseInit) {
  MLIRContext *ctx = b.getContext();
  unsigned off = numQueries ? 1 : 0;
  unsigned rank = rankOf(stacked); // n, T..., D
  unsigned loops = off + rank;     // (s,) i, t..., d
  unsigned zRank = loops - 1;      // (s,) i, t...
  Type elt = cast<RankedTensorType>(init.getType()).getElementType();
  SmallVector<OpFoldResult> sizes = allSizes(b, loc, stacked);
  ArrayRef<OpFoldResult> nTokenSizes = ArrayRef(sizes).drop_back();
  SmallVector<OpFoldResult> zSizes, mSizes;
  if (numQueries) {
    zSizes.push_back(*numQueries);
    mSizes.push_back(*numQueries);
  }
  llvm::append_range(zSizes, nTokenSizes);
  llvm::append_range(mSizes, nTokenSizes.drop_front());

  // r[i, t], unless given.
  if (!invRms) {
    AffineMap id = b.getMultiDimIdentityMap(rank);
    Value sumSq = buildSumOverLastLoop(
        b, loc, stacked, id, nTokenSizes,
        [](OpBuilder &nb, Location nl, ValueRange args) -> Value {
          Value x = toF32(nb, nl, args[0]);
          return arith::MulFOp::create(nb, nl, x, x);
        });
    invRms = buildInvRmsFromSumSquares(
        b, loc, sumSq, featureCountF32(b, loc, stacked), epsilon);
  }

  // dot[(s,) i, t] over loops ((s,) i, t..., d), d reducing.
  AffineMap xMap = rangeMap(ctx, loops, off, rank);
  AffineMap qMap = numQueries ? selectMap(ctx, loops, {0, loops - 1})
                              : selectMap(ctx, loops, {loops - 1});
  Value dot = buildSumOverLastLoop(
      b, loc, ValueRange{stacked, query, gain}, {xMap, qMap, qMap}, zSizes,
      [](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        Value x = toF32(nb, nl, args[0]);
        Value q = toF32(nb, nl, args[1]);
        Value g = toF32(nb, nl, args[2]);
        Value qg = arith::MulFOp::create(nb, nl, q, g);
        return arith::MulFOp::create(nb, nl, qg, x);
      });

  // z = dot * r over ((s,) i, t...).
  AffineMap zId = b.getMultiDimIdentityMap(zRank);
  AffineMap rOfZ = rangeMap(ctx, zRank, off, zRank - off);
  Value zInit = tensor::EmptyOp::create(b, loc, zSizes, b.getF32Type());
  Value z = buildMap(b, loc, ValueRange{dot, invRms}, {zId, rOfZ}, zInit,
                     [](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                       return arith::MulFOp::create(nb, nl, args[0], args[1]);
                     });

  // Reductions over the sources (loop `off`), into [(S,) T...].
  SmallVector<unsigned> keep;
  for (unsigned i = 0; i < zRank; ++i)
    if (i != off)
      keep.push_back(i);
  AffineMap mOfZ = selectMap(ctx, zRank, keep);
  SmallVector<utils::IteratorType> overSources = parallelIterators(zRank);
  overSources[off] = utils::IteratorType::reduction;
  auto reduceSources = [&](ValueRange inputs, ArrayRef<AffineMap> maps,
                           double initValue, ScalarFn combine) -> Value {
    Value acc = createFilledF32(b, loc, mSizes, initValue);
    SmallVector<AffineMap> allMaps(maps);
    allMaps.push_back(mOfZ);
    return linalg::GenericOp::create(
               b, loc, acc.getType(), inputs, acc, allMaps, overSources,
               [&](OpBuilder &nb, Location nl, ValueRange args) {
                 linalg::YieldOp::create(nb, nl, combine(nb, nl, args));
               })
        .getResult(0);
  };
  Value m = reduceSources(
      z, {zId}, -std::numeric_limits<double>::infinity(),
      [](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        return arith::MaximumFOp::create(nb, nl, args[1], args[0]);
      });
  Value e =
      reduceSources(ValueRange{z, m}, {zId, mOfZ}, 0.0,
                    [](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                      Value shifted =
                          arith::SubFOp::create(nb, nl, args[0], args[1]);
                      Value ex = math::ExpOp::create(nb, nl, shifted);
                      return arith::AddFOp::create(nb, nl, args[2], ex);
                    });

  // w = exp(z - m) / e.
  Value wInit = tensor::EmptyOp::create(b, loc, zSizes, b.getF32Type());
  Value w = buildMap(b, loc, ValueRange{z, m, e}, {zId, mOfZ, mOfZ}, wInit,
                     [](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                       Value shifted =
                           arith::SubFOp::create(nb, nl, args[0], args[1]);
                       Value ex = math::ExpOp::create(nb, nl, shifted);
                       return arith::DivFOp::create(nb, nl, ex, args[2]);
                     });
  Value lse;
  if (lseInit) {
    AffineMap mId = b.getMultiDimIdentityMap(mSizes.size());
    lse = buildMap(b, loc, ValueRange{m, e}, {mId, mId}, lseInit,
                   [](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                     Value logE = math::LogOp::create(nb, nl, args[1]);
                     return arith::AddFOp::create(nb, nl, args[0], logE);
                   });
  }

  // out[(s,) t, d] = sum_i w x in f32 over loops ((s,) i, t..., d), i
  // reducing, then rounded once into `init`.
  SmallVector<OpFoldResult> outSizes(mSizes);
  outSizes.push_back(sizes.back());
  bool isF32 = elt.isF32();
  Value acc = isF32 ? linalg::FillOp::create(
                          b, loc, ValueRange{f32Const(b, loc, 0.0)}, init)
                          .getResult(0)
                    : createFilledF32(b, loc, outSizes, 0.0);
  SmallVector<unsigned> outDims;
  for (unsigned i = 0; i < loops; ++i)
    if (i != off)
      outDims.push_back(i);
  SmallVector<utils::IteratorType> sumIterators = parallelIterators(loops);
  sumIterators[off] = utils::IteratorType::reduction;
  Value sum = linalg::GenericOp::create(
                  b, loc, acc.getType(), ValueRange{w, stacked}, acc,
                  ArrayRef<AffineMap>{rangeMap(ctx, loops, 0, loops - 1), xMap,
                                      selectMap(ctx, loops, outDims)},
                  sumIterators,
                  [&](OpBuilder &nb, Location nl, ValueRange args) {
                    Value x = toF32(nb, nl, args[1]);
                    Value term = arith::MulFOp::create(nb, nl, args[0], x);
                    Value total = arith::AddFOp::create(nb, nl, args[2], term);
                    linalg::YieldOp::create(nb, nl, total);
                  })
                  .getResult(0);
  if (!isF32)
    sum = buildMap(b, loc, sum, b.getMultiDimIdentityMap(outSizes.size()), init,
                   [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                     return fromF32(nb, nl, args[0], elt);
                   });
  return {sum, lse};
}

/// Whether `stacked` (rank r + 1, element type of `source`) can hold
/// sources of the type of `source` (rank r).
static LogicalResult checkStacked(Operation *op, Value stacked, Value source,
                                  StringRef what) {
  auto stackedType = dyn_cast<RankedTensorType>(stacked.getType());
  auto sourceType = cast<RankedTensorType>(source.getType());
  if (stackedType && stackedType.getRank() == sourceType.getRank() + 1 &&
      stackedType.getElementType() == sourceType.getElementType())
    return success();
  return op->emitOpError("stacked ")
         << what << " of type " << stacked.getType() << " do not match " << what
         << " of type " << sourceType;
}

FailureOr<SmallVector<Value>>
mlir::attnres::decomposeOverStacked(OpBuilder &b, Operation *op, Value stacked,
                                    Value stackedInvRms) {
  Location loc = op->getLoc();
  if (auto agg = dyn_cast<AggregateOp>(op)) {
    if (failed(checkStacked(op, stacked, agg.getSources().front(), "sources")))
      return failure();
    FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op);
    if (failed(dest))
      return failure();
    Value result = buildStackedAggregate(b, loc, stacked, agg.getQuery(),
                                         agg.getNormWeight(), Value(),
                                         agg.getEpsilon().convertToFloat(),
                                         std::nullopt, dest->front(), Value())
                       .first;
    return SmallVector<Value>{castTo(b, loc, result, agg.getType())};
  }
  auto score = dyn_cast<BlockScoreOp>(op);
  if (!score)
    return op->emitOpError("has no decomposition over stacked sources");
  if (failed(checkStacked(op, stacked, score.getSources().front(), "sources")))
    return failure();
  if (score.getInvRms().empty() != !stackedInvRms)
    return op->emitOpError("stacked inverse RMS given without inv_rms "
                           "operands, or missing");
  if (stackedInvRms &&
      failed(checkStacked(op, stackedInvRms, score.getInvRms().front(),
                          "inverse RMS")))
    return failure();
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op);
  if (failed(dest))
    return failure();
  Value outInit = (*dest)[0], lseInit = (*dest)[1];
  OpFoldResult numQueries = leadingSizes(b, loc, outInit, 1).front();
  auto [out, lse] = buildStackedAggregate(b, loc, stacked, score.getQueries(),
                                          score.getNormWeights(), stackedInvRms,
                                          score.getEpsilon().convertToFloat(),
                                          numQueries, outInit, lseInit);
  return SmallVector<Value>{castTo(b, loc, out, score.getOut().getType()),
                            castTo(b, loc, lse, score.getLse().getType())};
}

/// attnres.block_sum: elementwise f32 sum, rounded once. A block sum of one
/// input is that input (BlockSumOp::fold).
static Decomposition decompose(OpBuilder &b, BlockSumOp op) {
  Location loc = op.getLoc();
  ValueRange inputs = op.getInputs();
  if (inputs.size() == 1)
    return castToResult(b, op, inputs.front());
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op);
  if (failed(dest))
    return failure();
  Value init = dest->front();
  Type elt = cast<RankedTensorType>(init.getType()).getElementType();
  SmallVector<AffineMap> maps(inputs.size(),
                              b.getMultiDimIdentityMap(rankOf(init)));
  Value result = buildMap(b, loc, inputs, maps, init,
                          [&](OpBuilder &nb, Location nl, ValueRange args) {
                            Value acc = sumToF32(nb, nl, args);
                            return fromF32(nb, nl, acc, elt);
                          });
  return castToResult(b, op, result);
}

/// attnres.inv_rms: sum of squares, then rsqrt(mean + eps).
static Decomposition decompose(OpBuilder &b, InvRmsOp op) {
  Location loc = op.getLoc();
  Value input = op.getInput();
  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(b, loc, input);
  Value sumSq = buildSumSquares(b, loc, input, tokenSizes);
  Value featureCount = featureCountF32(b, loc, input);
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op);
  if (failed(dest))
    return failure();
  Value r = buildInvRmsFromSumSquares(b, loc, sumSq, featureCount,
                                      op.getEpsilon().convertToFloat(),
                                      dest->front());
  return castToResult(b, op, r);
}

/// attnres.block_score (phase 1): scores of S queries against every source,
/// softmax per query, weighted sum written into the first destination,
/// log-sum-exp into the second.
static Decomposition decompose(OpBuilder &b, BlockScoreOp op) {
  Location loc = op.getLoc();
  ValueRange sources = op.getSources();
  Value first = sources.front();
  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(b, loc, first);
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op);
  if (failed(dest))
    return failure();
  Value outInit = (*dest)[0], lseInit = (*dest)[1];
  OpFoldResult numQueries = leadingSizes(b, loc, outInit, 1).front();
  float eps = op.getEpsilon().convertToFloat();

  SmallVector<Value> invRms;
  if (op.getInvRms().empty()) {
    Value featureCount = featureCountF32(b, loc, first);
    for (Value v : sources) {
      Value sumSq = buildSumSquares(b, loc, v, tokenSizes);
      invRms.push_back(
          buildInvRmsFromSumSquares(b, loc, sumSq, featureCount, eps));
    }
  } else {
    llvm::append_range(invRms, op.getInvRms());
  }
  SmallVector<Value> dots;
  for (Value v : sources)
    dots.push_back(buildDot(b, loc, v, op.getQueries(), op.getNormWeights(),
                            tokenSizes, numQueries));
  auto [weights, lse] =
      buildSoftmax(b, loc, dots, invRms, /*stacked=*/true, lseInit);
  Value out =
      buildWeightedSum(b, loc, sources, weights, /*stacked=*/true, outInit);
  SmallVector<Value> results{castTo(b, loc, out, op.getOut().getType()),
                             castTo(b, loc, lse, op.getLse().getType())};
  return results;
}

/// attnres.merge (phase 2): p' = partial + update; c = r(p') (w*g).p';
/// h = out + sigmoid(c - lse) (p' - out). p' stays in f32 until both results
/// are rounded. With a fused norm, hn = h r_n(h) gain_n from the rounded h.
static Decomposition decompose(OpBuilder &b, MergeOp op) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  auto type = cast<RankedTensorType>(op.getResult().getType());
  Type elt = type.getElementType();
  unsigned rank = type.getRank();
  Value update = op.getUpdate();
  // The optional operands: [partial] [norm gain] (spec E.2).
  ValueRange tail = op.getOptionalOperands();
  Value partial = op.getPartial() ? tail.front() : Value();
  Value normGain = op.hasNorm() ? tail.back() : Value();
  SmallVector<Value> addends{update};
  if (partial)
    addends.push_back(partial);

  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(b, loc, update);
  Value sumSq = buildSumSquares(b, loc, addends, tokenSizes);
  Value r =
      buildInvRmsFromSumSquares(b, loc, sumSq, featureCountF32(b, loc, update),
                                op.getEpsilon().convertToFloat());
  Value dot = buildDot(b, loc, addends, op.getQuery(), op.getNormWeight(),
                       tokenSizes, std::nullopt);

  Value gate = buildGate(b, loc, r, dot, op.getLse(), tokenSizes);

  // Destinations of h, of the rounded p' (only with a partial: p' is
  // `update` itself otherwise) and of the normed h (only with a norm).
  SmallVector<bool> wanted{true, static_cast<bool>(partial)};
  if (op.getNumResults() > 2)
    wanted.push_back(true);
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op, wanted);
  if (failed(dest))
    return failure();

  // h = out + gate * (p' - out), and p' rounded.
  SmallVector<Value> outputs{(*dest)[0]};
  if (partial)
    outputs.push_back((*dest)[1]);
  SmallVector<Value> inputs{op.getOut()};
  llvm::append_range(inputs, addends);
  inputs.push_back(gate);
  AffineMap id = b.getMultiDimIdentityMap(rank);
  AffineMap rows = rangeMap(ctx, rank, 0, rank - 1);
  SmallVector<AffineMap> maps(inputs.size() - 1, id);
  maps.push_back(rows);
  unsigned n = addends.size();
  auto generic =
      buildMapGeneric(b, loc, inputs, maps, outputs,
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
  Value h = castTo(b, loc, generic.getResult(0), type);
  Value newPartial =
      partial
          ? castTo(b, loc, generic.getResult(1), op.getNewPartial().getType())
          : castTo(b, loc, update, op.getNewPartial().getType());
  if (!normGain)
    return SmallVector<Value>{h, newPartial};

  // The fused RMSNorm of the rounded h (spec E.5): hn = h * rsqrt(mean_d
  // h^2 + norm_epsilon) * gain_n, in f32, rounded once.
  Value hStored = generic.getResult(0);
  Value normSumSq = buildSumSquares(b, loc, hStored, tokenSizes);
  Value rn = buildInvRmsFromSumSquares(
      b, loc, normSumSq, featureCountF32(b, loc, update),
      op.getNormEpsilonAttr().getValueAsDouble());
  Value normed =
      buildMap(b, loc, ValueRange{hStored, rn, normGain},
               {id, rows, selectMap(ctx, rank, {rank - 1})}, (*dest)[2],
               [&](OpBuilder &nb, Location nl, ValueRange args) {
                 Value x = toF32(nb, nl, args[0]);
                 Value xr = arith::MulFOp::create(nb, nl, x, args[1]);
                 Value hn =
                     arith::MulFOp::create(nb, nl, xr, toF32(nb, nl, args[2]));
                 return fromF32(nb, nl, hn, elt);
               });
  Value hn = castTo(b, loc, normed, op->getResult(2).getType());
  return SmallVector<Value>{h, newPartial, hn};
}

//===----------------------------------------------------------------------===//
// Training ops (spec section I)
//===----------------------------------------------------------------------===//

/// attnres.aggregate_stats: the decomposition of attnres.aggregate with the
/// inverse RMS of each source written into its result's destination and the
/// log-sum-exp of the softmax into lse's. One source: h is the source (A.2),
/// lse = z_0 (log of a sum of one exp(0) is 0).
static Decomposition decompose(OpBuilder &b, AggregateStatsOp op) {
  Location loc = op.getLoc();
  ValueRange sources = op.getSources();
  unsigned n = sources.size();
  Value first = sources.front();
  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(b, loc, first);
  Value featureCount = featureCountF32(b, loc, first);
  float eps = op.getEpsilon().convertToFloat();
  SmallVector<bool> wanted(op->getNumResults(), true);
  wanted[0] = n > 1;
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op, wanted);
  if (failed(dest))
    return failure();

  SmallVector<Value> dots, invRms;
  for (auto [i, v] : llvm::enumerate(sources)) {
    Value sumSq = buildSumSquares(b, loc, v, tokenSizes);
    invRms.push_back(buildInvRmsFromSumSquares(b, loc, sumSq, featureCount, eps,
                                               (*dest)[2 + i]));
    dots.push_back(buildDot(b, loc, v, op.getQuery(), op.getNormWeight(),
                            tokenSizes, std::nullopt));
  }
  auto [weights, lse] =
      buildSoftmax(b, loc, dots, invRms, /*stacked=*/false, (*dest)[1]);
  Value h = n == 1 ? first
                   : buildWeightedSum(b, loc, sources, weights,
                                      /*stacked=*/false, (*dest)[0]);
  SmallVector<Value> results{castTo(b, loc, h, op.getResult().getType()),
                             castTo(b, loc, lse, op.getLse().getType())};
  for (auto [r, res] : llvm::zip(invRms, op.getInvRms()))
    results.push_back(castTo(b, loc, r, res.getType()));
  return results;
}

/// attnres.aggregate_grad (spec I.2): per source, the recomputed dot with
/// w*g and the dot with dh (reductions over D); one map over the tokens
/// giving each source's coefficients of dh, of w*g and of v_i in dv_i; one
/// map over [T..., D] writing every dv_i (into its accumulator when there is
/// one, which the body reads: read and written once); one reduction over the
/// tokens for dwg (I.2.1: tokens are the outer loops, in order), and one map
/// for dquery and dgain.
static Decomposition decompose(OpBuilder &b, AggregateGradOp op) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  ValueRange sources = op.getSources();
  unsigned n = sources.size();
  Value dh = op.getGrad();
  auto type = cast<RankedTensorType>(dh.getType());
  Type elt = type.getElementType();
  unsigned rank = type.getRank();
  bool acc = op.isAccumulating();
  ValueRange accs = op.getAccumulators();

  // Destinations: the accumulators for the source gradients when given,
  // otherwise new tensors; new f32 [D] tensors for dquery and dgain. With
  // one source and no accumulator, dv_0 is dh itself.
  SmallVector<bool> wanted(op->getNumResults(), true);
  for (unsigned i = 0; i < n; ++i)
    wanted[i] = !acc && n > 1;
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op, wanted);
  if (failed(dest))
    return failure();
  SmallVector<Value> dvInits;
  for (unsigned i = 0; i < n; ++i)
    dvInits.push_back(acc ? accs[i] : (*dest)[i]);
  Value dqInit = (*dest)[n], dgInit = (*dest)[n + 1];
  AffineMap id = b.getMultiDimIdentityMap(rank);
  AffineMap rows = rangeMap(ctx, rank, 0, rank - 1);
  AffineMap feat = selectMap(ctx, rank, {rank - 1});

  SmallVector<Value> results;
  if (n == 1) {
    // h = v_0 (A.2): dv_0 = [acc_0 +] dh; query and gain get exact zeros.
    Value dv = dh;
    if (acc)
      dv = buildMap(
          b, loc, ValueRange{dh}, {id}, accs[0],
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value a = toF32(nb, nl, nb.getInsertionBlock()->getArgument(1));
            Value s = arith::AddFOp::create(nb, nl, a, toF32(nb, nl, args[0]));
            return fromF32(nb, nl, s, elt);
          });
    results.push_back(castTo(b, loc, dv, op.getSourceGrads()[0].getType()));
    Value zero = f32Const(b, loc, 0.0);
    for (Value init : {dqInit, dgInit})
      results.push_back(
          linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{init})
              .getResult(0));
    results[1] = castTo(b, loc, results[1], op.getQueryGrad().getType());
    results[2] = castTo(b, loc, results[2], op.getNormWeightGrad().getType());
    return results;
  }

  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(b, loc, dh);
  Value featureCount = featureCountF32(b, loc, dh);
  Value query = op.getQuery(), gain = op.getNormWeight();

  // Per source: dot_i = sum_d w g v_i and da_i = sum_d v_i dh.
  SmallVector<Value> dots, das;
  for (Value v : sources) {
    dots.push_back(buildDot(b, loc, v, query, gain, tokenSizes, std::nullopt));
    das.push_back(buildSumOverLastLoop(
        b, loc, ValueRange{v, dh}, {id, id}, tokenSizes,
        [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
          Value x = toF32(nb, nl, args[0]);
          Value g = toF32(nb, nl, args[1]);
          return arith::MulFOp::create(nb, nl, x, g);
        }));
  }

  // Per token and source: cA_i = a_i, cW_i = dz_i r_i and
  // cV_i = -dz_i r_i^2 z_i / D, so that dv_i = cA_i dh + cW_i w g + cV_i v_i.
  SmallVector<Value> coefInputs(dots);
  llvm::append_range(coefInputs, das);
  llvm::append_range(coefInputs, op.getInvRms());
  coefInputs.push_back(op.getLse());
  AffineMap tokId = b.getMultiDimIdentityMap(rank - 1);
  SmallVector<AffineMap> coefMaps(coefInputs.size(), tokId);
  SmallVector<Value> coefOutputs;
  for (unsigned i = 0; i < 3 * n; ++i)
    coefOutputs.push_back(
        tensor::EmptyOp::create(b, loc, tokenSizes, b.getF32Type()));
  auto coefs = buildMapGeneric(
      b, loc, coefInputs, coefMaps, coefOutputs,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value lse = args[3 * n];
        SmallVector<Value> z, a;
        Value s;
        for (unsigned i = 0; i < n; ++i) {
          z.push_back(arith::MulFOp::create(nb, nl, args[2 * n + i], args[i]));
          Value shifted = arith::SubFOp::create(nb, nl, z.back(), lse);
          a.push_back(math::ExpOp::create(nb, nl, shifted));
          Value t = arith::MulFOp::create(nb, nl, a.back(), args[n + i]);
          s = s ? arith::AddFOp::create(nb, nl, s, t).getResult() : t;
        }
        SmallVector<Value> yields(a);
        SmallVector<Value> cV;
        for (unsigned i = 0; i < n; ++i) {
          Value r = args[2 * n + i];
          Value diff = arith::SubFOp::create(nb, nl, args[n + i], s);
          Value dz = arith::MulFOp::create(nb, nl, a[i], diff);
          Value cW = arith::MulFOp::create(nb, nl, dz, r);
          yields.push_back(cW);
          Value zr = arith::MulFOp::create(nb, nl, z[i], r);
          Value t = arith::MulFOp::create(nb, nl, cW, zr);
          Value q = arith::DivFOp::create(nb, nl, t, featureCount);
          cV.push_back(arith::NegFOp::create(nb, nl, q));
        }
        llvm::append_range(yields, cV);
        return yields;
      });
  ValueRange cA = coefs.getResults().slice(0, n);
  ValueRange cW = coefs.getResults().slice(n, n);
  ValueRange cV = coefs.getResults().slice(2 * n, n);

  // dv_i = [acc_i +] cA_i dh + cW_i (w g) + cV_i v_i, one map for all
  // sources (dh, w and g are read once).
  SmallVector<Value> dvInputs(sources);
  dvInputs.push_back(dh);
  dvInputs.push_back(query);
  dvInputs.push_back(gain);
  llvm::append_range(dvInputs, cA);
  llvm::append_range(dvInputs, cW);
  llvm::append_range(dvInputs, cV);
  SmallVector<AffineMap> dvMaps(n + 1, id);
  dvMaps.append(2, feat);
  dvMaps.append(3 * n, rows);
  dvMaps.append(n, id);
  unsigned numIn = dvInputs.size();
  auto dvGeneric = linalg::GenericOp::create(
      b, loc, ValueRange(dvInits).getTypes(), dvInputs, dvInits, dvMaps,
      parallelIterators(rank),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value d = toF32(nb, nl, args[n]);
        Value q = toF32(nb, nl, args[n + 1]);
        Value g = toF32(nb, nl, args[n + 2]);
        Value w = arith::MulFOp::create(nb, nl, q, g);
        SmallVector<Value> yields;
        for (unsigned i = 0; i < n; ++i) {
          Value v = toF32(nb, nl, args[i]);
          Value t0 = arith::MulFOp::create(nb, nl, args[n + 3 + i], d);
          Value t1 = arith::MulFOp::create(nb, nl, args[2 * n + 3 + i], w);
          Value t2 = arith::MulFOp::create(nb, nl, args[3 * n + 3 + i], v);
          Value sum = arith::AddFOp::create(nb, nl, t0, t1);
          sum = arith::AddFOp::create(nb, nl, sum, t2);
          if (acc) {
            Value prev = toF32(nb, nl, args[numIn + i]);
            sum = arith::AddFOp::create(nb, nl, prev, sum);
          }
          yields.push_back(fromF32(nb, nl, sum, elt));
        }
        linalg::YieldOp::create(nb, nl, yields);
      });
  for (auto [dv, res] : llvm::zip(dvGeneric.getResults(), op.getSourceGrads()))
    results.push_back(castTo(b, loc, dv, res.getType()));

  // dwg[d] = sum over tokens (outer loops, in order) of sum_i cW_i v_i.
  OpFoldResult dSize = leadingSizes(b, loc, dqInit, /*count=*/1).front();
  SmallVector<Value> dwInputs(sources);
  llvm::append_range(dwInputs, cW);
  SmallVector<AffineMap> dwMaps(n, id);
  dwMaps.append(n, rows);
  Value dwg = buildSumOverTokens(
      b, loc, dwInputs, dwMaps, rank, dSize,
      [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        Value term;
        for (unsigned i = 0; i < n; ++i) {
          Value v = toF32(nb, nl, args[i]);
          Value t = arith::MulFOp::create(nb, nl, args[n + i], v);
          term = term ? arith::AddFOp::create(nb, nl, term, t).getResult() : t;
        }
        return term;
      });

  // dquery = dwg * g, dgain = dwg * w (f32, not rounded: I.2.1).
  linalg::GenericOp params =
      buildParamGrads(b, loc, dwg, query, gain, dqInit, dgInit);
  results.push_back(
      castTo(b, loc, params.getResult(0), op.getQueryGrad().getType()));
  results.push_back(
      castTo(b, loc, params.getResult(1), op.getNormWeightGrad().getType()));
  return results;
}

/// attnres.block_score_grad (spec I.3): per source the stacked dots with
/// W_l G_l and with dout_l (reductions over D, loops [S, T..., D]); one map
/// over [S, T...] for the coefficients; one generic over [T..., D, S] (S
/// reduces, in order) summing every source's f32 gradient over the queries;
/// one map adding the accumulators (its outs when given) and rounding once;
/// one generic over [S, T..., D] (tokens reduce, in order) for dwg; one map
/// for dqueries and dgains.
static Decomposition decompose(OpBuilder &b, BlockScoreGradOp op) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  ValueRange sources = op.getSources();
  unsigned n = sources.size();
  Value first = sources.front();
  auto type = cast<RankedTensorType>(first.getType());
  Type elt = type.getElementType();
  unsigned rank = type.getRank();
  unsigned tokRank = rank - 1;
  bool acc = op.isAccumulating();
  ValueRange accs = op.getAccumulators();
  Value queries = op.getQueries(), gains = op.getNormWeights();
  Value dout = op.getOutGrad();

  SmallVector<bool> wanted(op->getNumResults(), true);
  for (unsigned i = 0; i < n; ++i)
    wanted[i] = !acc;
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op, wanted);
  if (failed(dest))
    return failure();
  Value dWInit = (*dest)[n], dGInit = (*dest)[n + 1];

  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(b, loc, first);
  OpFoldResult numQueries = leadingSizes(b, loc, queries, 1).front();
  SmallVector<OpFoldResult> stSizes{numQueries};
  llvm::append_range(stSizes, tokenSizes);
  Value featureCount = featureCountF32(b, loc, first);

  // Loops [S, T..., D]: dots and das of shape [S, T...].
  unsigned nl3 = rank + 1;
  AffineMap srcInSTD = rangeMap(ctx, nl3, 1, rank);
  AffineMap idSTD = b.getMultiDimIdentityMap(nl3);
  SmallVector<Value> dots, das;
  for (Value v : sources) {
    dots.push_back(buildDot(b, loc, v, queries, gains, tokenSizes, numQueries));
    das.push_back(buildSumOverLastLoop(
        b, loc, ValueRange{v, dout}, {srcInSTD, idSTD}, stSizes,
        [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
          Value x = toF32(nb, nl, args[0]);
          Value g = toF32(nb, nl, args[1]);
          return arith::MulFOp::create(nb, nl, x, g);
        }));
  }

  // Coefficients over [S, T...]: cA = a, cW = dz r, cV = -dz r^2 z / D.
  unsigned nl2 = rank;
  AffineMap idST = b.getMultiDimIdentityMap(nl2);
  AffineMap tokInST = rangeMap(ctx, nl2, 1, tokRank);
  SmallVector<Value> coefInputs(dots);
  llvm::append_range(coefInputs, das);
  llvm::append_range(coefInputs, op.getInvRms());
  coefInputs.push_back(op.getLse());
  coefInputs.push_back(op.getLseGrad());
  SmallVector<AffineMap> coefMaps(2 * n, idST);
  coefMaps.append(n, tokInST);
  coefMaps.append(2, idST);
  SmallVector<Value> coefOutputs;
  for (unsigned i = 0; i < 3 * n; ++i)
    coefOutputs.push_back(
        tensor::EmptyOp::create(b, loc, stSizes, b.getF32Type()));
  auto coefs = buildMapGeneric(
      b, loc, coefInputs, coefMaps, coefOutputs,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value lse = args[3 * n], dlse = args[3 * n + 1];
        // a_li = e_li / sum_j e_lj with e_li = exp(z_li - lse_l), the sums
        // over the sources in order: exactly the softmax, and in f32 it sums
        // to one whatever the rounding of the saved lse (with one source the
        // softmax derivative then cancels exactly). The GPU kernel computes
        // the same (spec I.5).
        SmallVector<Value> z, a;
        Value sumE;
        for (unsigned i = 0; i < n; ++i) {
          z.push_back(arith::MulFOp::create(nb, nl, args[2 * n + i], args[i]));
          Value shifted = arith::SubFOp::create(nb, nl, z.back(), lse);
          a.push_back(math::ExpOp::create(nb, nl, shifted));
          sumE = sumE
                     ? arith::AddFOp::create(nb, nl, sumE, a.back()).getResult()
                     : a.back();
        }
        Value one = arith::ConstantOp::create(nb, nl, nb.getF32FloatAttr(1.0));
        Value inv = arith::DivFOp::create(nb, nl, one, sumE);
        Value sum;
        for (unsigned i = 0; i < n; ++i) {
          a[i] = arith::MulFOp::create(nb, nl, a[i], inv);
          Value t = arith::MulFOp::create(nb, nl, a[i], args[n + i]);
          sum = sum ? arith::AddFOp::create(nb, nl, sum, t).getResult() : t;
        }
        SmallVector<Value> yields(a);
        SmallVector<Value> cV;
        for (unsigned i = 0; i < n; ++i) {
          Value r = args[2 * n + i];
          Value diff = arith::SubFOp::create(nb, nl, args[n + i], sum);
          Value withLse = arith::AddFOp::create(nb, nl, diff, dlse);
          Value dz = arith::MulFOp::create(nb, nl, a[i], withLse);
          Value cW = arith::MulFOp::create(nb, nl, dz, r);
          yields.push_back(cW);
          Value zr = arith::MulFOp::create(nb, nl, z[i], r);
          Value t = arith::MulFOp::create(nb, nl, cW, zr);
          Value q = arith::DivFOp::create(nb, nl, t, featureCount);
          cV.push_back(arith::NegFOp::create(nb, nl, q));
        }
        llvm::append_range(yields, cV);
        return yields;
      });
  ValueRange cA = coefs.getResults().slice(0, n);
  ValueRange cW = coefs.getResults().slice(n, n);
  ValueRange cV = coefs.getResults().slice(2 * n, n);

  // f32 sum over the queries, loops [T..., D, S] (S last, reducing):
  // g_i[t, d] = sum_l cA_li dout_l + cW_li W_l G_l + cV_li v_i.
  SmallVector<AffineExpr> tdExprs, sExpr{getAffineDimExpr(rank, ctx)};
  for (unsigned k = 0; k < rank; ++k)
    tdExprs.push_back(getAffineDimExpr(k, ctx));
  AffineMap tdMap = AffineMap::get(nl3, 0, tdExprs, ctx);
  SmallVector<AffineExpr> outExprs(sExpr);
  llvm::append_range(outExprs, tdExprs);
  AffineMap doutMap = AffineMap::get(nl3, 0, outExprs, ctx);
  AffineMap qMap = AffineMap::get(
      nl3, 0, {getAffineDimExpr(rank, ctx), getAffineDimExpr(rank - 1, ctx)},
      ctx);
  SmallVector<AffineExpr> stExprs(sExpr);
  for (unsigned k = 0; k < tokRank; ++k)
    stExprs.push_back(getAffineDimExpr(k, ctx));
  AffineMap coefMap = AffineMap::get(nl3, 0, stExprs, ctx);
  SmallVector<Value> sumInputs(sources);
  sumInputs.push_back(dout);
  sumInputs.push_back(queries);
  sumInputs.push_back(gains);
  llvm::append_range(sumInputs, cA);
  llvm::append_range(sumInputs, cW);
  llvm::append_range(sumInputs, cV);
  SmallVector<AffineMap> sumMaps(n, tdMap);
  sumMaps.push_back(doutMap);
  sumMaps.append(2, qMap);
  sumMaps.append(3 * n, coefMap);
  SmallVector<OpFoldResult> valueSizes = allSizes(b, loc, first);
  SmallVector<Value> sumInits;
  for (unsigned i = 0; i < n; ++i)
    sumInits.push_back(createFilledF32(b, loc, valueSizes, 0.0));
  sumMaps.append(n, tdMap);
  SmallVector<utils::IteratorType> sumIterators = reductionIterators(nl3);
  auto sums = linalg::GenericOp::create(
      b, loc, ValueRange(sumInits).getTypes(), sumInputs, sumInits, sumMaps,
      sumIterators, [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value d = toF32(nb, nl, args[n]);
        Value q = toF32(nb, nl, args[n + 1]);
        Value g = toF32(nb, nl, args[n + 2]);
        Value w = arith::MulFOp::create(nb, nl, q, g);
        unsigned numIn = 4 * n + 3;
        SmallVector<Value> yields;
        for (unsigned i = 0; i < n; ++i) {
          Value v = toF32(nb, nl, args[i]);
          Value t0 = arith::MulFOp::create(nb, nl, args[n + 3 + i], d);
          Value t1 = arith::MulFOp::create(nb, nl, args[2 * n + 3 + i], w);
          Value t2 = arith::MulFOp::create(nb, nl, args[3 * n + 3 + i], v);
          Value t = arith::AddFOp::create(nb, nl, t0, t1);
          t = arith::AddFOp::create(nb, nl, t, t2);
          yields.push_back(arith::AddFOp::create(nb, nl, args[numIn + i], t));
        }
        linalg::YieldOp::create(nb, nl, yields);
      });

  // dv_i = round([acc_i +] g_i), into the accumulators when given.
  AffineMap id = b.getMultiDimIdentityMap(rank);
  SmallVector<Value> dvInits;
  for (unsigned i = 0; i < n; ++i)
    dvInits.push_back(acc ? accs[i] : (*dest)[i]);
  auto dvGeneric = linalg::GenericOp::create(
      b, loc, ValueRange(dvInits).getTypes(), sums.getResults(), dvInits,
      SmallVector<AffineMap>(2 * n, id), parallelIterators(rank),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        SmallVector<Value> yields;
        for (unsigned i = 0; i < n; ++i) {
          Value v = args[i];
          if (acc)
            v = arith::AddFOp::create(nb, nl, toF32(nb, nl, args[n + i]), v);
          yields.push_back(fromF32(nb, nl, v, elt));
        }
        linalg::YieldOp::create(nb, nl, yields);
      });
  SmallVector<Value> results;
  for (auto [dv, res] : llvm::zip(dvGeneric.getResults(), op.getSourceGrads()))
    results.push_back(castTo(b, loc, dv, res.getType()));

  // dwg[l, d] = sum over tokens (in order) of sum_i cW_li v_i, loops
  // [S, T..., D] with the token loops reducing.
  SmallVector<OpFoldResult> sdSizes{numQueries};
  sdSizes.push_back(leadingSizes(b, loc, first, rank).back());
  Value dwgInit = createFilledF32(b, loc, sdSizes, 0.0);
  SmallVector<Value> dwInputs(sources);
  llvm::append_range(dwInputs, cW);
  SmallVector<AffineMap> dwMaps(n, srcInSTD);
  dwMaps.append(n, rangeMap(ctx, nl3, 0, rank));
  dwMaps.push_back(selectMap(ctx, nl3, {0, rank}));
  SmallVector<utils::IteratorType> dwIterators(nl3,
                                               utils::IteratorType::reduction);
  dwIterators.front() = utils::IteratorType::parallel;
  dwIterators.back() = utils::IteratorType::parallel;
  Value dwg =
      linalg::GenericOp::create(
          b, loc, dwgInit.getType(), dwInputs, dwgInit, dwMaps, dwIterators,
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value term;
            for (unsigned i = 0; i < n; ++i) {
              Value v = toF32(nb, nl, args[i]);
              Value t = arith::MulFOp::create(nb, nl, args[n + i], v);
              term =
                  term ? arith::AddFOp::create(nb, nl, term, t).getResult() : t;
            }
            Value sum = arith::AddFOp::create(nb, nl, args[2 * n], term);
            linalg::YieldOp::create(nb, nl, sum);
          })
          .getResult(0);

  linalg::GenericOp params =
      buildParamGrads(b, loc, dwg, queries, gains, dWInit, dGInit);
  results.push_back(
      castTo(b, loc, params.getResult(0), op.getQueriesGrad().getType()));
  results.push_back(
      castTo(b, loc, params.getResult(1), op.getNormWeightsGrad().getType()));
  return results;
}

/// attnres.merge_grad (spec I.4): recomputes p' = [partial +] update, its
/// inverse RMS, the dot with w g and the gate as the forward does; with the
/// fused norm, the stored h, its inverse RMS rn and <h, gn dhn>, and the f32
/// dH = dh + rn gn dhn - rn^3 h <h, gn dhn> / D (one map). Then one
/// reduction over D for <dH, p' - out>, one map over the tokens for the
/// coefficients (dlse into its destination), one map over [T..., D] writing
/// dout and dp, and one sum over the tokens (in order) each for dwg and dgn.
static Decomposition decompose(OpBuilder &b, MergeGradOp op) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  Value update = op.getUpdate();
  auto type = cast<RankedTensorType>(update.getType());
  Type elt = type.getElementType();
  unsigned rank = type.getRank();
  Value partial = op.getPartial(), normGain = op.getNormGain();
  Value out = op.getOut(), query = op.getQuery(), gain = op.getNormWeight();
  SmallVector<Value> addends{update};
  if (partial)
    addends.push_back(partial);
  unsigned na = addends.size();

  // Destinations of dout, dlse, dquery, dgain and dp; dgn is a new sum.
  SmallVector<bool> wanted(op->getNumResults(), true);
  if (normGain)
    wanted[5] = false;
  FailureOr<SmallVector<Value>> dest = getResultDestinations(b, op, wanted);
  if (failed(dest))
    return failure();

  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(b, loc, update);
  OpFoldResult dSize = allSizes(b, loc, update).back();
  Value featureCount = featureCountF32(b, loc, update);
  Value sumSq = buildSumSquares(b, loc, addends, tokenSizes);
  Value r = buildInvRmsFromSumSquares(b, loc, sumSq, featureCount,
                                      op.getEpsilon().convertToFloat());
  Value dot = buildDot(b, loc, addends, query, gain, tokenSizes, std::nullopt);
  Value gate = buildGate(b, loc, r, dot, op.getLse(), tokenSizes);

  AffineMap id = b.getMultiDimIdentityMap(rank);
  AffineMap rows = rangeMap(ctx, rank, 0, rank - 1);
  AffineMap feat = selectMap(ctx, rank, {rank - 1});
  AffineMap tokId = b.getMultiDimIdentityMap(rank - 1);

  // dH: the gradient reaching h, dh itself without the fused norm.
  Value dH = op.getGrad();
  Value hStored, rn;
  if (normGain) {
    // h as the forward stores it: round_E(out + gate (p' - out)).
    SmallVector<Value> hInputs{out};
    llvm::append_range(hInputs, addends);
    hInputs.push_back(gate);
    SmallVector<AffineMap> hMaps(1 + na, id);
    hMaps.push_back(rows);
    Value hInit = emptyLike(b, loc, update, elt);
    hStored =
        buildMap(b, loc, hInputs, hMaps, hInit,
                 [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                   Value o = toF32(nb, nl, args[0]);
                   Value p = sumToF32(nb, nl, args.slice(1, na));
                   Value delta = arith::SubFOp::create(nb, nl, p, o);
                   Value scaled =
                       arith::MulFOp::create(nb, nl, args[1 + na], delta);
                   Value h = arith::AddFOp::create(nb, nl, o, scaled);
                   return fromF32(nb, nl, h, elt);
                 });
    Value normSumSq = buildSumSquares(b, loc, hStored, tokenSizes);
    rn = buildInvRmsFromSumSquares(b, loc, normSumSq, featureCount,
                                   op.getNormEpsilonAttr().getValueAsDouble());
    // hgd[t] = sum_d h gn dhn.
    Value hgd = buildSumOverLastLoop(
        b, loc, ValueRange{hStored, normGain, op.getNormedGrad()},
        {id, feat, id}, tokenSizes,
        [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
          Value h = toF32(nb, nl, args[0]);
          Value gn = toF32(nb, nl, args[1]);
          Value dy = toF32(nb, nl, args[2]);
          Value gdy = arith::MulFOp::create(nb, nl, gn, dy);
          return arith::MulFOp::create(nb, nl, h, gdy);
        });
    Value dHInit = emptyLike(b, loc, update, b.getF32Type());
    dH = buildMap(b, loc,
                  ValueRange{op.getGrad(), hStored, normGain,
                             op.getNormedGrad(), rn, hgd},
                  {id, id, feat, id, rows, rows}, dHInit,
                  [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                    Value dh = toF32(nb, nl, args[0]);
                    Value h = toF32(nb, nl, args[1]);
                    Value gn = toF32(nb, nl, args[2]);
                    Value dy = toF32(nb, nl, args[3]);
                    Value gdy = arith::MulFOp::create(nb, nl, gn, dy);
                    Value rnv = args[4];
                    Value t0 = arith::MulFOp::create(nb, nl, rnv, gdy);
                    Value r2 = arith::MulFOp::create(nb, nl, rnv, rnv);
                    Value r3 = arith::MulFOp::create(nb, nl, r2, rnv);
                    Value hs = arith::MulFOp::create(nb, nl, h, args[5]);
                    Value t1 = arith::MulFOp::create(nb, nl, r3, hs);
                    t1 = arith::DivFOp::create(nb, nl, t1, featureCount);
                    Value sum = arith::AddFOp::create(nb, nl, dh, t0);
                    return arith::SubFOp::create(nb, nl, sum, t1);
                  });
  }

  // dgate[t] = sum_d dH (p' - out).
  SmallVector<Value> daInputs{dH, out};
  llvm::append_range(daInputs, addends);
  Value dgate = buildSumOverLastLoop(
      b, loc, daInputs, SmallVector<AffineMap>(2 + na, id), tokenSizes,
      [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        Value p = sumToF32(nb, nl, args.slice(2, na));
        Value delta = arith::SubFOp::create(nb, nl, p, toF32(nb, nl, args[1]));
        return arith::MulFOp::create(nb, nl, toF32(nb, nl, args[0]), delta);
      });

  // Per token: dc = dgate a (1 - a); dlse = -dc (into its destination),
  // cW = dc r and cV = -dc r^2 c / D (c = r dot), so that
  // dp = a dH + dp_new + cW w g + cV p'.
  Value cWInit = tensor::EmptyOp::create(b, loc, tokenSizes, b.getF32Type());
  Value cVInit = tensor::EmptyOp::create(b, loc, tokenSizes, b.getF32Type());
  auto coefs = buildMapGeneric(
      b, loc, ValueRange{dgate, gate, r, dot}, SmallVector<AffineMap>(4, tokId),
      ValueRange{(*dest)[1], cWInit, cVInit},
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value a = args[1], rv = args[2];
        Value one = f32Const(nb, nl, 1.0);
        Value oneMinus = arith::SubFOp::create(nb, nl, one, a);
        Value da = arith::MulFOp::create(nb, nl, args[0], a);
        Value dc = arith::MulFOp::create(nb, nl, da, oneMinus);
        Value dlse = arith::NegFOp::create(nb, nl, dc);
        Value cW = arith::MulFOp::create(nb, nl, dc, rv);
        Value c = arith::MulFOp::create(nb, nl, rv, args[3]);
        Value cr = arith::MulFOp::create(nb, nl, c, rv);
        Value t = arith::MulFOp::create(nb, nl, cW, cr);
        Value q = arith::DivFOp::create(nb, nl, t, featureCount);
        Value cV = arith::NegFOp::create(nb, nl, q);
        return SmallVector<Value>{dlse, cW, cV};
      });
  Value dlse = coefs.getResult(0), cW = coefs.getResult(1),
        cV = coefs.getResult(2);

  // dout = round((1 - a) dH), dp = round(a dH + dp_new + cW w g + cV p').
  SmallVector<Value> gInputs{dH, op.getNewPartialGrad(), query, gain, gate, cW,
                             cV};
  llvm::append_range(gInputs, addends);
  SmallVector<AffineMap> gMaps{id, id, feat, feat, rows, rows, rows};
  gMaps.append(na, id);
  auto grads = buildMapGeneric(
      b, loc, gInputs, gMaps, ValueRange{(*dest)[0], (*dest)[4]},
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value dh = toF32(nb, nl, args[0]);
        Value dpn = toF32(nb, nl, args[1]);
        Value q = toF32(nb, nl, args[2]);
        Value g = toF32(nb, nl, args[3]);
        Value w = arith::MulFOp::create(nb, nl, q, g);
        Value a = args[4];
        Value p = sumToF32(nb, nl, args.slice(7, na));
        Value one = f32Const(nb, nl, 1.0);
        Value oneMinus = arith::SubFOp::create(nb, nl, one, a);
        Value dout = arith::MulFOp::create(nb, nl, oneMinus, dh);
        Value dp = arith::MulFOp::create(nb, nl, a, dh);
        dp = arith::AddFOp::create(nb, nl, dp, dpn);
        Value tw = arith::MulFOp::create(nb, nl, args[5], w);
        Value tv = arith::MulFOp::create(nb, nl, args[6], p);
        dp = arith::AddFOp::create(nb, nl, dp, tw);
        dp = arith::AddFOp::create(nb, nl, dp, tv);
        return SmallVector<Value>{fromF32(nb, nl, dout, elt),
                                  fromF32(nb, nl, dp, elt)};
      });

  // dwg[d] = sum over tokens of cW p'; dquery = dwg g, dgain = dwg w.
  SmallVector<Value> dwInputs{cW};
  llvm::append_range(dwInputs, addends);
  SmallVector<AffineMap> dwMaps{rows};
  dwMaps.append(na, id);
  Value dwg = buildSumOverTokens(
      b, loc, dwInputs, dwMaps, rank, dSize,
      [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        Value p = sumToF32(nb, nl, args.drop_front());
        return arith::MulFOp::create(nb, nl, args[0], p);
      });
  linalg::GenericOp params =
      buildParamGrads(b, loc, dwg, query, gain, (*dest)[2], (*dest)[3]);

  SmallVector<Value> results;
  results.push_back(
      castTo(b, loc, grads.getResult(0), op.getOutGrad().getType()));
  results.push_back(castTo(b, loc, dlse, op.getLseGrad().getType()));
  results.push_back(
      castTo(b, loc, params.getResult(0), op.getQueryGrad().getType()));
  results.push_back(
      castTo(b, loc, params.getResult(1), op.getNormWeightGrad().getType()));
  results.push_back(
      castTo(b, loc, grads.getResult(1), op.getUpdateGrad().getType()));
  if (!normGain)
    return results;

  // dgn[d] = sum over tokens of h rn dhn (f32, in token order).
  Value dgn = buildSumOverTokens(
      b, loc, ValueRange{hStored, rn, op.getNormedGrad()}, {id, rows, id}, rank,
      dSize, [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        Value h = toF32(nb, nl, args[0]);
        Value hr = arith::MulFOp::create(nb, nl, h, args[1]);
        return arith::MulFOp::create(nb, nl, hr, toF32(nb, nl, args[2]));
      });
  results.push_back(castTo(b, loc, dgn, op.getNormGainGrad().getType()));
  return results;
}

//===----------------------------------------------------------------------===//
// External models
//===----------------------------------------------------------------------===//

namespace {
/// linalg::AggregatedOpInterface for OpTy: decomposeOperation builds the
/// decomposition right before the op and returns the values that replace its
/// results (the caller replaces and erases the op).
template <typename OpTy>
struct AttnResDecompositionModel
    : public linalg::AggregatedOpInterface::ExternalModel<
          AttnResDecompositionModel<OpTy>, OpTy> {
  FailureOr<SmallVector<Value>> decomposeOperation(Operation *op,
                                                   OpBuilder &b) const {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(op);
    return decompose(b, cast<OpTy>(op));
  }
};

template <typename... OpTys> static void attachDecomposition(MLIRContext *ctx) {
  (OpTys::template attachInterface<AttnResDecompositionModel<OpTys>>(*ctx),
   ...);
}
} // namespace

void mlir::attnres::registerDecompositionInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, AttnResDialect *) {
    // The decomposition is made of these dialects' ops.
    ctx->loadDialect<arith::ArithDialect, linalg::LinalgDialect,
                     math::MathDialect, tensor::TensorDialect>();
    attachDecomposition<AggregateOp, BlockSumOp, InvRmsOp, BlockScoreOp,
                        MergeOp, AggregateStatsOp, AggregateGradOp,
                        BlockScoreGradOp, MergeGradOp>(ctx);
  });
}
