//===- Passes.h - AttnRes conversion passes ---------------------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_CONVERSION_PASSES_H
#define ATTNRES_CONVERSION_PASSES_H

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/Target/NVVMTarget.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
namespace attnres {

#define GEN_PASS_DECL
#include "attnres/Conversion/Passes.h.inc"

/// Patterns that lower every attnres op to linalg/tensor/arith/math.
void populateAttnResToLinalgPatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "attnres/Conversion/Passes.h.inc"

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_CONVERSION_PASSES_H
