//===- InterfaceLayout.h - loops and operand roles of attnres ops -*- C++ -*-=//
//
// Part of the attnres project.
//
// The iteration space that the TilingInterface and ShardingInterface models
// of the attnres ops share (docs/interfaces-tiling-sharding.md):
//
//   [S]  T_1 .. T_k  D
//
// `S` (only `block_score`) indexes the queries scored at once, `T_i` the
// token dimensions (spec 0.1), `D` the features. S and the tokens are
// parallel. D is a reduction for the ops that score or normalise
// (`aggregate`, `inv_rms`, `block_score`, `merge`: the logits and the sum of
// squares run over all of D) and parallel for `block_sum` (elementwise). The
// tokens are a reduction for the gradient ops (`aggregate_grad`,
// `block_score_grad`, `merge_grad`), whose parameter gradients are sums over
// the tokens (their per-token gradients follow them); S is a reduction for
// `block_score_grad`, whose source gradients sum over the queries.
//
// Every operand and result has a role that says which loops its dimensions
// follow, in order.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_LIB_DIALECT_ATTNRES_TRANSFORMS_INTERFACELAYOUT_H
#define ATTNRES_LIB_DIALECT_ATTNRES_TRANSFORMS_INTERFACELAYOUT_H

#include "mlir/IR/Operation.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/SmallVector.h"

namespace mlir::attnres::detail {

/// Which loops the dimensions of an operand or result follow.
enum class DimRole {
  Feature,      ///< tensor<D>: a pseudo-query or gain.
  Value,        ///< tensor<T.. x D>: a source, output or partial sum.
  Token,        ///< tensor<T..>: inverse RMS or log-sum-exp.
  Rows,         ///< tensor<S x D>: the queries and gains of block_score.
  Stacked,      ///< tensor<S x T.. x D>: the phase-1 output.
  StackedToken, ///< tensor<S x T..>: the phase-1 log-sum-exp.
};

struct OpLayout {
  unsigned numTokenDims = 0;
  bool stacked = false;
  bool featureIsReduction = true;
  /// The token loops are reductions too: some results (the parameter
  /// gradients of aggregate_grad) are sums over the tokens.
  bool tokensAreReduction = false;
  /// S is a reduction too: some results (the source gradients of
  /// block_score_grad) are sums over the queries.
  bool queriesAreReduction = false;
  SmallVector<DimRole> operands;
  SmallVector<DimRole> results;
  /// An operand of role Value, whose dimensions give T.. and D.
  unsigned valueOperand = 0;
  /// An operand of role Rows (block_score), whose dimension 0 gives S.
  unsigned rowsOperand = 0;

  unsigned numLoops() const { return (stacked ? 1 : 0) + numTokenDims + 1; }
  unsigned featureLoop() const { return numLoops() - 1; }
  /// The loops followed, in order, by the dimensions of a tensor of `role`.
  SmallVector<unsigned> loopsOf(DimRole role) const;
};

/// The layout of an attnres op; failure for other ops.
FailureOr<OpLayout> getOpLayout(Operation *op);

} // namespace mlir::attnres::detail

#endif // ATTNRES_LIB_DIALECT_ATTNRES_TRANSFORMS_INTERFACELAYOUT_H
