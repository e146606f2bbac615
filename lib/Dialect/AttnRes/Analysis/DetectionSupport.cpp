//===- DetectionSupport.cpp - helpers shared by the detection passes ------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Analysis/DetectionSupport.h"
#include "attnres/Dialect/AttnRes/Analysis/PointwiseInterpreter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;
namespace mlir {
namespace attnres {
namespace detection {

/// Ops of `block` that depend on any of `roots` (transitively, through
/// operands; ops nested in regions are attributed to their ancestor in
/// `block`). Shape queries (`tensor.dim`) are not data dependences.
OpSet forwardSlice(ArrayRef<Value> roots, Block *block) {
  OpSet result;
  SmallVector<Value> work(roots.begin(), roots.end());
  while (!work.empty()) {
    Value v = work.pop_back_val();
    for (Operation *user : v.getUsers()) {
      Operation *anc = block->findAncestorOpInBlock(*user);
      // tensor.dim reads shape metadata, not data: not a dependence.
      if (!anc || anc->hasTrait<OpTrait::IsTerminator>() ||
          isa<tensor::DimOp>(anc))
        continue;
      if (result.insert(anc))
        llvm::append_range(work, anc->getResults());
    }
  }
  return result;
}

/// Ops of `block` that `v` depends on.
OpSet backwardSlice(Value v, Block *block) {
  OpSet result;
  SmallVector<Value> work{v};
  while (!work.empty()) {
    Value x = work.pop_back_val();
    Operation *def = x.getDefiningOp();
    // tensor.dim (the size of a dynamic token dim) is shape metadata.
    if (!def || def->getBlock() != block || isa<tensor::DimOp>(def) ||
        !result.insert(def))
      continue;
    llvm::append_range(work, def->getOperands());
    // Values captured by nested regions (linalg bodies).
    def->walk([&](Operation *nested) {
      if (nested == def)
        return;
      for (Value o : nested->getOperands())
        if (o.getParentBlock() == block)
          work.push_back(o);
    });
  }
  return result;
}

SmallVector<Operation *> inProgramOrder(const OpSet &s) {
  SmallVector<Operation *> ops(s.begin(), s.end());
  llvm::sort(ops,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return ops;
}

bool isConstantLike(Value v) {
  Operation *def = v.getDefiningOp();
  if (!def)
    return false;
  if (def->hasTrait<OpTrait::ConstantLike>() || isa<tensor::EmptyOp>(def))
    return true;
  if (auto fill = dyn_cast<linalg::FillOp>(def))
    return isConstantLike(fill.getInputs()[0]);
  if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp, tosa::ReshapeOp,
          tensor::CastOp>(def))
    return isConstantLike(def->getOperand(0));
  return false;
}

/// Leading-index positions to sample (first, middle, last token) of a tensor
/// whose last dimension is the feature dimension.
SmallVector<SmallVector<int64_t>> sampleRows(RankedTensorType t) {
  SmallVector<int64_t> shape;
  for (int64_t s : t.getShape().drop_back())
    shape.push_back(
        ShapedType::isDynamic(s) ? PointwiseInterpreter::kDynamicSize : s);
  int64_t rows = 1;
  for (int64_t s : shape)
    rows *= s;
  SmallVector<int64_t> picks{0};
  if (rows > 2)
    picks.push_back(rows / 2);
  if (rows > 1)
    picks.push_back(rows - 1);
  SmallVector<SmallVector<int64_t>> out;
  for (int64_t lin : picks) {
    SmallVector<int64_t> idx(shape.size());
    for (int64_t k = static_cast<int64_t>(shape.size()) - 1; k >= 0; --k) {
      idx[k] = lin % shape[k];
      lin /= shape[k];
    }
    out.push_back(idx);
  }
  return out;
}

/// A float tensor `[..., D]` with a feature dim D; the leading (token)
/// dims may be dynamic.
bool isFeatureTensor(Type t) {
  auto rt = dyn_cast<RankedTensorType>(t);
  return rt && rt.getRank() >= 1 &&
         !ShapedType::isDynamic(rt.getShape().back()) &&
         isa<Float32Type, Float16Type, BFloat16Type>(rt.getElementType());
}

/// Whether `op` writes memory or has unknown effects. Reads (e.g.
/// ml_program.global_load of parameters) are fine. Calls are judged by their
/// callee's body; a callee without a body (an opaque submodule of a
/// frontend) is taken as a function of its operands when it returns values,
/// and as a side effect when it returns nothing (it could do nothing else).
bool hasSideEffects(Operation *op, Operation *symbolTable, int depth) {
  if (auto call = dyn_cast<func::CallOp>(op)) {
    auto callee = dyn_cast_or_null<func::FuncOp>(
        SymbolTable::lookupSymbolIn(symbolTable, call.getCalleeAttr()));
    if (!callee || depth > 8)
      return true;
    if (callee.isExternal())
      return callee.getNumResults() == 0;
    WalkResult r = callee.getBody().walk([&](Operation *nested) {
      if (nested->hasTrait<OpTrait::IsTerminator>())
        return WalkResult::advance();
      if (hasSideEffects(nested, symbolTable, depth + 1))
        return WalkResult::interrupt();
      return WalkResult::skip();
    });
    return r.wasInterrupted();
  }
  if (auto iface = dyn_cast<MemoryEffectOpInterface>(op)) {
    if (iface.hasEffect<MemoryEffects::Write>() ||
        iface.hasEffect<MemoryEffects::Free>() ||
        iface.hasEffect<MemoryEffects::Allocate>())
      return true;
    if (!op->hasTrait<OpTrait::HasRecursiveMemoryEffects>())
      return false;
  } else if (!op->hasTrait<OpTrait::HasRecursiveMemoryEffects>()) {
    return true;
  }
  for (Region &r : op->getRegions())
    for (Operation &nested : r.getOps())
      if (!nested.hasTrait<OpTrait::IsTerminator>() &&
          hasSideEffects(&nested, symbolTable, depth + 1))
        return true;
  return false;
}

/// Matches `a + b` of two tensors of the result's type, in any spelling.
bool matchTensorAdd(Operation *op, Value &a, Value &b) {
  if (op->getNumResults() != 1 || !isFeatureTensor(op->getResult(0).getType()))
    return false;
  Type t = op->getResult(0).getType();
  if (isa<arith::AddFOp, tosa::AddOp>(op)) {
    if (op->getOperand(0).getType() != t || op->getOperand(1).getType() != t)
      return false;
    a = op->getOperand(0);
    b = op->getOperand(1);
    return true;
  }
  auto lop = dyn_cast<linalg::LinalgOp>(op);
  if (!lop || !lop.hasPureTensorSemantics() || !lop.isAllParallelLoops() ||
      lop.getNumDpsInits() != 1)
    return false;
  for (AffineMap m : lop.getIndexingMapsArray())
    if (!m.isIdentity())
      return false;
  Block *body = lop.getBlock();
  auto yield = body->getTerminator();
  auto add = yield->getOperand(0).getDefiningOp<arith::AddFOp>();
  if (!add || add->getBlock() != body || &body->front() != add.getOperation())
    return false;
  auto x = dyn_cast<BlockArgument>(add.getLhs());
  auto y = dyn_cast<BlockArgument>(add.getRhs());
  if (!x || !y || x == y || x.getOwner() != body || y.getOwner() != body)
    return false;
  a = op->getOperand(x.getArgNumber());
  b = op->getOperand(y.getArgNumber());
  return a.getType() == t && b.getType() == t;
}

/// Looks through reshapes that only add or remove unit dims.
Value lookThroughReshape(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (!isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp, tosa::ReshapeOp,
             tensor::CastOp>(def))
      break;
    v = def->getOperand(0);
  }
  return v;
}

} // namespace detection
} // namespace attnres
} // namespace mlir
