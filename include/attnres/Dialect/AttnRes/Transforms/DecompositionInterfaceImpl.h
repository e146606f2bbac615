//===- DecompositionInterfaceImpl.h - Decomposition of attnres ops -*- C++ -*-//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_TRANSFORMS_DECOMPOSITIONINTERFACEIMPL_H
#define ATTNRES_DIALECT_ATTNRES_TRANSFORMS_DECOMPOSITIONINTERFACEIMPL_H

namespace mlir {
class DialectRegistry;

namespace attnres {
/// Attaches linalg::AggregatedOpInterface to every attnres op (external
/// models): `decomposeOperation` expresses the op as linalg.generic
/// reductions and maps on tensors (with tensor, arith and math ops), so that
/// upstream `transform.structured.decompose_interface` works on attnres ops.
/// `convert-attnres-to-linalg` is a driver over the same interface. See
/// docs/decomposition.md.
void registerDecompositionInterfaceExternalModels(DialectRegistry &registry);
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_DECOMPOSITIONINTERFACEIMPL_H
