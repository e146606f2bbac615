//===- AllInterfaces.cpp - Every external interface model of attnres ------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/AllInterfaces.h"

#include "attnres/Dialect/AttnRes/Transforms/BufferizableOpInterfaceImpl.h"
#include "attnres/Dialect/AttnRes/Transforms/DecompositionInterfaceImpl.h"
#include "attnres/Dialect/AttnRes/Transforms/MPIMemoryEffectsImpl.h"
#include "attnres/Dialect/AttnRes/Transforms/ShardingInterfaceImpl.h"
#include "attnres/Dialect/AttnRes/Transforms/TilingInterfaceImpl.h"

void mlir::attnres::registerAllDialectInterfaceImplementations(
    DialectRegistry &registry) {
  // The bufferization model decomposes ops through the decomposition model.
  registerDecompositionInterfaceExternalModels(registry);
  registerBufferizableOpInterfaceExternalModels(registry);
  registerTilingInterfaceExternalModels(registry);
  registerShardingInterfaceExternalModels(registry);
  // What a model partitioned by shard-partition needs after
  // convert-shard-to-mpi (the mpi dialect declares no memory effects).
  registerMPIMemoryEffectsExternalModels(registry);
}
