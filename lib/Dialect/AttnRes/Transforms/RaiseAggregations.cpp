//===- RaiseAggregations.cpp - raise AttnRes written in primitives --------===//
//
// Part of the attnres project.
//
// Every "stack" of tensors (tensor.concat, tosa.concat or a chain of
// tensor.insert_slice into an empty tensor) is a candidate set of depth
// sources. A value of the sources' type computed from the stack and from at
// most two feature vectors (plus constants) is an AttnRes aggregation when the
// PointwiseInterpreter, fed with random sources and vectors, reproduces the
// reference formula of spec section 2. It is replaced by attnres.aggregate.
// See docs/detection.md.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Analysis/DetectionSupport.h"
#include "attnres/Dialect/AttnRes/Analysis/PointwiseInterpreter.h"
#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <cmath>
#include <optional>

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_RAISEAGGREGATIONS
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::detection;

namespace {

/// A stack and what it stacks.
struct Stack {
  Operation *op;
  SmallVector<Value> sources;
  RankedTensorType srcType;
  int64_t dim; // the feature dimension D
};

/// A candidate aggregation: its result `h`, the ops `g` between the stack and
/// `h`, its feature vectors (query first, gain second if any) and the
/// epsilons to try.
struct Candidate {
  Value h;
  OpSet g;
  SmallVector<Value> vectors;
  SmallVector<double> epsCands;
};

struct RaiseAggregationsPass
    : public attnres::impl::RaiseAggregationsBase<RaiseAggregationsPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  bool tryRaise(Operation *stackOp, llvm::DenseSet<Operation *> &erased);
  bool collectLeaves(const Stack &s, Candidate &c);
  std::optional<size_t> bestEpsilon(const Stack &s, const Candidate &c);
  void rewrite(const Stack &s, const Candidate &c, double eps,
               llvm::DenseSet<Operation *> &erased);

  ModuleOp module;
  int64_t budget = 20'000'000;
};

//===----------------------------------------------------------------------===//
// Stacks
//===----------------------------------------------------------------------===//

/// The sources of an insert_slice chain into a fresh tensor, in order; `op`
/// must be the top of the chain.
static bool insertSliceSources(tensor::InsertSliceOp ins,
                               SmallVectorImpl<Value> &sources) {
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
  return true;
}

/// Whether `n` sources of type `st` fill the stack type exactly. Dynamic
/// token dims: the layouts [n, <source shape>] (insert_slice into a new
/// leading dim) and [n * s0, s1, ...] (concat along a static dim 0).
static bool stackLayoutMatches(RankedTensorType st, RankedTensorType stack,
                               int64_t n) {
  if (st.hasStaticShape() && stack.hasStaticShape())
    return st.getNumElements() * n == stack.getNumElements();
  if (stack.getRank() == st.getRank() + 1)
    return stack.getShape().front() == n &&
           stack.getShape().drop_front() == st.getShape();
  return stack.getRank() == st.getRank() &&
         !ShapedType::isDynamic(st.getShape().front()) &&
         stack.getShape().front() == n * st.getShape().front() &&
         stack.getShape().drop_front() == st.getShape().drop_front();
}

/// The depth sources stacked by `op`, if `op` is a stack of at least two
/// feature tensors of one type.
static std::optional<Stack> matchStack(Operation *op) {
  Type stackType = op->getResult(0).getType();
  if (!isFeatureTensor(stackType))
    return std::nullopt;
  Stack s{op, {}, nullptr, 0};
  if (isa<tensor::ConcatOp, tosa::ConcatOp>(op)) {
    for (Value in : op->getOperands())
      s.sources.push_back(lookThroughReshape(in));
  } else if (auto ins = dyn_cast<tensor::InsertSliceOp>(op)) {
    if (!insertSliceSources(ins, s.sources))
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  // One source is a stack too: Full AttnRes's first aggregation (over the
  // embedding alone) is a softmax over one logit, the source itself (spec
  // A.2); it is recognised like the others and then folds away.
  if (s.sources.empty())
    return std::nullopt;
  Type t = s.sources.front().getType();
  if (!isFeatureTensor(t) ||
      llvm::any_of(s.sources, [&](Value v) { return v.getType() != t; }))
    return std::nullopt;
  s.srcType = cast<RankedTensorType>(t);
  s.dim = s.srcType.getShape().back();
  if (!stackLayoutMatches(s.srcType, cast<RankedTensorType>(stackType),
                          static_cast<int64_t>(s.sources.size())))
    return std::nullopt;
  return s;
}

//===----------------------------------------------------------------------===//
// Candidates
//===----------------------------------------------------------------------===//

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

/// With two vectors, the query is the one first used last (the dot product
/// comes after the norm's gain); the roles are interchangeable numerically.
static void orderQueryFirst(SmallVectorImpl<Value> &vectors, const OpSet &g,
                            Block *block) {
  if (vectors.size() != 2)
    return;
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

/// Epsilon candidates: 0 and the small positive constants of `g`.
static SmallVector<double> epsilonCandidates(const OpSet &g, MLIRContext *ctx) {
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
            addEps(
                FloatAttr::get(Float64Type::get(ctx),
                               d.getSplatValue<APFloat>().convertToDouble()));
    });
  }
  return epsCands;
}

/// Classifies the values `c.g` reads from outside: sources, up to two feature
/// vectors (collected into `c.vectors`), constants. False on anything else or
/// on an op with side effects.
bool RaiseAggregationsPass::collectLeaves(const Stack &s, Candidate &c) {
  Block *block = s.op->getBlock();
  llvm::SmallPtrSet<Value, 8> sourceSet(s.sources.begin(), s.sources.end());
  bool ok = true;
  auto visitLeaf = [&](Value o) {
    if (sourceSet.contains(o))
      return;
    if (Operation *d = o.getDefiningOp())
      if (c.g.contains(d))
        return;
    auto rt = dyn_cast<RankedTensorType>(o.getType());
    if (rt && rt.hasStaticShape() && rt.getNumElements() == s.dim &&
        rt.getShape().back() == s.dim &&
        rt.getElementType() == s.srcType.getElementType()) {
      if (!llvm::is_contained(c.vectors, o))
        c.vectors.push_back(o);
      return;
    }
    if (!isConstantLike(o) &&
        !isa<FloatType, IndexType, IntegerType>(o.getType()))
      ok = false;
    else if (isa<FloatType>(o.getType()) && !isConstantLike(o))
      ok = false;
  };
  for (Operation *o : c.g) {
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
  return ok && !c.vectors.empty() && c.vectors.size() <= 2;
}

//===----------------------------------------------------------------------===//
// Numeric check
//===----------------------------------------------------------------------===//

/// Evaluates the query and gain vectors (gain 1 when there is one vector).
static bool evalVectors(PointwiseInterpreter &interp, const Candidate &c,
                        int64_t dim, SmallVectorImpl<double> &q,
                        SmallVectorImpl<double> &gain) {
  q.assign(dim, 0.0);
  gain.assign(dim, 1.0);
  for (auto [i, v] : llvm::enumerate(c.vectors)) {
    auto rt = cast<RankedTensorType>(v.getType());
    SmallVectorImpl<double> &out = i == 0 ? q : gain;
    for (int64_t k = 0; k < dim; ++k) {
      SmallVector<int64_t> idx(rt.getRank(), 0);
      idx.back() = k;
      FailureOr<double> x = interp.eval(v, idx);
      if (failed(x))
        return false;
      out[k] = *x;
    }
  }
  return true;
}

/// out[k] = v at (row..., k); false at the first value the interpreter cannot
/// evaluate.
static bool evalRow(PointwiseInterpreter &interp, Value v,
                    ArrayRef<int64_t> row, int64_t dim,
                    SmallVectorImpl<double> &out) {
  out.assign(dim, 0.0);
  for (int64_t k = 0; k < dim; ++k) {
    SmallVector<int64_t> idx(row);
    idx.push_back(k);
    FailureOr<double> x = interp.eval(v, idx);
    if (failed(x))
      return false;
    out[k] = *x;
  }
  return true;
}

/// The index of the epsilon candidate with which `c.h` reproduces the
/// reference aggregation (max relative error below 1e-4 on sampled tokens),
/// if any.
std::optional<size_t> RaiseAggregationsPass::bestEpsilon(const Stack &s,
                                                         const Candidate &c) {
  PointwiseInterpreter interp(module, budget);
  for (auto [i, src] : llvm::enumerate(s.sources))
    interp.bind(src, 1000 + i);
  for (auto [i, v] : llvm::enumerate(c.vectors))
    if (!isConstantLike(v))
      interp.bind(v, 2000 + i);
  interp.setDependentOps(llvm::DenseSet<Operation *>(c.g.begin(), c.g.end()));
  SmallVector<double> q, gain;
  if (!evalVectors(interp, c, s.dim, q, gain))
    return std::nullopt;
  SmallVector<double> errs(c.epsCands.size(), 0.0);
  for (const SmallVector<int64_t> &row : sampleRows(s.srcType)) {
    SmallVector<SmallVector<double>> vals(s.sources.size());
    SmallVector<double> got;
    for (auto [src, vv] : llvm::zip_equal(s.sources, vals))
      if (!evalRow(interp, src, row, s.dim, vv))
        return std::nullopt;
    if (!evalRow(interp, c.h, row, s.dim, got))
      return std::nullopt;
    for (auto [e, eps] : llvm::enumerate(c.epsCands)) {
      SmallVector<double> ref;
      referenceAggregate(vals, q, gain, eps, ref);
      for (int64_t k = 0; k < s.dim; ++k)
        errs[e] = std::max(errs[e], std::fabs(ref[k] - got[k]) /
                                        (std::fabs(ref[k]) + 1e-3));
    }
  }
  size_t best = std::min_element(errs.begin(), errs.end()) - errs.begin();
  if (!(errs[best] < 1e-4))
    return std::nullopt;
  return best;
}

//===----------------------------------------------------------------------===//
// Rewrite
//===----------------------------------------------------------------------===//

/// `v` collapsed to `tensor<D>` (a no-op when it already is).
static Value asVector(OpBuilder &b, Location loc, Value v,
                      RankedTensorType vecType) {
  auto rt = cast<RankedTensorType>(v.getType());
  if (rt == vecType)
    return v;
  SmallVector<ReassociationIndices> reassoc(1);
  for (int64_t i = 0; i < rt.getRank(); ++i)
    reassoc[0].push_back(i);
  return tensor::CollapseShapeOp::create(b, loc, vecType, v, reassoc);
}

/// Erases the ops of the raised graph that nothing uses any more, last first.
static void eraseDeadGraph(const Candidate &c,
                           llvm::DenseSet<Operation *> &erased) {
  SmallVector<Operation *> ordered = inProgramOrder(c.g);
  for (Operation *o : llvm::reverse(ordered))
    if (o->use_empty() && isMemoryEffectFree(o)) {
      erased.insert(o);
      o->erase();
    }
}

void RaiseAggregationsPass::rewrite(const Stack &s, const Candidate &c,
                                    double eps,
                                    llvm::DenseSet<Operation *> &erased) {
  Operation *cand = c.h.getDefiningOp();
  OpBuilder b(cand);
  Location loc = cand->getLoc();
  if (s.sources.size() == 1) {
    // The aggregation over one source is that source (spec A.4, fold A-F1):
    // it is raised and folded at once.
    Value h = c.h;
    h.replaceAllUsesWith(s.sources.front());
    eraseDeadGraph(c, erased);
    if (report)
      emitRemark(loc) << "raised an AttnRes aggregation over 1 source to "
                         "attnres.aggregate, which folds to its source (a "
                         "softmax over one logit is exactly 1)";
    return;
  }
  auto vecType = RankedTensorType::get({s.dim}, s.srcType.getElementType());
  Value query = asVector(b, loc, c.vectors[0], vecType);
  Value gainV;
  if (c.vectors.size() == 2) {
    gainV = asVector(b, loc, c.vectors[1], vecType);
  } else {
    auto one = DenseElementsAttr::get(
        vecType, b.getFloatAttr(s.srcType.getElementType(), 1.0));
    gainV = arith::ConstantOp::create(b, loc, vecType, one);
  }
  auto agg = AggregateOp::create(b, loc, query, gainV, s.sources,
                                 static_cast<float>(eps));
  Value h = c.h;
  h.replaceAllUsesWith(agg.getResult());
  eraseDeadGraph(c, erased);
  if (report)
    emitRemark(agg.getLoc())
        << "raised an AttnRes aggregation over " << s.sources.size()
        << " sources to attnres.aggregate (epsilon " << eps << ")";
}

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

/// Tries the values of the sources' type computed from the stack, in program
/// order (at most 64), and raises the first that is an aggregation.
bool RaiseAggregationsPass::tryRaise(Operation *stackOp,
                                     llvm::DenseSet<Operation *> &erased) {
  std::optional<Stack> s = matchStack(stackOp);
  if (!s)
    return false;
  Block *block = stackOp->getBlock();
  OpSet dep = forwardSlice(s->sources, block);
  // Ops that compute the sources are not part of the aggregation.
  llvm::DenseSet<Operation *> ancestors;
  for (Value src : s->sources)
    for (Operation *o : backwardSlice(src, block))
      ancestors.insert(o);

  int tried = 0;
  for (Operation *cand : inProgramOrder(dep)) {
    if (cand == stackOp || cand->isBeforeInBlock(stackOp) ||
        cand->getNumResults() != 1 ||
        cand->getResult(0).getType() != s->srcType)
      continue;
    if (++tried > 64)
      return false;
    Candidate c;
    c.h = cand->getResult(0);
    OpSet bwd = backwardSlice(c.h, block);
    // The aggregation must read the stack.
    if (!bwd.contains(stackOp))
      continue;
    for (Operation *o : bwd)
      if (dep.contains(o) && !ancestors.contains(o))
        c.g.insert(o);
    if (!collectLeaves(*s, c))
      continue;
    orderQueryFirst(c.vectors, c.g, block);
    c.epsCands = epsilonCandidates(c.g, &getContext());
    std::optional<size_t> best = bestEpsilon(*s, c);
    if (!best)
      continue;
    rewrite(*s, c, c.epsCands[*best], erased);
    return true;
  }
  return false;
}

void RaiseAggregationsPass::runOnOperation() {
  module = getOperation();
  for (func::FuncOp fn : module.getOps<func::FuncOp>()) {
    SmallVector<Operation *> stacks;
    fn.walk([&](Operation *op) {
      if (isa<tensor::ConcatOp, tosa::ConcatOp, tensor::InsertSliceOp>(op))
        stacks.push_back(op);
    });
    llvm::DenseSet<Operation *> erased;
    for (Operation *s : stacks)
      if (!erased.contains(s))
        (void)tryRaise(s, erased);
  }
}

} // namespace
