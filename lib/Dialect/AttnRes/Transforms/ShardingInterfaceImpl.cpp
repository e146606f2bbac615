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
// After the two all-reduces (one tensor<n x T.. x f32> each) every process
// holds the exact logits of the whole D and computes its own D slice of h.
// block_score and merge with D sharded are refused with a diagnostic.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/ShardingInterfaceImpl.h"

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
    // The partial logits and sums of squares are sums.
    if (getOpLayout(op)->featureIsReduction)
      return {ReductionKind::Sum};
    return {};
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
    shard::ShardingArray axes = shard::getGridAxisAssignmentForLoopIterators(
        operandShardings, resultShardings, types,
        getMaps(*layout, op->getContext()));
    if (!shard::isAtLeastOneReductionIteratorSharded(types, axes)) {
      shard::partitionTriviallyShardableOperation(
          *op, partitionedOperands, operandShardings, resultShardings,
          partitionMap, symbolTable, builder);
      return success();
    }
    return op->emitOpError()
           << "cannot be partitioned with the feature dimension D sharded";
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
    attachSharding<AggregateOp, BlockSumOp, InvRmsOp, BlockScoreOp, MergeOp>(
        ctx);
  });
}
