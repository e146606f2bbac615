//===- ScoreKernel.cpp - aggregate / block_score kernels ------------------===//
//
// Part of the attnres project.
//
// The kernels are written directly in gpu/vector/arith/scf/memref, not
// derived from linalg: every op here is memory-bound (a few flops per byte),
// so the design is about bytes in flight. One token row is owned by one or
// more warps; each thread holds its vectors of the row in registers, every
// source is read once with 16-byte loads, the next source's loads are issued
// before the current source's reductions (warp shuffles, then one
// workgroup-memory exchange across warps), and the softmax over sources is
// computed online (running max, running sum, rescaled accumulator).
// Transcendentals use the PTX approximate instructions through NVVM
// intrinsics (relative error around 2^-22), so no libdevice is needed.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

std::string ScoreKernelSpec::getName() const {
  std::string name = stacked     ? "block_score_"
                     : withStats ? "aggregate_stats_"
                                 : "aggregate_";
  name += typeSuffix(elementType) + "_d" + std::to_string(d) + "_n" +
          std::to_string(numSources);
  if (stacked)
    name += "_s" + std::to_string(numQueries) + "_g" +
            std::to_string(queriesPerCta) + (hasInvRms ? "_r" : "");
  if (smallTokens)
    name += "_small";
  return name;
}

gpu::GPUFuncOp gpu_kernels::buildScoreKernel(OpBuilder &b, Location loc,
                                             const ScoreKernelSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  const RowLayout &layout = spec.layout;
  Type e = spec.elementType;
  int64_t d = spec.d;
  unsigned n = spec.numSources, s = spec.numQueries, g = spec.queriesPerCta;

  bool stats = spec.withStats && !spec.stacked;
  SmallVector<Type> args =
      scoreArgTypes(b, e, d, n, s, spec.stacked, spec.hasInvRms, stats);

  // One source: the weight is exactly 1 whatever the score (spec A.2), so
  // the aggregate is a copy of the source; no score is computed (with
  // statistics it is: lse = z_0, and h = v_0 * 1 exactly below).
  if (!spec.stacked && n == 1 && !stats) {
    RowEmitter em(b, loc, layout, e);
    gpu::GPUFuncOp fn = createKernel(b, loc, spec.getName(), args, {}, layout);
    Block &entry = fn.getBody().front();
    Value src = entry.getArgument(2), out = entry.getArgument(3);
    em.emitIndices(1);
    em.guardTokens(entry.getArgument(4));
    ValueRange tok(em.token);
    SmallVector<Value> row = em.loadRow(src, tok);
    for (auto [j, v] : llvm::enumerate(row))
      em.storeRaw(v, out, tok, j);
    return fn;
  }

  unsigned numReduced = (g + (spec.hasInvRms ? 0 : 1)) *
                        std::min(std::max(1u, spec.sourcesPerStep), n);
  RowEmitter em(b, loc, layout, e);
  SmallVector<Type> wgTypes;
  if (layout.warpsPerToken() > 1)
    wgTypes.push_back(em.scratchType(numReduced));
  bool wgShared = spec.wgInShared && !spec.stacked && g == 1 &&
                  layout.tokensPerCta == 1 && layout.warpsPerToken() > 1;
  if (wgShared)
    wgTypes.push_back(
        MemRefType::get({layout.numVectors * int64_t(layout.vectorWidth)},
                        b.getF32Type(), MemRefLayoutAttrInterface(),
                        gpu::AddressSpaceAttr::get(
                            b.getContext(), gpu::AddressSpace::Workgroup)));
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args, wgTypes, layout);
  if (wgShared)
    fn.setWorkgroupAttributionAttr(1, LLVM::LLVMDialect::getAlignAttrName(),
                                   b.getI64IntegerAttr(16));
  Block &entry = fn.getBody().front();
  ScoreArgs ka(entry, n, spec.stacked, spec.hasInvRms, stats);
  Value queries = ka.queries, gains = ka.gains, out = ka.out, lse = ka.lse;
  Value numTokens = ka.numTokens, eps = ka.eps;
  ArrayRef<Value> sources = ka.sources, invRms = ka.invRms;
  Value scratch =
      wgTypes.empty() ? Value() : Value(fn.getWorkgroupAttributions()[0]);

  em.emitIndices(s / g);
  em.guardTokens(numTokens);
  unsigned c = layout.vectorsPerThread;

  // w*g for this CTA's queries, in f32, for this thread's vectors.
  SmallVector<Value> qRows;
  SmallVector<SmallVector<Value>> wg(g);
  for (unsigned q = 0; q < g; ++q) {
    SmallVector<Value> prefix;
    if (spec.stacked) {
      Value groupBase = arith::MulIOp::create(b, loc, em.group, em.idx(g));
      Value row = arith::AddIOp::create(b, loc, groupBase, em.idx(q));
      qRows.push_back(row);
      prefix.push_back(row);
    }
    for (unsigned j = 0; j < c; ++j) {
      Value qv = em.toF32(em.loadVector(queries, prefix, j));
      Value gv = em.toF32(em.loadVector(gains, prefix, j));
      wg[q].push_back(arith::MulFOp::create(b, loc, qv, gv));
    }
  }
  // w*g in workgroup memory: written once, re-read for every source (the
  // barriers of the reductions keep the loads from being merged), so that
  // it holds no registers across the sources.
  Value wgSm;
  if (wgShared) {
    wgSm = fn.getWorkgroupAttributions()[1];
    for (unsigned j = 0; j < c; ++j)
      buildIf(b, loc, em.valid(j), [&]() {
        vector::StoreOp::create(b, loc, wg[0][j], wgSm,
                                ValueRange{em.offset(j)});
      });
    gpu::BarrierOp::create(b, loc);
  }
  auto wgAt = [&](unsigned q, unsigned j) -> Value {
    if (!wgShared)
      return wg[q][j];
    Value off = em.offset(j);
    Value lastVector = em.idx(layout.numVectors * int64_t(layout.vectorWidth) -
                              layout.vectorWidth);
    Value at = arith::MinUIOp::create(b, loc, off, lastVector);
    return vector::LoadOp::create(
        b, loc, VectorType::get({layout.vectorWidth}, b.getF32Type()), wgSm,
        ValueRange{at});
  };

  // One pass over the sources with online softmax; the next source's loads
  // are issued before this source's reductions (and their barrier).
  SmallVector<Value> m(g), sum(g);
  SmallVector<SmallVector<Value>> acc(g);
  // Sources in flight: `prefetchDepth` sources ahead of the one reduced.
  unsigned depth = std::max(1u, spec.prefetchDepth);
  SmallVector<SmallVector<Value>> rowsIn(n);
  SmallVector<Value> rIn(n);
  auto issue = [&](unsigned k) {
    if (k >= n)
      return;
    rowsIn[k] = em.loadRow(sources[k], ValueRange{em.token});
    if (spec.hasInvRms)
      rIn[k] = memref::LoadOp::create(b, loc, invRms[k], ValueRange{em.token});
  };
  // Sources are reduced `step` at a time: one barrier (and one interleaved
  // shuffle tree) per step instead of per source.
  unsigned step = std::max(1u, spec.sourcesPerStep);
  unsigned issued = 0;
  for (; issued < std::min(n, depth); ++issued)
    issue(issued);
  unsigned base = spec.hasInvRms ? 0 : 1;
  unsigned perSource = base + g;
  for (unsigned i0 = 0; i0 < n; i0 += step) {
    unsigned i1 = std::min(n, i0 + step);
    for (; issued < std::min(n, i1 - 1 + depth + 1); ++issued)
      issue(issued);
    SmallVector<SmallVector<Value>> xs;
    SmallVector<Value> partials;
    for (unsigned i = i0; i < i1; ++i) {
      SmallVector<Value> x;
      for (Value v : rowsIn[i])
        x.push_back(em.toF32(v));
      if (!spec.hasInvRms) {
        Value ss = em.zeroF32Vec();
        for (Value xv : x)
          ss = em.fma(xv, xv, ss);
        partials.push_back(em.hsum(ss));
      }
      for (unsigned q = 0; q < g; ++q) {
        Value dv = em.zeroF32Vec();
        for (unsigned j = 0; j < c; ++j)
          dv = em.fma(wgAt(q, j), x[j], dv);
        partials.push_back(em.hsum(dv));
      }
      xs.push_back(x);
    }
    SmallVector<Value> tot = em.tokenSum(partials, scratch, (i0 / step) % 2);
    for (unsigned i = i0; i < i1; ++i) {
      ArrayRef<Value> t =
          ArrayRef<Value>(tot).slice((i - i0) * perSource, perSource);
      ArrayRef<Value> x = xs[i - i0];
      Value r = spec.hasInvRms ? rIn[i] : em.invRms(t[0], eps);
      // aggregate_stats: the inverse RMS of source i, by the token's first
      // thread.
      if (stats) {
        Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                            em.tpos, em.idx(0));
        buildIf(b, loc, first, [&]() {
          memref::StoreOp::create(b, loc, r, ka.invRmsOut[i],
                                  ValueRange{em.token});
        });
      }
      for (unsigned q = 0; q < g; ++q) {
        Value z = arith::MulFOp::create(b, loc, t[base + q], r);
        if (i == 0) {
          m[q] = z;
          sum[q] = em.f32c(1.0);
          acc[q] = SmallVector<Value>(x);
          continue;
        }
        Value mNew = arith::MaxNumFOp::create(b, loc, m[q], z);
        Value alpha = em.exp(arith::SubFOp::create(b, loc, m[q], mNew));
        Value beta = em.exp(arith::SubFOp::create(b, loc, z, mNew));
        Value alphaV = em.splat(alpha), betaV = em.splat(beta);
        for (unsigned j = 0; j < c; ++j)
          acc[q][j] = em.fma(x[j], betaV,
                             arith::MulFOp::create(b, loc, acc[q][j], alphaV));
        sum[q] = arith::AddFOp::create(
            b, loc, arith::MulFOp::create(b, loc, sum[q], alpha), beta);
        m[q] = mNew;
      }
    }
  }

  // out = acc / sum, lse = m + log(sum).
  for (unsigned q = 0; q < g; ++q) {
    Value inv = arith::DivFOp::create(b, loc, em.f32c(1.0), sum[q]);
    Value invV = em.splat(inv);
    SmallVector<Value> prefix;
    if (spec.stacked)
      prefix.push_back(qRows[q]);
    prefix.push_back(em.token);
    for (unsigned j = 0; j < c; ++j)
      em.storeVector(arith::MulFOp::create(b, loc, acc[q][j], invV), out,
                     prefix, j);
    if (spec.stacked || stats) {
      Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                          em.tpos, em.idx(0));
      auto ifOp = scf::IfOp::create(b, loc, first, /*withElse=*/false);
      OpBuilder::InsertionGuard ig(b);
      b.setInsertionPoint(ifOp.getThenRegion().front().getTerminator());
      // One source: lse = z_0 exactly (spec I.1).
      Value l =
          n == 1 && stats
              ? m[q]
              : arith::AddFOp::create(b, loc, m[q], em.log(sum[q])).getResult();
      SmallVector<Value> at;
      if (spec.stacked)
        at.push_back(qRows[q]);
      at.push_back(em.token);
      memref::StoreOp::create(b, loc, l, lse, at);
    }
  }
  return fn;
}
