//===- TilingInterfaceImpl.h - TilingInterface for attnres ops --*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_TRANSFORMS_TILINGINTERFACEIMPL_H
#define ATTNRES_DIALECT_ATTNRES_TRANSFORMS_TILINGINTERFACEIMPL_H

namespace mlir {
class DialectRegistry;

namespace attnres {
/// Attaches the TilingInterface to every attnres op (external models), so
/// that upstream tiling and fusion (scf::tileUsingSCF, the transform ops
/// tile_using_for / tile_using_forall / fuse_into_containing_op) work on them.
/// See docs/interfaces-tiling-sharding.md.
void registerTilingInterfaceExternalModels(DialectRegistry &registry);
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_TILINGINTERFACEIMPL_H
