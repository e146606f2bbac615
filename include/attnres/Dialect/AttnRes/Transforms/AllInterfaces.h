//===- AllInterfaces.h - All external interface models ------*- C++ -*-===//
//
// Part of the attnres project.
//
// The one registration point of the interface models that attnres attaches
// to its ops from outside the dialect (as upstream's
// mlir/Dialect/Linalg/Transforms/AllInterfaces.h does for linalg): the
// decomposition (linalg::AggregatedOpInterface), TilingInterface,
// BufferizableOpInterface and shard::ShardingInterface. A tool or a compiler
// that embeds attnres calls registerAllDialectInterfaceImplementations once
// (or attnres/InitAllDialects.h's registerAllAttnResDialects, which also
// inserts the dialect). See docs/interfaces-tiling-sharding.md.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_TRANSFORMS_ALLINTERFACES_H
#define ATTNRES_DIALECT_ATTNRES_TRANSFORMS_ALLINTERFACES_H

namespace mlir {
class DialectRegistry;

namespace attnres {
/// Registers every external interface model of the attnres ops.
void registerAllDialectInterfaceImplementations(DialectRegistry &registry);
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_ALLINTERFACES_H
