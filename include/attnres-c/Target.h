/*===- Target.h - attnres C API: targets and host objects ---------*- C -*-===*\
|*                                                                            *|
|* Part of the attnres project.                                               *|
|*                                                                            *|
|* The default NVVM target of attnres-lower-to-nvvm (defined once, in         *|
|* include/attnres/Target/NVVMTarget.h), and the last step of ahead-of-time   *|
|* compilation: an LLVM-dialect module (host code with its gpu.binary ops)    *|
|* translated to LLVM IR and compiled to a relocatable host object, in        *|
|* process.                                                                   *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef ATTNRES_C_TARGET_H
#define ATTNRES_C_TARGET_H

#include "attnres-c/Compiler.h"

#ifdef __cplusplus
extern "C" {
#endif

/// The chip `attnres-lower-to-nvvm` uses when none is named (e.g. `sm_90a`).
/// Static storage; never null.
MLIR_CAPI_EXPORTED MlirStringRef attnresGetDefaultNVVMChip(void);

/// The PTX features `attnres-lower-to-nvvm` uses when none are named (e.g.
/// `+ptx80`). Static storage; never null.
MLIR_CAPI_EXPORTED MlirStringRef attnresGetDefaultNVVMFeatures(void);

/// The key-norm epsilon an `attnres.aggregate` (and every op built from it)
/// gets when none is written: the compiler's one definition
/// (include/attnres/Dialect/AttnRes/IR/AttnResDefaults.h).
MLIR_CAPI_EXPORTED float attnresGetDefaultEpsilon(void);

/// The `block-size` and `num-blocks` that attnres-blockify and attnres-report
/// use when they are not given (0: not asked for): the compiler's one
/// definition (include/attnres/Dialect/AttnRes/IR/AttnResDefaults.h).
MLIR_CAPI_EXPORTED int64_t attnresGetDefaultBlockSize(void);
MLIR_CAPI_EXPORTED int64_t attnresGetDefaultNumBlocks(void);

/// Translates `module` (LLVM dialect; `gpu.binary` ops become the globals
/// their offloading handler defines) to LLVM IR, optimises it at `optLevel`
/// (0-3) for the host (the default target triple, position-independent
/// code) and compiles it: the optimised LLVM IR text goes to `irCallback` and
/// the relocatable object's bytes to `objectCallback` (either may be NULL).
/// Translation and codegen errors are reported to `diagnosticCallback`
/// (which may be NULL) and the result is a failure; nothing is printed to
/// stderr.
MLIR_CAPI_EXPORTED MlirLogicalResult attnresEmitHostCode(
    MlirModule module, int optLevel, MlirStringCallback irCallback,
    void *irUserData, MlirStringCallback objectCallback, void *objectUserData,
    AttnResDiagnosticCallback diagnosticCallback, void *diagnosticUserData);

#ifdef __cplusplus
}
#endif

#endif // ATTNRES_C_TARGET_H
