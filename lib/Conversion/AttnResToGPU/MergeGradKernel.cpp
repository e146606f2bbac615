//===- MergeGradKernel.cpp - merge_grad (spec I.4) ------------------------===//
//
// Part of the attnres project.
//
// The backward of `attnres.merge`, with and without the fused RMSNorm
// (docs/gpu.md "Backward kernels").
//
//===----------------------------------------------------------------------===//

#include "GradKernelHelpers.h"

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;
using namespace mlir::attnres::gpu_kernels::grad;

//===----------------------------------------------------------------------===//
// merge_grad
//===----------------------------------------------------------------------===//

std::string MergeGradSpec::getName() const {
  return "merge_grad_" + typeSuffix(elementType) + "_d" + std::to_string(d) +
         (hasPartial ? "_p" : "") + (hasNorm ? "_n" : "") +
         (zeroGrad ? "_z" : "") + (prefetchNext ? "_pf" : "");
}

namespace {
/// merge_grad may load the next token's rows one iteration ahead where they
/// take at most this many bytes per thread (bf16 at 8 elements per thread:
/// 6 rows, 96 bytes, 24 registers).
constexpr unsigned kMergeGradPrefetchBytes = 96;
} // namespace

bool gpu_kernels::mergeGradCanPrefetch(const MergeGradSpec &spec) {
  unsigned numRows =
      3 + spec.hasPartial + !spec.zeroGrad + (spec.hasNorm ? 1 : 0);
  unsigned elemBytes = spec.elementType.getIntOrFloatBitWidth() / 8;
  return numRows * spec.layout.vectorsPerThread * spec.layout.vectorWidth *
             elemBytes <=
         kMergeGradPrefetchBytes;
}

gpu::GPUFuncOp gpu_kernels::buildMergeGradKernel(OpBuilder &b, Location loc,
                                                 const MergeGradSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  const RowLayout &layout = spec.layout;
  assert(layout.tokensPerCta == 1 && "one token at a time per CTA");
  Type e = spec.elementType;
  int64_t d = spec.d, dyn = ShapedType::kDynamic;
  bool norm = spec.hasNorm;
  Type f32 = b.getF32Type();
  Type rows = rowsType(e, d);
  Type stat = MemRefType::get({dyn}, f32);
  SmallVector<Type> args = mergeInputArgTypes(b, e, d, spec.hasPartial, norm);
  if (!spec.zeroGrad)
    args.push_back(rows);
  args.push_back(rows);
  if (norm)
    args.push_back(rows);
  args.append({rows, stat, rows});
  args.push_back(MemRefType::get({dyn, norm ? 2 * d : d}, f32));
  args.push_back(b.getIndexType());
  args.push_back(f32);
  if (norm)
    args.push_back(f32);

  RowEmitter em(b, loc, layout, e);
  SmallVector<Type> wgTypes;
  if (layout.warpsPerToken() > 1)
    wgTypes.push_back(em.scratchType(2));
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args, wgTypes, layout);
  Block &entry = fn.getBody().front();
  unsigned a = 0;
  MergeInputArgs in(entry, a, spec.hasPartial, norm);
  Value outIn = in.out, lse = in.lse, query = in.query, gain = in.gain;
  Value update = in.update, partial = in.partial, normGain = in.normGain;
  Value dh = spec.zeroGrad ? Value() : entry.getArgument(a++);
  Value dpNew = entry.getArgument(a++);
  Value dhn = norm ? entry.getArgument(a++) : Value();
  Value dout = entry.getArgument(a++), dlse = entry.getArgument(a++);
  Value dp = entry.getArgument(a++), ws = entry.getArgument(a++);
  Value numTokens = entry.getArgument(a++), eps = entry.getArgument(a++);
  Value normEps = norm ? entry.getArgument(a++) : Value();
  Value scratch =
      wgTypes.empty() ? Value() : Value(fn.getWorkgroupAttributions()[0]);

  em.emitIndices(1);
  unsigned c = layout.vectorsPerThread;
  auto [begin, end] = ctaTokenRange(b, loc, numTokens);
  SmallVector<Value> wg, gn;
  for (unsigned j = 0; j < c; ++j) {
    Value qv = em.toF32(em.loadVector(query, {}, j));
    Value gv = em.toF32(em.loadVector(gain, {}, j));
    wg.push_back(arith::MulFOp::create(b, loc, qv, gv));
    if (norm)
      gn.push_back(em.toF32(em.loadVector(normGain, {}, j)));
  }
  unsigned numAcc = norm ? 2 * c : c;
  SmallVector<Value> init(numAcc, em.zeroF32Vec());
  // The token's rows as loaded (update, [partial], out, [dh], dp_new,
  // [dhn], then lse). With prefetchNext they are loaded one token ahead
  // (loop-carried), so that the next token's loads are in flight during
  // this token's reductions: the kernel runs one CTA of 16 warps per SM at
  // D = 4096 and is latency-bound (ncu, run 26: 25% occupancy, no eligible
  // warp 69% of the cycles). It costs registers (58 -> 94 without the norm:
  // 2 -> 1 CTA per SM), hence an option until measured.
  bool prefetch = spec.prefetchNext;
  assert((!prefetch || mergeGradCanPrefetch(spec)) && "rows too large");
  auto loadToken = [&](Value t) {
    ValueRange ti(t);
    SmallVector<Value> raw = em.loadRow(update, ti);
    if (spec.hasPartial)
      raw.append(em.loadRow(partial, ti));
    raw.append(em.loadRow(outIn, ti));
    if (dh)
      raw.append(em.loadRow(dh, ti));
    raw.append(em.loadRow(dpNew, ti));
    if (norm)
      raw.append(em.loadRow(dhn, ti));
    raw.push_back(memref::LoadOp::create(b, loc, lse, ti));
    return raw;
  };
  if (prefetch) {
    // The first token, clamped: a CTA with an empty range (begin = T)
    // loads the last token instead of reading past the rows.
    Value last = arith::SubIOp::create(b, loc, numTokens, em.idx(1));
    Value first = arith::MinUIOp::create(b, loc, begin, last);
    init.append(loadToken(first));
  }
  auto loop = scf::ForOp::create(b, loc, begin, end, em.idx(1), init);
  {
    OpBuilder::InsertionGuard lg(b);
    b.setInsertionPointToStart(loop.getBody());
    Value tok = loop.getInductionVar();
    ValueRange tk(tok);
    SmallVector<Value> accs(loop.getRegionIterArgs().take_front(numAcc));
    SmallVector<Value> raw, rawNext;
    if (prefetch) {
      raw.append(loop.getRegionIterArgs().drop_front(numAcc).begin(),
                 loop.getRegionIterArgs().end());
      // The next token's rows (this CTA's last token re-loads its own).
      Value next = arith::AddIOp::create(b, loc, tok, em.idx(1));
      Value lastOwn = arith::SubIOp::create(b, loc, end, em.idx(1));
      rawNext = loadToken(arith::MinUIOp::create(b, loc, next, lastOwn));
    }
    // Reductions per token: 2 without the norm, 3 with; the scratch halves
    // alternate over all of them.
    unsigned perToken = norm ? 3 : 2;
    Value tokIter = arith::SubIOp::create(b, loc, tok, begin);
    Value base = arith::MulIOp::create(b, loc, tokIter, em.idx(perToken));
    auto parity = [&](unsigned k) -> Value {
      Value step = arith::AddIOp::create(b, loc, base, em.idx(k));
      return arith::RemUIOp::create(b, loc, step, em.idx(2));
    };
    // Without the look-ahead, every load of the token first.
    if (!prefetch)
      raw = loadToken(tok);
    // The token's rows, in loadToken's order.
    ArrayRef<Value> rest(raw);
    auto take = [&](bool present) {
      SmallVector<Value> row;
      if (present) {
        row.assign(rest.begin(), rest.begin() + c);
        rest = rest.drop_front(c);
      }
      return row;
    };
    SmallVector<Value> up = take(true);
    SmallVector<Value> pa = take(spec.hasPartial);
    SmallVector<Value> o = take(true);
    SmallVector<Value> dhIn = take(bool(dh));
    SmallVector<Value> dpnIn = take(true);
    SmallVector<Value> dhnIn = take(norm);
    Value l = rest.front();

    SmallVector<Value> p, of;
    Value ss = em.zeroF32Vec(), dotv = em.zeroF32Vec();
    for (unsigned j = 0; j < c; ++j) {
      Value pj = em.toF32(up[j]);
      if (spec.hasPartial)
        pj = arith::AddFOp::create(b, loc, pj, em.toF32(pa[j]));
      p.push_back(pj);
      of.push_back(em.toF32(o[j]));
      ss = em.fma(pj, pj, ss);
      dotv = em.fma(wg[j], pj, dotv);
    }
    // One builder call per statement (the IR must not depend on the C++
    // compiler's argument evaluation order).
    SmallVector<Value> s1{em.hsum(ss), em.hsum(dotv)};
    Value par1 = parity(0);
    SmallVector<Value> t1 = em.tokenSum(s1, scratch, par1);
    Value r = em.invRms(t1[0], eps);
    Value cScore = arith::MulFOp::create(b, loc, t1[1], r);
    Value ex = em.exp(arith::SubFOp::create(b, loc, l, cScore));
    Value one = em.f32c(1.0);
    Value gate = arith::DivFOp::create(b, loc, one,
                                       arith::AddFOp::create(b, loc, one, ex));
    Value gateV = em.splat(gate);
    SmallVector<Value> dH, hr, gdhn;
    Value rn;
    if (!norm) {
      for (unsigned j = 0; j < c; ++j)
        dH.push_back(dh ? em.toF32(dhIn[j]) : em.zeroF32Vec());
    } else {
      // The stored h (rounded to E, spec E.5) and the norm's backward:
      // dH = dh + rn gn dhn - rn^3 h <h, gn dhn> / D.
      Value ssh = em.zeroF32Vec(), hg = em.zeroF32Vec();
      for (unsigned j = 0; j < c; ++j) {
        Value hj =
            em.fma(gateV, arith::SubFOp::create(b, loc, p[j], of[j]), of[j]);
        hr.push_back(em.toF32(em.toStorage(hj)));
        gdhn.push_back(
            arith::MulFOp::create(b, loc, gn[j], em.toF32(dhnIn[j])));
        ssh = em.fma(hr[j], hr[j], ssh);
        hg = em.fma(hr[j], gdhn[j], hg);
      }
      SmallVector<Value> s2{em.hsum(ssh), em.hsum(hg)};
      Value par2 = parity(1);
      SmallVector<Value> t2 = em.tokenSum(s2, scratch, par2);
      rn = em.invRms(t2[0], normEps);
      Value rn3 = arith::MulFOp::create(
          b, loc, arith::MulFOp::create(b, loc, rn, rn), rn);
      Value khd = arith::MulFOp::create(b, loc, rn3, t2[1]);
      Value kh = arith::MulFOp::create(b, loc, khd, em.f32c(1.0 / double(d)));
      Value rnV = em.splat(rn), nkhV = splatNeg(em, kh);
      for (unsigned j = 0; j < c; ++j) {
        Value v = dh ? em.fma(rnV, gdhn[j], em.toF32(dhIn[j]))
                     : arith::MulFOp::create(b, loc, rnV, gdhn[j]);
        dH.push_back(em.fma(nkhV, hr[j], v));
      }
    }
    // dc = <dH, p' - out> a (1 - a).
    Value dg = em.zeroF32Vec();
    for (unsigned j = 0; j < c; ++j)
      dg = em.fma(dH[j], arith::SubFOp::create(b, loc, p[j], of[j]), dg);
    SmallVector<Value> s3{em.hsum(dg)};
    Value par3 = parity(norm ? 2 : 1);
    SmallVector<Value> t3 = em.tokenSum(s3, scratch, par3);
    Value oneMinus = arith::SubFOp::create(b, loc, one, gate);
    Value dc = arith::MulFOp::create(
        b, loc, arith::MulFOp::create(b, loc, t3[0], gate), oneMinus);
    Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                        em.tpos, em.idx(0));
    buildIf(b, loc, first, [&]() {
      memref::StoreOp::create(b, loc, arith::NegFOp::create(b, loc, dc), dlse,
                              tk);
    });
    // dp = a dH + dp_new + k1 wg - k2 p' with k1 = dc r, k2 = k1 c r / D.
    Value k1 = arith::MulFOp::create(b, loc, dc, r);
    Value k2d = arith::MulFOp::create(
        b, loc, arith::MulFOp::create(b, loc, k1, cScore), r);
    Value k2 = arith::MulFOp::create(b, loc, k2d, em.f32c(1.0 / double(d)));
    Value k1V = em.splat(k1), nk2V = splatNeg(em, k2);
    Value omV = em.splat(oneMinus);
    SmallVector<Value> next;
    for (unsigned j = 0; j < c; ++j) {
      em.storeVector(arith::MulFOp::create(b, loc, omV, dH[j]), dout, tk, j);
      Value v = em.fma(gateV, dH[j], em.toF32(dpnIn[j]));
      v = em.fma(k1V, wg[j], v);
      v = em.fma(nk2V, p[j], v);
      em.storeVector(v, dp, tk, j);
      next.push_back(em.fma(k1V, p[j], accs[j]));
    }
    if (norm) {
      // dgn += h rn dhn.
      Value rnV = em.splat(rn);
      for (unsigned j = 0; j < c; ++j) {
        Value hrn = arith::MulFOp::create(b, loc, hr[j], rnV);
        Value term = arith::MulFOp::create(b, loc, hrn, em.toF32(dhnIn[j]));
        next.push_back(arith::AddFOp::create(b, loc, accs[c + j], term));
      }
    }
    next.append(rawNext);
    scf::YieldOp::create(b, loc, next);
  }
  Value cta = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  SmallVector<Value> res(loop.getResults().take_front(numAcc));
  storeF32Row(em, ArrayRef<Value>(res).take_front(c), ws, cta, Value());
  if (norm)
    storeF32Row(em, ArrayRef<Value>(res).drop_front(c), ws, cta, em.idx(d));
  return fn;
}
