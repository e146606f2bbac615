//===- DetectionSupport.h - helpers shared by the detection passes -*- C++
//-*-===//
//
// Part of the attnres project.
//
// Slices within one block, side-effect queries, tensor-add matching and the
// other small facts that attnres-raise-aggregations and
// attnres-convert-residual-chains both need (docs/detection.md).
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_ANALYSIS_DETECTIONSUPPORT_H
#define ATTNRES_DIALECT_ATTNRES_ANALYSIS_DETECTIONSUPPORT_H

#include "mlir/IR/Block.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallVector.h"

namespace mlir {
namespace attnres {
namespace detection {

using OpSet = llvm::SetVector<Operation *>;

/// Ops of `block` that depend on any of `roots` (transitively, through
/// operands; ops nested in regions are attributed to their ancestor in
/// `block`). Shape queries (`tensor.dim`) are not data dependences.
OpSet forwardSlice(ArrayRef<Value> roots, Block *block);

/// Ops of `block` that `v` depends on, including values captured by nested
/// regions (linalg bodies).
OpSet backwardSlice(Value v, Block *block);

/// The ops of `s` sorted in program order (all in one block).
SmallVector<Operation *> inProgramOrder(const OpSet &s);

/// Whether `v` is a constant, an empty tensor, or a fill/reshape of one.
bool isConstantLike(Value v);

/// A float tensor `[..., D]` with a static feature dim D; the leading (token)
/// dims may be dynamic.
bool isFeatureTensor(Type t);

/// Leading-index positions to sample (first, middle, last token) of a tensor
/// whose last dimension is the feature dimension.
SmallVector<SmallVector<int64_t>> sampleRows(RankedTensorType t);

/// Whether `op` writes memory or has unknown effects. Reads (e.g.
/// ml_program.global_load of parameters) are fine. Calls are judged by their
/// callee's body; a callee without a body (an opaque submodule of a
/// frontend) is taken as a function of its operands when it returns values,
/// and as a side effect when it returns nothing (it could do nothing else).
bool hasSideEffects(Operation *op, Operation *symbolTable, int depth = 0);

/// Looks through reshapes and casts that only add or remove unit dims.
Value lookThroughReshape(Value v);

/// Matches `a + b` of two tensors of the result's type, in any spelling
/// (linalg.generic / linalg.add / tosa.add / arith.addf on tensors).
bool matchTensorAdd(Operation *op, Value &a, Value &b);

} // namespace detection
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_ANALYSIS_DETECTIONSUPPORT_H
