/*===- Passes.h - C API of the attnres passes ---------------------*- C -*-===*\
|*                                                                            *|
|* Part of the attnres project.                                               *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef ATTNRES_C_PASSES_H
#define ATTNRES_C_PASSES_H

#include "mlir-c/Support.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Registers every attnres pass (attnres-detect-residual-chains,
/// attnres-blockify, attnres-fuse-summaries, convert-attnres-to-linalg,
/// convert-attnres-to-gpu) and both pipelines (attnres-lower-to-llvm,
/// attnres-lower-to-nvvm) with the global pass registry, so that textual
/// pipelines can name them. Idempotent. Upstream passes are registered by
/// `mlirRegisterAllPasses()` (mlir-c/RegisterEverything.h).
MLIR_CAPI_EXPORTED void attnresRegisterAllPasses(void);

#ifdef __cplusplus
}
#endif

#endif // ATTNRES_C_PASSES_H
