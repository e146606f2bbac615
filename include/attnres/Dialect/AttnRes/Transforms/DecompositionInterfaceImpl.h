//===- DecompositionInterfaceImpl.h - Decomposition of attnres ops -*- C++ -*-//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_TRANSFORMS_DECOMPOSITIONINTERFACEIMPL_H
#define ATTNRES_DIALECT_ATTNRES_TRANSFORMS_DECOMPOSITIONINTERFACEIMPL_H

#include "mlir/IR/Value.h"
#include "mlir/Support/LLVM.h"

namespace mlir {
class DialectRegistry;
class OpBuilder;

namespace attnres {
/// Attaches linalg::AggregatedOpInterface to every attnres op (external
/// models): `decomposeOperation` expresses the op as linalg.generic
/// reductions and maps on tensors (with tensor, arith and math ops), so that
/// upstream `transform.structured.decompose_interface` works on attnres ops.
/// `convert-attnres-to-linalg` is a driver over the same interface. See
/// docs/decomposition.md.
void registerDecompositionInterfaceExternalModels(DialectRegistry &registry);

/// Builds, at `b`'s insertion point, the decomposition of `op`, an
/// `attnres.aggregate` or `attnres.block_score`, reading its sources from
/// `stacked`, a tensor<n x T... x D x E> whose slice i along the leading
/// dimension holds the op's source i, and (block_score with `inv_rms`
/// operands) their inverse RMS from `stackedInvRms`, tensor<n x T...> (the
/// caller guarantees both). The ops and buffers it creates do not depend on
/// the number of sources n: scores, softmax statistics and weights are
/// reductions and maps over the stacked dimension (docs/depth.md). Returns
/// the values that replace the op's results; the caller replaces and erases
/// the op.
FailureOr<SmallVector<Value>> decomposeOverStacked(OpBuilder &b, Operation *op,
                                                   Value stacked,
                                                   Value stackedInvRms);
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_DECOMPOSITIONINTERFACEIMPL_H
