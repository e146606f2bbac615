//===- DecompositionBuilders.h - The linalg building blocks of the ops -*- C++
//-*-===//
//
// Part of the attnres project.
//
// The pieces of the attnres ops' decomposition into linalg
// (DecompositionInterfaceImpl.cpp) that other interface models reuse: the
// D-sharded partition of block_score (ShardingInterfaceImpl.cpp) is the
// decomposition with its partial sums all-reduced in between, built from the
// same pieces so that both compute the same math in the same order.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_LIB_DIALECT_ATTNRES_TRANSFORMS_DECOMPOSITIONBUILDERS_H
#define ATTNRES_LIB_DIALECT_ATTNRES_TRANSFORMS_DECOMPOSITIONBUILDERS_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpDefinition.h"

#include <optional>
#include <utility>

namespace mlir {
namespace attnres {
namespace detail {

/// The feature count D of `source` as an f32 value (a constant when static).
Value featureCountF32(OpBuilder &b, Location loc, Value source);

/// `v` cast to `type` when its static shape information differs.
Value castTo(OpBuilder &b, Location loc, Value v, Type type);

/// Sizes of the first `count` dimensions of `v`.
SmallVector<OpFoldResult> leadingSizes(OpBuilder &b, Location loc, Value v,
                                       unsigned count);

/// The token sizes of `source` (every dimension but D).
SmallVector<OpFoldResult> tokenSizesOf(OpBuilder &b, Location loc,
                                       Value source);

/// sumsq[t] = sum_d (sum_j xs_j[t, d])^2 in f32.
Value buildSumSquares(OpBuilder &b, Location loc, ValueRange xs,
                      ArrayRef<OpFoldResult> tokenSizes);

/// r[t] = rsqrt(sumsq[t] / featureCount + epsilon), into `init` (a new f32
/// tensor when null).
Value buildInvRmsFromSumSquares(OpBuilder &b, Location loc, Value sumSq,
                                Value featureCount, float epsilon,
                                Value init = Value());

/// dot[(s,) t] = sum_d q[(s,) d] g[(s,) d] (sum_j xs_j[t, d]) in f32.
Value buildDot(OpBuilder &b, Location loc, ValueRange xs, Value query,
               Value gain, ArrayRef<OpFoldResult> tokenSizes,
               std::optional<OpFoldResult> numQueries);

/// The softmax over the sources of z_i = dots[i] * invRms[i]: the weights
/// and, with `lseInit`, the log-sum-exp written into it.
std::pair<SmallVector<Value>, Value> buildSoftmax(OpBuilder &b, Location loc,
                                                  ValueRange dots,
                                                  ValueRange invRms,
                                                  bool stacked, Value lseInit);

/// out[(s,) t, d] = sum_i a_i[(s,) t] x_i[t, d], rounded once into `init`.
Value buildWeightedSum(OpBuilder &b, Location loc, ValueRange sources,
                       ValueRange weights, bool stacked, Value init);

} // namespace detail
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_LIB_DIALECT_ATTNRES_TRANSFORMS_DECOMPOSITIONBUILDERS_H
