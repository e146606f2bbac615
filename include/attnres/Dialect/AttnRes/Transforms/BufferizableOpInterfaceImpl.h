//===- BufferizableOpInterfaceImpl.h - Bufferization of attnres ops ---*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
#define ATTNRES_DIALECT_ATTNRES_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H

namespace mlir {
class DialectRegistry;

namespace attnres {
/// Attaches bufferization::BufferizableOpInterface to every attnres op
/// (external models), so that upstream `one-shot-bufferize` accepts them:
/// an op bufferizes into its linalg decomposition (AggregatedOpInterface),
/// written into its destinations (block_score's `outs`) or into new buffers
/// (the value forms). See docs/interfaces-tiling-sharding.md.
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
