//===- MergeKernel.cpp - merge (phase 2) kernel ---------------------------===//
//
// Part of the attnres project.
//
// attnres.merge: the online-softmax merge of the block logits with the
// partial block, optionally fused with the next RMSNorm (docs/gpu.md).
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

std::string MergeKernelSpec::getName() const {
  return "merge_" + typeSuffix(elementType) + "_d" + std::to_string(d) +
         (hasPartial ? "_p" : "") + (hasNorm ? "_n" : "") +
         (writeH ? "" : "_nh");
}

gpu::GPUFuncOp gpu_kernels::buildMergeKernel(OpBuilder &b, Location loc,
                                             const MergeKernelSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  const RowLayout &layout = spec.layout;
  Type e = spec.elementType;
  int64_t d = spec.d;
  Type f32 = b.getF32Type();
  Type rows = rowsType(e, d);
  bool norm = spec.hasNorm, writeH = spec.writeH || !spec.hasNorm;

  SmallVector<Type> args = mergeInputArgTypes(b, e, d, spec.hasPartial, norm);
  if (writeH)
    args.push_back(rows);
  if (spec.hasPartial)
    args.push_back(rows);
  if (norm)
    args.push_back(rows);
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
  Value h = writeH ? entry.getArgument(a++) : Value();
  Value newPartial = spec.hasPartial ? entry.getArgument(a++) : Value();
  Value normed = norm ? entry.getArgument(a++) : Value();
  Value numTokens = entry.getArgument(a++);
  Value eps = entry.getArgument(a++);
  Value normEps = norm ? entry.getArgument(a++) : Value();
  Value scratch =
      wgTypes.empty() ? Value() : Value(fn.getWorkgroupAttributions()[0]);

  em.emitIndices(1);
  em.guardTokens(numTokens);
  unsigned c = layout.vectorsPerThread;
  ValueRange tok(em.token);

  // Issue every load first: update, partial, out, lse, then the vectors.
  SmallVector<Value> up = em.loadRow(update, tok);
  SmallVector<Value> pa =
      spec.hasPartial ? em.loadRow(partial, tok) : SmallVector<Value>();
  SmallVector<Value> o = em.loadRow(outIn, tok);
  Value l = memref::LoadOp::create(b, loc, lse, tok);
  SmallVector<Value> wg, gn;
  for (unsigned j = 0; j < c; ++j) {
    Value qv = em.toF32(em.loadVector(query, {}, j));
    Value gv = em.toF32(em.loadVector(gain, {}, j));
    wg.push_back(arith::MulFOp::create(b, loc, qv, gv));
  }
  if (norm)
    for (unsigned j = 0; j < c; ++j)
      gn.push_back(em.toF32(em.loadVector(normGain, {}, j)));

  SmallVector<Value> p;
  Value ss = em.zeroF32Vec(), dv = em.zeroF32Vec();
  for (unsigned j = 0; j < c; ++j) {
    Value pj = em.toF32(up[j]);
    if (spec.hasPartial)
      pj = arith::AddFOp::create(b, loc, pj, em.toF32(pa[j]));
    p.push_back(pj);
    ss = em.fma(pj, pj, ss);
    dv = em.fma(wg[j], pj, dv);
  }
  SmallVector<Value> tot = em.tokenSum({em.hsum(ss), em.hsum(dv)}, scratch, 0);
  Value cScore = arith::MulFOp::create(b, loc, tot[1], em.invRms(tot[0], eps));
  // sigmoid(c - lse) = 1 / (1 + exp(lse - c)).
  Value ex = em.exp(arith::SubFOp::create(b, loc, l, cScore));
  Value one = em.f32c(1.0);
  Value oneAdd = em.f32c(1.0);
  Value denom = arith::AddFOp::create(b, loc, oneAdd, ex);
  Value gate = arith::DivFOp::create(b, loc, one, denom);
  Value gateV = em.splat(gate);
  // The rounded h (what the fused norm reads, spec E.5) and its sum of
  // squares.
  SmallVector<Value> hr;
  Value ssh = em.zeroF32Vec();
  for (unsigned j = 0; j < c; ++j) {
    Value oj = em.toF32(o[j]);
    Value hj = em.fma(gateV, arith::SubFOp::create(b, loc, p[j], oj), oj);
    Value hs = em.toStorage(hj);
    if (writeH)
      em.storeRaw(hs, h, tok, j);
    if (spec.hasPartial)
      em.storeVector(p[j], newPartial, tok, j);
    if (norm) {
      hr.push_back(em.toF32(hs));
      ssh = em.fma(hr.back(), hr.back(), ssh);
    }
  }
  if (!norm)
    return fn;
  // The fused RMSNorm: one more token reduction (the other half of the
  // double-buffered scratch), then hn = h_E * rsqrt(mean + eps_n) * gain_n.
  SmallVector<Value> totH = em.tokenSum({em.hsum(ssh)}, scratch, 1);
  Value rn = em.splat(em.invRms(totH[0], normEps));
  for (unsigned j = 0; j < c; ++j) {
    Value hn = arith::MulFOp::create(
        b, loc, arith::MulFOp::create(b, loc, hr[j], rn), gn[j]);
    em.storeVector(hn, normed, tok, j);
  }
  return fn;
}
