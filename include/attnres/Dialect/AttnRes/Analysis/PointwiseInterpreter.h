//===- PointwiseInterpreter.h - demand-driven tensor interpreter -*- C++
//-*-===//
//
// Part of the attnres project.
//
// A small interpreter that evaluates one element of a tensor value at a time,
// on demand and memoised, in double precision. It understands the bodies and
// indexing maps of every linalg structured op, the tensor shape ops, the TOSA
// elementwise/reduction/matmul/shape ops, arith and math on scalars and
// tensors, and func.call into callees of the module. The detection passes
// (attnres-raise-aggregations, attnres-convert-residual-chains) use it to
// decide what a subgraph computes (semantics, not spelling): chosen values are
// bound to pseudo-random data, everything that does not depend on them is
// either interpreted (constants) or bound to random data too (parameters), and
// the result is compared with a reference.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_ANALYSIS_POINTWISEINTERPRETER_H
#define ATTNRES_DIALECT_ATTNRES_ANALYSIS_POINTWISEINTERPRETER_H

#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallVector.h"

#include <functional>
#include <string>

namespace mlir {
namespace attnres {

class PointwiseInterpreter {
public:
  /// The size assumed for every dynamic dimension (the token dimension of a
  /// model with a dynamic number of tokens). All dynamic dims of the
  /// analysed subgraph are taken to be this size, which is consistent for
  /// shapes that differ only in one symbolic token count.
  static constexpr int64_t kDynamicSize = 5;

  explicit PointwiseInterpreter(Operation *symbolTableOp,
                                int64_t budget = 20'000'000)
      : symbolTableOp(symbolTableOp), budget(budget) {}

  /// Binds `v` to pseudo-random data in [-1, 1) scaled by `scale`, drawn
  /// from `seed`. A bound value is never interpreted through its producer.
  void bind(Value v, uint64_t seed, double scale = 1.0) {
    bindings[v] = {seed, scale};
  }

  /// Ops that depend on the bound values: they must be interpreted; any other
  /// op the interpreter does not understand is treated as a parameter and
  /// bound to random data.
  void setDependentOps(llvm::DenseSet<Operation *> ops) {
    dependent = std::move(ops);
  }

  /// Element `idx` of `v` (a ranked tensor, dynamic dims of size
  /// kDynamicSize, or a scalar with an empty `idx`). Fails when an op that
  /// must be interpreted is not understood, a shape is unranked, or the
  /// budget is exhausted; `getError` says why.
  FailureOr<double> eval(Value v, ArrayRef<int64_t> idx) {
    return eval(0, v, idx);
  }

  const std::string &getError() const { return error; }
  void clearMemo() { memo.clear(); }

private:
  struct Ctx {
    unsigned parent;
    Operation *call; // func.call whose callee body this context evaluates
  };

  FailureOr<double> eval(unsigned ctx, Value v, ArrayRef<int64_t> idx);
  FailureOr<double> evalOp(unsigned ctx, Operation *op, unsigned resultNo,
                           ArrayRef<int64_t> idx);
  FailureOr<double> evalLinalg(unsigned ctx, Operation *op, unsigned resultNo,
                               ArrayRef<int64_t> idx);
  FailureOr<double> evalTosa(unsigned ctx, Operation *op,
                             ArrayRef<int64_t> idx);
  FailureOr<double> evalElementwise(unsigned ctx, Operation *op,
                                    ArrayRef<int64_t> idx);
  FailureOr<double> evalBroadcast(unsigned ctx, Value operand,
                                  ArrayRef<int64_t> resultIdx);
  LogicalResult evalMixed(unsigned ctx, ArrayRef<OpFoldResult> values,
                          SmallVectorImpl<int64_t> &out);
  FailureOr<double> fail(Operation *op, const llvm::Twine &why);
  double randomLeaf(uint64_t seed, int64_t linear, double scale) const;
  uint64_t leafSeed(Value v) const;

  Operation *symbolTableOp;
  int64_t budget;
  int64_t steps = 0;
  std::string error;
  llvm::DenseMap<Value, std::pair<uint64_t, double>> bindings;
  llvm::DenseSet<Operation *> dependent;
  SmallVector<Ctx> contexts{{0, nullptr}};
  llvm::DenseMap<std::pair<unsigned, Operation *>, unsigned> callContexts;
  llvm::DenseMap<std::pair<std::pair<unsigned, void *>, int64_t>, double> memo;
};

/// Applies the scalar semantics of an arith/math op (or linalg.index handled
/// by the caller). Fails for ops it does not know.
FailureOr<double> applyScalarOp(Operation *op, ArrayRef<double> operands);

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_ANALYSIS_POINTWISEINTERPRETER_H
