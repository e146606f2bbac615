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

/// Adds one-shot bufferization of the whole module, function boundaries
/// included, with identity-layout memrefs in the function signatures.
void addModuleBufferization(OpPassManager &pm);

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_LIB_PIPELINES_COMMON_H
