//===- Common.h - pieces shared by the attnres pipelines --------*- C++ -*-===//
//
// Part of the attnres project.
//
// Internal to lib/Pipelines: the pass sequences that attnres-lower-to-llvm
// and attnres-lower-to-nvvm both add.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_LIB_PIPELINES_COMMON_H
#define ATTNRES_LIB_PIPELINES_COMMON_H

namespace mlir {
class OpPassManager;
namespace attnres {

/// Adds canonicalize followed by CSE on the whole module.
void addCanonicalizeAndCSE(OpPassManager &pm);

/// Adds the cleanup that precedes one-shot bufferization: canonicalize, and
/// deliberately no CSE. CSE merges every `tensor.empty` of one type into a
/// single value; the destinations of hundreds of ops then alias, and
/// one-shot bufferization's conflict analysis grows quadratically with the
/// depth of the model and resolves the conflicts with copies (64 sublayers at
/// d = 256: 672 copies and 2.3 s with CSE, 128 copies and 0.1 s without).
void addPreBufferizationCleanup(OpPassManager &pm);

/// Adds scf -> cf without pattern rollback. With rollback, the dialect
/// conversion splits the function's block once per loop and moves the rest
/// of the block each time: quadratic in the number of loops of one function
/// (a 128-sublayer model: 28 s; without rollback the output is
/// byte-identical and the pass linear).
void addSCFToControlFlow(OpPassManager &pm);

/// Adds one-shot bufferization of the whole module, function boundaries
/// included, with identity-layout memrefs in the function signatures.
void addModuleBufferization(OpPassManager &pm);

/// After bufferization: the results of the public functions become
/// out-parameters that the caller allocates (allocations hoisted, static and
/// dynamic), as the AOT libraries' calling convention wants.
void addResultsToOutParams(OpPassManager &pm);

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_LIB_PIPELINES_COMMON_H
