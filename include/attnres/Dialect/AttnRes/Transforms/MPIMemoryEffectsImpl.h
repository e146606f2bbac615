//===- MPIMemoryEffectsImpl.h - Memory effects of the mpi ops --*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_TRANSFORMS_MPIMEMORYEFFECTSIMPL_H
#define ATTNRES_DIALECT_ATTNRES_TRANSFORMS_MPIMEMORYEFFECTSIMPL_H

namespace mlir {
class DialectRegistry;

namespace attnres {
/// Attaches MemoryEffectOpInterface to the communication ops of MLIR 22's
/// `mpi` dialect, which declare none: `mpi.allreduce` reads its send buffer
/// and writes its receive buffer, `mpi.send`/`isend` read, `mpi.recv`/`irecv`
/// write, and every one of them (with `init`, `finalize`, `barrier`, `wait`)
/// has an effect on the default resource, so nothing moves across it. Without
/// them upstream's ownership-based buffer deallocation (part of
/// `attnres-lower-to-llvm`) rejects a model that `convert-shard-to-mpi`
/// produced ("ops with unknown memory side effects are not supported").
/// See docs/interfaces-tiling-sharding.md, "Multi-process run".
void registerMPIMemoryEffectsExternalModels(DialectRegistry &registry);
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_MPIMEMORYEFFECTSIMPL_H
