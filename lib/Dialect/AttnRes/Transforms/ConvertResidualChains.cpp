//===- ConvertResidualChains.cpp - PreNorm chains to Full AttnRes ---------===//
//
// Part of the attnres project.
//
// Residual adds (linalg.generic / linalg.add / tosa.add / arith.addf of two
// tensors of one type, either operand order) where one operand depends on the
// other are linked into chains h_{l+1} = h_l + y_l. A chain is converted to
// Full AttnRes only when each sublayer reads its input through a
// scale-invariant norm (checked numerically: the norm's output is unchanged
// when its input is scaled) that is the only path from the input to the
// sublayer's output, and the chain's final value feeds a scale-invariant norm
// too. Otherwise it is left untouched and, with `report`, a remark says why.
// See docs/detection.md.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"
#include "attnres/Dialect/AttnRes/Analysis/DetectionSupport.h"
#include "attnres/Dialect/AttnRes/Analysis/PointwiseInterpreter.h"
#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

#include <cmath>
#include <optional>

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_CONVERTRESIDUALCHAINS
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::detection;

namespace {

struct ResidualAdd {
  Operation *op;
  Value x; // the stream h_l
  Value y; // the sublayer output f_l(h_l)
};

/// The residual adds of one block and how they link.
struct Adds {
  SmallVector<ResidualAdd> list;
  llvm::DenseMap<Operation *, unsigned> index;
  SmallVector<int> next, prev;
  SmallVector<bool> transformedLink, branches;
};

struct NormUse {
  SmallVector<OpOperand *> uses; // uses of the stream value to redirect
  std::string what;
};

/// Why a chain is not converted (empty: it is).
using Refusal = std::optional<std::string>;

struct ConvertResidualChainsPass
    : public attnres::impl::ConvertResidualChainsBase<
          ConvertResidualChainsPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  // Steps of one function.
  void convertFunction(func::FuncOp fn);
  void collectAdds(Block *block, Adds &adds);
  void linkAdds(Block *block, Adds &adds);
  void processChain(func::FuncOp fn, const Adds &adds, ArrayRef<unsigned> chain,
                    int &chainNo);
  Refusal checkChainShape(const Adds &adds, ArrayRef<unsigned> chain);
  Refusal findSublayerNorms(const Adds &adds, ArrayRef<unsigned> chain,
                            SmallVectorImpl<NormUse> &norms);
  Refusal checkStreamEffects(const Adds &adds, ArrayRef<unsigned> chain);
  Refusal findFinalNorm(Value hL, Block *block, NormUse &finalNorm);
  void rewriteChain(func::FuncOp fn, const Adds &adds, ArrayRef<unsigned> chain,
                    ArrayRef<NormUse> norms, const NormUse &finalNorm,
                    int chainNo);

  // Norms.
  bool isScaleInvariant(Value h, Value v, const OpSet &deps);
  bool findNorm(Value h, Block *block, const OpSet &region, bool mustCoverAll,
                NormUse &out, int depth);
  bool findNormInCall(func::CallOp call, ArrayRef<OpOperand *> hUses,
                      bool mustCoverAll, NormUse &out, int depth);
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

/// Formats `op`'s name into a string (for refusal texts).
static std::string nameOf(Operation *op) {
  return op->getName().getStringRef().str();
}

//===----------------------------------------------------------------------===//
// Opaque callees
//===----------------------------------------------------------------------===//

func::FuncOp ConvertResidualChainsPass::lookupCallee(func::CallOp call) {
  return dyn_cast_or_null<func::FuncOp>(
      SymbolTable::lookupSymbolIn(module, call.getCalleeAttr()));
}

/// Whether the user vouches that `callee` is scale-invariant in the residual
/// stream it receives: the unit attribute `attnres.scale_invariant` on the
/// function, or its name in `scale-invariant-callees`.
bool ConvertResidualChainsPass::isVouched(func::FuncOp callee) {
  return callee &&
         (callee->hasAttr("attnres.scale_invariant") ||
          llvm::is_contained(scaleInvariantCallees, callee.getSymName().str()));
}

/// A call in `region` to a callee without a body, not vouched for, that takes
/// the stream `h` itself (up to unit reshapes) as an operand.
func::CallOp
ConvertResidualChainsPass::opaqueDirectConsumer(Value h, const OpSet &region) {
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

//===----------------------------------------------------------------------===//
// Norms
//===----------------------------------------------------------------------===//

/// Evaluates `v` at the sampled rows with `h` bound to data scaled by
/// `scale`; false when the interpreter cannot.
static bool sampleScaled(ModuleOp module, int64_t budget, Value h, Value v,
                         const OpSet &deps, double scale,
                         SmallVectorImpl<double> &vals) {
  auto vt = cast<RankedTensorType>(v.getType());
  PointwiseInterpreter interp(module, budget);
  interp.bind(h, 77, scale);
  interp.setDependentOps(llvm::DenseSet<Operation *>(deps.begin(), deps.end()));
  // At most about 64 features per row, spread over D, and the last one: the
  // norm's reductions over D are evaluated (once per row) either way, but
  // evaluating every feature made detection cost ~3 * rows * D evaluations
  // per sublayer (16 s of detection at D = 4096, 128 sublayers;
  // docs/depth.md).
  int64_t numFeatures = vt.getShape().back();
  int64_t stride = std::max<int64_t>(1, (numFeatures + 63) / 64);
  SmallVector<int64_t> features;
  for (int64_t k = 0; k < numFeatures; k += stride)
    features.push_back(k);
  if (features.back() != numFeatures - 1)
    features.push_back(numFeatures - 1);
  for (const SmallVector<int64_t> &row : sampleRows(vt))
    for (int64_t k : features) {
      SmallVector<int64_t> idx(row);
      idx.push_back(k);
      FailureOr<double> x = interp.eval(v, idx);
      if (failed(x))
        return false;
      vals.push_back(*x);
    }
  return true;
}

/// Whether `v` (computed from `h` through the ops `deps`) keeps its value when
/// `h` is scaled: v(2.5 h) == v(0.3 h) == v(h) on random data, to 1e-3
/// relative.
bool ConvertResidualChainsPass::isScaleInvariant(Value h, Value v,
                                                 const OpSet &deps) {
  if (!isFeatureTensor(v.getType()))
    return false;
  SmallVector<double> base;
  if (!sampleScaled(module, budget, h, v, deps, 1.0, base))
    return false;
  double mx = 0;
  for (double x : base)
    mx = std::max(mx, std::fabs(x));
  if (!(mx > 1e-9) || !std::isfinite(mx))
    return false;
  for (double scale : {2.5, 0.3}) {
    SmallVector<double> vals;
    if (!sampleScaled(module, budget, h, v, deps, scale, vals))
      return false;
    double err = 0;
    for (auto [a, c] : llvm::zip_equal(base, vals))
      err = std::max(err, std::fabs(a - c));
    if (!(err <= 1e-3 * mx))
      return false;
  }
  return true;
}

/// A call taking `h` once: the norm may be inside the callee, or the callee
/// is vouched scale-invariant.
bool ConvertResidualChainsPass::findNormInCall(func::CallOp call,
                                               ArrayRef<OpOperand *> hUses,
                                               bool mustCoverAll, NormUse &out,
                                               int depth) {
  SmallVector<OpOperand *> inCall;
  for (OpOperand *u : hUses)
    if (u->getOwner() == call.getOperation())
      inCall.push_back(u);
  if (inCall.size() != 1 || (mustCoverAll && hUses.size() != 1))
    return false;
  func::FuncOp callee = lookupCallee(call);
  if (isVouched(callee)) {
    out.uses = inCall;
    out.what = "@" + callee.getSymName().str() + " (vouched scale-invariant)";
    return true;
  }
  if (!callee || callee.isExternal() || !callee.getBody().hasOneBlock())
    return false;
  Block *cb = &callee.front();
  Value arg = cb->getArgument(inCall[0]->getOperandNumber());
  OpSet inner = forwardSlice({arg}, cb);
  NormUse sub;
  if (!findNorm(arg, cb, inner, /*mustCoverAll=*/true, sub, depth + 1))
    return false;
  out.uses = inCall;
  out.what = "in @" + callee.getSymName().str() + ": " + sub.what;
  return true;
}

/// The ops of `region` between `h` and `o`'s result, if they are used only
/// among themselves (a closed subgraph ending in `o`).
static std::optional<OpSet> closedSliceEndingIn(Operation *o, Block *block,
                                                const OpSet &region) {
  OpSet between;
  for (Operation *x : backwardSlice(o->getResult(0), block))
    if (region.contains(x))
      between.insert(x);
  if (!between.contains(o))
    return std::nullopt;
  for (Operation *x : between) {
    if (x == o)
      continue;
    for (Operation *user : x->getUsers()) {
      Operation *a = block->findAncestorOpInBlock(*user);
      if (!a || !between.contains(a))
        return std::nullopt;
    }
  }
  return between;
}

/// Finds the scale-invariant norm through which `h` enters the ops `region`
/// (in `block`): the first value v, in program order, such that the ops
/// between h and v read nothing else of h's world, have no other users than
/// each other, and v(c h) == v(h). With `mustCoverAll`, every use of h in
/// `region` must go through v. A func.call taking h is looked into.
bool ConvertResidualChainsPass::findNorm(Value h, Block *block,
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
    if (auto call = dyn_cast<func::CallOp>(o))
      if (findNormInCall(call, hUses, mustCoverAll, out, depth))
        return true;
    if (o->getNumResults() != 1 || o->getResult(0).getType() != h.getType())
      continue;
    std::optional<OpSet> between = closedSliceEndingIn(o, block, region);
    if (!between)
      continue;
    SmallVector<OpOperand *> covered;
    for (OpOperand *u : hUses)
      if (between->contains(block->findAncestorOpInBlock(*u->getOwner())))
        covered.push_back(u);
    if (covered.empty() || (mustCoverAll && covered.size() != hUses.size()))
      continue;
    if (++tested > 8)
      return false;
    if (!isScaleInvariant(h, o->getResult(0), *between))
      continue;
    out.uses = covered;
    out.what = "norm ending in '" + nameOf(o) + "'";
    return true;
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Finding and linking residual adds
//===----------------------------------------------------------------------===//

/// Whether the slice `bwd` depends on `x`.
static bool sliceDependsOn(const OpSet &bwd, Value x) {
  if (Operation *d = x.getDefiningOp())
    return bwd.contains(d);
  // A block argument: some op of the slice uses it.
  for (Operation *o : bwd)
    if (llvm::is_contained(o->getOperands(), x))
      return true;
  return false;
}

/// Residual adds: x + y with y depending on x.
void ConvertResidualChainsPass::collectAdds(Block *block, Adds &adds) {
  for (Operation &op : block->without_terminator()) {
    Value a, b;
    if (!matchTensorAdd(&op, a, b))
      continue;
    OpSet bwdA = backwardSlice(a, block), bwdB = backwardSlice(b, block);
    if (sliceDependsOn(bwdB, a)) {
      adds.index[&op] = adds.list.size();
      adds.list.push_back({&op, a, b});
    } else if (sliceDependsOn(bwdA, b)) {
      adds.index[&op] = adds.list.size();
      adds.list.push_back({&op, b, a});
    } else if (report) {
      emitRemark(op.getLoc())
          << "not a residual chain (length 0): plain sum of "
             "unrelated tensors, neither operand depends on the "
             "other";
    }
  }
}

/// The nearest residual add whose stream input is computed from `hOut`
/// without crossing another residual add, or -1.
static int nearestTransformedSuccessor(Value hOut, Block *block,
                                       const Adds &adds) {
  OpSet seen;
  SmallVector<Value> work{hOut};
  int best = -1;
  while (!work.empty()) {
    Value v = work.pop_back_val();
    for (OpOperand &u : v.getUses()) {
      Operation *a = block->findAncestorOpInBlock(*u.getOwner());
      if (!a || a->hasTrait<OpTrait::IsTerminator>())
        continue;
      auto it = adds.index.find(a);
      if (it != adds.index.end()) {
        if (adds.list[it->second].x == v && v != hOut &&
            (best < 0 || a->isBeforeInBlock(adds.list[best].op)))
          best = it->second;
        continue;
      }
      if (seen.insert(a))
        llvm::append_range(work, a->getResults());
    }
  }
  return best;
}

/// Links the adds: direct (x_{l+1} == h_{l+1}) or through a transformation.
void ConvertResidualChainsPass::linkAdds(Block *block, Adds &adds) {
  size_t n = adds.list.size();
  adds.next.assign(n, -1);
  adds.prev.assign(n, -1);
  adds.transformedLink.assign(n, false);
  adds.branches.assign(n, false);
  for (auto [i, ra] : llvm::enumerate(adds.list)) {
    Value hOut = ra.op->getResult(0);
    for (Operation *user : hOut.getUsers()) {
      auto it = adds.index.find(user);
      if (it == adds.index.end() || adds.list[it->second].x != hOut)
        continue;
      if (adds.next[i] >= 0)
        adds.branches[i] = true;
      else
        adds.next[i] = it->second;
    }
    if (adds.next[i] >= 0)
      continue;
    int best = nearestTransformedSuccessor(hOut, block, adds);
    if (best >= 0 && adds.prev[best] < 0) {
      adds.next[i] = best;
      adds.transformedLink[i] = true;
    }
  }
  for (auto [i, n] : llvm::enumerate(adds.next))
    if (n >= 0)
      adds.prev[n] = i;
}

//===----------------------------------------------------------------------===//
// Checks on one chain
//===----------------------------------------------------------------------===//

/// Refuses chains that are not h_{l+1} = h_l + f_l(h_l) for L >= 2: PostNorm,
/// otherwise transformed streams, branching streams, single adds.
Refusal ConvertResidualChainsPass::checkChainShape(const Adds &adds,
                                                   ArrayRef<unsigned> chain) {
  Block *block = adds.list[chain.front()].op->getBlock();
  for (unsigned k = 0; k < chain.size(); ++k) {
    if (!adds.transformedLink[chain[k]])
      continue;
    // PostNorm if the link is a scale-invariant norm of the sum.
    Value hOut = adds.list[chain[k]].op->getResult(0);
    Value nextX = adds.list[chain[k + 1]].x;
    OpSet between;
    OpSet fwd = forwardSlice({hOut}, block);
    for (Operation *x : backwardSlice(nextX, block))
      if (fwd.contains(x))
        between.insert(x);
    if (isScaleInvariant(hOut, nextX, between))
      return std::string(
          "PostNorm chain: the residual stream is normalised after each "
          "residual add (h_{l+1} = norm(h_l + f_l(h_l))), so the sublayers do "
          "not see a scale-invariant input and the conversion would change "
          "the function");
    return std::string("the residual stream is transformed between sublayers "
                       "(not h_{l+1} = h_l + f_l(h_l))");
  }
  if (llvm::any_of(chain, [&](unsigned c) { return adds.branches[c]; }))
    return std::string("the residual stream branches into two residual adds");
  if (chain.size() < 2)
    return std::string("a single residual add is not a chain (needs at least "
                       "2 sublayers)");
  return std::nullopt;
}

/// Each sublayer reads its input through a scale-invariant norm (`norms[l]`)
/// and has no side effects.
Refusal
ConvertResidualChainsPass::findSublayerNorms(const Adds &adds,
                                             ArrayRef<unsigned> chain,
                                             SmallVectorImpl<NormUse> &norms) {
  Block *block = adds.list[chain.front()].op->getBlock();
  norms.assign(chain.size(), NormUse());
  for (unsigned l = 0; l < chain.size(); ++l) {
    const ResidualAdd &ra = adds.list[chain[l]];
    OpSet fwd = forwardSlice({ra.x}, block);
    OpSet region;
    for (Operation *x : backwardSlice(ra.y, block))
      if (fwd.contains(x))
        region.insert(x);
    for (Operation *x : region)
      if (hasSideEffects(x, module))
        return "chain broken by a side effect: sublayer " + std::to_string(l) +
               " contains '" + nameOf(x) + "'";
    if (findNorm(ra.x, block, region, /*mustCoverAll=*/true, norms[l], 0))
      continue;
    if (func::CallOp call = opaqueDirectConsumer(ra.x, region))
      return "sublayer " + std::to_string(l) + ": opaque callee @" +
             call.getCallee().str() +
             " consumes the residual stream directly; scale invariance "
             "cannot be proven (mark its declaration "
             "'attnres.scale_invariant' or list it in "
             "scale-invariant-callees if it normalises its input)";
    return "sublayer " + std::to_string(l) +
           " does not read its input only through a scale-invariant "
           "norm (RMSNorm/LayerNorm), so the conversion would change "
           "the function";
  }
  return std::nullopt;
}

/// A stream value observed by an op with side effects pins the chain.
Refusal
ConvertResidualChainsPass::checkStreamEffects(const Adds &adds,
                                              ArrayRef<unsigned> chain) {
  Block *block = adds.list[chain.front()].op->getBlock();
  for (unsigned l = 0; l < chain.size(); ++l) {
    Value h = adds.list[chain[l]].op->getResult(0);
    for (Operation *user : h.getUsers()) {
      Operation *a = block->findAncestorOpInBlock(*user);
      if (a && !a->hasTrait<OpTrait::IsTerminator>() &&
          hasSideEffects(a, module))
        return "chain broken by a side effect: h_" + std::to_string(l + 1) +
               " is passed to '" + nameOf(a) + "', which has side effects";
    }
  }
  return std::nullopt;
}

/// The final value `hL` feeds a scale-invariant norm before any side effect.
Refusal ConvertResidualChainsPass::findFinalNorm(Value hL, Block *block,
                                                 NormUse &finalNorm) {
  OpSet after = forwardSlice({hL}, block);
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
  if (!region.empty() &&
      findNorm(hL, block, region, /*mustCoverAll=*/false, finalNorm, 0))
    return std::nullopt;
  if (func::CallOp opaque = opaqueDirectConsumer(hL, region))
    return "no scale-invariant consumer: opaque callee @" +
           opaque.getCallee().str() +
           " consumes the final value directly; scale invariance cannot "
           "be proven (mark its declaration 'attnres.scale_invariant' or "
           "list it in scale-invariant-callees if it normalises its "
           "input)";
  if (sideEffect)
    return "chain broken by a side effect: its value reaches '" +
           nameOf(sideEffect) + "' before any scale-invariant norm";
  bool returned = llvm::any_of(hL.getUsers(), [](Operation *u) {
    return u->hasTrait<OpTrait::IsTerminator>();
  });
  if (returned && after.empty())
    return std::string("no scale-invariant consumer: the final value is "
                       "returned without a norm");
  return std::string("no scale-invariant consumer: the final value does not "
                     "feed a scale-invariant norm (RMSNorm/LayerNorm)");
}

//===----------------------------------------------------------------------===//
// Rewrite
//===----------------------------------------------------------------------===//

Value ConvertResidualChainsPass::loadParam(OpBuilder &b, Location loc,
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

/// Inserts the aggregations of Full AttnRes (spec section 4) and redirects
/// the norms' inputs to them; erases the adds nobody else uses.
void ConvertResidualChainsPass::rewriteChain(func::FuncOp fn, const Adds &adds,
                                             ArrayRef<unsigned> chain,
                                             ArrayRef<NormUse> norms,
                                             const NormUse &finalNorm,
                                             int chainNo) {
  unsigned len = chain.size();
  auto srcType = cast<RankedTensorType>(adds.list[chain[0]].x.getType());
  auto vecType = RankedTensorType::get({srcType.getShape().back()},
                                       srcType.getElementType());
  std::string fnName = fn.getSymName().str();
  std::string chainTag =
      chainNo == 0 ? "" : "c" + std::to_string(chainNo) + "_";
  SmallVector<Value> sources{adds.list[chain[0]].x};
  std::string firstName, lastName;
  auto aggregateAfter = [&](Operation *after, StringRef suffix) -> Value {
    OpBuilder b(after->getContext());
    b.setInsertionPointAfter(after);
    Location loc = after->getLoc();
    std::string tag = (chainTag + suffix).str();
    Value q = loadParam(b, loc, "query", fnName, tag, vecType, 0.0);
    Value g = loadParam(b, loc, "gain", fnName, tag, vecType, 1.0);
    if (firstName.empty())
      firstName = "@attnres_query_" + fnName + "_" + tag;
    lastName = "@attnres_query_" + fnName + "_" + tag;
    return AggregateOp::create(b, loc, q, g, sources, kDefaultEpsilon)
        .getResult();
  };
  for (unsigned l = 0; l < len; ++l) {
    if (l > 0) {
      Value agg = aggregateAfter(adds.list[chain[l - 1]].op, std::to_string(l));
      for (OpOperand *u : norms[l].uses)
        u->set(agg);
    }
    sources.push_back(adds.list[chain[l]].y);
  }
  Value fin = aggregateAfter(adds.list[chain.back()].op, "final");
  for (OpOperand *u : finalNorm.uses)
    u->set(fin);
  // The adds stay for any other user (they now sum the new sublayer
  // outputs, which at zero initialisation equal the old ones). The head's
  // location is read first: the loop below may erase the head.
  Location headLoc = adds.list[chain.front()].op->getLoc();
  unsigned kept = 0;
  for (unsigned c : llvm::reverse(chain)) {
    if (adds.list[c].op->use_empty())
      adds.list[c].op->erase();
    else
      ++kept;
  }
  if (report)
    emitRemark(headLoc) << "residual chain of " << len
                        << " sublayers converted to Full AttnRes: " << len
                        << " aggregations, zero-initialised queries "
                        << firstName << " .. " << lastName
                        << " and unit gains; " << kept
                        << " residual adds kept for other users";
}

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

/// Checks one chain and converts it, or says why not (with `report`).
void ConvertResidualChainsPass::processChain(func::FuncOp fn, const Adds &adds,
                                             ArrayRef<unsigned> chain,
                                             int &chainNo) {
  Operation *head = adds.list[chain.front()].op;
  Block *block = head->getBlock();
  SmallVector<NormUse> norms;
  NormUse finalNorm;
  Refusal why = checkChainShape(adds, chain);
  if (!why)
    why = findSublayerNorms(adds, chain, norms);
  if (!why)
    why = checkStreamEffects(adds, chain);
  if (!why)
    why = findFinalNorm(adds.list[chain.back()].op->getResult(0), block,
                        finalNorm);
  if (why) {
    if (report)
      emitRemark(head->getLoc()) << "residual chain of " << chain.size()
                                 << " sublayers not converted: " << *why;
    return;
  }
  if (!convertStandard) {
    if (report)
      emitRemark(head->getLoc())
          << "residual chain of " << chain.size()
          << " sublayers found; not converted (convert-standard=false)";
    return;
  }
  rewriteChain(fn, adds, chain, norms, finalNorm, chainNo++);
}

void ConvertResidualChainsPass::convertFunction(func::FuncOp fn) {
  if (!fn.getBody().hasOneBlock())
    return;
  Block *block = &fn.front();
  Adds adds;
  collectAdds(block, adds);
  if (adds.list.empty())
    return;
  linkAdds(block, adds);
  int chainNo = 0;
  for (unsigned head = 0; head < adds.list.size(); ++head) {
    if (adds.prev[head] >= 0)
      continue;
    SmallVector<unsigned> chain;
    for (int c = head; c >= 0; c = adds.next[c])
      chain.push_back(c);
    processChain(fn, adds, chain, chainNo);
  }
}

void ConvertResidualChainsPass::runOnOperation() {
  module = getOperation();
  for (func::FuncOp fn : module.getOps<func::FuncOp>())
    convertFunction(fn);
}

} // namespace
