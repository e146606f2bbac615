/*===- Compiler.h - one-call entry points of the attnres C API ----*- C -*-===*\
|*                                                                            *|
|* Part of the attnres project.                                               *|
|*                                                                            *|
|* Convenience entry points for embedding the attnres compiler: a context    *|
|* with everything registered, parsing a module from text, running a textual *|
|* pass pipeline, printing, and extracting compiled GPU objects. Every entry  *|
|* point that can fail reports the diagnostics it produced (errors, warnings, *|
|* remarks and their notes, with their locations) through a callback, and     *|
|* nothing is printed to stderr.                                              *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef ATTNRES_C_COMPILER_H
#define ATTNRES_C_COMPILER_H

#include "mlir-c/Diagnostics.h"
#include "mlir-c/IR.h"
#include "mlir-c/Support.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One diagnostic, valid only during the callback. Notes attached to a
/// diagnostic are reported right after it with `isNote` set.
typedef struct {
  MlirDiagnosticSeverity severity;
  /// True for a note attached to the previous diagnostic.
  bool isNote;
  /// File (or buffer name) of the first file location found in the
  /// diagnostic's location; empty with line = column = 0 when there is none.
  MlirStringRef file;
  unsigned line;
  unsigned column;
  /// The whole location as MLIR prints it, e.g. `"in.mlir":3:8`.
  MlirStringRef location;
  MlirStringRef message;
  /// `file:line:col: error: message`, the form mlir-opt prints.
  MlirStringRef formatted;
} AttnResDiagnostic;

typedef void (*AttnResDiagnosticCallback)(const AttnResDiagnostic *diagnostic,
                                          void *userData);

/// Creates a context with every upstream dialect, extension and LLVM IR
/// translation plus the attnres dialect registered (not loaded), and
/// registers every upstream and attnres pass and pipeline. Destroy it with
/// `mlirContextDestroy`.
MLIR_CAPI_EXPORTED MlirContext attnresContextCreate(bool enableThreading);

/// Parses `source` (named `bufferName` in locations) and verifies it.
/// Returns a null module (`mlirModuleIsNull`) on failure; every diagnostic
/// produced is reported to `callback` (which may be NULL).
MLIR_CAPI_EXPORTED MlirModule attnresParseModule(
    MlirContext context, MlirStringRef source, MlirStringRef bufferName,
    AttnResDiagnosticCallback callback, void *userData);

/// Runs the textual pass pipeline `pipeline` on `module`. Accepts the
/// anchored form `builtin.module(canonicalize,cse)` and a bare pass list
/// `canonicalize,func.func(cse)` (which is anchored on builtin.module); an
/// empty pipeline only verifies. Pipeline syntax errors are reported as an
/// error diagnostic located at `pipeline`. Diagnostics emitted while the
/// passes run (including remarks) go to `callback`.
MLIR_CAPI_EXPORTED MlirLogicalResult
attnresRunPassPipeline(MlirModule module, MlirStringRef pipeline,
                       AttnResDiagnosticCallback callback, void *userData);

/// Prints `module` to `callback` in chunks. `generic` selects the generic
/// op form, `debugInfo` prints locations.
MLIR_CAPI_EXPORTED void attnresPrintModule(MlirModule module, bool generic,
                                           bool debugInfo,
                                           MlirStringCallback callback,
                                           void *userData);

/// One object of a `gpu.binary` op, valid only during the callback.
typedef struct {
  /// Symbol name of the gpu.binary op (the name of its gpu.module).
  MlirStringRef binaryName;
  /// Target attribute as printed, e.g. `#nvvm.target<chip = "sm_90a", ...>`.
  MlirStringRef target;
  /// Chip of an NVVM target (`sm_90a`), empty for other targets.
  MlirStringRef chip;
  /// `offload` (LLVM bitcode), `assembly` (PTX text), `bin` (cubin) or
  /// `fatbin`, as gpu.object spells them.
  MlirStringRef format;
  /// The object's bytes.
  MlirStringRef object;
} AttnResGpuObject;

typedef void (*AttnResGpuObjectCallback)(const AttnResGpuObject *object,
                                         void *userData);

/// Reports every object of every `gpu.binary` op nested in `module`, in
/// order. Returns the number of objects reported.
MLIR_CAPI_EXPORTED intptr_t attnresForEachGpuObject(
    MlirModule module, AttnResGpuObjectCallback callback, void *userData);

#ifdef __cplusplus
}
#endif

#endif // ATTNRES_C_COMPILER_H
