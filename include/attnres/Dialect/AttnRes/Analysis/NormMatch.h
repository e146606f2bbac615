//===- NormMatch.h - RMSNorm written in linalg primitives -------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// A structural matcher for an RMSNorm written in linalg-on-tensors
// primitives, as front ends emit it (square, sum over D, divide by D or
// multiply by 1/D, add a constant epsilon, rsqrt, multiply by the input and a
// gain vector), that recovers its epsilon and gain. Used by
// attnres-fuse-summaries to fuse a sublayer's norm into attnres.merge
// (docs/spec.md E.5, H.5). The match is exact or fails: every scalar op of the
// norm must be one of the expected f32 ops on the expected operands.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_ANALYSIS_NORMMATCH_H
#define ATTNRES_DIALECT_ATTNRES_ANALYSIS_NORMMATCH_H

#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/SmallVector.h"

namespace mlir {
namespace attnres {

/// An RMSNorm `result = x * rsqrt(mean_d x^2 + epsilon) * gain` of a tensor
/// `x` of type `tensor<T... x D x E>`.
struct RMSNormMatch {
  /// The normalised tensor (the type of `x`).
  Value result;
  /// The gain, `tensor<D x E>` (possibly with a dynamic D).
  Value gain;
  /// The epsilon added to the mean of the squares.
  double epsilon = 0.0;
  /// The ops that compute the norm from `x` (the last one defines `result`),
  /// in program order; they may become dead once `result` is replaced.
  llvm::SmallVector<Operation *> ops;
};

/// Matches `normed` as an RMSNorm of exactly `x` (static D, f32 arithmetic,
/// storage elements widened with arith.extf and the result rounded once with
/// arith.truncf). Returns false when any part differs.
bool matchRMSNorm(Value normed, Value x, RMSNormMatch &match);

/// The RMSNorms that read `x` directly (their last op is a user of `x`), in
/// program order of those users.
llvm::SmallVector<RMSNormMatch> findRMSNormsOf(Value x);

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_ANALYSIS_NORMMATCH_H
