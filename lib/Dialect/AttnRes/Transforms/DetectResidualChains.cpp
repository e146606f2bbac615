//===- DetectResidualChains.cpp - raise AttnRes, convert PreNorm chains ---===//
//
// Part of the attnres project.
//
// Two jobs, both decided by semantics rather than by spelling (see
// docs/detection.md):
//
//  1. Raising. Every "stack" of tensors (tensor.concat, tosa.concat or a chain
//     of tensor.insert_slice into an empty tensor) is a candidate set of
//     depth sources. A value of the sources' type computed from the stack and
//     from at most two feature vectors (plus constants) is an AttnRes
//     aggregation when the PointwiseInterpreter, fed with random sources and
//     vectors, reproduces the reference formula of spec section 2. It is
//     replaced by attnres.aggregate.
//
//  2. Conversion. Residual adds (linalg.generic / linalg.add / tosa.add /
//     arith.addf of two tensors of one type, either operand order) where one
//     operand depends on the other are linked into chains h_{l+1} = h_l + y_l.
//     A chain is converted to Full AttnRes only when each sublayer reads its
//     input through a scale-invariant norm (checked numerically: the norm's
//     output is unchanged when its input is scaled) that is the only path from
//     the input to the sublayer's output, and the chain's final value feeds a
//     scale-invariant norm too. Otherwise it is left untouched and, with
//     `report`, a remark says why.
//
//===----------------------------------------------------------------------===//

#include "PointwiseInterpreter.h"

#include "attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"
#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringExtras.h"

#include <cmath>

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_DETECTRESIDUALCHAINS
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

namespace {

//===----------------------------------------------------------------------===//
// Slices within one block
//===----------------------------------------------------------------------===//

using OpSet = llvm::SetVector<Operation *>;

/// Ops of `block` that depend on any of `roots` (transitively, through
/// operands; ops nested in regions are attributed to their ancestor in
/// `block`). Shape queries (`tensor.dim`) are not data dependences.
static OpSet forwardSlice(ArrayRef<Value> roots, Block *block) {
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
static OpSet backwardSlice(Value v, Block *block) {
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

static SmallVector<Operation *> inProgramOrder(const OpSet &s) {
  SmallVector<Operation *> ops(s.begin(), s.end());
  llvm::sort(ops,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return ops;
}

static bool isConstantLike(Value v) {
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
static SmallVector<SmallVector<int64_t>> sampleRows(RankedTensorType t) {
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

/// A float tensor `[..., D]` with a static feature dim D; the leading (token)
/// dims may be dynamic.
static bool isFeatureTensor(Type t) {
  auto rt = dyn_cast<RankedTensorType>(t);
  return rt && rt.getRank() >= 1 &&
         !ShapedType::isDynamic(rt.getShape().back()) &&
         isa<Float32Type, Float16Type, BFloat16Type>(rt.getElementType());
}

//===----------------------------------------------------------------------===//
// Side effects
//===----------------------------------------------------------------------===//

/// Whether `op` writes memory or has unknown effects. Reads (e.g.
/// ml_program.global_load of parameters) are fine. Calls are judged by their
/// callee's body; a callee without a body (an opaque submodule of a
/// frontend) is taken as a function of its operands when it returns values,
/// and as a side effect when it returns nothing (it could do nothing else).
static bool hasSideEffects(Operation *op, Operation *symbolTable,
                           int depth = 0) {
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

//===----------------------------------------------------------------------===//
// Elementwise tensor additions
//===----------------------------------------------------------------------===//

/// Matches `a + b` of two tensors of the result's type, in any spelling.
static bool matchTensorAdd(Operation *op, Value &a, Value &b) {
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

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct ResidualAdd {
  Operation *op;
  Value x; // the stream h_l
  Value y; // the sublayer output f_l(h_l)
};

struct NormUse {
  SmallVector<OpOperand *> uses; // uses of the stream value to redirect
  std::string what;
};

struct DetectResidualChainsPass
    : public attnres::impl::DetectResidualChainsBase<DetectResidualChainsPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  // Raising.
  bool stackSources(Operation *op, SmallVectorImpl<Value> &sources);
  bool tryRaise(Operation *stack, func::FuncOp fn,
                llvm::DenseSet<Operation *> &erased);

  // Conversion.
  void convertFunction(func::FuncOp fn);
  bool isScaleInvariant(Value h, Value v, const OpSet &deps, Block *block);
  bool findNorm(Value h, Block *block, const OpSet &region, bool mustCoverAll,
                NormUse &out, int depth);
  Value loadParam(OpBuilder &b, Location loc, StringRef base, StringRef fn,
                  StringRef suffix, RankedTensorType vecType, double init);

  // Opaque callees.
  func::FuncOp lookupCallee(func::CallOp call);
  bool isVouched(func::FuncOp callee);
  func::CallOp opaqueDirectConsumer(Value h, const OpSet &region);

  ModuleOp module;
  Operation *lastGlobal = nullptr;
  int64_t budget = 20'000'000;
};

//===----------------------------------------------------------------------===//
// Raising
//===----------------------------------------------------------------------===//

/// Looks through reshapes that only add or remove unit dims.
static Value lookThroughReshape(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (!isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp, tosa::ReshapeOp,
             tensor::CastOp>(def))
      break;
    v = def->getOperand(0);
  }
  return v;
}

bool DetectResidualChainsPass::stackSources(Operation *op,
                                            SmallVectorImpl<Value> &sources) {
  Type stackType = op->getResult(0).getType();
  if (!isFeatureTensor(stackType))
    return false;
  if (isa<tensor::ConcatOp, tosa::ConcatOp>(op)) {
    for (Value in : op->getOperands())
      sources.push_back(lookThroughReshape(in));
  } else if (auto ins = dyn_cast<tensor::InsertSliceOp>(op)) {
    // The top of a chain of insert_slice ops into a fresh tensor.
    for (Operation *user : ins->getUsers())
      if (auto next = dyn_cast<tensor::InsertSliceOp>(user))
        if (next.getDest() == ins.getResult())
          return false;
    Value cur = ins.getResult();
    while (auto i = cur.getDefiningOp<tensor::InsertSliceOp>()) {
      sources.push_back(lookThroughReshape(i.getSource()));
      cur = i.getDest();
    }
    if (!isConstantLike(cur))
      return false;
    std::reverse(sources.begin(), sources.end());
  } else {
    return false;
  }
  if (sources.size() < 2)
    return false;
  Type t = sources.front().getType();
  if (!isFeatureTensor(t))
    return false;
  for (Value s : sources)
    if (s.getType() != t)
      return false;
  auto st = cast<RankedTensorType>(t);
  auto stack = cast<RankedTensorType>(stackType);
  if (st.hasStaticShape() && stack.hasStaticShape())
    return st.getNumElements() * static_cast<int64_t>(sources.size()) ==
           stack.getNumElements();
  // Dynamic token dims: the layouts [n, <source shape>] (insert_slice into
  // a new leading dim) and [n * s0, s1, ...] (concat along a static dim 0).
  auto n = static_cast<int64_t>(sources.size());
  if (stack.getRank() == st.getRank() + 1)
    return stack.getShape().front() == n &&
           stack.getShape().drop_front() == st.getShape();
  return stack.getRank() == st.getRank() &&
         !ShapedType::isDynamic(st.getShape().front()) &&
         stack.getShape().front() == n * st.getShape().front() &&
         stack.getShape().drop_front() == st.getShape().drop_front();
}

/// Reference AttnRes aggregation for one token (spec section 2).
static void referenceAggregate(ArrayRef<SmallVector<double>> v,
                               ArrayRef<double> q, ArrayRef<double> g,
                               double eps, SmallVectorImpl<double> &h) {
  size_t n = v.size(), d = q.size();
  SmallVector<double> z(n);
  for (size_t i = 0; i < n; ++i) {
    double ss = 0, dot = 0;
    for (size_t k = 0; k < d; ++k) {
      ss += v[i][k] * v[i][k];
      dot += q[k] * g[k] * v[i][k];
    }
    z[i] = dot / std::sqrt(ss / d + eps);
  }
  double m = *std::max_element(z.begin(), z.end()), s = 0;
  for (double &x : z) {
    x = std::exp(x - m);
    s += x;
  }
  h.assign(d, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < d; ++k)
      h[k] += z[i] / s * v[i][k];
}

bool DetectResidualChainsPass::tryRaise(Operation *stack, func::FuncOp fn,
                                        llvm::DenseSet<Operation *> &erased) {
  SmallVector<Value> sources;
  if (!stackSources(stack, sources))
    return false;
  Block *block = stack->getBlock();
  auto srcType = cast<RankedTensorType>(sources.front().getType());
  int64_t dim = srcType.getShape().back();
  OpSet dep = forwardSlice(sources, block);
  // Ops that compute the sources are not part of the aggregation.
  llvm::DenseSet<Operation *> ancestors;
  for (Value src : sources)
    for (Operation *o : backwardSlice(src, block))
      ancestors.insert(o);
  llvm::SmallPtrSet<Value, 8> sourceSet(sources.begin(), sources.end());

  int tried = 0;
  for (Operation *cand : inProgramOrder(dep)) {
    if (!cand->isBeforeInBlock(stack) && cand != stack &&
        cand->getNumResults() == 1 && cand->getResult(0).getType() == srcType) {
      if (++tried > 64)
        return false;
      Value h = cand->getResult(0);
      OpSet bwd = backwardSlice(h, block);
      // The aggregation must read the stack.
      if (!bwd.contains(stack))
        continue;
      OpSet g;
      for (Operation *o : bwd)
        if (dep.contains(o) && !ancestors.contains(o))
          g.insert(o);
      // Leaves: sources, up to two feature vectors, constants.
      SmallVector<Value> vectors;
      bool ok = true;
      auto visitLeaf = [&](Value o) {
        if (sourceSet.contains(o))
          return;
        if (Operation *d = o.getDefiningOp())
          if (g.contains(d))
            return;
        auto rt = dyn_cast<RankedTensorType>(o.getType());
        if (rt && rt.hasStaticShape() && rt.getNumElements() == dim &&
            rt.getShape().back() == dim &&
            rt.getElementType() == srcType.getElementType()) {
          if (!llvm::is_contained(vectors, o))
            vectors.push_back(o);
          return;
        }
        if (!isConstantLike(o) &&
            !isa<FloatType, IndexType, IntegerType>(o.getType()))
          ok = false;
        else if (isa<FloatType>(o.getType()) && !isConstantLike(o))
          ok = false;
      };
      for (Operation *o : g) {
        for (Value operand : o->getOperands())
          visitLeaf(operand);
        o->walk([&](Operation *nested) {
          if (nested != o)
            for (Value operand : nested->getOperands())
              if (operand.getParentBlock() == block)
                visitLeaf(operand);
        });
        if (hasSideEffects(o, module))
          ok = false;
      }
      if (!ok || vectors.empty() || vectors.size() > 2)
        continue;
      // The query is the vector first used last (the dot product comes after
      // the norm's gain); with two vectors the roles are interchangeable.
      if (vectors.size() == 2) {
        auto firstUse = [&](Value v) -> Operation * {
          Operation *best = nullptr;
          for (Operation *u : v.getUsers()) {
            Operation *a = block->findAncestorOpInBlock(*u);
            if (a && g.contains(a) && (!best || a->isBeforeInBlock(best)))
              best = a;
          }
          return best;
        };
        Operation *f0 = firstUse(vectors[0]), *f1 = firstUse(vectors[1]);
        if (f0 && f1 && f0->isBeforeInBlock(f1))
          std::swap(vectors[0], vectors[1]);
      }
      // Epsilon candidates: small positive constants of the subgraph.
      SmallVector<double> epsCands{0.0};
      auto addEps = [&](Attribute a) {
        double x;
        if (auto f = dyn_cast<FloatAttr>(a))
          x = f.getValueAsDouble();
        else if (auto d = dyn_cast<DenseFPElementsAttr>(a); d && d.isSplat())
          x = d.getSplatValue<APFloat>().convertToDouble();
        else
          return;
        if (x > 0 && x <= 1e-2)
          epsCands.push_back(x);
      };
      for (Operation *o : g) {
        o->walk([&](Operation *nested) {
          if (auto c = dyn_cast<arith::ConstantOp>(nested))
            addEps(c.getValue());
          for (Value operand : nested->getOperands())
            if (auto c = operand.getDefiningOp<arith::ConstantOp>())
              addEps(c.getValue());
            else if (auto tc = operand.getDefiningOp<tosa::ConstOp>())
              if (auto d = dyn_cast<DenseFPElementsAttr>(tc.getValues());
                  d && d.isSplat())
                addEps(FloatAttr::get(
                    Float64Type::get(&getContext()),
                    d.getSplatValue<APFloat>().convertToDouble()));
        });
      }

      // Numeric check against the reference.
      PointwiseInterpreter interp(module, budget);
      for (auto [i, s] : llvm::enumerate(sources))
        interp.bind(s, 1000 + i);
      for (auto [i, v] : llvm::enumerate(vectors))
        if (!isConstantLike(v))
          interp.bind(v, 2000 + i);
      llvm::DenseSet<Operation *> depOps(g.begin(), g.end());
      interp.setDependentOps(std::move(depOps));
      auto vecAt = [&](Value v, int64_t k) -> FailureOr<double> {
        auto rt = cast<RankedTensorType>(v.getType());
        SmallVector<int64_t> idx(rt.getRank(), 0);
        idx.back() = k;
        return interp.eval(v, idx);
      };
      SmallVector<double> q(dim), gain(dim, 1.0);
      bool evalOk = true;
      for (int64_t k = 0; k < dim && evalOk; ++k) {
        FailureOr<double> x = vecAt(vectors[0], k);
        evalOk &= succeeded(x);
        if (evalOk)
          q[k] = *x;
        if (evalOk && vectors.size() == 2) {
          FailureOr<double> y = vecAt(vectors[1], k);
          evalOk &= succeeded(y);
          if (evalOk)
            gain[k] = *y;
        }
      }
      if (!evalOk)
        continue;
      // out[k] = v at (row..., k); false at the first value the interpreter
      // cannot evaluate.
      auto rowAt = [&](Value v, ArrayRef<int64_t> row,
                       SmallVector<double> &out) {
        for (int64_t k = 0; k < dim; ++k) {
          SmallVector<int64_t> idx(row);
          idx.push_back(k);
          FailureOr<double> x = interp.eval(v, idx);
          if (failed(x))
            return false;
          out[k] = *x;
        }
        return true;
      };
      SmallVector<double> errs(epsCands.size(), 0.0);
      for (const SmallVector<int64_t> &row : sampleRows(srcType)) {
        SmallVector<SmallVector<double>> vals;
        SmallVector<double> got(dim);
        for (Value s : sources) {
          SmallVector<double> vv(dim);
          evalOk = evalOk && rowAt(s, row, vv);
          vals.push_back(vv);
        }
        evalOk = evalOk && rowAt(h, row, got);
        if (!evalOk)
          break;
        for (auto [e, eps] : llvm::enumerate(epsCands)) {
          SmallVector<double> ref;
          referenceAggregate(vals, q, gain, eps, ref);
          for (int64_t k = 0; k < dim; ++k)
            errs[e] = std::max(errs[e], std::fabs(ref[k] - got[k]) /
                                            (std::fabs(ref[k]) + 1e-3));
        }
      }
      if (!evalOk)
        continue;
      size_t best = std::min_element(errs.begin(), errs.end()) - errs.begin();
      if (!(errs[best] < 1e-4))
        continue;

      // Rewrite.
      OpBuilder b(cand);
      Location loc = cand->getLoc();
      auto vecType = RankedTensorType::get({dim}, srcType.getElementType());
      auto asVector = [&](Value v) -> Value {
        auto rt = cast<RankedTensorType>(v.getType());
        if (rt == vecType)
          return v;
        SmallVector<ReassociationIndices> reassoc(1);
        for (int64_t i = 0; i < rt.getRank(); ++i)
          reassoc[0].push_back(i);
        return tensor::CollapseShapeOp::create(b, loc, vecType, v, reassoc);
      };
      Value query = asVector(vectors[0]);
      Value gainV;
      if (vectors.size() == 2) {
        gainV = asVector(vectors[1]);
      } else {
        auto one = DenseElementsAttr::get(
            vecType, b.getFloatAttr(srcType.getElementType(), 1.0));
        gainV = arith::ConstantOp::create(b, loc, vecType, one);
      }
      auto agg = AggregateOp::create(b, loc, query, gainV, sources,
                                     static_cast<float>(epsCands[best]));
      h.replaceAllUsesWith(agg.getResult());
      SmallVector<Operation *> ordered = inProgramOrder(g);
      for (Operation *o : llvm::reverse(ordered))
        if (o->use_empty() && isMemoryEffectFree(o)) {
          erased.insert(o);
          o->erase();
        }
      if (report)
        emitRemark(agg.getLoc())
            << "raised an AttnRes aggregation over " << sources.size()
            << " sources to attnres.aggregate (epsilon " << epsCands[best]
            << ")";
      return true;
    }
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Conversion
//===----------------------------------------------------------------------===//

func::FuncOp DetectResidualChainsPass::lookupCallee(func::CallOp call) {
  return dyn_cast_or_null<func::FuncOp>(
      SymbolTable::lookupSymbolIn(module, call.getCalleeAttr()));
}

/// Whether the user vouches that `callee` is scale-invariant in the residual
/// stream it receives: the unit attribute `attnres.scale_invariant` on the
/// function, or its name in `scale-invariant-callees`.
bool DetectResidualChainsPass::isVouched(func::FuncOp callee) {
  return callee &&
         (callee->hasAttr("attnres.scale_invariant") ||
          llvm::is_contained(scaleInvariantCallees, callee.getSymName().str()));
}

/// A call in `region` to a callee without a body, not vouched for, that takes
/// the stream `h` itself (up to unit reshapes) as an operand.
func::CallOp
DetectResidualChainsPass::opaqueDirectConsumer(Value h, const OpSet &region) {
  for (Operation *o : inProgramOrder(region)) {
    auto call = dyn_cast<func::CallOp>(o);
    if (!call)
      continue;
    func::FuncOp callee = lookupCallee(call);
    if (!callee || !callee.isExternal() || isVouched(callee))
      continue;
    if (llvm::any_of(call.getOperands(),
                     [&](Value x) { return lookThroughReshape(x) == h; }))
      return call;
  }
  return nullptr;
}

/// Whether `v` (computed from `h` through the ops `deps`) keeps its value when
/// `h` is scaled: v(2.5 h) == v(h) on random data, to 1e-3 relative.
bool DetectResidualChainsPass::isScaleInvariant(Value h, Value v,
                                                const OpSet &deps,
                                                Block *block) {
  auto vt = dyn_cast<RankedTensorType>(v.getType());
  if (!vt || !isFeatureTensor(vt))
    return false;
  SmallVector<double> base;
  for (double scale : {1.0, 2.5, 0.3}) {
    PointwiseInterpreter interp(module, budget);
    interp.bind(h, 77, scale);
    interp.setDependentOps(
        llvm::DenseSet<Operation *>(deps.begin(), deps.end()));
    SmallVector<double> vals;
    for (const SmallVector<int64_t> &row : sampleRows(vt))
      for (int64_t k = 0; k < vt.getShape().back(); ++k) {
        SmallVector<int64_t> idx(row);
        idx.push_back(k);
        FailureOr<double> x = interp.eval(v, idx);
        if (failed(x))
          return false;
        vals.push_back(*x);
      }
    if (base.empty()) {
      base = vals;
      double mx = 0;
      for (double x : base)
        mx = std::max(mx, std::fabs(x));
      if (!(mx > 1e-9) || !std::isfinite(mx))
        return false;
      continue;
    }
    double mx = 0, err = 0;
    for (auto [a, c] : llvm::zip_equal(base, vals)) {
      mx = std::max(mx, std::fabs(a));
      err = std::max(err, std::fabs(a - c));
    }
    if (!(err <= 1e-3 * mx))
      return false;
  }
  return true;
}

/// Finds the scale-invariant norm through which `h` enters the ops `region`
/// (in `block`): the first value v, in program order, such that the ops
/// between h and v read nothing else of h's world, have no other users than
/// each other, and v(c h) == v(h). With `mustCoverAll`, every use of h in
/// `region` must go through v. A func.call taking h is looked into.
bool DetectResidualChainsPass::findNorm(Value h, Block *block,
                                        const OpSet &region, bool mustCoverAll,
                                        NormUse &out, int depth) {
  if (depth > 4)
    return false;
  SmallVector<OpOperand *> hUses;
  for (OpOperand &u : h.getUses()) {
    Operation *a = block->findAncestorOpInBlock(*u.getOwner());
    if (a && region.contains(a))
      hUses.push_back(&u);
  }
  if (hUses.empty())
    return false;
  int tested = 0;
  for (Operation *o : inProgramOrder(region)) {
    // A call taking h: the norm may be inside the callee.
    if (auto call = dyn_cast<func::CallOp>(o)) {
      SmallVector<OpOperand *> inCall;
      for (OpOperand *u : hUses)
        if (u->getOwner() == o)
          inCall.push_back(u);
      if (inCall.size() == 1 && (!mustCoverAll || hUses.size() == 1)) {
        func::FuncOp callee = lookupCallee(call);
        // Vouched for by the user (with or without a body).
        if (isVouched(callee)) {
          out.uses = inCall;
          out.what =
              "@" + callee.getSymName().str() + " (vouched scale-invariant)";
          return true;
        }
        if (callee && !callee.isExternal() && callee.getBody().hasOneBlock()) {
          Block *cb = &callee.front();
          Value arg = cb->getArgument(inCall[0]->getOperandNumber());
          OpSet inner = forwardSlice({arg}, cb);
          NormUse sub;
          if (findNorm(arg, cb, inner, /*mustCoverAll=*/true, sub, depth + 1)) {
            out.uses = inCall;
            out.what = "in @" + callee.getSymName().str() + ": " + sub.what;
            return true;
          }
        }
      }
    }
    if (o->getNumResults() != 1 || o->getResult(0).getType() != h.getType())
      continue;
    Value v = o->getResult(0);
    OpSet between;
    for (Operation *x : backwardSlice(v, block))
      if (region.contains(x))
        between.insert(x);
    if (!between.contains(o))
      continue;
    // Closed: the ops between h and v are used only among themselves.
    bool closed = true;
    for (Operation *x : between) {
      if (x == o)
        continue;
      for (Operation *user : x->getUsers()) {
        Operation *a = block->findAncestorOpInBlock(*user);
        if (!a || !between.contains(a))
          closed = false;
      }
    }
    if (!closed)
      continue;
    SmallVector<OpOperand *> covered;
    for (OpOperand *u : hUses)
      if (between.contains(block->findAncestorOpInBlock(*u->getOwner())))
        covered.push_back(u);
    if (covered.empty() || (mustCoverAll && covered.size() != hUses.size()))
      continue;
    if (++tested > 8)
      return false;
    if (!isScaleInvariant(h, v, between, block))
      continue;
    out.uses = covered;
    std::string s;
    llvm::raw_string_ostream os(s);
    os << "norm ending in '" << o->getName() << "'";
    out.what = s;
    return true;
  }
  return false;
}

Value DetectResidualChainsPass::loadParam(OpBuilder &b, Location loc,
                                          StringRef base, StringRef fn,
                                          StringRef suffix,
                                          RankedTensorType vecType,
                                          double init) {
  std::string name = (Twine("attnres_") + base + "_" + fn + "_" + suffix).str();
  SymbolTable table(module);
  std::string unique = name;
  for (int i = 1; table.lookup(unique); ++i)
    unique = name + "_" + std::to_string(i);
  OpBuilder mb(module.getContext());
  if (lastGlobal)
    mb.setInsertionPointAfter(lastGlobal);
  else
    mb.setInsertionPointToStart(module.getBody());
  auto value = DenseElementsAttr::get(
      vecType, mb.getFloatAttr(vecType.getElementType(), init));
  auto global = ml_program::GlobalOp::create(
      mb, loc, mb.getStringAttr(unique), TypeAttr::get(vecType),
      /*is_mutable=*/mb.getUnitAttr(), value, mb.getStringAttr("public"));
  lastGlobal = global;
  return ml_program::GlobalLoadOp::create(
      b, loc, vecType, FlatSymbolRefAttr::get(mb.getStringAttr(unique)));
}

void DetectResidualChainsPass::convertFunction(func::FuncOp fn) {
  if (!fn.getBody().hasOneBlock())
    return;
  Block *block = &fn.front();

  // 1. Residual adds: x + y with y depending on x.
  SmallVector<ResidualAdd> adds;
  llvm::DenseMap<Operation *, unsigned> addIndex;
  for (Operation &op : block->without_terminator()) {
    Value a, b;
    if (!matchTensorAdd(&op, a, b))
      continue;
    OpSet bwdA = backwardSlice(a, block), bwdB = backwardSlice(b, block);
    auto dependsOn = [&](const OpSet &bwd, Value x) {
      if (Operation *d = x.getDefiningOp())
        return bwd.contains(d);
      // A block argument: some op of the slice uses it.
      for (Operation *o : bwd)
        if (llvm::is_contained(o->getOperands(), x))
          return true;
      return false;
    };
    if (dependsOn(bwdB, a)) {
      addIndex[&op] = adds.size();
      adds.push_back({&op, a, b});
    } else if (dependsOn(bwdA, b)) {
      addIndex[&op] = adds.size();
      adds.push_back({&op, b, a});
    } else if (report) {
      emitRemark(op.getLoc())
          << "not a residual chain (length 0): plain sum of "
             "unrelated tensors, neither operand depends on the "
             "other";
    }
  }
  if (adds.empty())
    return;

  // 2. Link them: direct (x_{l+1} == h_{l+1}) or through a transformation.
  SmallVector<int> next(adds.size(), -1), prev(adds.size(), -1);
  SmallVector<bool> transformedLink(adds.size(), false);
  SmallVector<bool> branches(adds.size(), false);
  for (auto [i, ra] : llvm::enumerate(adds)) {
    Value hOut = ra.op->getResult(0);
    for (Operation *user : hOut.getUsers()) {
      auto it = addIndex.find(user);
      if (it == addIndex.end() || adds[it->second].x != hOut)
        continue;
      if (next[i] >= 0)
        branches[i] = true;
      else
        next[i] = it->second;
    }
    if (next[i] >= 0)
      continue;
    // No direct successor: the nearest residual add whose stream input is
    // computed from hOut without crossing another residual add.
    OpSet seen;
    SmallVector<Value> work{hOut};
    int best = -1;
    while (!work.empty()) {
      Value v = work.pop_back_val();
      for (OpOperand &u : v.getUses()) {
        Operation *a = block->findAncestorOpInBlock(*u.getOwner());
        if (!a || a->hasTrait<OpTrait::IsTerminator>())
          continue;
        auto it = addIndex.find(a);
        if (it != addIndex.end()) {
          if (adds[it->second].x == v && v != hOut &&
              (best < 0 || a->isBeforeInBlock(adds[best].op)))
            best = it->second;
          continue;
        }
        if (seen.insert(a))
          llvm::append_range(work, a->getResults());
      }
    }
    if (best >= 0 && prev[best] < 0) {
      next[i] = best;
      transformedLink[i] = true;
    }
  }
  for (auto [i, n] : llvm::enumerate(next))
    if (n >= 0)
      prev[n] = i;

  // 3. Walk each chain from its head.
  int chainNo = 0;
  for (unsigned head = 0; head < adds.size(); ++head) {
    if (prev[head] >= 0)
      continue;
    SmallVector<unsigned> chain;
    for (int c = head; c >= 0; c = next[c])
      chain.push_back(c);
    unsigned len = chain.size();
    Location anchor = adds[chain.front()].op->getLoc();
    auto refuse = [&](const Twine &why) {
      if (report)
        emitRemark(anchor) << "residual chain of " << len
                           << " sublayers not converted: " << why;
    };
    bool transformed = false, branching = false;
    unsigned transformedAt = 0;
    for (unsigned k = 0; k < len; ++k) {
      if (transformedLink[chain[k]] && !transformed) {
        transformed = true;
        transformedAt = k;
      }
      branching |= branches[chain[k]];
    }
    if (transformed) {
      // PostNorm if the link is a scale-invariant norm of the sum.
      const ResidualAdd &a = adds[chain[transformedAt]];
      const ResidualAdd &bn = adds[chain[transformedAt + 1]];
      Value hOut = a.op->getResult(0);
      OpSet between;
      OpSet fwd = forwardSlice({hOut}, block);
      for (Operation *x : backwardSlice(bn.x, block))
        if (fwd.contains(x))
          between.insert(x);
      if (isScaleInvariant(hOut, bn.x, between, block))
        refuse("PostNorm chain: the residual stream is normalised after each "
               "residual add (h_{l+1} = norm(h_l + f_l(h_l))), so the "
               "sublayers do not see a scale-invariant input and the "
               "conversion would change the function");
      else
        refuse("the residual stream is transformed between sublayers "
               "(not h_{l+1} = h_l + f_l(h_l))");
      continue;
    }
    if (branching) {
      refuse("the residual stream branches into two residual adds");
      continue;
    }
    if (len < 2) {
      refuse("a single residual add is not a chain (needs at least 2 "
             "sublayers)");
      continue;
    }

    // Each sublayer reads its input through a scale-invariant norm.
    SmallVector<NormUse> norms(len);
    bool ok = true;
    for (unsigned l = 0; l < len && ok; ++l) {
      const ResidualAdd &ra = adds[chain[l]];
      OpSet fwd = forwardSlice({ra.x}, block);
      OpSet region;
      for (Operation *x : backwardSlice(ra.y, block))
        if (fwd.contains(x))
          region.insert(x);
      for (Operation *x : region)
        if (hasSideEffects(x, module)) {
          std::string s;
          llvm::raw_string_ostream os(s);
          os << "chain broken by a side effect: sublayer " << l << " contains '"
             << x->getName() << "'";
          refuse(s);
          ok = false;
          break;
        }
      if (!ok)
        break;
      if (findNorm(ra.x, block, region, /*mustCoverAll=*/true, norms[l], 0))
        continue;
      if (func::CallOp call = opaqueDirectConsumer(ra.x, region)) {
        refuse("sublayer " + Twine(l) + ": opaque callee @" + call.getCallee() +
               " consumes the residual stream directly; scale invariance "
               "cannot be proven (mark its declaration "
               "'attnres.scale_invariant' or list it in "
               "scale-invariant-callees if it normalises its input)");
        ok = false;
      } else {
        refuse("sublayer " + Twine(l) +
               " does not read its input only through a scale-invariant "
               "norm (RMSNorm/LayerNorm), so the conversion would change "
               "the function");
        ok = false;
      }
    }
    if (!ok)
      continue;

    // A stream value observed by an op with side effects pins the chain.
    for (unsigned l = 0; l < len && ok; ++l) {
      Value h = adds[chain[l]].op->getResult(0);
      for (Operation *user : h.getUsers()) {
        Operation *a = block->findAncestorOpInBlock(*user);
        if (a && !a->hasTrait<OpTrait::IsTerminator>() &&
            hasSideEffects(a, module)) {
          std::string s;
          llvm::raw_string_ostream os(s);
          os << "chain broken by a side effect: h_" << (l + 1)
             << " is passed to '" << a->getName()
             << "', which has side effects";
          refuse(s);
          ok = false;
          break;
        }
      }
    }
    if (!ok)
      continue;

    // The final value feeds a scale-invariant norm.
    Value hL = adds[chain.back()].op->getResult(0);
    OpSet after = forwardSlice({hL}, block);
    NormUse finalNorm;
    bool finalOk = false;
    {
      // Ops up to the first side effect only.
      OpSet region;
      Operation *sideEffect = nullptr;
      for (Operation *x : inProgramOrder(after)) {
        if (hasSideEffects(x, module)) {
          sideEffect = x;
          break;
        }
        region.insert(x);
      }
      finalOk =
          !region.empty() &&
          findNorm(hL, block, region, /*mustCoverAll=*/false, finalNorm, 0);
      if (!finalOk) {
        std::string s;
        llvm::raw_string_ostream os(s);
        func::CallOp opaque = opaqueDirectConsumer(hL, region);
        if (opaque)
          os << "no scale-invariant consumer: opaque callee @"
             << opaque.getCallee()
             << " consumes the final value directly; scale invariance cannot "
                "be proven (mark its declaration 'attnres.scale_invariant' or "
                "list it in scale-invariant-callees if it normalises its "
                "input)";
        else if (sideEffect)
          os << "chain broken by a side effect: its value reaches '"
             << sideEffect->getName() << "' before any scale-invariant norm";
        else if (llvm::any_of(hL.getUsers(),
                              [](Operation *u) {
                                return u->hasTrait<OpTrait::IsTerminator>();
                              }) &&
                 after.empty())
          os << "no scale-invariant consumer: the final value is returned "
                "without a norm";
        else
          os << "no scale-invariant consumer: the final value does not feed "
                "a scale-invariant norm (RMSNorm/LayerNorm)";
        refuse(s);
        continue;
      }
    }

    if (!convertStandard) {
      if (report)
        emitRemark(anchor)
            << "residual chain of " << len
            << " sublayers found; not converted (convert-standard=false)";
      continue;
    }

    // 4. Rewrite.
    auto srcType = cast<RankedTensorType>(adds[chain[0]].x.getType());
    auto vecType = RankedTensorType::get({srcType.getShape().back()},
                                         srcType.getElementType());
    std::string fnName = fn.getSymName().str();
    std::string chainTag =
        chainNo == 0 ? "" : "c" + std::to_string(chainNo) + "_";
    ++chainNo;
    SmallVector<Value> sources{adds[chain[0]].x};
    std::string firstName, lastName;
    auto aggregateAfter = [&](Operation *after, StringRef suffix) -> Value {
      OpBuilder b(after->getContext());
      b.setInsertionPointAfter(after);
      Location loc = after->getLoc();
      Value q = loadParam(b, loc, "query", fnName, (chainTag + suffix).str(),
                          vecType, 0.0);
      Value g = loadParam(b, loc, "gain", fnName, (chainTag + suffix).str(),
                          vecType, 1.0);
      if (firstName.empty())
        firstName = "@attnres_query_" + fnName + "_" + chainTag + suffix.str();
      lastName = "@attnres_query_" + fnName + "_" + chainTag + suffix.str();
      return AggregateOp::create(b, loc, q, g, sources, kDefaultEpsilon)
          .getResult();
    };
    for (unsigned l = 0; l < len; ++l) {
      if (l > 0) {
        Value agg = aggregateAfter(adds[chain[l - 1]].op, std::to_string(l));
        for (OpOperand *u : norms[l].uses)
          u->set(agg);
      }
      sources.push_back(adds[chain[l]].y);
    }
    Value fin = aggregateAfter(adds[chain.back()].op, "final");
    for (OpOperand *u : finalNorm.uses)
      u->set(fin);
    // The adds stay for any other user (they now sum the new sublayer
    // outputs, which at zero initialisation equal the old ones).
    unsigned kept = 0;
    for (unsigned c : llvm::reverse(chain)) {
      if (adds[c].op->use_empty())
        adds[c].op->erase();
      else
        ++kept;
    }
    if (report)
      emitRemark(anchor) << "residual chain of " << len
                         << " sublayers converted to Full AttnRes: " << len
                         << " aggregations, zero-initialised queries "
                         << firstName << " .. " << lastName
                         << " and unit gains; " << kept
                         << " residual adds kept for other users";
  }
}

void DetectResidualChainsPass::runOnOperation() {
  module = getOperation();
  SmallVector<func::FuncOp> fns(module.getOps<func::FuncOp>());
  // 1. Raise aggregations written in primitives.
  for (func::FuncOp fn : fns) {
    SmallVector<Operation *> stacks;
    fn.walk([&](Operation *op) {
      if (isa<tensor::ConcatOp, tosa::ConcatOp, tensor::InsertSliceOp>(op))
        stacks.push_back(op);
    });
    llvm::DenseSet<Operation *> erased;
    for (Operation *s : stacks)
      if (!erased.contains(s))
        (void)tryRaise(s, fn, erased);
  }
  // 2. Convert standard PreNorm chains (or only report them).
  for (func::FuncOp fn : fns)
    convertFunction(fn);
}

} // namespace
