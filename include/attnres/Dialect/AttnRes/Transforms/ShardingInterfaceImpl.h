//===- ShardingInterfaceImpl.h - ShardingInterface for attnres --*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_TRANSFORMS_SHARDINGINTERFACEIMPL_H
#define ATTNRES_DIALECT_ATTNRES_TRANSFORMS_SHARDINGINTERFACEIMPL_H

namespace mlir {
class DialectRegistry;

namespace attnres {
/// Attaches the `shard` dialect's ShardingInterface to every attnres op
/// (external models), so that upstream `sharding-propagation` and
/// `shard-partition` go through them. See docs/interfaces-tiling-sharding.md.
void registerShardingInterfaceExternalModels(DialectRegistry &registry);
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_SHARDINGINTERFACEIMPL_H
