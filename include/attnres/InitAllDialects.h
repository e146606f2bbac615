//===- InitAllDialects.h - Register the attnres dialect --------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_INITALLDIALECTS_H
#define ATTNRES_INITALLDIALECTS_H

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/Dialect/AttnRes/Transforms/AllInterfaces.h"

#include "mlir/IR/DialectRegistry.h"

namespace mlir {
namespace attnres {

/// Inserts the attnres dialect into `registry` with every interface model
/// attnres attaches to its ops (Transforms/AllInterfaces.h). Every tool of
/// this project (attnres-opt, the mlir-opt plugin, the C API, the fuzzer)
/// registers attnres through this function.
inline void registerAllAttnResDialects(DialectRegistry &registry) {
  registry.insert<AttnResDialect>();
  registerAllDialectInterfaceImplementations(registry);
}

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_INITALLDIALECTS_H
