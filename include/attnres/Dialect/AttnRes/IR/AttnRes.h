//===- AttnRes.h - AttnRes dialect ------------------------------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_IR_ATTNRES_H
#define ATTNRES_DIALECT_ATTNRES_IR_ATTNRES_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "attnres/Dialect/AttnRes/IR/AttnResDefaults.h"

#include "attnres/Dialect/AttnRes/IR/AttnResOpsDialect.h.inc"

#define GET_OP_CLASSES
#include "attnres/Dialect/AttnRes/IR/AttnResOps.h.inc"

#endif // ATTNRES_DIALECT_ATTNRES_IR_ATTNRES_H
