/*===- Dialects.h - C API of the attnres dialect ------------------*- C -*-===*\
|*                                                                            *|
|* Part of the attnres project.                                               *|
|*                                                                            *|
|* Registration of the attnres dialect through the upstream dialect-handle    *|
|* mechanism, as every upstream dialect does (mlir-c/Dialect/Func.h). *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef ATTNRES_C_DIALECTS_H
#define ATTNRES_C_DIALECTS_H

#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Declares `mlirGetDialectHandle__attnres__()`: pass it to
/// `mlirDialectHandleInsertDialect` or `mlirDialectHandleRegisterDialect`.
MLIR_DECLARE_CAPI_DIALECT_REGISTRATION(AttnRes, attnres);

#ifdef __cplusplus
}
#endif

#endif // ATTNRES_C_DIALECTS_H
