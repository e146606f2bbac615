//===- BlockScoreGradKernel.cpp - block_score_grad (spec I.3) -------------===//
//
// Part of the attnres project.
//
// The backward of `attnres.block_score` (phase 1; docs/gpu.md "Backward
// kernels"): the per-token kernel (source gradients and the per-token
// factors) and the parameter kernel (query and gain partials).
//
//===----------------------------------------------------------------------===//

#include "GradKernelHelpers.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;
using namespace mlir::attnres::gpu_kernels::grad;

//===----------------------------------------------------------------------===//
// block_score_grad
//===----------------------------------------------------------------------===//

namespace {
/// block_score_grad carries the next query's rows (W, G, dout) in registers
/// when a thread's share takes at most this many bytes (bf16 with 16
/// elements per thread: 96 bytes, 24 registers; f32 with 16 elements,
/// 48 registers, spilled).
constexpr unsigned kBlockScoreGradPrefetchBytes = 96;
/// f32 gradient-sum elements a thread holds at once (the sources per group:
/// this / elements per thread, at least one).
constexpr unsigned kBlockScoreGradAccElems = 32;
/// The same for the sources whose sums pass 1 accumulates (it also holds
/// the next query's rows): this / elements per thread, possibly none.
constexpr unsigned kBlockScoreGradFusedElems = 8;
} // namespace

std::string BlockScoreGradSpec::getName() const {
  return "block_score_grad_" + typeSuffix(elementType) + "_d" +
         std::to_string(d) + "_s" + std::to_string(numQueries) + "_n" +
         std::to_string(numSources) + (accumulate ? "_acc" : "");
}

gpu::GPUFuncOp
gpu_kernels::buildBlockScoreGradKernel(OpBuilder &b, Location loc,
                                       const BlockScoreGradSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  const RowLayout &layout = spec.layout;
  assert(layout.tokensPerCta == 1 && "one token per CTA");
  Type e = spec.elementType, f32 = b.getF32Type();
  int64_t d = spec.d;
  unsigned n = spec.numSources, s = spec.numQueries;
  bool acc = spec.accumulate;
  SmallVector<Type> args = blockScoreGradArgTypes(b, e, d, s, n, acc);

  RowEmitter em(b, loc, layout, e);
  auto wsAttr =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  // Rows of the coefficient memory: a_li and k1_li at l * n + i.
  SmallVector<Type> wgTypes{MemRefType::get(
      {2, int64_t(s * n)}, f32, MemRefLayoutAttrInterface(), wsAttr)};
  if (layout.warpsPerToken() > 1)
    wgTypes.push_back(em.scratchType(2 * n));
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args, wgTypes, layout);
  Block &entry = fn.getBody().front();
  BlockScoreGradArgs ka(entry, n, acc);
  Value queries = ka.queries, gains = ka.gains, lse = ka.lse;
  Value dout = ka.dout, dlse = ka.dlse, coefOut = ka.coefOut;
  ArrayRef<Value> sources = ka.sources, invRms = ka.invRms, accs = ka.accs,
                  grads = ka.grads;
  Value coef = fn.getWorkgroupAttributions()[0];
  Value scratch = layout.warpsPerToken() > 1
                      ? Value(fn.getWorkgroupAttributions()[1])
                      : Value();

  em.emitIndices(1);
  unsigned c = layout.vectorsPerThread, vw = layout.vectorWidth;
  unsigned elems = c * vw;
  Value tok = em.token;
  ValueRange tk(tok);
  Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, em.tpos,
                                      em.idx(0));
  Value invD = em.f32c(1.0 / double(d));
  auto load = [&](Value m, ValueRange ix) -> Value {
    return memref::LoadOp::create(b, loc, m, ix);
  };
  auto store = [&](Value v, Value m, ValueRange ix) {
    memref::StoreOp::create(b, loc, v, m, ix);
  };
  // Column l * n + i of the coefficient rows (l a run-time index).
  auto coefAt = [&](unsigned row, Value l,
                    unsigned i) -> SmallVector<Value, 2> {
    // One builder call per statement: the IR does not depend on the C++
    // compiler's argument evaluation order.
    Value base = arith::MulIOp::create(b, loc, l, em.idx(n));
    Value col = arith::AddIOp::create(b, loc, base, em.idx(i));
    return {em.idx(row), col};
  };

  // The rows of query l this thread needs, as loaded (storage type): W_l,
  // G_l and dout_l, c vectors each. Loaded one query ahead of their use
  // (loop-carried), so that the loads of query l + 1 are in flight while
  // query l is reduced: the kernel is otherwise latency-bound (one token
  // per CTA, a reduction and its barrier per query).
  auto loadQuery = [&](Value l) {
    SmallVector<Value> raw;
    for (unsigned j = 0; j < c; ++j) {
      raw.push_back(em.loadVector(queries, l, j));
      raw.push_back(em.loadVector(gains, l, j));
      raw.push_back(em.loadVector(dout, ValueRange{l, tok}, j));
    }
    return raw;
  };
  // wg_l = W_l * G_l and dout_l in f32 from loadQuery's vectors.
  auto queryRows = [&](ValueRange raw, SmallVector<Value> &wg,
                       SmallVector<Value> &dl) {
    for (unsigned j = 0; j < c; ++j) {
      Value qv = em.toF32(raw[3 * j]);
      Value gv = em.toF32(raw[3 * j + 1]);
      wg.push_back(arith::MulFOp::create(b, loc, qv, gv));
      dl.push_back(em.toF32(raw[3 * j + 2]));
    }
  };
  // The next query's index, clamped (the last iteration re-loads its own
  // rows, L1 hits, instead of reading past the queries).
  auto nextQuery = [&](Value l) -> Value {
    Value next = arith::AddIOp::create(b, loc, l, em.idx(1));
    return arith::MinUIOp::create(b, loc, next, em.idx(s - 1));
  };
  // A loop over the S queries (not unrolled: LLVM would otherwise keep the
  // rows of one query's iteration live into the next ones and spill) whose
  // first iteration values are `init` followed by the rows of query 0; the
  // body gets the rows of its query and returns the next iteration values
  // without them.
  // Whether the next query's rows are carried (their registers: 3 rows of a
  // thread's elements, at most kBlockScoreGradPrefetchBytes).
  unsigned elemBytes = e.getIntOrFloatBitWidth() / 8;
  bool prefetch = 3 * elems * elemBytes <= kBlockScoreGradPrefetchBytes;
  auto queryLoop =
      [&](ValueRange init,
          function_ref<SmallVector<Value>(Value, ValueRange, ValueRange)>
              body) {
        SmallVector<Value> all(init);
        if (prefetch) {
          SmallVector<Value> raw0 = loadQuery(em.idx(0));
          all.append(raw0);
        }
        Value lb = em.idx(0), ub = em.idx(s), step = em.idx(1);
        auto loop = scf::ForOp::create(b, loc, lb, ub, step, all);
        OpBuilder::InsertionGuard lg(b);
        b.setInsertionPointToStart(loop.getBody());
        Value l = loop.getInductionVar();
        ValueRange iter = loop.getRegionIterArgs();
        ValueRange carried = iter.take_front(init.size());
        if (!prefetch) {
          SmallVector<Value> raw = loadQuery(l);
          scf::YieldOp::create(b, loc, body(l, carried, raw));
          return loop;
        }
        SmallVector<Value> rawNext = loadQuery(nextQuery(l));
        SmallVector<Value> next =
            body(l, carried, iter.drop_front(init.size()));
        next.append(rawNext);
        scf::YieldOp::create(b, loc, next);
        return loop;
      };

  // Pass 1, one query at a time: the 2n dot products in one reduction whose
  // totals every thread gets; every thread then computes the query's
  // coefficients (no serial section):
  //   z_li = r_i (wg_l . b_i), e_li = exp(z_li - lse_l),
  //   a_li = e_li / sum_j e_lj (exactly softmax; the division makes a_l sum
  //   to one in f32, so that lse's rounding does not leave a residue where
  //   the softmax derivative cancels, e.g. n = 1),
  //   dz_li = a_li (da_li - sum_j a_lj da_lj + dlse_l) (sources in order),
  //   k1_li = dz_li r_i, K2_i += k1_li r_i z_li / D (l in order).
  // The token's first thread writes a_li and k1_li to workgroup memory for
  // pass 2 and k1_li to the coefficient buffer of the parameter kernel.
  // The gradient sums of the first `fused` sources are accumulated here,
  // while the query's rows are in registers.
  unsigned fused = std::min(n, kBlockScoreGradFusedElems / elems);
  SmallVector<Value> init(n, em.f32c(0.0));
  init.append(fused * c, em.zeroF32Vec());
  auto pass1 = queryLoop(
      init,
      [&](Value l, ValueRange carried, ValueRange raw) -> SmallVector<Value> {
        SmallVector<Value> wg, dl;
        queryRows(raw, wg, dl);
        unsigned depth = kGradPrefetchDepth;
        SmallVector<SmallVector<Value>> rowsIn(n);
        for (unsigned i = 0; i < std::min(n, depth); ++i)
          rowsIn[i] = em.loadRow(sources[i], tk);
        SmallVector<Value> partials;
        sourceDots(em, sources, tk, 0, n, depth, /*keep=*/false, rowsIn, wg, dl,
                   partials);
        Value parity = arith::RemUIOp::create(b, loc, l, em.idx(2));
        SmallVector<Value> tot = em.tokenSum(partials, scratch, parity);
        // Loaded per query (uniform addresses, L1 hits): held across the loop
        // they would take n registers.
        SmallVector<Value> r;
        for (unsigned i = 0; i < n; ++i)
          r.push_back(load(invRms[i], tk));
        Value lseL = load(lse, ValueRange{l, tok});
        Value dlseL = load(dlse, ValueRange{l, tok});
        SmallVector<Value> z, aw;
        Value sumE = em.f32c(0.0);
        for (unsigned i = 0; i < n; ++i) {
          z.push_back(arith::MulFOp::create(b, loc, r[i], tot[2 * i]));
          Value shifted = arith::SubFOp::create(b, loc, z[i], lseL);
          aw.push_back(em.exp(shifted));
          sumE = arith::AddFOp::create(b, loc, sumE, aw[i]);
        }
        Value norm = arith::DivFOp::create(b, loc, em.f32c(1.0), sumE);
        Value sum = em.f32c(0.0);
        for (unsigned i = 0; i < n; ++i) {
          aw[i] = arith::MulFOp::create(b, loc, aw[i], norm);
          Value t = arith::MulFOp::create(b, loc, aw[i], tot[2 * i + 1]);
          sum = arith::AddFOp::create(b, loc, sum, t);
        }
        SmallVector<Value> next, k1s;
        for (unsigned i = 0; i < n; ++i) {
          Value centered = arith::SubFOp::create(b, loc, tot[2 * i + 1], sum);
          Value withLse = arith::AddFOp::create(b, loc, centered, dlseL);
          Value dz = arith::MulFOp::create(b, loc, aw[i], withLse);
          Value k1 = arith::MulFOp::create(b, loc, dz, r[i]);
          Value k1r = arith::MulFOp::create(b, loc, k1, r[i]);
          Value k1rz = arith::MulFOp::create(b, loc, k1r, z[i]);
          Value k2 = arith::MulFOp::create(b, loc, k1rz, invD);
          next.push_back(arith::AddFOp::create(b, loc, carried[i], k2));
          k1s.push_back(k1);
        }
        buildIf(b, loc, first, [&]() {
          for (unsigned i = 0; i < n; ++i) {
            SmallVector<Value, 2> at = coefAt(0, l, i);
            store(aw[i], coef, at);
            at[0] = em.idx(1);
            store(k1s[i], coef, at);
            store(k1s[i], coefOut, ValueRange{tok, at[1]});
          }
        });
        for (unsigned i = 0; i < fused; ++i) {
          Value aV = em.splat(aw[i]), k1V = em.splat(k1s[i]);
          for (unsigned j = 0; j < c; ++j) {
            Value v = em.fma(aV, dl[j], carried[n + i * c + j]);
            next.push_back(em.fma(k1V, wg[j], v));
          }
        }
        return next;
      });
  SmallVector<Value> k2Tot(pass1.getResults().take_front(n));

  // db_i = [acc_i +] (g_i - K2_i b_i), rounded once.
  auto finish = [&](unsigned i, ValueRange g) {
    SmallVector<Value> x = em.loadRow(sources[i], tk);
    SmallVector<Value> accRow =
        acc ? em.loadRow(accs[i], tk) : SmallVector<Value>();
    Value nk2V = splatNeg(em, k2Tot[i]);
    for (unsigned j = 0; j < c; ++j) {
      Value v = em.fma(nk2V, em.toF32(x[j]), g[j]);
      if (acc)
        v = arith::AddFOp::create(b, loc, em.toF32(accRow[j]), v);
      em.storeVector(v, grads[i], tk, j);
    }
  };
  for (unsigned i = 0; i < fused; ++i)
    finish(i, pass1.getResults().slice(n + i * c, c));
  if (fused == n)
    return fn;
  // The coefficients are complete: every thread reads them in pass 2.
  gpu::BarrierOp::create(b, loc);

  // Pass 2: g_i = sum_l (a_li dout_l + k1_li wg_l) for the other sources, a
  // group at a time.
  unsigned group = std::max(1u, kBlockScoreGradAccElems / elems);
  for (unsigned g0 = fused; g0 < n; g0 += group) {
    unsigned g1 = std::min(n, g0 + group);
    SmallVector<Value> zeros((g1 - g0) * c, em.zeroF32Vec());
    auto loop = queryLoop(zeros, [&](Value l, ValueRange sums, ValueRange raw) {
      SmallVector<Value> wg, dl, next(sums);
      queryRows(raw, wg, dl);
      for (unsigned i = g0; i < g1; ++i) {
        Value aV = em.splat(load(coef, coefAt(0, l, i)));
        Value k1V = em.splat(load(coef, coefAt(1, l, i)));
        for (unsigned j = 0; j < c; ++j) {
          Value &v = next[(i - g0) * c + j];
          v = em.fma(k1V, wg[j], em.fma(aV, dl[j], v));
        }
      }
      return next;
    });
    for (unsigned i = g0; i < g1; ++i)
      finish(i, loop.getResults().slice((i - g0) * c, c));
  }
  return fn;
}

std::string BlockScoreParamGradSpec::getName() const {
  return "block_score_grad_params_" + typeSuffix(elementType) + "_d" +
         std::to_string(d) + "_s" + std::to_string(numQueries) + "_n" +
         std::to_string(numSources);
}

gpu::GPUFuncOp gpu_kernels::buildBlockScoreParamGradKernel(
    OpBuilder &b, Location loc, const BlockScoreParamGradSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  Type e = spec.elementType, f32 = b.getF32Type();
  int64_t d = spec.d, dyn = ShapedType::kDynamic;
  unsigned n = spec.numSources, s = spec.numQueries, vw = spec.vectorWidth;
  SmallVector<Type> args(n, rowsType(e, d));
  args.push_back(MemRefType::get({dyn, int64_t(s * n)}, f32));
  args.push_back(MemRefType::get({dyn, int64_t(s) * d}, f32));
  args.push_back(b.getIndexType());
  RowLayout layout;
  layout.threadsPerToken = BlockScoreParamGradSpec::kThreads;
  gpu::GPUFuncOp fn = createKernel(b, loc, spec.getName(), args, {}, layout);
  Block &entry = fn.getBody().front();
  SmallVector<Value> sources;
  for (unsigned i = 0; i < n; ++i)
    sources.push_back(entry.getArgument(i));
  Value coef = entry.getArgument(n), ws = entry.getArgument(n + 1);
  Value numTokens = entry.getArgument(n + 2);

  auto idx = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  // CTA c * tiles + t: column tile t of token chunk c.
  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value tiles = idx(spec.numTiles());
  Value tile = arith::RemUIOp::create(b, loc, bid, tiles);
  Value chunkId = arith::DivUIOp::create(b, loc, bid, tiles);
  Value chunks = arith::DivUIOp::create(
      b, loc, gpu::GridDimOp::create(b, loc, gpu::Dimension::x), tiles);
  Value vecIdx = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, tile,
                            idx(BlockScoreParamGradSpec::kThreads)),
      tid);
  Value valid = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, vecIdx,
                                      idx(d / vw));
  Value col = arith::MulIOp::create(b, loc, vecIdx, idx(vw));
  Value chunk = arith::CeilDivUIOp::create(b, loc, numTokens, chunks);
  Value begin = arith::MinUIOp::create(
      b, loc, arith::MulIOp::create(b, loc, chunkId, chunk), numTokens);
  Value end = arith::MinUIOp::create(
      b, loc, arith::AddIOp::create(b, loc, begin, chunk), numTokens);
  auto storageType = VectorType::get({vw}, e);
  auto f32Vec = VectorType::get({vw}, f32);
  uint64_t align = vw * (e.getIntOrFloatBitWidth() / 8);
  buildIf(b, loc, valid, [&]() {
    Value zero = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(f32Vec, b.getF32FloatAttr(0.0)));
    SmallVector<Value> init(s, zero);
    auto loop = scf::ForOp::create(b, loc, begin, end, idx(1), init);
    {
      OpBuilder::InsertionGuard lg(b);
      b.setInsertionPointToStart(loop.getBody());
      Value t = loop.getInductionVar();
      SmallVector<Value> sums(loop.getRegionIterArgs());
      for (unsigned i = 0; i < n; ++i) {
        Value x = vector::LoadOp::create(
            b, loc, storageType, sources[i], ValueRange{t, col},
            /*nontemporal=*/false, llvm::MaybeAlign(align));
        if (!e.isF32())
          x = arith::ExtFOp::create(b, loc, f32Vec, x);
        for (unsigned l = 0; l < s; ++l) {
          Value k1 = memref::LoadOp::create(b, loc, coef,
                                            ValueRange{t, idx(l * n + i)});
          Value k1V = vector::BroadcastOp::create(b, loc, f32Vec, k1);
          sums[l] = vector::FMAOp::create(b, loc, k1V, x, sums[l]);
        }
      }
      scf::YieldOp::create(b, loc, sums);
    }
    uint64_t wsAlign = std::min<uint64_t>(16, 4 * vw);
    for (unsigned l = 0; l < s; ++l) {
      Value at = arith::AddIOp::create(b, loc, col, idx(int64_t(l) * d));
      vector::StoreOp::create(b, loc, loop.getResult(l), ws,
                              ValueRange{chunkId, at},
                              /*nontemporal=*/false, llvm::MaybeAlign(wsAlign));
    }
  });
  return fn;
}
