//===- NormMatch.cpp - RMSNorm written in linalg primitives ---------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// The accepted form, for x : tensor<T... x D x E> of rank r (D static):
//
//   ss = linalg.generic (r loops, last one a reduction, init a zero fill or a
//        zero constant, f32) yielding acc + t*t, where t is x's element
//        (widened with arith.extf when E is not f32), or acc + q with q an
//        element of sq = linalg.generic (all parallel, f32) yielding t*t;
//   inv = rsqrt(s / D + eps) or rsqrt(s * (1/D) + eps) or 1 / sqrt(..), with
//        s an element of ss and eps a constant, computed either in its own
//        all-parallel generic over the tokens (f32) or inside the last one;
//   result = linalg.generic (all parallel, result of x's type) yielding a
//        product, in any association, of exactly x's element, inv and one
//        element of a gain vector tensor<D x E> (read along D), rounded once
//        with arith.truncf when E is not f32.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Analysis/NormMatch.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Utils/Utils.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"

#include <cmath>
#include <functional>

using namespace mlir;
using namespace mlir::attnres;

namespace {
/// What the matcher knows of the norm being matched.
struct NormContext {
  Value x;
  unsigned rank;
  int64_t dim;
  Type elementType;
  SmallVector<Operation *> ops;
};

bool isF32(Value v) { return v.getType().isF32(); }

bool allParallel(linalg::GenericOp g) {
  return llvm::all_of(g.getIteratorTypesArray(), linalg::isParallelIterator);
}

/// The map (d_0, .., d_{count-1}) in `numDims` loops.
bool isPrefixMap(AffineMap map, unsigned numDims, unsigned count) {
  if (map.getNumDims() != numDims || map.getNumSymbols() ||
      map.getNumResults() != count)
    return false;
  for (unsigned i = 0; i < count; ++i) {
    auto d = dyn_cast<AffineDimExpr>(map.getResult(i));
    if (!d || d.getPosition() != i)
      return false;
  }
  return true;
}

/// The input operand of `g` whose block argument is `v`, or null.
OpOperand *getInput(linalg::GenericOp g, Value v) {
  auto arg = dyn_cast<BlockArgument>(v);
  if (!arg || arg.getOwner() != g.getBody() ||
      arg.getArgNumber() >= static_cast<unsigned>(g.getNumDpsInputs()))
    return nullptr;
  return g.getDpsInputOperand(arg.getArgNumber());
}

/// The generic's init block arguments are not read (all-parallel maps).
bool initsUnread(linalg::GenericOp g) {
  for (OpOperand &init : g.getDpsInitsMutable())
    if (!g.getMatchingBlockArgument(&init).use_empty())
      return false;
  return true;
}

/// The yielded value of a one-result generic.
Value getYielded(linalg::GenericOp g) {
  auto yield = cast<linalg::YieldOp>(g.getBody()->getTerminator());
  return yield.getNumOperands() == 1 ? yield.getOperand(0) : Value();
}

/// `v` is x's element (f32) in generic `g` of `ctx.rank` loops read with the
/// identity map, widened with extf when E is not f32.
bool isXElement(linalg::GenericOp g, Value v, NormContext &ctx) {
  if (!isF32(v))
    return false;
  if (auto ext = v.getDefiningOp<arith::ExtFOp>())
    v = ext.getIn();
  OpOperand *in = getInput(g, v);
  return in && in->get() == ctx.x && g.getNumLoops() == ctx.rank &&
         isPrefixMap(g.getMatchingIndexingMap(in), ctx.rank, ctx.rank);
}

/// A constant float scalar.
bool getConstant(Value v, double &out) {
  FloatAttr attr;
  if (!matchPattern(v, m_Constant(&attr)))
    return false;
  out = attr.getValueAsDouble();
  return true;
}

/// `v` is zero: a zero fill or a zero constant tensor.
bool isZeroInit(Value v, NormContext &ctx) {
  if (auto fill = v.getDefiningOp<linalg::FillOp>()) {
    double c;
    if (fill.getInputs().size() != 1 || !getConstant(fill.getInputs()[0], c) ||
        c != 0.0)
      return false;
    ctx.ops.push_back(fill);
    return true;
  }
  return matchPattern(v, m_AnyZeroFloat());
}

/// `ss` (f32, tensor<T...>) is sum_d x[.., d]^2.
bool matchSumSquares(Value ss, NormContext &ctx) {
  auto g = ss.getDefiningOp<linalg::GenericOp>();
  if (!g || g->getNumResults() != 1 || g.getNumDpsInits() != 1 ||
      g.getNumLoops() != ctx.rank)
    return false;
  auto its = g.getIteratorTypesArray();
  for (unsigned i = 0; i + 1 < ctx.rank; ++i)
    if (!linalg::isParallelIterator(its[i]))
      return false;
  if (!linalg::isReductionIterator(its.back()))
    return false;
  OpOperand *init = g.getDpsInitOperand(0);
  auto initType = dyn_cast<RankedTensorType>(init->get().getType());
  if (!initType || !initType.getElementType().isF32() ||
      !isPrefixMap(g.getMatchingIndexingMap(init), ctx.rank, ctx.rank - 1))
    return false;
  Value y = getYielded(g);
  auto add = y ? y.getDefiningOp<arith::AddFOp>() : nullptr;
  if (!add || !isF32(add))
    return false;
  Value acc = g.getMatchingBlockArgument(init);
  Value term;
  if (add.getLhs() == acc)
    term = add.getRhs();
  else if (add.getRhs() == acc)
    term = add.getLhs();
  else
    return false;
  if (acc.hasOneUse() == false)
    return false;
  // acc + t*t, t = x's element.
  if (auto tt = term.getDefiningOp<arith::MulFOp>()) {
    if (tt->getBlock() != g.getBody() || tt.getLhs() != tt.getRhs() ||
        !isXElement(g, tt.getLhs(), ctx))
      return false;
  } else {
    // acc + q, q = sq[.., d], sq = x*x elementwise (f32).
    OpOperand *in = getInput(g, term);
    if (!in || !isPrefixMap(g.getMatchingIndexingMap(in), ctx.rank, ctx.rank))
      return false;
    auto sq = in->get().getDefiningOp<linalg::GenericOp>();
    if (!sq || sq->getNumResults() != 1 || sq.getNumDpsInits() != 1 ||
        !allParallel(sq) || sq.getNumLoops() != ctx.rank || !initsUnread(sq) ||
        !isPrefixMap(sq.getMatchingIndexingMap(sq.getDpsInitOperand(0)),
                     ctx.rank, ctx.rank))
      return false;
    auto sqType = cast<RankedTensorType>(sq->getResult(0).getType());
    if (!sqType.getElementType().isF32())
      return false;
    Value sy = getYielded(sq);
    auto mul = sy ? sy.getDefiningOp<arith::MulFOp>() : nullptr;
    if (!mul || mul->getBlock() != sq.getBody() ||
        mul.getLhs() != mul.getRhs() || !isXElement(sq, mul.getLhs(), ctx))
      return false;
    ctx.ops.push_back(sq);
  }
  if (!isZeroInit(init->get(), ctx))
    return false;
  ctx.ops.push_back(g);
  return true;
}

/// `v` (a scalar in generic `g`) is rsqrt(s / D + eps) with `s` the element
/// of the sum of squares read with the map (d_0 .. d_{tokens-1}).
bool matchInvRms(linalg::GenericOp g, Value v, unsigned tokenLoops,
                 NormContext &ctx, double &eps) {
  if (!isF32(v))
    return false;
  Value a;
  if (auto r = v.getDefiningOp<math::RsqrtOp>()) {
    a = r.getOperand();
  } else if (auto div = v.getDefiningOp<arith::DivFOp>()) {
    double one;
    auto sqrt = div.getRhs().getDefiningOp<math::SqrtOp>();
    if (!getConstant(div.getLhs(), one) || one != 1.0 || !sqrt)
      return false;
    a = sqrt.getOperand();
  } else {
    return false;
  }
  auto add = a.getDefiningOp<arith::AddFOp>();
  if (!add || !isF32(add))
    return false;
  Value mean;
  if (getConstant(add.getRhs(), eps))
    mean = add.getLhs();
  else if (getConstant(add.getLhs(), eps))
    mean = add.getRhs();
  else
    return false;
  if (!std::isfinite(eps) || eps < 0.0)
    return false;
  Value s;
  double c;
  double d = static_cast<double>(ctx.dim);
  if (auto div = mean.getDefiningOp<arith::DivFOp>()) {
    if (!getConstant(div.getRhs(), c) || c != d)
      return false;
    s = div.getLhs();
  } else if (auto mul = mean.getDefiningOp<arith::MulFOp>()) {
    if (getConstant(mul.getRhs(), c))
      s = mul.getLhs();
    else if (getConstant(mul.getLhs(), c))
      s = mul.getRhs();
    else
      return false;
    // 1/D as an f32 constant.
    if (c != static_cast<double>(static_cast<float>(1.0 / d)))
      return false;
  } else {
    return false;
  }
  OpOperand *in = getInput(g, s);
  if (!in ||
      !isPrefixMap(g.getMatchingIndexingMap(in), g.getNumLoops(), tokenLoops))
    return false;
  return matchSumSquares(in->get(), ctx);
}

/// Flattens a tree of f32 multiplications in `body` into its factors.
void collectFactors(Value v, Block *body, SmallVectorImpl<Value> &factors) {
  auto mul = v.getDefiningOp<arith::MulFOp>();
  if (mul && mul->getBlock() == body && isF32(mul)) {
    collectFactors(mul.getLhs(), body, factors);
    collectFactors(mul.getRhs(), body, factors);
    return;
  }
  factors.push_back(v);
}
} // namespace

bool mlir::attnres::matchRMSNorm(Value normed, Value x, RMSNormMatch &match) {
  auto type = dyn_cast<RankedTensorType>(x.getType());
  if (!type || type.getRank() < 1 || normed.getType() != type ||
      ShapedType::isDynamic(type.getShape().back()))
    return false;
  NormContext ctx{x,
                  static_cast<unsigned>(type.getRank()),
                  type.getShape().back(),
                  type.getElementType(),
                  {}};
  auto g = normed.getDefiningOp<linalg::GenericOp>();
  if (!g || g->getNumResults() != 1 || g.getNumDpsInits() != 1 ||
      !allParallel(g) || g.getNumLoops() != ctx.rank || !initsUnread(g) ||
      !isPrefixMap(g.getMatchingIndexingMap(g.getDpsInitOperand(0)), ctx.rank,
                   ctx.rank))
    return false;
  Value y = getYielded(g);
  if (!y)
    return false;
  if (!ctx.elementType.isF32()) {
    auto trunc = y.getDefiningOp<arith::TruncFOp>();
    if (!trunc || trunc.getType() != ctx.elementType)
      return false;
    y = trunc.getIn();
  }
  SmallVector<Value> factors;
  collectFactors(y, g.getBody(), factors);
  if (factors.size() != 3)
    return false;
  bool haveX = false, haveInv = false;
  Value gain;
  double eps = 0.0;
  for (Value f : factors) {
    if (!haveX && isXElement(g, f, ctx)) {
      haveX = true;
      continue;
    }
    // The gain: an element of a rank-1 tensor<D x E> read along D.
    if (!gain && isF32(f)) {
      Value arg = f;
      if (auto ext = arg.getDefiningOp<arith::ExtFOp>())
        arg = ext.getIn();
      if (OpOperand *in = getInput(g, arg)) {
        AffineMap map = g.getMatchingIndexingMap(in);
        auto gt = dyn_cast<RankedTensorType>(in->get().getType());
        AffineExpr r0 =
            map.getNumResults() == 1 ? map.getResult(0) : AffineExpr();
        auto d = r0 ? dyn_cast<AffineDimExpr>(r0) : nullptr;
        if (gt && gt.getRank() == 1 && gt.getElementType() == ctx.elementType &&
            (gt.isDynamicDim(0) || gt.getDimSize(0) == ctx.dim) && d &&
            d.getPosition() == ctx.rank - 1) {
          gain = in->get();
          continue;
        }
      }
    }
    if (!haveInv) {
      // Computed in this generic from the sum of squares...
      if (matchInvRms(g, f, ctx.rank - 1, ctx, eps)) {
        haveInv = true;
        continue;
      }
      // ... or read from a per-token f32 tensor computed by its own generic.
      OpOperand *in = getInput(g, f);
      if (in &&
          isPrefixMap(g.getMatchingIndexingMap(in), ctx.rank, ctx.rank - 1)) {
        auto rg = in->get().getDefiningOp<linalg::GenericOp>();
        unsigned t = ctx.rank - 1;
        if (rg && rg->getNumResults() == 1 && rg.getNumDpsInits() == 1 &&
            allParallel(rg) && rg.getNumLoops() == t && initsUnread(rg) &&
            isPrefixMap(rg.getMatchingIndexingMap(rg.getDpsInitOperand(0)), t,
                        t) &&
            cast<RankedTensorType>(rg->getResult(0).getType())
                .getElementType()
                .isF32() &&
            matchInvRms(rg, getYielded(rg), t, ctx, eps)) {
          ctx.ops.push_back(rg);
          haveInv = true;
          continue;
        }
      }
    }
    return false;
  }
  if (!haveX || !haveInv || !gain)
    return false;
  ctx.ops.push_back(g);
  match.result = normed;
  match.gain = gain;
  match.epsilon = eps;
  match.ops = std::move(ctx.ops);
  return true;
}

SmallVector<RMSNormMatch> mlir::attnres::findRMSNormsOf(Value x) {
  SmallVector<RMSNormMatch> norms;
  llvm::SmallPtrSet<Operation *, 4> seen;
  SmallVector<Operation *> users;
  for (Operation *user : x.getUsers())
    if (seen.insert(user).second)
      users.push_back(user);
  // Program order within a block; users in different blocks are grouped by
  // block (a strict weak order either way).
  llvm::stable_sort(users, [](Operation *a, Operation *b) {
    if (a->getBlock() != b->getBlock())
      return std::less<Block *>()(a->getBlock(), b->getBlock());
    return a->isBeforeInBlock(b);
  });
  for (Operation *user : users) {
    auto g = dyn_cast<linalg::GenericOp>(user);
    if (!g || g->getNumResults() != 1)
      continue;
    RMSNormMatch m;
    if (matchRMSNorm(g->getResult(0), x, m))
      norms.push_back(std::move(m));
  }
  return norms;
}
