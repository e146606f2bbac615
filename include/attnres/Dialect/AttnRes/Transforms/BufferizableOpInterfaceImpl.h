//===- BufferizableOpInterfaceImpl.h - Bufferization of attnres ops ---*- C++
//-*-===//
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
/// (external models), so that upstream `one-shot-bufferize` bufferizes them:
/// an op bufferizes into its linalg decomposition (AggregatedOpInterface,
/// which registerDecompositionInterfaceExternalModels attaches), written into
/// its written operands (block_score's `outs`, aggregate_grad's
/// accumulators) or into new buffers. See docs/interfaces-tiling-sharding.md.
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
