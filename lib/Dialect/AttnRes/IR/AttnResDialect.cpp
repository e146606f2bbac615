//===- AttnResDialect.cpp - AttnRes dialect -------------------------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::attnres;

#include "attnres/Dialect/AttnRes/IR/AttnResOpsDialect.cpp.inc"

void AttnResDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "attnres/Dialect/AttnRes/IR/AttnResOps.cpp.inc"
      >();
}
