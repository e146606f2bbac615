//===- BlockScoreGradTCKernel.cpp - block_score_grad on tensor cores ------===//
//
// Part of the attnres project.
//
// The per-token kernel of `attnres.block_score_grad` (spec I.3) for bf16
// rows, with the 2 S n dot products of a token on the tensor cores
// (docs/gpu.md "Backward kernels"). One CTA per token; phases, in order:
//   sweep 1      mma over the token's columns: A = the n source rows, B =
//                w*g of the S queries (split exactly into bf16 hi + lo, as
//                the forward phase-1 kernel) and the S rows of dout;
//                per-warp partials of wg_l . b_i and b_i . dout_l
//   totals       sums over the warps, z_li = r_i (wg_l . b_i)
//   coefficients one thread per query: a_li, dz_li, k1_li = dz_li r_i
//   K2           one thread per source: K2_i = sum_l k1_li r_i z_li / D
//   sweep 2      CUDA cores: db_i = [acc_i +] sum_l (a_li dout_l + k1_li wg_l)
//                - K2_i b_i, the rows re-read (L1 / L2 hits); with
//                score-grad-mma-sweep on the tensor cores (emitSweep2Mma)
// With split-query-gains the queries and gains arguments hold w*g split into
// bf16 hi and lo (QueryGainSplitKernel.cpp), which sweep 1 loads as they are.
// The CUDA-core kernel (BlockScoreGradKernel.cpp) reduces the 2 n dot
// products of each query across the CTA (a warp tree and a barrier per
// query); that reduction was most of its instructions (bench/NOTES.md run
// 26). Here the mma accumulates over the columns inside a warp and one
// barrier sums the warps' partials of all S n pairs.
//
//===----------------------------------------------------------------------===//

#include "GradKernelHelpers.h"
#include "NVVMHelpers.h"

#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <array>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

std::string BlockScoreGradTCSpec::getName() const {
  return "block_score_grad_" + typeSuffix(elementType) + "_d" +
         std::to_string(d) + "_s" + std::to_string(numQueries) + "_n" +
         std::to_string(numSources) + "_tc" +
         (sweepWidth != 4 ? "_w" + std::to_string(sweepWidth) : "") +
         (threads != defaultThreads(d) ? "_t" + std::to_string(threads) : "") +
         (persistent ? "_p" : "") +
         (sharedRows == numSources + numQueries ? "_shared"
          : sharedRows ? "_shared" + std::to_string(sharedRows)
                       : "") +
         (accumulate ? "_acc" : "") + (splitQueries ? "_qs" : "") +
         (mmaSweep ? "_ms" : "");
}

SmallVector<SmallVector<int64_t>> BlockScoreGradTCSpec::regionShapes() const {
  int64_t w = threads / 32, ni = numSources, si = numQueries;
  int64_t nPad = int64_t(llvm::alignTo(numSources, 4));
  return {{w, ni, si}, {w, ni, si},   {si * ni},
          {si * ni},   {si, 2, nPad}, {nPad}};
}

// As aggregate_grad's (AggregateGradKernel.cpp): with rows in shared memory
// all of the kernel's shared memory is one dynamic allocation.
int64_t BlockScoreGradTCSpec::dynamicSharedBytes() const {
  if (!sharedRows)
    return 0;
  int64_t rows = int64_t(sharedRows) * sharedRowStride() *
                 (elementType.getIntOrFloatBitWidth() / 8);
  return llvm::alignTo(rows, 16) + regionBytes();
}

int64_t BlockScoreGradTCSpec::regionBytes() const {
  int64_t total = 0;
  for (ArrayRef<int64_t> shape : regionShapes())
    total = llvm::alignTo(total, 16) + 4 * ShapedType::getNumElements(shape);
  return llvm::alignTo(total, 16);
}

unsigned BlockScoreGradTCSpec::defaultThreads(int64_t d) {
  // 16 elements per thread (two 32-element blocks per warp and lane group)
  // up to 256 threads.
  return ctaThreadsFor(d, 16, 256);
}

RowLayout BlockScoreGradTCSpec::layout() const {
  RowLayout l;
  l.d = d;
  l.vectorWidth = 8;
  l.numVectors = d / 8;
  l.threadsPerToken = threads;
  l.tokensPerCta = 1;
  l.minCtasPerSM = minCtasPerSM;
  return l;
}

namespace {

/// Bytes of summary and accumulator rows a thread requests before the
/// source-gradient loop (n = 9 with accumulators at 4 columns: 144 bytes;
/// beyond that registers run short: n = 24 at 32 threads spilled).
constexpr uint64_t kSweep2HoistBytes = 144;

class GradTCBuilder {
public:
  GradTCBuilder(OpBuilder &b, Location loc, const BlockScoreGradTCSpec &spec)
      : b(b), loc(loc), spec(spec), e(spec.elementType), f32(b.getF32Type()),
        d(spec.d), n(spec.numSources), s(spec.numQueries),
        threads(spec.threads), warps(spec.threads / 32),
        nPad(unsigned(llvm::alignTo(spec.numSources, 4))),
        layout(spec.layout()), em(b, loc, layout, spec.elementType),
        tc(b, loc) {}

  gpu::GPUFuncOp build() {
    createFunction();
    emitIndices();
    if (spec.persistent)
      emitTokenLoop();
    else
      emitToken();
    return fn;
  }

private:
  using P = arith::CmpIPredicate;

  void createFunction();
  void emitIndices();
  /// The phases of one token (`token`).
  void emitToken() {
    emitSweep1();
    emitTotals();
    emitCoefficients();
    emitK2();
    if (spec.mmaSweep)
      emitSweep2Mma();
    else
      emitSweep2();
  }
  /// Persistent: the CTA's chunk of tokens, each token's rows requested
  /// into L2 while the previous one is computed.
  void emitTokenLoop();
  /// Requests every line of token `tok`'s source and dout rows into L2.
  void emitPrefetchToken(Value tok);
  void emitSweep1();
  void emitStashStores(ArrayRef<std::array<Value, 2>> x, ArrayRef<Value> dl,
                       Value off, Value eok);
  void emitTotals();
  void emitCoefficients();
  void emitK2();
  void emitSweep2();
  /// score-grad-mma-sweep: the source gradients on the tensor cores.
  void emitSweep2Mma();

  Value both(Value x, Value y) {
    if (!x)
      return y;
    if (!y)
      return x;
    return tc.andI(x, y);
  }
  Value load(Value m, ValueRange ix) {
    return memref::LoadOp::create(b, loc, m, ix);
  }
  void store(Value v, Value m, ValueRange ix) {
    memref::StoreOp::create(b, loc, v, m, ix);
  }
  /// The sum over the warps of `part` at (w, idx...), warps in order.
  Value warpSum(Value part, ValueRange idx) {
    SmallVector<Value> at{tc.idx(0)};
    at.append(idx.begin(), idx.end());
    Value v = load(part, at);
    for (unsigned w = 1; w < warps; ++w) {
      at[0] = tc.idx(w);
      v = arith::AddFOp::create(b, loc, v, load(part, at));
    }
    return v;
  }
  /// Runs `body(j)` for j = tid, tid + threads, ... < count: under one
  /// condition when count <= threads, else in a loop.
  template <typename Fn> void forThreads(unsigned count, Fn body) {
    if (count <= threads) {
      tc.when(tc.cmp(P::ult, tid, tc.idx(count)), [&]() { body(tid); });
      return;
    }
    Value upper = tc.idx(count);
    Value step = tc.idx(threads);
    auto loop = scf::ForOp::create(b, loc, tid, upper, step);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    body(loop.getInductionVar());
  }
  /// `invRms[i][token]` for a run-time source index i.
  Value invRmsAt(Value i) {
    Value src = invRms[0];
    for (unsigned k = 1; k < n; ++k)
      src = arith::SelectOp::create(b, loc, tc.cmp(P::eq, i, tc.idx(k)),
                                    invRms[k], src);
    return load(src, ValueRange{token});
  }

  OpBuilder &b;
  Location loc;
  const BlockScoreGradTCSpec &spec;
  Type e, f32;
  int64_t d;
  unsigned n, s, threads, warps, nPad;
  RowLayout layout;
  RowEmitter em;
  TCEmitter tc;

  gpu::GPUFuncOp fn;
  // Kernel arguments (buildBlockScoreGradKernel's).
  Value queries, gains, lse, dout, dlse, coefOut, numTokens;
  SmallVector<Value> sources, invRms, accs, grads;
  // Workgroup memory: per-warp partials zPart / daPart (warps x n x S),
  // totals zTot / daTot (S x n: l n + i; zTot then holds k1_li r_i z_li / D),
  // coefficients coefSm (S x 2 x nPad: a_li, k1_li), K2 (nPad).
  Value zPart, daPart, zTot, daTot, coefSm, k2Sm;
  // With shared rows: memref<sharedRows x sharedRowStride x E>, rows 0..n-1
  // the sources, n + l dout_l.
  Value stash;

  Value tid, token, lane, warp, grp, tig;
  VectorType v8e, v8f, v8i;
  unsigned mTiles = 0, nTiles = 0;
  SmallVector<std::array<FragmentRow, 2>> rows;
};

} // namespace

void GradTCBuilder::createFunction() {
  SmallVector<Type> args =
      grad::blockScoreGradArgTypes(b, e, d, s, n, spec.accumulate);

  auto ws =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  SmallVector<Type> wgTypes;
  for (ArrayRef<int64_t> shape : spec.regionShapes())
    wgTypes.push_back(
        MemRefType::get(shape, f32, MemRefLayoutAttrInterface(), ws));
  bool dynamicShared = spec.sharedRows > 0;
  fn = createKernel(b, loc, spec.getName(), args,
                    dynamicShared ? ArrayRef<Type>() : wgTypes, layout);
  if (!dynamicShared)
    for (unsigned k = 0; k < wgTypes.size(); ++k)
      fn.setWorkgroupAttributionAttr(k, LLVM::LLVMDialect::getAlignAttrName(),
                                     b.getI64IntegerAttr(16));
  Block &entry = fn.getBody().front();
  grad::BlockScoreGradArgs ka(entry, n, spec.accumulate);
  queries = ka.queries;
  gains = ka.gains;
  lse = ka.lse;
  dout = ka.dout;
  dlse = ka.dlse;
  coefOut = ka.coefOut;
  numTokens = ka.numTokens;
  sources = ka.sources;
  invRms = ka.invRms;
  accs = ka.accs;
  grads = ka.grads;
  // The regions: attributions, or views of the dynamic allocation after the
  // shared rows.
  SmallVector<Value> wg(fn.getWorkgroupAttributions());
  if (dynamicShared)
    stash = grad::viewSharedRows(b, loc, e, spec.sharedRows,
                                 spec.sharedRowStride(), wgTypes, wg);
  zPart = wg[0];
  daPart = wg[1];
  zTot = wg[2];
  daTot = wg[3];
  coefSm = wg[4];
  k2Sm = wg[5];
}

void GradTCBuilder::emitIndices() {
  tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  token = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  TCEmitter::LaneIndices li = tc.laneIndices(tid);
  lane = li.lane;
  warp = li.warp;
  grp = li.grp;
  tig = li.tig;
  v8e = VectorType::get({8}, e);
  v8f = VectorType::get({8}, f32);
  v8i = VectorType::get({8}, tc.i32);
  mTiles = llvm::divideCeil(n, 16);
  nTiles = llvm::divideCeil(s, 8);
  rows = tc.fragmentRows(sources, grp);
}

void GradTCBuilder::emitPrefetchToken(Value tok) {
  emitL2PrefetchRows(b, loc, sources, tok, e, d, tid, threads);
  int64_t rowBytes = d * (e.getIntOrFloatBitWidth() / 8);
  Type i64 = b.getI64Type();
  Value base = arith::IndexCastOp::create(
      b, loc, i64,
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, dout));
  for (unsigned l = 0; l < s; ++l) {
    // Row (l, tok) of dout: (l T + tok) rows from the base.
    Value row = tc.add(tc.mul(numTokens, tc.idx(l)), tok);
    Value off =
        arith::IndexCastOp::create(b, loc, i64, tc.mul(row, tc.idx(rowBytes)));
    emitL2PrefetchBytes(b, loc, arith::AddIOp::create(b, loc, base, off),
                        rowBytes, tid, threads);
  }
}

void GradTCBuilder::emitTokenLoop() {
  // Tokens [begin, end) of this CTA (ceil(T / grid) consecutive ones). The
  // first token's rows are requested before the loop, each next token's at
  // the start of the current one, so that its DRAM reads overlap this
  // token's barriers and coefficient phases; a barrier ends each token
  // (the next one overwrites the shared regions).
  std::pair<Value, Value> range = grad::ctaTokenRange(b, loc, numTokens);
  Value begin = range.first, end = range.second;
  if (spec.prefetchL2)
    tc.when(tc.cmp(P::ult, begin, end), [&]() { emitPrefetchToken(begin); });
  auto loop = scf::ForOp::create(b, loc, begin, end, tc.idx(1));
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  token = loop.getInductionVar();
  if (spec.prefetchL2) {
    Value next = tc.add(token, tc.idx(1));
    tc.when(tc.cmp(P::ult, next, end), [&]() { emitPrefetchToken(next); });
  }
  emitToken();
  gpu::BarrierOp::create(b, loc);
}

void GradTCBuilder::emitSweep1() {
  // Every line of the token's source and dout rows is requested into L2
  // first (no registers held), so that all of its DRAM reads are in flight
  // at once; the fragment loads below then hit L2. (Persistent: requested
  // one token ahead by the token loop.)
  if (spec.prefetchL2 && !spec.persistent)
    emitPrefetchToken(token);

  // Warp w handles the 32-element blocks w, w + warps, ...; lane (grp, tig)
  // loads elements [8 tig, 8 tig + 8) of its rows; the k index of the mma
  // is permuted so that k-tile kt holds elements 8 tig + 4 kt + {0..3}
  // (the sums over k do not depend on the order of k).
  int64_t numBlocks = llvm::divideCeil(d, int64_t(32));
  unsigned blocksPerWarp = llvm::divideCeil(numBlocks, int64_t(warps));
  auto elemOffset = [&](unsigned k) {
    return tc.blockOffset(warp, tig, warps, k);
  };
  auto elemOk = [&](unsigned k, Value off) -> Value {
    return tc.blockOk(warps, k, off, d);
  };
  // The query of column grp of B tile t, clamped into range (padding
  // queries, q >= S, read row S - 1 and are zeroed), and whether it is one.
  auto queryOf = [&](unsigned t) -> std::pair<Value, Value> {
    Value q = tc.add(grp, tc.idx(8 * t));
    if (8 * t + 8 <= s)
      return {q, Value()};
    Value clamped = arith::MinUIOp::create(b, loc, q, tc.idx(s - 1));
    Value ok = tc.cmp(P::ult, q, tc.idx(s));
    return {clamped, ok};
  };
  Value zeroV = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(v8f, b.getF32FloatAttr(0.0)));
  Value zeroE = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(v8e, b.getFloatAttr(e, 0.0)));

  // x[k][m][h] (sources) and dl[k][t] (dout) of block k, issued `depth`
  // blocks ahead of their mma.
  SmallVector<SmallVector<std::array<Value, 2>>> xs(blocksPerWarp);
  SmallVector<SmallVector<Value>> dls(blocksPerWarp);
  auto issue = [&](unsigned k) {
    if (k >= blocksPerWarp)
      return;
    Value off = elemOffset(k);
    Value eok = elemOk(k, off);
    xs[k].resize(mTiles);
    for (unsigned m = 0; m < mTiles; ++m)
      for (unsigned h = 0; h < 2; ++h) {
        FragmentRow &r = rows[m][h];
        if (r.any)
          xs[k][m][h] = tc.maybeLoad(v8e, r.memref, ValueRange{token, off},
                                     both(r.ok, eok), 16);
      }
    for (unsigned t = 0; t < nTiles; ++t) {
      auto [q, qok] = queryOf(t);
      Value v = tc.maybeLoad(v8e, dout, ValueRange{q, token, off}, eok, 16);
      if (qok)
        v = arith::SelectOp::create(b, loc, qok, v, zeroE);
      dls[k].push_back(v);
    }
  };
  unsigned depth = std::max(1u, spec.prefetchBlocks);
  for (unsigned k = 0; k < std::min(depth, blocksPerWarp); ++k)
    issue(k);

  Value zero = tc.f32c(0.0);
  Value zeroI = tc.i32c(0);
  using Acc = SmallVector<SmallVector<SmallVector<Value>>>;
  Acc accHi(mTiles,
            SmallVector<SmallVector<Value>>(nTiles, {zero, zero, zero, zero}));
  Acc accLo = accHi, accDa = accHi;
  Value hiMask = arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(v8i, b.getI32IntegerAttr(int32_t(0xFFFF0000))));

  for (unsigned k = 0; k < blocksPerWarp; ++k) {
    issue(k + depth);
    Value off = elemOffset(k);
    Value eok = elemOk(k, off);
    // w*g of query 8 t + grp at this lane's 8 elements, split exactly into
    // bf16 hi (the top 8 significant bits) and lo = wg - hi.
    SmallVector<SmallVector<Value>> wgHi(nTiles), wgLo(nTiles), dB(nTiles);
    for (unsigned t = 0; t < nTiles; ++t) {
      auto [q, qok] = queryOf(t);
      Value wv = tc.maybeLoad(v8e, queries, ValueRange{q, off}, eok, 16);
      Value gv = tc.maybeLoad(v8e, gains, ValueRange{q, off}, eok, 16);
      if (spec.splitQueries) {
        // split-query-gains: the arguments hold the two halves already.
        if (qok) {
          wv = arith::SelectOp::create(b, loc, qok, wv, zeroE);
          gv = arith::SelectOp::create(b, loc, qok, gv, zeroE);
        }
        wgHi[t] = tc.regs(wv);
        wgLo[t] = tc.regs(gv);
        dB[t] = tc.regs(dls[k][t]);
        continue;
      }
      Value wf = arith::ExtFOp::create(b, loc, v8f, wv);
      Value gf = arith::ExtFOp::create(b, loc, v8f, gv);
      Value wg = arith::MulFOp::create(b, loc, wf, gf);
      if (qok)
        wg = arith::SelectOp::create(b, loc, qok, wg, zeroV);
      std::tie(wgHi[t], wgLo[t]) = tc.splitBF16(wg, hiMask);
      dB[t] = tc.regs(dls[k][t]);
    }
    for (unsigned m = 0; m < mTiles; ++m) {
      SmallVector<Value> lo = tc.regs(xs[k][m][0]);
      SmallVector<Value> hi =
          rows[m][1].any ? tc.regs(xs[k][m][1]) : SmallVector<Value>(4, zeroI);
      for (unsigned kt = 0; kt < 2; ++kt) {
        SmallVector<Value> fa{lo[2 * kt], hi[2 * kt], lo[2 * kt + 1],
                              hi[2 * kt + 1]};
        for (unsigned t = 0; t < nTiles; ++t) {
          accHi[m][t] = emitMmaBF16(
              b, loc, fa, {wgHi[t][2 * kt], wgHi[t][2 * kt + 1]}, accHi[m][t]);
          accLo[m][t] = emitMmaBF16(
              b, loc, fa, {wgLo[t][2 * kt], wgLo[t][2 * kt + 1]}, accLo[m][t]);
          accDa[m][t] = emitMmaBF16(
              b, loc, fa, {dB[t][2 * kt], dB[t][2 * kt + 1]}, accDa[m][t]);
        }
      }
    }
    if (stash)
      emitStashStores(xs[k], dls[k], off, eok);
    xs[k].clear();
    dls[k].clear();
  }

  // Per-warp partials to workgroup memory. Accumulator register r of a lane:
  // row (source) grp + 8 (r / 2), column (query) 2 tig + r % 2.
  Value twoTig = tc.mul(tig, tc.idx(2));
  for (unsigned m = 0; m < mTiles; ++m)
    for (unsigned t = 0; t < nTiles; ++t)
      for (unsigned r = 0; r < 4; ++r) {
        Value i = tc.add(grp, tc.idx(16 * m + 8 * (r / 2)));
        Value q = tc.add(twoTig, tc.idx(8 * t + r % 2));
        Value iOk = 16 * m + 8 * (r / 2) + 8 <= n
                        ? Value()
                        : tc.cmp(P::ult, i, tc.idx(n));
        Value qOk = 8 * t + 8 <= s ? Value() : tc.cmp(P::ult, q, tc.idx(s));
        Value z = arith::AddFOp::create(b, loc, accHi[m][t][r], accLo[m][t][r]);
        tc.when(both(iOk, qOk), [&]() {
          store(z, zPart, ValueRange{warp, i, q});
          store(accDa[m][t][r], daPart, ValueRange{warp, i, q});
        });
      }
  gpu::BarrierOp::create(b, loc);
}

void GradTCBuilder::emitStashStores(ArrayRef<std::array<Value, 2>> x,
                                    ArrayRef<Value> dl, Value off, Value eok) {
  // Lane (grp, tig) holds row base + grp of each fragment at columns
  // [off, off + 8): sources base = 16 m + 8 h, dout rows base = 8 t (query
  // 8 t + grp, at stash row n + 8 t + grp). Rows past the stash, and
  // padding rows or queries, are not stored.
  auto storeRows = [&](Value v, unsigned base, unsigned limit,
                       unsigned stashBase) {
    if (base >= limit)
      return;
    Value rowOk =
        base + 8 <= limit ? Value() : tc.cmp(P::ult, grp, tc.idx(limit - base));
    tc.when(both(rowOk, eok), [&]() {
      Value row = tc.add(grp, tc.idx(stashBase + base));
      vector::StoreOp::create(b, loc, v, stash, ValueRange{row, off},
                              /*nontemporal=*/false, llvm::MaybeAlign(16));
    });
  };
  unsigned sourcesShared = std::min(n, spec.sharedRows);
  unsigned queriesShared = spec.sharedRows > n ? spec.sharedRows - n : 0;
  for (unsigned m = 0; m < mTiles; ++m)
    for (unsigned h = 0; h < 2; ++h)
      if (rows[m][h].any)
        storeRows(x[m][h], 16 * m + 8 * h, sourcesShared, 0);
  for (unsigned t = 0; t < nTiles; ++t)
    storeRows(dl[t], 8 * t, queriesShared, n);
}

void GradTCBuilder::emitTotals() {
  // Thread t, t + threads, ... < S n: the pair (l, i) = (t / n, t % n).
  Value upper = tc.idx(int64_t(s) * n);
  Value step = tc.idx(threads);
  auto loop = scf::ForOp::create(b, loc, tid, upper, step);
  {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    Value t = loop.getInductionVar();
    Value l = arith::DivUIOp::create(b, loc, t, tc.idx(n));
    Value i = arith::RemUIOp::create(b, loc, t, tc.idx(n));
    Value r = invRmsAt(i);
    Value dot = warpSum(zPart, ValueRange{i, l});
    Value z = arith::MulFOp::create(b, loc, r, dot);
    store(z, zTot, ValueRange{t});
    store(warpSum(daPart, ValueRange{i, l}), daTot, ValueRange{t});
  }
  gpu::BarrierOp::create(b, loc);
}

void GradTCBuilder::emitCoefficients() {
  // One thread per query l (as BlockScoreGradKernel.cpp's pass 1; threads
  // take several queries when S > threads):
  //   e_li = exp(z_li - lse_l), a_li = e_li / sum_j e_lj (exactly softmax),
  //   dz_li = a_li (da_li - sum_j a_lj da_lj + dlse_l) (sources in order),
  //   k1_li = dz_li r_i; zTot[l n + i] := k1_li r_i z_li / D.
  Value invD = tc.f32c(1.0 / double(d));
  forThreads(s, [&](Value l) {
    Value base = tc.mul(l, tc.idx(n));
    SmallVector<Value> at, z, da, r, aw;
    for (unsigned i = 0; i < n; ++i) {
      at.push_back(tc.add(base, tc.idx(i)));
      z.push_back(load(zTot, at[i]));
      da.push_back(load(daTot, at[i]));
      r.push_back(load(invRms[i], ValueRange{token}));
    }
    Value lseL = load(lse, ValueRange{l, token});
    Value dlseL = load(dlse, ValueRange{l, token});
    Value sumE = tc.f32c(0.0);
    for (unsigned i = 0; i < n; ++i) {
      aw.push_back(em.exp(arith::SubFOp::create(b, loc, z[i], lseL)));
      sumE = arith::AddFOp::create(b, loc, sumE, aw[i]);
    }
    Value norm = arith::DivFOp::create(b, loc, tc.f32c(1.0), sumE);
    Value sum = tc.f32c(0.0);
    for (unsigned i = 0; i < n; ++i) {
      aw[i] = arith::MulFOp::create(b, loc, aw[i], norm);
      sum = arith::AddFOp::create(b, loc, sum,
                                  arith::MulFOp::create(b, loc, aw[i], da[i]));
    }
    for (unsigned i = 0; i < n; ++i) {
      Value centered = arith::SubFOp::create(b, loc, da[i], sum);
      Value withLse = arith::AddFOp::create(b, loc, centered, dlseL);
      Value dz = arith::MulFOp::create(b, loc, aw[i], withLse);
      Value k1 = arith::MulFOp::create(b, loc, dz, r[i]);
      Value k1r = arith::MulFOp::create(b, loc, k1, r[i]);
      Value k1rz = arith::MulFOp::create(b, loc, k1r, z[i]);
      store(arith::MulFOp::create(b, loc, k1rz, invD), zTot, at[i]);
      store(aw[i], coefSm, ValueRange{l, tc.idx(0), tc.idx(i)});
      store(k1, coefSm, ValueRange{l, tc.idx(1), tc.idx(i)});
      store(k1, coefOut, ValueRange{token, at[i]});
    }
  });
  gpu::BarrierOp::create(b, loc);
}

void GradTCBuilder::emitK2() {
  // K2_i = sum_l k1_li r_i z_li / D, queries in order, one thread per
  // source (or several sources, when n > threads).
  forThreads(n, [&](Value i) {
    Value sum = tc.f32c(0.0);
    for (unsigned l = 0; l < s; ++l)
      sum = arith::AddFOp::create(
          b, loc, sum, load(zTot, tc.add(tc.idx(int64_t(l) * n), i)));
    store(sum, k2Sm, ValueRange{i});
  });
  gpu::BarrierOp::create(b, loc);
}

void GradTCBuilder::emitSweep2() {
  // Thread t owns the chunks c = t, t + threads, ... of `sw` elements; per
  // chunk g_i = sum_l (a_li dout_l + k1_li wg_l) in query order (a loop
  // over l, not unrolled, the n sums and the next query's rows carried),
  // then db_i = [acc_i +] (g_i - K2_i b_i), rounded once. The coefficients
  // of query l are read four sources at a time (16-byte loads, broadcast).
  unsigned sw = spec.sweepWidth;
  auto vwE = VectorType::get({sw}, e);
  auto vwF = VectorType::get({sw}, f32);
  auto v4f = VectorType::get({4}, f32);
  uint64_t align = sw * (e.getIntOrFloatBitWidth() / 8);
  int64_t numChunks = d / sw;
  unsigned chunksPerThread = llvm::divideCeil(numChunks, int64_t(threads));
  Value zeroF = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(vwF, b.getF32FloatAttr(0.0)));
  for (unsigned k = 0; k < chunksPerThread; ++k) {
    Value c = tc.add(tid, tc.idx(int64_t(k) * threads));
    Value ok = int64_t(k + 1) * threads <= numChunks
                   ? Value()
                   : tc.cmp(P::ult, c, tc.idx(numChunks));
    tc.when(ok, [&]() {
      Value off = tc.mul(c, tc.idx(sw));
      auto loadRaw = [&](Value m, ValueRange ix) -> Value {
        return vector::LoadOp::create(b, loc, vwE, m, ix,
                                      /*nontemporal=*/false,
                                      llvm::MaybeAlign(align));
      };
      auto ext = [&](Value raw) -> Value {
        return arith::ExtFOp::create(b, loc, vwF, raw);
      };
      // dout_l at this chunk: from the stash for the queries it holds.
      unsigned queriesShared = spec.sharedRows > n ? spec.sharedRows - n : 0;
      auto loadDout = [&](Value l) -> Value {
        auto fromStash = [&]() {
          return loadRaw(stash, ValueRange{tc.add(l, tc.idx(n)), off});
        };
        if (queriesShared == s)
          return fromStash();
        if (queriesShared == 0)
          return loadRaw(dout, ValueRange{l, token, off});
        return buildIfElse(
                   b, loc, tc.cmp(P::ult, l, tc.idx(queriesShared)),
                   [&](Location) { return fromStash(); },
                   [&](Location) {
                     return loadRaw(dout, ValueRange{l, token, off});
                   })
            .getResult(0);
      };
      // W_l, G_l (or the halves of w*g) and dout_l at this chunk, as
      // stored.
      auto loadQuery = [&](Value l) -> SmallVector<Value> {
        return {loadRaw(queries, ValueRange{l, off}),
                loadRaw(gains, ValueRange{l, off}), loadDout(l)};
      };
      // The summary (and accumulator) rows of the chunk that come from
      // global memory are requested before the loop where they take at most
      // kSweep2HoistBytes per thread: their loads are in flight while it
      // runs (after it, the stores of db would keep them from being
      // hoisted). Else, and for the rows of the stash, they are loaded after
      // the loop.
      SmallVector<Value> xRaw(n), accRaw(n);
      unsigned sourcesShared = std::min(n, spec.sharedRows);
      auto loadGlobalRows = [&](unsigned i) {
        if (i >= sourcesShared)
          xRaw[i] = loadRaw(sources[i], ValueRange{token, off});
        if (spec.accumulate)
          accRaw[i] = loadRaw(accs[i], ValueRange{token, off});
      };
      unsigned globalRows = (n - sourcesShared) + (spec.accumulate ? n : 0);
      bool hoist = globalRows * align <= kSweep2HoistBytes;
      if (hoist)
        for (unsigned i = 0; i < n; ++i)
          loadGlobalRows(i);
      // A loop over the queries carrying the n sums and the next query's
      // rows, loaded one iteration ahead (the last iteration re-loads its
      // own, L1 hits).
      SmallVector<Value> init(n, zeroF);
      Value lb = tc.idx(0), ub = tc.idx(s), one = tc.idx(1);
      init.append(loadQuery(lb));
      auto loop = scf::ForOp::create(b, loc, lb, ub, one, init);
      {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToStart(loop.getBody());
        Value l = loop.getInductionVar();
        ValueRange iter = loop.getRegionIterArgs();
        SmallVector<Value> sums(iter.take_front(n));
        Value lPlus1 = tc.add(l, tc.idx(1));
        Value last = tc.idx(s - 1);
        Value next = arith::MinUIOp::create(b, loc, lPlus1, last);
        SmallVector<Value> rawNext = loadQuery(next);
        Value wv = ext(iter[n]);
        Value gv = ext(iter[n + 1]);
        // w*g, or (split-query-gains) its halves added: exactly w*g too.
        Value wg = spec.splitQueries
                       ? arith::AddFOp::create(b, loc, wv, gv).getResult()
                       : arith::MulFOp::create(b, loc, wv, gv).getResult();
        Value dl = ext(iter[n + 2]);
        for (unsigned g4 = 0; g4 < nPad / 4; ++g4) {
          Value a4 = vector::LoadOp::create(
              b, loc, v4f, coefSm, ValueRange{l, tc.idx(0), tc.idx(4 * g4)},
              /*nontemporal=*/false, llvm::MaybeAlign(16));
          Value k4 = vector::LoadOp::create(
              b, loc, v4f, coefSm, ValueRange{l, tc.idx(1), tc.idx(4 * g4)},
              /*nontemporal=*/false, llvm::MaybeAlign(16));
          for (unsigned ii = 0; ii < 4 && 4 * g4 + ii < n; ++ii) {
            unsigned i = 4 * g4 + ii;
            auto splat = [&](Value v4) -> Value {
              return vector::BroadcastOp::create(
                  b, loc, vwF,
                  vector::ExtractOp::create(b, loc, v4,
                                            ArrayRef<int64_t>{int64_t(ii)}));
            };
            Value v = vector::FMAOp::create(b, loc, splat(a4), dl, sums[i]);
            sums[i] = vector::FMAOp::create(b, loc, splat(k4), wg, v);
          }
        }
        sums.append(rawNext);
        scf::YieldOp::create(b, loc, sums);
      }
      for (unsigned i = 0; i < n; ++i) {
        if (!hoist)
          loadGlobalRows(i);
        if (i < sourcesShared)
          xRaw[i] = loadRaw(stash, ValueRange{tc.idx(i), off});
        Value nk2 = vector::BroadcastOp::create(
            b, loc, vwF,
            arith::NegFOp::create(b, loc, load(k2Sm, ValueRange{tc.idx(i)})));
        Value v =
            vector::FMAOp::create(b, loc, nk2, ext(xRaw[i]), loop.getResult(i));
        if (spec.accumulate)
          v = arith::AddFOp::create(b, loc, ext(accRaw[i]), v);
        vector::StoreOp::create(b, loc, arith::TruncFOp::create(b, loc, vwE, v),
                                grads[i], ValueRange{token, off},
                                /*nontemporal=*/false, llvm::MaybeAlign(align));
      }
    });
  }
}

void GradTCBuilder::emitSweep2Mma() {
  // g (n x D) = C (n x K) . R (K x D) on the tensor cores. K runs over
  // pieces of 8 rows: the dout rows of queries 8j .. 8j + 7 (j < Q), then
  // the hi halves of w*g (the `queries` argument), then the lo halves (the
  // `gains` argument); C holds a_li for the dout pieces and k1_li for both
  // halves, each coefficient split into bf16 hi + lo (two mma). k-tile kt
  // is pieces 2 kt (k 0..7) and 2 kt + 1 (k 8..15).
  //
  // Warp w takes the 64-column blocks w, w + warps, ...; mma n-tile jn of a
  // block is the 8 columns base + 8 c + jn (c = 0..7), so that lane (grp,
  // tig) loads, for each of its two rows 2 tig, 2 tig + 1 of a piece, the
  // 16 bytes at columns base + 8 grp .. + 8 and pairs them column by column
  // into the B registers of all eight n-tiles (b0 b1: rows 2 tig, 2 tig + 1
  // of piece 2 kt at column base + 8 grp + jn; b2 b3: piece 2 kt + 1). Its
  // accumulators (c0 c1 / c2 c3 of every n-tile) are then columns base +
  // 16 tig .. + 16 of rows grp and grp + 8, in order: the epilogue reads and
  // writes two 16-byte vectors per row.
  unsigned q8 = unsigned(llvm::divideCeil(s, 8u));
  unsigned pieces = 3 * q8;
  unsigned kTiles = unsigned(llvm::divideCeil(pieces, 2u));
  enum Kind { Dout, Hi, Lo, Zero };
  auto kindOf = [&](unsigned p) -> std::pair<Kind, unsigned> {
    if (p < q8)
      return {Dout, p};
    if (p < 2 * q8)
      return {Hi, p - q8};
    if (p < 3 * q8)
      return {Lo, p - 2 * q8};
    return {Zero, 0};
  };
  // The lo part of the coefficients is needed unless both pieces of the
  // k-tile are lo halves of w*g (or empty): k1_lo * wg_lo is below 2^-16 of
  // the term.
  auto needsLo = [&](unsigned kt) {
    Kind k0 = kindOf(2 * kt).first, k1 = kindOf(2 * kt + 1).first;
    return k0 == Dout || k0 == Hi || k1 == Dout || k1 == Hi;
  };
  Value twoTig = tc.mul(tig, tc.idx(2));
  Value zeroF = tc.f32c(0.0);

  // The A fragments of every (m-tile, k-tile): element e of a lane is row
  // grp + 8 ((e / 2) % 2) of the m-tile, piece 2 kt + e / 4, row 2 tig +
  // e % 2 of the piece (registers a0a1, a2a3, a4a5, a6a7).
  auto v8f = VectorType::get({8}, f32);
  auto [aHi, aLo] = tc.splitFragmentsA(
      mTiles, kTiles, [&](unsigned m, unsigned kt, unsigned el) -> Value {
        std::pair<Kind, unsigned> kind = kindOf(2 * kt + el / 4);
        if (kind.first == Zero)
          return zeroF;
        Value i = tc.add(grp, tc.idx(16 * m + 8 * ((el / 2) % 2)));
        Value q = tc.add(twoTig, tc.idx(8 * kind.second + el % 2));
        Value iOk = tc.cmp(P::ult, i, tc.idx(n));
        Value qOk = tc.cmp(P::ult, q, tc.idx(s));
        Value ok = tc.andI(iOk, qOk);
        Value iC = arith::MinUIOp::create(b, loc, i, tc.idx(n - 1));
        Value qC = arith::MinUIOp::create(b, loc, q, tc.idx(s - 1));
        Value which = tc.idx(kind.first == Dout ? 0 : 1);
        Value c = load(coefSm, ValueRange{qC, which, iC});
        return arith::SelectOp::create(b, loc, ok, c, zeroF);
      });

  // The 16-byte vectors of block k: per piece, rows 2 tig and 2 tig + 1 at
  // columns off = base + 8 grp (zeros past D or past the S queries).
  int64_t numBlocks = llvm::divideCeil(d, int64_t(64));
  unsigned blocksPerWarp = llvm::divideCeil(numBlocks, int64_t(warps));
  Value zeroE = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(v8e, b.getFloatAttr(e, 0.0)));
  auto blockBase = [&](unsigned k) -> Value {
    return tc.sweepBlockBase(warp, warps, k);
  };
  auto colOk = [&](unsigned k, Value col) -> Value {
    return tc.sweepChunkOk(warps, k, col, d);
  };

  // Rows 2 tig and 2 tig + 1 of piece p at columns `off` (zeros where `ok`
  // is false, or past the S queries).
  auto loadPiece = [&](Value off, Value ok, unsigned p) {
    std::pair<Kind, unsigned> kind = kindOf(p);
    std::array<Value, 2> two;
    for (unsigned r = 0; r < 2; ++r) {
      Value q = tc.add(twoTig, tc.idx(8 * kind.second + r));
      Value qOk =
          8 * kind.second + 8 <= s ? Value() : tc.cmp(P::ult, q, tc.idx(s));
      Value qC =
          qOk ? Value(arith::MinUIOp::create(b, loc, q, tc.idx(s - 1))) : q;
      Value v;
      if (kind.first == Dout)
        v = tc.maybeLoad(v8e, dout, ValueRange{qC, token, off}, ok, 16);
      else
        v = tc.maybeLoad(v8e, kind.first == Hi ? queries : gains,
                         ValueRange{qC, off}, ok, 16);
      if (qOk)
        v = arith::SelectOp::create(b, loc, qOk, v, zeroE);
      two[r] = v;
    }
    return two;
  };
  // Pieces [p0, p1) of block k.
  auto issue = [&](unsigned k, unsigned p0,
                   unsigned p1) -> SmallVector<std::array<Value, 2>> {
    SmallVector<std::array<Value, 2>> rowsOut;
    if (k >= blocksPerWarp)
      return rowsOut;
    Value base = blockBase(k);
    Value off = tc.add(base, tc.mul(grp, tc.idx(8)));
    Value ok = colOk(k, off);
    for (unsigned p = p0; p < p1; ++p)
      rowsOut.push_back(loadPiece(off, ok, p));
    return rowsOut;
  };
  // Up to 6 pieces (S <= 16) the next block's rows are loaded while the
  // current one is computed. Beyond, each k-tile's two pieces are loaded in
  // its turn (at S = 40 the 15 pieces of two blocks held 240 registers of
  // rows, and ptxas spilled 7.6 KB).
  bool lookAhead = pieces <= 6;
  // The B register of n-tile jn from rows (x0, x1) of a piece: their
  // elements jn paired, x0's in the low half (k = 2 tig), x1's in the high.
  auto pairs = [&](std::array<Value, 2> x) -> SmallVector<Value> {
    return emitPairColumnsBF16(b, loc, x[0], x[1]);
  };

  SmallVector<std::array<FragmentRow, 2>> gradRows =
      tc.fragmentRows(grads, grp);
  SmallVector<std::array<FragmentRow, 2>> accRows;
  if (spec.accumulate)
    accRows = tc.fragmentRows(accs, grp);
  SmallVector<std::array<Value, 2>> next;
  if (lookAhead)
    next = issue(0, 0, pieces);
  for (unsigned k = 0; k < blocksPerWarp; ++k) {
    SmallVector<std::array<Value, 2>> cur = next;
    if (lookAhead)
      next = issue(k + 1, 0, pieces);
    Value base = blockBase(k);
    // The B registers of each piece: one per n-tile jn.
    SmallVector<SmallVector<Value>> piecePairs;
    if (lookAhead)
      for (unsigned p = 0; p < pieces; ++p)
        piecePairs.push_back(pairs(cur[p]));
    Value zeroI = tc.i32c(0);
    // The epilogue's columns: col0 = base + 16 tig (n-tiles' c0 / c2),
    // col1 = col0 + 8 (c1 / c3).
    Value col0 = tc.add(base, tc.mul(tig, tc.idx(16)));
    Value col1 = tc.add(col0, tc.idx(8));
    std::array<Value, 2> cols{col0, col1};
    std::array<Value, 2> colsOk{colOk(k, col0), colOk(k, col1)};
    for (unsigned m = 0; m < mTiles; ++m) {
      // The rows this lane writes, their summary and accumulator vectors
      // requested before the mma.
      std::array<std::array<Value, 2>, 2> xRaw, accRaw;
      for (unsigned h = 0; h < 2; ++h)
        for (unsigned c = 0; c < 2; ++c) {
          FragmentRow &r = rows[m][h];
          if (!r.any)
            continue;
          Value ok = both(r.ok, colsOk[c]);
          xRaw[h][c] =
              tc.maybeLoad(v8e, r.memref, ValueRange{token, cols[c]}, ok, 16);
          if (spec.accumulate)
            accRaw[h][c] = tc.maybeLoad(v8e, accRows[m][h].memref,
                                        ValueRange{token, cols[c]}, ok, 16);
        }
      SmallVector<SmallVector<Value>> acc(
          8, SmallVector<Value>{zeroF, zeroF, zeroF, zeroF});
      for (unsigned kt = 0; kt < kTiles; ++kt) {
        unsigned p1 = std::min(2 * kt + 2, pieces);
        SmallVector<SmallVector<Value>> tilePairs;
        if (lookAhead)
          tilePairs.assign(piecePairs.begin() + 2 * kt,
                           piecePairs.begin() + p1);
        else
          for (std::array<Value, 2> &x : issue(k, 2 * kt, p1))
            tilePairs.push_back(pairs(x));
        for (unsigned jn = 0; jn < 8; ++jn) {
          Value b01 = tilePairs[0][jn];
          Value b23 = tilePairs.size() > 1 ? tilePairs[1][jn] : zeroI;
          acc[jn] = emitMmaBF16(b, loc, aHi[m][kt], {b01, b23}, acc[jn]);
          if (needsLo(kt))
            acc[jn] = emitMmaBF16(b, loc, aLo[m][kt], {b01, b23}, acc[jn]);
        }
      }
      // db_i = [acc_i +] g_i - K2_i b_i, rounded once, for rows grp (c0,
      // c1) and grp + 8 (c2, c3).
      for (unsigned h = 0; h < 2; ++h) {
        FragmentRow &r = rows[m][h];
        if (!r.any)
          continue;
        Value i = tc.add(grp, tc.idx(16 * m + 8 * h));
        Value iC = arith::MinUIOp::create(b, loc, i, tc.idx(n - 1));
        Value nk2 = vector::BroadcastOp::create(
            b, loc, v8f, arith::NegFOp::create(b, loc, load(k2Sm, iC)));
        for (unsigned c = 0; c < 2; ++c) {
          SmallVector<Value> g;
          for (unsigned jn = 0; jn < 8; ++jn)
            g.push_back(acc[jn][2 * h + c]);
          Value gv = vector::FromElementsOp::create(b, loc, v8f, g);
          Value x = arith::ExtFOp::create(b, loc, v8f, xRaw[h][c]);
          Value v = vector::FMAOp::create(b, loc, nk2, x, gv);
          if (spec.accumulate)
            v = arith::AddFOp::create(
                b, loc, arith::ExtFOp::create(b, loc, v8f, accRaw[h][c]), v);
          tc.when(both(r.ok, colsOk[c]), [&]() {
            vector::StoreOp::create(
                b, loc, arith::TruncFOp::create(b, loc, v8e, v),
                gradRows[m][h].memref, ValueRange{token, cols[c]},
                /*nontemporal=*/false, llvm::MaybeAlign(16));
          });
        }
      }
    }
  }
}

unsigned
gpu_kernels::chooseBlockScoreGradSharedRows(const BlockScoreGradTCSpec &spec,
                                            int option,
                                            const NVVMTargetInfo &target) {
  unsigned total = spec.numSources + spec.numQueries;
  if (option >= 0)
    return std::min(unsigned(option), total);
  int64_t ctas = std::max<int64_t>(
      {1, 65536 / (int64_t(spec.threads) * 128), int64_t(spec.minCtasPerSM)});
  int64_t budget = std::min(target.maxSharedBytesPerCta(),
                            target.sharedBytesPerSM() / ctas - 1024) -
                   spec.regionBytes() - 16;
  int64_t rowBytes =
      spec.sharedRowStride() * (spec.elementType.getIntOrFloatBitWidth() / 8);
  return unsigned(std::clamp<int64_t>(budget / rowBytes, 0, total));
}

gpu::GPUFuncOp
gpu_kernels::buildBlockScoreGradTCKernel(OpBuilder &b, Location loc,
                                         const BlockScoreGradTCSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  return GradTCBuilder(b, loc, spec).build();
}
