//===- Dialects.cpp - C API registration of the attnres dialect -----------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres-c/Dialects.h"

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/CAPI/Registration.h"

MLIR_DEFINE_CAPI_DIALECT_REGISTRATION(AttnRes, attnres,
                                      mlir::attnres::AttnResDialect)
