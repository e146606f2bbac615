//===- ShardingInterfaceImpl.cpp - ShardingInterface for attnres ops ------===//
//
// Part of the attnres project.
//
// External models of the `shard` dialect's ShardingInterface for every
// attnres op. The loops and the indexing maps are those of the tiling model
// (InterfaceLayout.h): `[S] T_1 .. T_k D`, every operand and result indexed
// by a projected permutation of them.
//
// Sharding S or the tokens is free: every op is token-local (spec 0.1) and
// the queries of block_score are independent, so each process runs the same
// op on its shard (partitionTriviallyShardableOperation) with no
// communication. block_sum is elementwise, so sharding D is free for it too.
//
// Sharding D of an op that reduces over D needs the reductions completed
// across the grid axes that split D (docs/interfaces-tiling-sharding.md):
//
//   inv_rms:   ss[p]     = sum_{local d} x[p,d]^2           all_reduce(sum)
//              r[p]      = rsqrt(ss[p] / D + eps)             (global D)
//   aggregate: dot_i[p]  = sum_{local d} w[d] g[d] v_i[p,d]   all_reduce(sum)
//              ss_i[p]   = sum_{local d} v_i[p,d]^2           all_reduce(sum)
//              z_i = dot_i * rsqrt(ss_i / D + eps); a = softmax_i(z)
//              h[p, local d] = sum_i a_i v_i[p, local d]      (stays D-sharded)
//
// The gradient ops (aggregate_grad, block_score_grad, merge_grad): their
// parameter gradients are sums over the tokens, so the token loops are
// reductions. Sharding the tokens gives each process its tokens' per-token
// gradients and partial sums of the parameter gradients, summed by one
// all-reduce each. Sharding D, or the queries of block_score_grad (its
// source gradients sum over them), is refused.
//
// After the two all-reduces (one tensor<n x T.. x f32> each) every process
// holds the exact logits of the whole D and computes its own D slice of h.
//   merge:     ss[p], dot[p] of p' = [partial +] update on the local D
//              slice, all_reduce(sum) each; gate = sigmoid(dot r - lse);
//              h, p' on the local slice; with the fused norm the sum of
//              squares of the rounded h is all-reduced too.
//   block_score: the op's decomposition (DecompositionBuilders.h) with its
//              partial sums all-reduced: the n x S x T.. partial logits
//              and (without inv_rms operands) the n x T.. partial sums of
//              squares, one all-reduce each; then the softmax over the
//              sources per query and each process's D slice of the S
//              outputs; lse replicated.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/ShardingInterfaceImpl.h"

#include "DecompositionBuilders.h"
#include "InterfaceLayout.h"
#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Shard/Interfaces/ShardingInterface.h"
#include "mlir/Dialect/Shard/Interfaces/ShardingInterfaceImpl.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/IRMapping.h"

#include <limits>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::detail;
using shard::GridAxis;
using shard::ReductionKind;
using shard::Sharding;

static SmallVector<utils::IteratorType> getIteratorTypes(const OpLayout &l) {
  SmallVector<utils::IteratorType> types(l.numLoops(),
                                         utils::IteratorType::parallel);
  if (l.featureIsReduction)
    types.back() = utils::IteratorType::reduction;
  if (l.tokensAreReduction)
    for (unsigned loop : l.loopsOf(DimRole::Token))
      types[loop] = utils::IteratorType::reduction;
  if (l.queriesAreReduction)
    types.front() = utils::IteratorType::reduction;
  return types;
}

static SmallVector<AffineMap> getMaps(const OpLayout &l, MLIRContext *ctx) {
  SmallVector<AffineMap> maps;
  auto mapOf = [&](DimRole role) {
    SmallVector<AffineExpr> exprs;
    for (unsigned loop : l.loopsOf(role))
      exprs.push_back(getAffineDimExpr(loop, ctx));
    return AffineMap::get(l.numLoops(), 0, exprs, ctx);
  };
  for (DimRole role : l.operands)
    maps.push_back(mapOf(role));
  for (DimRole role : l.results)
    maps.push_back(mapOf(role));
  return maps;
}

//===----------------------------------------------------------------------===//
// Partition with D sharded
//===----------------------------------------------------------------------===//

static Value toF32(OpBuilder &b, Location loc, Value x) {
  if (x.getType().isF32())
    return x;
  return arith::ExtFOp::create(b, loc, b.getF32Type(), x);
}

/// A zero-filled f32 tensor of the token shape of `value` (`tensor<T.. x D>`),
/// optionally with a leading dimension `lead`.
static Value createTokenTensor(OpBuilder &b, Location loc, Value value,
                               std::optional<int64_t> lead, float fill) {
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, value);
  sizes.pop_back();
  if (lead)
    sizes.insert(sizes.begin(), b.getIndexAttr(*lead));
  Value empty = tensor::EmptyOp::create(b, loc, sizes, b.getF32Type());
  Value init = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(fill));
  return linalg::FillOp::create(b, loc, init, empty).getResult(0);
}

/// Maps of a generic over `numLoops` loops: identity, and `loops` only.
static AffineMap mapOf(MLIRContext *ctx, unsigned numLoops,
                       ArrayRef<unsigned> loops) {
  SmallVector<AffineExpr> exprs;
  for (unsigned l : loops)
    exprs.push_back(getAffineDimExpr(l, ctx));
  return AffineMap::get(numLoops, 0, exprs, ctx);
}

static SmallVector<unsigned> range(unsigned begin, unsigned end) {
  SmallVector<unsigned> r;
  for (unsigned i = begin; i < end; ++i)
    r.push_back(i);
  return r;
}

/// The local partial sums over this process's slice of D of one value
/// `v` (`tensor<T.. x D_local x E>`): the sum of squares and, when `w` and
/// `g` are given, the dot product with w * g. Both `tensor<T.. x f32>`.
static std::pair<Value, Value> createPartialSums(OpBuilder &b, Location loc,
                                                 Value v, Value w, Value g) {
  MLIRContext *ctx = b.getContext();
  unsigned rank = cast<RankedTensorType>(v.getType()).getRank();
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap feature = mapOf(ctx, rank, {rank - 1});
  AffineMap token = mapOf(ctx, rank, range(0, rank - 1));
  SmallVector<utils::IteratorType> iters(rank, utils::IteratorType::parallel);
  iters.back() = utils::IteratorType::reduction;
  Value ssInit = createTokenTensor(b, loc, v, std::nullopt, 0.0f);
  if (!w) {
    auto generic = linalg::GenericOp::create(
        b, loc, TypeRange{ssInit.getType()}, ValueRange{v}, ValueRange{ssInit},
        ArrayRef<AffineMap>{id, token}, iters,
        [](OpBuilder &nb, Location nl, ValueRange args) {
          Value x = toF32(nb, nl, args[0]);
          Value sq = arith::MulFOp::create(nb, nl, x, x);
          Value acc = arith::AddFOp::create(nb, nl, args[1], sq);
          linalg::YieldOp::create(nb, nl, acc);
        });
    return {generic.getResult(0), Value()};
  }
  Value dotInit = createTokenTensor(b, loc, v, std::nullopt, 0.0f);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{ssInit.getType(), dotInit.getType()},
      ValueRange{v, w, g}, ValueRange{ssInit, dotInit},
      ArrayRef<AffineMap>{id, feature, feature, token, token}, iters,
      [](OpBuilder &nb, Location nl, ValueRange args) {
        Value x = toF32(nb, nl, args[0]);
        Value wf = toF32(nb, nl, args[1]);
        Value gf = toF32(nb, nl, args[2]);
        Value sq = arith::MulFOp::create(nb, nl, x, x);
        Value ss = arith::AddFOp::create(nb, nl, args[3], sq);
        Value wg = arith::MulFOp::create(nb, nl, wf, gf);
        Value wgx = arith::MulFOp::create(nb, nl, wg, x);
        Value dot = arith::AddFOp::create(nb, nl, args[4], wgx);
        linalg::YieldOp::create(nb, nl, ValueRange{ss, dot});
      });
  return {generic.getResult(0), generic.getResult(1)};
}

/// `1 / sqrt(ss / d + eps)` elementwise on an f32 tensor.
static Value createInvRms(OpBuilder &b, Location loc, Value ss, int64_t d,
                          float eps) {
  MLIRContext *ctx = b.getContext();
  unsigned rank = cast<RankedTensorType>(ss.getType()).getRank();
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  SmallVector<utils::IteratorType> iters(rank, utils::IteratorType::parallel);
  Value invD = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(1.0f / d));
  Value epsV = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(eps));
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{ss.getType()}, ValueRange{ss}, ValueRange{ss},
      ArrayRef<AffineMap>{id, id}, iters,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value mean = arith::MulFOp::create(nb, nl, args[0], invD);
        Value sum = arith::AddFOp::create(nb, nl, mean, epsV);
        Value r = math::RsqrtOp::create(nb, nl, sum);
        linalg::YieldOp::create(nb, nl, r);
      });
  return generic.getResult(0);
}

/// Sums `partial` over the grid axes that split D.
static Value createAllReduceSum(OpBuilder &b, Location loc, Value partial,
                                StringRef grid, ArrayRef<GridAxis> axes) {
  return shard::AllReduceOp::create(b, loc, partial.getType(), grid, axes,
                                    partial, ReductionKind::Sum)
      .getResult();
}

/// Partitions inv_rms with D sharded: local sum of squares, all-reduce,
/// then the inverse RMS with the global D.
static LogicalResult partitionInvRms(InvRmsOp op, Value input, int64_t d,
                                     StringRef grid, ArrayRef<GridAxis> axes,
                                     IRMapping &map, OpBuilder &b) {
  Location loc = op.getLoc();
  Value ss = createPartialSums(b, loc, input, Value(), Value()).first;
  Value total = createAllReduceSum(b, loc, ss, grid, axes);
  Value r = createInvRms(b, loc, total, d, op.getEpsilon().convertToFloat());
  map.map(op.getResult(), r);
  return success();
}

/// Partitions aggregate with D sharded: the partial logits and sums of
/// squares of all sources stacked into two tensor<n x T.. x f32>, one
/// all-reduce each, then the softmax over the sources and the weighted sum of
/// the local D slice of the sources.
static LogicalResult partitionAggregate(AggregateOp op, Value w, Value g,
                                        ArrayRef<Value> sources, int64_t d,
                                        StringRef grid, ArrayRef<GridAxis> axes,
                                        IRMapping &map, OpBuilder &b) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  int64_t n = sources.size();
  if (n == 1) {
    // One source: the softmax weight is exactly 1 (spec A.2).
    map.map(op.getResult(), sources.front());
    return success();
  }
  Value v0 = sources.front();
  auto valueType = cast<RankedTensorType>(v0.getType());
  unsigned k = valueType.getRank() - 1;

  // Stack the partial sums of the sources: [n, T..].
  Value ssStack = createTokenTensor(b, loc, v0, n, 0.0f);
  Value dotStack = createTokenTensor(b, loc, v0, n, 0.0f);
  SmallVector<OpFoldResult> tokenSizes = tensor::getMixedSizes(b, loc, v0);
  tokenSizes.pop_back();
  SmallVector<OpFoldResult> sizes{b.getIndexAttr(1)};
  llvm::append_range(sizes, tokenSizes);
  SmallVector<OpFoldResult> strides(k + 1, b.getIndexAttr(1));
  for (auto [i, v] : llvm::enumerate(sources)) {
    auto [ss, dot] = createPartialSums(b, loc, v, w, g);
    SmallVector<OpFoldResult> offsets(k + 1, b.getIndexAttr(0));
    offsets[0] = b.getIndexAttr(i);
    ssStack = tensor::InsertSliceOp::create(b, loc, ss, ssStack, offsets, sizes,
                                            strides);
    dotStack = tensor::InsertSliceOp::create(b, loc, dot, dotStack, offsets,
                                             sizes, strides);
  }
  Value ssAll = createAllReduceSum(b, loc, ssStack, grid, axes);
  Value dotAll = createAllReduceSum(b, loc, dotStack, grid, axes);

  // z[i, p] = dot * rsqrt(ss / D + eps).
  Value r = createInvRms(b, loc, ssAll, d, op.getEpsilon().convertToFloat());
  unsigned zRank = k + 1;
  AffineMap zId = AffineMap::getMultiDimIdentityMap(zRank, ctx);
  SmallVector<utils::IteratorType> zPar(zRank, utils::IteratorType::parallel);
  auto zOp = linalg::GenericOp::create(
      b, loc, TypeRange{r.getType()}, ValueRange{dotAll, r}, ValueRange{r},
      ArrayRef<AffineMap>{zId, zId, zId}, zPar,
      [](OpBuilder &nb, Location nl, ValueRange args) {
        Value z = arith::MulFOp::create(nb, nl, args[0], args[1]);
        linalg::YieldOp::create(nb, nl, z);
      });
  Value z = zOp.getResult(0);

  // m = max_i z, s = sum_i exp(z - m) (reductions over the leading loop).
  SmallVector<utils::IteratorType> zRed(zRank, utils::IteratorType::parallel);
  zRed.front() = utils::IteratorType::reduction;
  AffineMap zTok = mapOf(ctx, zRank, range(1, zRank));
  Value mInit = createTokenTensor(b, loc, v0, std::nullopt,
                                  -std::numeric_limits<float>::infinity());
  auto mOp = linalg::GenericOp::create(
      b, loc, TypeRange{mInit.getType()}, ValueRange{z}, ValueRange{mInit},
      ArrayRef<AffineMap>{zId, zTok}, zRed,
      [](OpBuilder &nb, Location nl, ValueRange args) {
        Value m = arith::MaximumFOp::create(nb, nl, args[0], args[1]);
        linalg::YieldOp::create(nb, nl, m);
      });
  Value m = mOp.getResult(0);
  Value sInit = createTokenTensor(b, loc, v0, std::nullopt, 0.0f);
  auto sOp = linalg::GenericOp::create(
      b, loc, TypeRange{sInit.getType()}, ValueRange{z, m}, ValueRange{sInit},
      ArrayRef<AffineMap>{zId, zTok, zTok}, zRed,
      [](OpBuilder &nb, Location nl, ValueRange args) {
        Value diff = arith::SubFOp::create(nb, nl, args[0], args[1]);
        Value e = math::ExpOp::create(nb, nl, diff);
        Value acc = arith::AddFOp::create(nb, nl, args[2], e);
        linalg::YieldOp::create(nb, nl, acc);
      });
  Value s = sOp.getResult(0);

  // h[p, d] = sum_i exp(z_i - m) / s * v_i[p, d] on the local D slice.
  SmallVector<Value> inputs{m, s};
  SmallVector<OpFoldResult> zSizes{b.getIndexAttr(1)};
  llvm::append_range(zSizes, tokenSizes);
  auto zRowType = RankedTensorType::get(
      cast<RankedTensorType>(m.getType()).getShape(), b.getF32Type());
  for (int64_t i = 0; i < n; ++i) {
    SmallVector<OpFoldResult> offsets(k + 1, b.getIndexAttr(0));
    offsets[0] = b.getIndexAttr(i);
    Value row = tensor::ExtractSliceOp::create(b, loc, zRowType, z, offsets,
                                               zSizes, strides);
    inputs.push_back(row);
  }
  llvm::append_range(inputs, sources);
  unsigned hRank = k + 1;
  AffineMap hId = AffineMap::getMultiDimIdentityMap(hRank, ctx);
  AffineMap hTok = mapOf(ctx, hRank, range(0, k));
  SmallVector<AffineMap> maps(2 + n, hTok);
  maps.append(n + 1, hId);
  SmallVector<utils::IteratorType> hPar(hRank, utils::IteratorType::parallel);
  SmallVector<OpFoldResult> valueSizes = tensor::getMixedSizes(b, loc, v0);
  Value hInit =
      tensor::EmptyOp::create(b, loc, valueSizes, valueType.getElementType());
  Type elt = valueType.getElementType();
  auto hOp = linalg::GenericOp::create(
      b, loc, TypeRange{valueType}, inputs, ValueRange{hInit}, maps, hPar,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value acc;
        for (int64_t i = 0; i < n; ++i) {
          Value diff = arith::SubFOp::create(nb, nl, args[2 + i], args[0]);
          Value e = math::ExpOp::create(nb, nl, diff);
          Value a = arith::DivFOp::create(nb, nl, e, args[1]);
          Value x = toF32(nb, nl, args[2 + n + i]);
          Value ax = arith::MulFOp::create(nb, nl, a, x);
          acc = acc ? arith::AddFOp::create(nb, nl, acc, ax).getResult() : ax;
        }
        Value out = acc;
        if (!elt.isF32())
          out = arith::TruncFOp::create(nb, nl, elt, acc);
        linalg::YieldOp::create(nb, nl, out);
      });
  map.map(op.getResult(), hOp.getResult(0));
  return success();
}

/// Partitions merge with D sharded: p' = [partial +] update on the local D
/// slice (f32), its partial sum of squares and dot product with w * g,
/// all-reduced; the gate from the whole-D score; h (and p' rounded) on the
/// local slice. With the fused norm, the sum of squares of the rounded h is
/// all-reduced too and hn computed on the local slice.
static LogicalResult partitionMerge(MergeOp op, ArrayRef<Value> operands,
                                    int64_t d, StringRef grid,
                                    ArrayRef<GridAxis> axes, IRMapping &map,
                                    OpBuilder &b) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  auto operandOf = [&](OpOperand &o) { return operands[o.getOperandNumber()]; };
  Value out = operandOf(op.getOutMutable()),
        lse = operandOf(op.getLseMutable());
  Value w = operandOf(op.getQueryMutable());
  Value g = operandOf(op.getNormWeightMutable());
  Value update = operandOf(op.getUpdateMutable());
  unsigned tail = op.getOptionalOperands().getBeginOperandIndex();
  Value partial = op.getPartial() ? operands[tail] : Value();
  Value normGain = op.hasNorm()
                       ? operands[tail + op.getOptionalOperands().size() - 1]
                       : Value();
  auto valueType = cast<RankedTensorType>(update.getType());
  Type elt = valueType.getElementType();
  unsigned rank = valueType.getRank();
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap token = mapOf(ctx, rank, range(0, rank - 1));
  AffineMap feature = mapOf(ctx, rank, {rank - 1});
  SmallVector<utils::IteratorType> par(rank, utils::IteratorType::parallel);
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, update);

  // p' in f32 on the local slice.
  SmallVector<Value> addends{update};
  if (partial)
    addends.push_back(partial);
  Value pInit = tensor::EmptyOp::create(b, loc, sizes, b.getF32Type());
  SmallVector<AffineMap> pMaps(addends.size() + 1, id);
  Value pf =
      linalg::GenericOp::create(
          b, loc, TypeRange{pInit.getType()}, addends, ValueRange{pInit}, pMaps,
          par,
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value sum = toF32(nb, nl, args[0]);
            if (args.size() > 2)
              sum = arith::AddFOp::create(nb, nl, sum, toF32(nb, nl, args[1]));
            linalg::YieldOp::create(nb, nl, sum);
          })
          .getResult(0);
  auto [ss, dot] = createPartialSums(b, loc, pf, w, g);
  Value r = createInvRms(b, loc, createAllReduceSum(b, loc, ss, grid, axes), d,
                         op.getEpsilon().convertToFloat());
  Value dotAll = createAllReduceSum(b, loc, dot, grid, axes);

  // gate = sigmoid(dot * r - lse) per token.
  unsigned tRank = rank - 1;
  AffineMap tId = AffineMap::getMultiDimIdentityMap(tRank, ctx);
  SmallVector<utils::IteratorType> tPar(tRank, utils::IteratorType::parallel);
  Value gate = linalg::GenericOp::create(
                   b, loc, TypeRange{r.getType()}, ValueRange{dotAll, r, lse},
                   ValueRange{r}, ArrayRef<AffineMap>{tId, tId, tId, tId}, tPar,
                   [](OpBuilder &nb, Location nl, ValueRange args) {
                     Value c = arith::MulFOp::create(nb, nl, args[0], args[1]);
                     Value x = arith::SubFOp::create(nb, nl, c, args[2]);
                     Value one = arith::ConstantOp::create(
                         nb, nl, nb.getF32FloatAttr(1.0f));
                     Value neg = arith::NegFOp::create(nb, nl, x);
                     Value e = math::ExpOp::create(nb, nl, neg);
                     Value den = arith::AddFOp::create(nb, nl, one, e);
                     Value sig = arith::DivFOp::create(nb, nl, one, den);
                     linalg::YieldOp::create(nb, nl, sig);
                   })
                   .getResult(0);

  // h = out + gate * (p' - out), and p' rounded, on the local slice.
  Value hInit = tensor::EmptyOp::create(b, loc, sizes, elt);
  SmallVector<Value> outputs{hInit};
  SmallVector<Type> outTypes{valueType};
  if (partial) {
    outputs.push_back(tensor::EmptyOp::create(b, loc, sizes, elt));
    outTypes.push_back(valueType);
  }
  auto hOp = linalg::GenericOp::create(
      b, loc, outTypes, ValueRange{out, pf, gate}, outputs,
      ArrayRef<AffineMap>(SmallVector<AffineMap>{id, id, token, id, id})
          .take_front(3 + outputs.size()),
      par, [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value o = toF32(nb, nl, args[0]);
        Value delta = arith::SubFOp::create(nb, nl, args[1], o);
        Value scaled = arith::MulFOp::create(nb, nl, args[2], delta);
        Value h = arith::AddFOp::create(nb, nl, o, scaled);
        auto round = [&](Value x) -> Value {
          return elt.isF32() ? x : arith::TruncFOp::create(nb, nl, elt, x);
        };
        SmallVector<Value> yields{round(h)};
        if (partial)
          yields.push_back(round(args[1]));
        linalg::YieldOp::create(nb, nl, yields);
      });
  Value h = hOp.getResult(0);
  map.map(op.getResult(), h);
  map.map(op.getNewPartial(), partial ? hOp.getResult(1) : update);
  if (!normGain)
    return success();

  // hn = h * rsqrt(mean_d h^2 + norm_epsilon) * gain_n from the rounded h,
  // its sum of squares all-reduced over the D axes.
  Value hss = createPartialSums(b, loc, h, Value(), Value()).first;
  Value rn = createInvRms(b, loc, createAllReduceSum(b, loc, hss, grid, axes),
                          d, op.getNormEpsilonAttr().getValueAsDouble());
  Value nInit = tensor::EmptyOp::create(b, loc, sizes, elt);
  Value hn =
      linalg::GenericOp::create(
          b, loc, TypeRange{valueType}, ValueRange{h, rn, normGain},
          ValueRange{nInit}, ArrayRef<AffineMap>{id, token, feature, id}, par,
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value x = toF32(nb, nl, args[0]);
            Value xr = arith::MulFOp::create(nb, nl, x, args[1]);
            Value y = arith::MulFOp::create(nb, nl, xr, toF32(nb, nl, args[2]));
            if (!elt.isF32())
              y = arith::TruncFOp::create(nb, nl, elt, y);
            linalg::YieldOp::create(nb, nl, y);
          })
          .getResult(0);
  map.map(op.getNormed(), hn);
  return success();
}

/// Sums every value of `parts` (f32 tensors of one shape) over the grid axes
/// that split D with one all-reduce: stacked along a new leading dimension,
/// all-reduced, and sliced back.
static SmallVector<Value> createStackedAllReduceSum(OpBuilder &b, Location loc,
                                                    ArrayRef<Value> parts,
                                                    StringRef grid,
                                                    ArrayRef<GridAxis> axes) {
  if (parts.size() == 1)
    return {createAllReduceSum(b, loc, parts.front(), grid, axes)};
  auto partType = cast<RankedTensorType>(parts.front().getType());
  SmallVector<OpFoldResult> partSizes =
      tensor::getMixedSizes(b, loc, parts.front());
  SmallVector<OpFoldResult> stackSizes{b.getIndexAttr(parts.size())};
  llvm::append_range(stackSizes, partSizes);
  Value stack =
      tensor::EmptyOp::create(b, loc, stackSizes, partType.getElementType());
  SmallVector<OpFoldResult> sizes{b.getIndexAttr(1)};
  llvm::append_range(sizes, partSizes);
  SmallVector<OpFoldResult> strides(sizes.size(), b.getIndexAttr(1));
  auto offsetsOf = [&](int64_t i) {
    SmallVector<OpFoldResult> offsets(sizes.size(), b.getIndexAttr(0));
    offsets[0] = b.getIndexAttr(i);
    return offsets;
  };
  for (auto [i, part] : llvm::enumerate(parts))
    stack = tensor::InsertSliceOp::create(
        b, loc, part, stack, offsetsOf(int64_t(i)), sizes, strides);
  Value total = createAllReduceSum(b, loc, stack, grid, axes);
  SmallVector<Value> result;
  for (int64_t i = 0, e = parts.size(); i < e; ++i)
    result.push_back(tensor::ExtractSliceOp::create(
        b, loc, partType, total, offsetsOf(i), sizes, strides));
  return result;
}

/// Partitions block_score with D sharded: the decomposition with the
/// summaries' S x T.. partial logits (and, without inv_rms operands, their
/// partial sums of squares) all-reduced over the D axes before the softmax,
/// stacked into one all-reduce each;
/// the S outputs stay D-sharded, lse is replicated over the D axes.
static LogicalResult partitionBlockScore(BlockScoreOp op,
                                         ArrayRef<Value> operands, int64_t d,
                                         StringRef grid,
                                         ArrayRef<GridAxis> axes,
                                         IRMapping &map, OpBuilder &b) {
  Location loc = op.getLoc();
  auto operandOf = [&](OpOperand &o) { return operands[o.getOperandNumber()]; };
  Value queries = operandOf(op.getQueriesMutable());
  Value gains = operandOf(op.getNormWeightsMutable());
  Value outInit = operandOf(op.getOutInitMutable());
  Value lseInit = operandOf(op.getLseInitMutable());
  ArrayRef<Value> sources = operands.slice(
      op.getSources().getBeginOperandIndex(), op.getSources().size());
  SmallVector<OpFoldResult> tokenSizes = tokenSizesOf(b, loc, sources.front());
  OpFoldResult numQueries = leadingSizes(b, loc, outInit, 1).front();
  float eps = op.getEpsilon().convertToFloat();
  SmallVector<Value> invRms;
  if (op.getInvRms().empty()) {
    Value featureCount =
        arith::ConstantOp::create(b, loc, b.getF32FloatAttr(float(d)));
    SmallVector<Value> partials;
    for (Value v : sources)
      partials.push_back(buildSumSquares(b, loc, v, tokenSizes));
    for (Value ss : createStackedAllReduceSum(b, loc, partials, grid, axes))
      invRms.push_back(
          buildInvRmsFromSumSquares(b, loc, ss, featureCount, eps));
  } else {
    llvm::append_range(invRms,
                       operands.slice(op.getInvRms().getBeginOperandIndex(),
                                      op.getInvRms().size()));
  }
  SmallVector<Value> partialDots;
  for (Value v : sources)
    partialDots.push_back(
        buildDot(b, loc, v, queries, gains, tokenSizes, numQueries));
  SmallVector<Value> dots =
      createStackedAllReduceSum(b, loc, partialDots, grid, axes);
  auto [weights, lse] =
      buildSoftmax(b, loc, dots, invRms, /*stacked=*/true, lseInit);
  Value out =
      buildWeightedSum(b, loc, sources, weights, /*stacked=*/true, outInit);
  map.map(op.getOut(), castTo(b, loc, out, outInit.getType()));
  map.map(op.getLse(), castTo(b, loc, lse, lseInit.getType()));
  return success();
}

/// Partitions `op` whose reduction loop D is sharded (see the file comment).
static LogicalResult partitionShardedFeature(
    Operation *op, const OpLayout &layout, ArrayRef<utils::IteratorType> types,
    const shard::ShardingArray &axes, ArrayRef<Value> operands,
    ArrayRef<Sharding> operandShardings, ArrayRef<Sharding> resultShardings,
    IRMapping &map, OpBuilder &b) {
  auto valueType =
      cast<RankedTensorType>(op->getOperand(layout.valueOperand).getType());
  int64_t d = valueType.getShape().back();
  if (ShapedType::isDynamic(d))
    return op->emitOpError()
           << "cannot be partitioned with the feature dimension D sharded: "
              "D must be static (the mean square divides by the whole D)";
  StringRef grid;
  for (const Sharding &s :
       llvm::concat<const Sharding>(operandShardings, resultShardings))
    if (s) {
      grid = s.getGrid();
      break;
    }
  SmallVector<GridAxis> reductionAxes =
      shard::getReductionGridAxes(types, axes);
  if (auto rms = dyn_cast<InvRmsOp>(op))
    return partitionInvRms(rms, operands[layout.valueOperand], d, grid,
                           reductionAxes, map, b);
  if (auto agg = dyn_cast<AggregateOp>(op)) {
    unsigned first = agg.getSources().getBeginOperandIndex();
    return partitionAggregate(
        agg, operands[agg.getQueryMutable().getOperandNumber()],
        operands[agg.getNormWeightMutable().getOperandNumber()],
        operands.slice(first, agg.getNumSources()), d, grid, reductionAxes, map,
        b);
  }
  if (auto merge = dyn_cast<MergeOp>(op))
    return partitionMerge(merge, operands, d, grid, reductionAxes, map, b);
  if (auto score = dyn_cast<BlockScoreOp>(op))
    return partitionBlockScore(score, operands, d, grid, reductionAxes, map, b);
  return op->emitOpError()
         << "cannot be partitioned with the feature dimension D sharded (only "
            "inv_rms, aggregate, block_score, merge and block_sum can); "
            "shard the token"
         << (layout.stacked ? " or query" : "")
         << " dimensions (docs/interfaces-tiling-sharding.md)";
}

namespace {

template <typename OpTy>
struct AttnResShardingModel
    : public shard::ShardingInterface::ExternalModel<AttnResShardingModel<OpTy>,
                                                     OpTy> {
  SmallVector<utils::IteratorType> getLoopIteratorTypes(Operation *op) const {
    return getIteratorTypes(*getOpLayout(op));
  }

  SmallVector<ReductionKind>
  getReductionLoopIteratorKinds(Operation *op) const {
    // The partial logits and sums of squares are sums, and so are the
    // parameter gradients over the tokens.
    return SmallVector<ReductionKind>(
        llvm::count(getIteratorTypes(*getOpLayout(op)),
                    utils::IteratorType::reduction),
        ReductionKind::Sum);
  }

  SmallVector<AffineMap> getIndexingMaps(Operation *op) const {
    return getMaps(*getOpLayout(op), op->getContext());
  }

  LogicalResult partition(Operation *op, ArrayRef<Value> partitionedOperands,
                          ArrayRef<Sharding> operandShardings,
                          ArrayRef<Sharding> resultShardings,
                          IRMapping &partitionMap,
                          SymbolTableCollection &symbolTable,
                          OpBuilder &builder) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    SmallVector<utils::IteratorType> types = getIteratorTypes(*layout);
    // An unused result (e.g. the lse of a block_score) carries no sharding
    // annotation; upstream's partition helpers would dereference the null
    // sharding. Derive it from the op's loop sharding instead.
    std::vector<Sharding> filledResults(resultShardings.begin(),
                                        resultShardings.end());
    if (llvm::any_of(filledResults, [](const Sharding &s) { return !s; })) {
      auto iface = cast<shard::ShardingInterface>(op);
      FailureOr<shard::ShardingOption> option =
          iface.getShardingOption(operandShardings, resultShardings);
      if (failed(option) || option->empty || !option->grid)
        return op->emitOpError()
               << "cannot derive the sharding of an unannotated result";
      FailureOr<std::vector<Sharding>> all =
          iface.getShardingAnnotations(*option);
      if (failed(all))
        return op->emitOpError()
               << "cannot derive the sharding of an unannotated result";
      for (auto [i, s] : llvm::enumerate(filledResults))
        if (!s)
          s = (*all)[op->getNumOperands() + i];
    }
    resultShardings = filledResults;
    shard::ShardingArray axes = shard::getGridAxisAssignmentForLoopIterators(
        operandShardings, resultShardings, types,
        getMaps(*layout, op->getContext()));
    if (layout->tokensAreReduction) {
      // A gradient op with its tokens sharded: each process runs the op on
      // its tokens; its per-token gradients are its token slice, its
      // parameter gradients partial sums, all-reduced below.
      if (!axes[layout->featureLoop()].empty())
        return op->emitOpError()
               << "cannot be partitioned with the feature dimension D "
                  "sharded; shard the token dimensions "
                  "(docs/interfaces-tiling-sharding.md)";
      if (layout->stacked && !axes.front().empty())
        return op->emitOpError()
               << "cannot be partitioned with the queries sharded (each "
                  "source gradient sums over all of them); shard the token "
                  "dimensions (docs/interfaces-tiling-sharding.md)";
      shard::partitionTriviallyShardableOperation(
          *op, partitionedOperands, operandShardings, resultShardings,
          partitionMap, symbolTable, builder);
      // Each process holds its tokens' partial sum of the parameter
      // gradients: they are summed over the token axes here (MLIR 22's
      // shardings have no partial axes to defer the sum to a user).
      SmallVector<GridAxis> tokenAxes =
          shard::getReductionGridAxes(types, axes);
      if (tokenAxes.empty())
        return success();
      for (auto [i, result] : llvm::enumerate(op->getResults())) {
        if (layout->results[i] != DimRole::Feature &&
            layout->results[i] != DimRole::Rows)
          continue;
        Value local = partitionMap.lookup(result);
        partitionMap.map(result, createAllReduceSum(
                                     builder, op->getLoc(), local,
                                     resultShardings[i].getGrid(), tokenAxes));
      }
      return success();
    }
    if (!shard::isAtLeastOneReductionIteratorSharded(types, axes)) {
      shard::partitionTriviallyShardableOperation(
          *op, partitionedOperands, operandShardings, resultShardings,
          partitionMap, symbolTable, builder);
      return success();
    }
    return partitionShardedFeature(op, *layout, types, axes,
                                   partitionedOperands, operandShardings,
                                   resultShardings, partitionMap, builder);
  }
};

template <typename... OpTys> static void attachSharding(MLIRContext *ctx) {
  (OpTys::template attachInterface<AttnResShardingModel<OpTys>>(*ctx), ...);
}

} // namespace

void mlir::attnres::registerShardingInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, AttnResDialect *) {
    // The partitioned code is made of these dialects' ops.
    ctx->loadDialect<arith::ArithDialect, linalg::LinalgDialect,
                     math::MathDialect, shard::ShardDialect,
                     tensor::TensorDialect>();
    attachSharding<AggregateOp, AggregateStatsOp, AggregateGradOp,
                   BlockScoreGradOp, MergeGradOp, BlockSumOp, InvRmsOp,
                   BlockScoreOp, MergeOp>(ctx);
  });
}
