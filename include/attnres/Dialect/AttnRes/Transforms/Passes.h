//===- Passes.h - AttnRes transformation passes -----------------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_TRANSFORMS_PASSES_H
#define ATTNRES_DIALECT_ATTNRES_TRANSFORMS_PASSES_H

#include "attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"
#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
namespace attnres {

#define GEN_PASS_DECL
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_PASSES_H
