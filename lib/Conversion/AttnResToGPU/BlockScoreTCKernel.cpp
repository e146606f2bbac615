//===- BlockScoreTCKernel.cpp - block_score on tensor cores (bf16) --------===//
//
// Part of the attnres project.
//
// The tensor-core phase-1 kernel (docs/gpu.md, "Kernel design"): one CTA (or
// a cluster of CTAs) per token computes the n x S logits of all S queries
// with mma.sync, the softmax over the sources and the S outputs. Built by
// TCKernelBuilder in named phases, emitted in this order:
//   createFunction      kernel, arguments, shared-memory regions
//   emitIndices         thread / token / cluster-rank indices, fragment rows
//   emitRowFetch        L2 prefetch of the rows, or bulk copies to shared
//   emitSweep1          mma over the rows: partial logits and sums of squares
//   storeWarpPartials   per-warp partials to shared memory, first barrier
//   emitLogits          sums over warps (and cluster CTAs), inv_rms scaling
//   emitSoftmax         softmax over the sources, lse
//   emitSweep2          the S outputs from the rows and the weights
//                       (emitSweep2Mma with score-mma-sweep: on the tensor
//                       cores)
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <array>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

std::string BlockScoreTCSpec::getName() const {
  return "block_score_" + typeSuffix(elementType) + "_d" + std::to_string(d) +
         "_n" + std::to_string(numSources) + "_s" + std::to_string(numQueries) +
         "_tc" + (bulkCopy ? "_tma" : "") +
         (clusterSplit > 1 ? "_x" + std::to_string(clusterSplit) : "") +
         (hasInvRms ? "_r" : "") + (splitQueries ? "_qs" : "") +
         (mmaSweep ? "_ms" : "");
}

namespace {

/// The shared memory of the tensor-core phase-1 kernel: per-warp partial
/// logits (warps x n x S f32) and sums of squares (warps x n), the logits
/// (n x S), the softmax weights (n x S padded to 4 for 16-byte loads) and,
/// with bulk copies, the n rows and the mbarrier. Without bulk copies the
/// first four are workgroup attributions; with them every region is a view
/// of dynamic shared memory at `offsets` (16-byte aligned), so that no
/// static shared variable can overlap the rows.
struct TCSharedLayout {
  explicit TCSharedLayout(const BlockScoreTCSpec &spec) {
    int64_t warps = spec.threads / 32, n = spec.numSources, s = spec.numQueries;
    shapes = {
        {warps, n, s}, {warps, n}, {n, s}, {n, int64_t(llvm::alignTo(s, 4))}};
    int64_t off = 0;
    auto place = [&](int64_t size) {
      offsets.push_back(off);
      off += llvm::alignTo(size, 16);
    };
    if (spec.bulkCopy)
      place(spec.sharedRowsBytes());
    for (auto &shape : shapes) {
      int64_t count = 1;
      for (int64_t x : shape)
        count *= x;
      place(4 * count);
    }
    if (spec.bulkCopy)
      place(8);
    // Cluster split: this CTA's partial logits (n x S) and sums of squares
    // (n), read by the other CTA.
    if (spec.clusterSplit > 1) {
      place(4 * n * s);
      place(4 * n);
    }
    total = spec.bulkCopy ? off : 0;
  }

  SmallVector<SmallVector<int64_t>> shapes;
  /// With bulk copies: rows, the four f32 regions, mbarrier[, the two
  /// cluster-exchange regions].
  SmallVector<int64_t> offsets;
  int64_t total = 0;
};

/// Builds the tensor-core phase-1 kernel, phase by phase (see the file
/// header). The phases share the values below; each is emitted at the
/// builder's insertion point, in the order of build().
class TCKernelBuilder {
public:
  TCKernelBuilder(OpBuilder &b, Location loc, const BlockScoreTCSpec &spec);

  gpu::GPUFuncOp build() {
    createFunction();
    emitIndices();
    emitRowFetch();
    emitSweep1();
    storeWarpPartials();
    emitLogits();
    emitSoftmax();
    if (spec.mmaSweep)
      emitSweep2Mma();
    else
      emitSweep2();
    return fn;
  }

private:
  using P = arith::CmpIPredicate;

  void createFunction();
  void emitIndices();
  void emitRowFetch();
  void emitSweep1();
  void storeWarpPartials();
  void emitLogits();
  void emitSoftmax();
  void emitSweep2();
  /// score-mma-sweep: sweep 2 on the tensor cores.
  void emitSweep2Mma();

  /// x && y, where a null operand is true.
  Value both(Value x, Value y) {
    if (!x)
      return y;
    if (!y)
      return x;
    return arith::AndIOp::create(b, loc, x, y);
  }
  /// The sum over the warps of `part` at (w, idx...).
  Value warpSum(Value part, ValueRange idx);
  /// Runs `body(i, q)` for the logits (i, q) = (t / S, t % S) of this
  /// thread: t = tid, tid + threads, ... < n S.
  template <typename Fn> void forLogits(Fn body);
  /// The sum over the cluster's CTAs of the value at (i[, q]) of `region`.
  Value clusterSum(Value region, ValueRange idx, Value flat);

  static RowLayout makeLayout(const BlockScoreTCSpec &spec) {
    RowLayout layout;
    layout.d = spec.d;
    layout.vectorWidth = 8;
    layout.numVectors = spec.d / 8;
    layout.threadsPerToken = spec.threads;
    layout.minCtasPerSM = spec.minCtasPerSM;
    return layout;
  }

  OpBuilder &b;
  Location loc;
  const BlockScoreTCSpec &spec;
  MLIRContext *ctx;
  Type e, f32;
  int64_t d;
  unsigned n, s, threads, warps, sPad;
  /// CTAs per token (cluster split) and the columns of one CTA.
  unsigned split;
  int64_t dl;
  /// Elements between rows in shared memory (bulk copies).
  int64_t stride;
  TCSharedLayout shared;
  RowLayout layout;
  RowEmitter em;
  TCEmitter tc;

  gpu::GPUFuncOp fn;
  // Kernel arguments (scoreArgTypes). T: one CTA per token, grid = T.
  Value queries, gains, out, lse, numTokens, eps;
  SmallVector<Value> sources, invRms;
  // Shared memory (TCSharedLayout); rowsSm (n x stride rows) and barSm (the
  // mbarrier): bulk copies only; zLoc, ssLoc: cluster split only.
  Value zPart, ssPart, zTot, aSm, rowsSm, barSm, zLoc, ssLoc;

  // Indices. This CTA owns columns [colBase, colBase + dl) of the token;
  // grp / tig: mma fragment coordinates (group: row of A, column of B;
  // thread in group: k pairs).
  Value tid, token, rank, colBase, lane, warp, grp, tig;
  VectorType v8e, v8f, v8i;
  unsigned mTiles, nTiles;
  SmallVector<std::array<FragmentRow, 2>> rows;

  // Sweep 1's results: logits acc[m][t] (four f32 per tile) and sums of
  // squares ssAcc[m][h].
  SmallVector<SmallVector<SmallVector<Value>>> acc;
  SmallVector<std::array<SmallVector<Value>, 2>> ssAcc;
  /// The barrier after the partials: sweep 2's first loads go before it.
  Operation *firstBarrier = nullptr;
};

} // namespace

int64_t BlockScoreTCSpec::dynamicSharedBytes() const {
  return TCSharedLayout(*this).total;
}

TCKernelBuilder::TCKernelBuilder(OpBuilder &b, Location loc,
                                 const BlockScoreTCSpec &spec)
    : b(b), loc(loc), spec(spec), ctx(b.getContext()), e(spec.elementType),
      f32(b.getF32Type()), d(spec.d), n(spec.numSources), s(spec.numQueries),
      threads(spec.threads), warps(spec.threads / 32),
      sPad(llvm::alignTo(spec.numQueries, 4)),
      split(spec.bulkCopy ? std::max(1u, spec.clusterSplit) : 1),
      dl(spec.d / split), stride(spec.sharedRowStride()), shared(spec),
      layout(makeLayout(spec)), em(b, loc, layout, spec.elementType),
      tc(b, loc) {}

void TCKernelBuilder::createFunction() {
  SmallVector<Type> args =
      scoreArgTypes(b, e, d, n, s, /*stacked=*/true, spec.hasInvRms);

  // Shared memory (TCSharedLayout): workgroup attributions, or views of
  // dynamic shared memory with bulk copies.
  auto ws = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  auto wgMem = [&](ArrayRef<int64_t> shape, Type t) -> MemRefType {
    return MemRefType::get(shape, t, MemRefLayoutAttrInterface(), ws);
  };
  SmallVector<Type> wgTypes;
  if (!spec.bulkCopy)
    for (auto &shape : shared.shapes)
      wgTypes.push_back(wgMem(shape, f32));
  fn = createKernel(b, loc, spec.getName(), args, wgTypes, layout);
  // The mma sweep always carries an occupancy hint, `.minnctapersm 1`
  // included (pickTensorCoreKernel says why); createKernel sets hints above 1.
  if (spec.mmaSweep && spec.minCtasPerSM <= 1)
    fn->setAttr("nvvm.minctasm", b.getI32IntegerAttr(1));
  for (unsigned k = 0; k < wgTypes.size(); ++k)
    fn.setWorkgroupAttributionAttr(k, LLVM::LLVMDialect::getAlignAttrName(),
                                   b.getI64IntegerAttr(16));
  Block &entry = fn.getBody().front();
  ScoreArgs ka(entry, n, /*stacked=*/true, spec.hasInvRms);
  queries = ka.queries;
  gains = ka.gains;
  out = ka.out;
  lse = ka.lse;
  numTokens = ka.numTokens;
  eps = ka.eps;
  sources = ka.sources;
  invRms = ka.invRms;
  if (!spec.bulkCopy) {
    auto attributions = fn.getWorkgroupAttributions();
    zPart = attributions[0];
    ssPart = attributions[1];
    zTot = attributions[2];
    aSm = attributions[3];
    return;
  }
  Value dyn = gpu::DynamicSharedMemoryOp::create(
      b, loc, wgMem({ShapedType::kDynamic}, b.getI8Type()));
  auto view = [&](unsigned k, ArrayRef<int64_t> shape, Type t) -> Value {
    return memref::ViewOp::create(
        b, loc, wgMem(shape, t), dyn,
        arith::ConstantIndexOp::create(b, loc, shared.offsets[k]),
        ValueRange{});
  };
  rowsSm = view(0, {int64_t(n), stride}, e);
  zPart = view(1, shared.shapes[0], f32);
  ssPart = view(2, shared.shapes[1], f32);
  zTot = view(3, shared.shapes[2], f32);
  aSm = view(4, shared.shapes[3], f32);
  barSm = view(5, {1}, b.getI64Type());
  if (split > 1) {
    zLoc = view(6, {int64_t(n), int64_t(s)}, f32);
    ssLoc = view(7, {int64_t(n)}, f32);
  }
}

void TCKernelBuilder::emitIndices() {
  tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  token = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  rank = tc.idx(0);
  colBase = tc.idx(0);
  if (split > 1) {
    fn.setKnownClusterSizeAttr(b.getDenseI32ArrayAttr({int32_t(split), 1, 1}));
    rank = arith::RemUIOp::create(b, loc, token, tc.idx(split));
    token = arith::DivUIOp::create(b, loc, token, tc.idx(split));
    colBase = tc.mul(rank, tc.idx(dl));
  }
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

  // Row h of the A tile m is source 16m + 8h + grp: pick its memref once.
  rows = tc.fragmentRows(sources, grp);
}

void TCKernelBuilder::emitRowFetch() {
  // Every line of the token's n rows is requested into L2 first
  // (prefetch.global.L2: no registers held), so that all of its DRAM reads
  // are in flight at once; the fragment loads below then hit L2. Without
  // it ptxas sinks the loads next to their mma and a warp waits for DRAM
  // several times per token.
  if (spec.prefetchL2 && !spec.bulkCopy)
    emitL2PrefetchRows(b, loc, sources, token, e, d, tid, threads);

  // Bulk copies: thread 0 initialises the mbarrier (one arrival), announces
  // the n rows' bytes and issues one cp.async.bulk per row into shared
  // memory (rows `stride` elements apart); every thread waits for phase 0.
  // Each CTA uses the mbarrier once.
  if (spec.bulkCopy) {
    int64_t elemBytes = e.getIntOrFloatBitWidth() / 8;
    int64_t rowBytes = d * elemBytes, copyBytes = dl * elemBytes;
    int64_t strideBytes = stride * elemBytes;
    Value bar = mbarrierPointer(b, loc, barSm);
    Value rowsAddr = sharedAddress(b, loc, rowsSm);
    Value first = tc.cmp(P::eq, tid, tc.idx(0));
    tc.when(first, [&]() { emitMBarrierInit(b, loc, bar); });
    gpu::BarrierOp::create(b, loc);
    tc.when(first, [&]() {
      Value txBytes = tc.i32c(int64_t(n) * copyBytes);
      emitMBarrierArriveExpectTx(b, loc, bar, txBytes);
      Type i64 = b.getI64Type();
      Value tokenOff = tc.mul(token, tc.idx(rowBytes));
      Value colOff = tc.mul(colBase, tc.idx(elemBytes));
      Value rowOff =
          arith::IndexCastOp::create(b, loc, i64, tc.add(tokenOff, colOff));
      for (unsigned i = 0; i < n; ++i) {
        Value src = arith::IndexCastOp::create(
            b, loc, i64,
            memref::ExtractAlignedPointerAsIndexOp::create(b, loc, sources[i]));
        src = arith::AddIOp::create(b, loc, src, rowOff);
        Value dst = arith::AddIOp::create(b, loc, rowsAddr,
                                          tc.i32c(int64_t(i) * strideBytes));
        Value bytes = tc.i32c(copyBytes);
        emitBulkCopyGlobalToShared(b, loc, dst, src, bytes, bar);
      }
    });
    emitMBarrierWaitPhase0(b, loc, bar);
  }
}

void TCKernelBuilder::emitSweep1() {
  // Sweep 1. Warp w handles the 32-element blocks w, w + warps, ...; lane
  // (grp, tig) loads elements [8 tig, 8 tig + 8) of its rows; the k index
  // of the mma is permuted so that k-tile kt holds elements 8 tig + 4 kt +
  // {0..3} (the sum over k does not depend on the order).
  int64_t numBlocks = llvm::divideCeil(dl, int64_t(32));
  unsigned blocksPerWarp = llvm::divideCeil(numBlocks, int64_t(warps));
  auto elemOffset = [&](unsigned k) {
    return tc.blockOffset(warp, tig, warps, k);
  };
  auto elemOk = [&](unsigned k, Value off) -> Value {
    return tc.blockOk(warps, k, off, dl);
  };
  // x[k][m][h]: the loaded rows of block k.
  SmallVector<SmallVector<std::array<Value, 2>>> xs(blocksPerWarp);
  auto issue = [&](unsigned k) {
    if (k >= blocksPerWarp)
      return;
    Value off = elemOffset(k);
    Value eok = elemOk(k, off);
    xs[k].resize(mTiles);
    for (unsigned m = 0; m < mTiles; ++m)
      for (unsigned h = 0; h < 2; ++h) {
        FragmentRow &r = rows[m][h];
        if (!r.any)
          continue;
        if (!spec.bulkCopy) {
          xs[k][m][h] = tc.maybeLoad(v8e, r.memref, ValueRange{token, off},
                                     both(r.ok, eok), 16);
          continue;
        }
        // From shared memory: rows past n and elements past D read row
        // n - 1 / the row padding and are zeroed by a select.
        Value row = tc.add(grp, tc.idx(16 * m + 8 * h));
        if (r.ok)
          row = arith::MinUIOp::create(b, loc, row, tc.idx(n - 1));
        Value col =
            eok ? Value(arith::MinUIOp::create(b, loc, off, tc.idx(stride - 8)))
                : off;
        xs[k][m][h] = tc.selectLoad(v8e, rowsSm, ValueRange{row, col},
                                    both(r.ok, eok), 16);
      }
  };
  unsigned depth = std::max(1u, spec.prefetchBlocks);
  for (unsigned k = 0; k < std::min(depth, blocksPerWarp); ++k)
    issue(k);

  Value zero = tc.f32c(0.0);
  Value zeroI = tc.i32c(0);
  acc.assign(mTiles,
             SmallVector<SmallVector<Value>>(nTiles, {zero, zero, zero, zero}));
  // The lo halves accumulate separately (two independent mma chains).
  auto accLo = acc;
  ssAcc.resize(mTiles);
  for (unsigned m = 0; m < mTiles; ++m)
    for (unsigned h = 0; h < 2; ++h)
      ssAcc[m][h] = {zero, zero, zero, zero};
  Value hiMask = arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(v8i, b.getI32IntegerAttr(int32_t(0xFFFF0000))));

  for (unsigned k = 0; k < blocksPerWarp; ++k) {
    issue(k + depth);
    Value off = elemOffset(k);
    Value eok = elemOk(k, off);
    // w*g of query 8 nt + grp at this lane's 8 elements, exactly split
    // into bf16 halves: hi keeps the top 8 significant bits (the product of
    // two bf16 has at most 16), lo = wg - hi has at most 8.
    SmallVector<SmallVector<Value>> wgHi(nTiles), wgLo(nTiles);
    for (unsigned t = 0; t < nTiles; ++t) {
      Value q = tc.add(grp, tc.idx(8 * t));
      // Padding queries (q >= S) load row S-1 unconditionally and zero the
      // product afterwards: no branch between the loads and the mma.
      Value qok = 8 * t + 8 <= s ? Value() : tc.cmp(P::ult, q, tc.idx(s));
      Value qRow =
          qok ? Value(arith::MinUIOp::create(b, loc, q, tc.idx(s - 1))) : q;
      Value col = split > 1 ? tc.add(off, colBase) : off;
      Value wv = tc.maybeLoad(v8e, queries, ValueRange{qRow, col}, eok, 16);
      Value gv = tc.maybeLoad(v8e, gains, ValueRange{qRow, col}, eok, 16);
      if (spec.splitQueries) {
        // split-query-gains: the arguments hold the two halves already.
        if (qok) {
          Value zeroE = arith::ConstantOp::create(
              b, loc, DenseElementsAttr::get(v8e, b.getFloatAttr(e, 0.0)));
          wv = arith::SelectOp::create(b, loc, qok, wv, zeroE);
          gv = arith::SelectOp::create(b, loc, qok, gv, zeroE);
        }
        wgHi[t] = tc.regs(wv);
        wgLo[t] = tc.regs(gv);
        continue;
      }
      Value wf = arith::ExtFOp::create(b, loc, v8f, wv);
      Value gf = arith::ExtFOp::create(b, loc, v8f, gv);
      Value wg = arith::MulFOp::create(b, loc, wf, gf);
      if (qok)
        wg = arith::SelectOp::create(
            b, loc, qok, wg,
            arith::ConstantOp::create(
                b, loc, DenseElementsAttr::get(v8f, b.getF32FloatAttr(0.0))));
      std::tie(wgHi[t], wgLo[t]) = tc.splitBF16(wg, hiMask);
    }
    for (unsigned m = 0; m < mTiles; ++m) {
      SmallVector<Value> lo = tc.regs(xs[k][m][0]);
      SmallVector<Value> hi =
          rows[m][1].any ? tc.regs(xs[k][m][1]) : SmallVector<Value>(4, zeroI);
      for (unsigned kt = 0; kt < 2; ++kt) {
        SmallVector<Value> fa{lo[2 * kt], hi[2 * kt], lo[2 * kt + 1],
                              hi[2 * kt + 1]};
        for (unsigned t = 0; t < nTiles; ++t) {
          acc[m][t] = emitMmaBF16(
              b, loc, fa, {wgHi[t][2 * kt], wgHi[t][2 * kt + 1]}, acc[m][t]);
          accLo[m][t] = emitMmaBF16(
              b, loc, fa, {wgLo[t][2 * kt], wgLo[t][2 * kt + 1]}, accLo[m][t]);
        }
        if (spec.hasInvRms)
          continue;
        // Sums of squares: B = the rows themselves; the diagonal of
        // A A^T.
        ssAcc[m][0] = emitMmaBF16(b, loc, fa, {fa[0], fa[2]}, ssAcc[m][0]);
        if (rows[m][1].any)
          ssAcc[m][1] = emitMmaBF16(b, loc, fa, {fa[1], fa[3]}, ssAcc[m][1]);
      }
    }
    xs[k].clear();
  }

  for (unsigned m = 0; m < mTiles; ++m)
    for (unsigned t = 0; t < nTiles; ++t)
      for (unsigned r = 0; r < 4; ++r)
        acc[m][t][r] =
            arith::AddFOp::create(b, loc, acc[m][t][r], accLo[m][t][r]);
}

void TCKernelBuilder::storeWarpPartials() {
  // Per-warp partials to workgroup memory. Accumulator register r of a
  // lane: row grp + 8 (r / 2), column 2 tig + r % 2.
  Value twoTig = tc.mul(tig, tc.idx(2));
  for (unsigned m = 0; m < mTiles; ++m) {
    for (unsigned t = 0; t < nTiles; ++t)
      for (unsigned r = 0; r < 4; ++r) {
        Value i = tc.add(grp, tc.idx(16 * m + 8 * (r / 2)));
        Value q = tc.add(twoTig, tc.idx(8 * t + r % 2));
        Value iOk = 16 * m + 8 * (r / 2) + 8 <= n
                        ? Value()
                        : tc.cmp(P::ult, i, tc.idx(n));
        Value qOk = 8 * t + 8 <= s ? Value() : tc.cmp(P::ult, q, tc.idx(s));
        Value ok = both(iOk, qOk);
        tc.when(ok, [&]() {
          memref::StoreOp::create(b, loc, acc[m][t][r], zPart,
                                  ValueRange{warp, i, q});
        });
      }
    if (spec.hasInvRms)
      continue;
    for (unsigned h = 0; h < 2; ++h) {
      if (!rows[m][h].any)
        continue;
      Value i = tc.add(grp, tc.idx(16 * m + 8 * h));
      for (unsigned odd = 0; odd < 2; ++odd) {
        Value diag = tc.cmp(P::eq, grp, tc.add(twoTig, tc.idx(odd)));
        Value ok =
            both(diag, 16 * m + 8 * h + 8 <= n ? Value()
                                               : tc.cmp(P::ult, i, tc.idx(n)));
        tc.when(ok, [&]() {
          memref::StoreOp::create(b, loc, ssAcc[m][h][2 * h + odd], ssPart,
                                  ValueRange{warp, i});
        });
      }
    }
  }
  firstBarrier = gpu::BarrierOp::create(b, loc);
}

Value TCKernelBuilder::warpSum(Value part, ValueRange idx) {
  SmallVector<Value> at{tc.idx(0)};
  at.append(idx.begin(), idx.end());
  Value v = memref::LoadOp::create(b, loc, part, at);
  for (unsigned w = 1; w < warps; ++w) {
    at[0] = tc.idx(w);
    v = arith::AddFOp::create(b, loc, v,
                              memref::LoadOp::create(b, loc, part, at));
  }
  return v;
}

template <typename Fn> void TCKernelBuilder::forLogits(Fn body) {
  Value upper = tc.idx(int64_t(n) * s);
  Value stepSize = tc.idx(threads);
  auto loop = scf::ForOp::create(b, loc, tid, upper, stepSize);
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  Value t = loop.getInductionVar();
  Value i = arith::DivUIOp::create(b, loc, t, tc.idx(s));
  Value q = arith::RemUIOp::create(b, loc, t, tc.idx(s));
  body(i, q);
}

// In rank order (the same bits in every CTA): rank 0 + rank 1 for two CTAs
// (commutative, so the own value is read locally), through distributed
// shared memory for more.
Value TCKernelBuilder::clusterSum(Value region, ValueRange idx, Value flat) {
  Value base = sharedAddress(b, loc, region);
  Value flat32 = arith::IndexCastUIOp::create(b, loc, tc.i32, flat);
  Value byteOff = arith::MulIOp::create(b, loc, flat32, tc.i32c(4));
  Value addr = arith::AddIOp::create(b, loc, base, byteOff);
  if (split == 2) {
    Value own = memref::LoadOp::create(b, loc, region, idx);
    Value other = arith::IndexCastUIOp::create(
        b, loc, tc.i32, arith::XOrIOp::create(b, loc, rank, tc.idx(1)));
    return Value(arith::AddFOp::create(
        b, loc, own, emitLoadClusterF32(b, loc, addr, other)));
  }
  Value sum = emitLoadClusterF32(b, loc, addr, tc.i32c(0));
  for (unsigned r = 1; r < split; ++r)
    sum = arith::AddFOp::create(b, loc, sum,
                                emitLoadClusterF32(b, loc, addr, tc.i32c(r)));
  return sum;
}

// Logits: thread t < n S sums the warps' partials of (i, q) = (t / S, t % S)
// and scales them by inv_rms of source i. With a cluster split the CTA's sums
// go to zLoc/ssLoc first; after a cluster barrier each CTA adds the other's
// (a + b: the same bits in both CTAs).
void TCKernelBuilder::emitLogits() {
  if (split > 1) {
    forLogits([&](Value i, Value q) {
      memref::StoreOp::create(b, loc, warpSum(zPart, {i, q}), zLoc,
                              ValueRange{i, q});
      if (!spec.hasInvRms)
        tc.when(tc.cmp(P::eq, q, tc.idx(0)), [&]() {
          memref::StoreOp::create(b, loc, warpSum(ssPart, {i}), ssLoc,
                                  ValueRange{i});
        });
    });
    emitClusterArrive(b, loc);
    emitClusterWait(b, loc);
  }
  forLogits([&](Value i, Value q) {
    Value z = split > 1
                  ? clusterSum(zLoc, {i, q}, tc.add(tc.mul(i, tc.idx(s)), q))
                  : warpSum(zPart, {i, q});
    Value r;
    if (spec.hasInvRms) {
      Value src = invRms[0];
      for (unsigned k = 1; k < n; ++k)
        src = arith::SelectOp::create(b, loc, tc.cmp(P::eq, i, tc.idx(k)),
                                      invRms[k], src);
      r = memref::LoadOp::create(b, loc, src, ValueRange{token});
    } else {
      Value ss = split > 1 ? clusterSum(ssLoc, {i}, i) : warpSum(ssPart, {i});
      r = em.invRms(ss, eps);
    }
    memref::StoreOp::create(b, loc, arith::MulFOp::create(b, loc, z, r), zTot,
                            ValueRange{i, q});
  });
  // The other CTA may leave once this one has read its shared memory: arrive
  // now, wait at the end of the kernel.
  if (split > 1)
    emitClusterArrive(b, loc);
  gpu::BarrierOp::create(b, loc);
}

void TCKernelBuilder::emitSoftmax() {
  // Softmax over the sources, one thread per query; one source has weight
  // exactly 1 whatever its logit (spec A.2, D.1).
  tc.when(tc.cmp(P::ult, tid, tc.idx(s)), [&]() {
    Value q = tid;
    SmallVector<Value> z;
    for (unsigned i = 0; i < n; ++i)
      z.push_back(
          memref::LoadOp::create(b, loc, zTot, ValueRange{tc.idx(i), q}));
    Value l;
    if (n == 1) {
      Value one = tc.f32c(1.0);
      Value row0 = tc.idx(0);
      memref::StoreOp::create(b, loc, one, aSm, ValueRange{row0, q});
      l = z[0];
    } else {
      // (m starts null rather than at z[0]: g++ 12 cannot see that n > 1
      // and warns -Wmaybe-uninitialized.)
      Value m;
      for (Value zi : z)
        m = m ? arith::MaxNumFOp::create(b, loc, m, zi).getResult() : zi;
      SmallVector<Value> ex;
      Value sum;
      for (unsigned i = 0; i < n; ++i) {
        ex.push_back(em.exp(arith::SubFOp::create(b, loc, z[i], m)));
        sum = i == 0 ? ex[0] : arith::AddFOp::create(b, loc, sum, ex[i]);
      }
      Value inv = arith::DivFOp::create(b, loc, tc.f32c(1.0), sum);
      for (unsigned i = 0; i < n; ++i) {
        Value a = arith::MulFOp::create(b, loc, ex[i], inv);
        Value row = tc.idx(i);
        memref::StoreOp::create(b, loc, a, aSm, ValueRange{row, q});
      }
      l = arith::AddFOp::create(b, loc, m, em.log(sum));
    }
    // With a cluster split both CTAs hold the same lse; the first writes it.
    tc.when(split > 1 ? tc.cmp(P::eq, rank, tc.idx(0)) : Value(), [&]() {
      memref::StoreOp::create(b, loc, l, lse, ValueRange{q, token});
    });
  });
  gpu::BarrierOp::create(b, loc);
}

void TCKernelBuilder::emitSweep2() {
  // Sweep 2: thread t writes elements [w c, w c + w) for chunks c = t,
  // t + threads, ... of all S outputs from the n rows (L1/L2 hits).
  unsigned sw = spec.sweepWidth;
  auto vwE = VectorType::get({sw}, e);
  auto vwF = VectorType::get({sw}, f32);
  auto v4f = VectorType::get({4}, f32);
  int64_t numChunks = dl / sw;
  unsigned chunksPerThread = llvm::divideCeil(numChunks, int64_t(threads));
  // The weights are re-read from workgroup memory for every chunk: chunk k
  // offsets its row index by k times an opaque zero, so that the loads of
  // different chunks are not merged into S*n live registers.
  Value opaqueZero = arith::ShRUIOp::create(b, loc, numTokens, tc.idx(62));
  // The rows of chunk k + 1 are loaded before chunk k is computed (the
  // stores to `out` would otherwise keep the compiler from hoisting them).
  SmallVector<SmallVector<Value>> chunkRows(chunksPerThread + 1);
  auto loadChunk = [&](unsigned k) {
    if (k >= chunksPerThread)
      return;
    Value c = tc.add(tid, tc.idx(int64_t(k) * threads));
    Value ok = int64_t(k + 1) * threads <= numChunks
                   ? Value()
                   : tc.cmp(P::ult, c, tc.idx(numChunks));
    Value off = tc.mul(c, tc.idx(sw));
    for (unsigned i = 0; i < n; ++i)
      chunkRows[k].push_back(
          spec.bulkCopy ? tc.maybeLoad(vwE, rowsSm, ValueRange{tc.idx(i), off},
                                       ok, sw * 2)
                        : tc.maybeLoad(vwE, sources[i], ValueRange{token, off},
                                       ok, sw * 2));
  };
  {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(firstBarrier);
    loadChunk(0);
  }
  for (unsigned k = 0; k < chunksPerThread; ++k) {
    loadChunk(k + 1);
    Value c = tc.add(tid, tc.idx(int64_t(k) * threads));
    Value aRow0 = tc.mul(opaqueZero, tc.idx(k));
    Value ok = int64_t(k + 1) * threads <= numChunks
                   ? Value()
                   : tc.cmp(P::ult, c, tc.idx(numChunks));
    tc.when(ok, [&]() {
      Value off = tc.mul(c, tc.idx(sw));
      SmallVector<Value> x;
      for (unsigned i = 0; i < n; ++i)
        x.push_back(arith::ExtFOp::create(b, loc, vwF, chunkRows[k][i]));
      for (unsigned qg = 0; qg < sPad / 4; ++qg) {
        unsigned nq = std::min(4u, s - 4 * qg);
        SmallVector<Value> o(nq);
        for (unsigned i = 0; i < n; ++i) {
          Value a4 = vector::LoadOp::create(
              b, loc, v4f, aSm,
              ValueRange{tc.add(aRow0, tc.idx(i)), tc.idx(4 * qg)},
              /*nontemporal=*/false, llvm::MaybeAlign(16));
          for (unsigned qq = 0; qq < nq; ++qq) {
            Value av = vector::BroadcastOp::create(
                b, loc, vwF,
                vector::ExtractOp::create(b, loc, a4,
                                          ArrayRef<int64_t>{int64_t(qq)}));
            o[qq] = i == 0
                        ? arith::MulFOp::create(b, loc, av, x[i])
                        : Value(vector::FMAOp::create(b, loc, av, x[i], o[qq]));
          }
        }
        for (unsigned qq = 0; qq < nq; ++qq) {
          Value rounded = arith::TruncFOp::create(b, loc, vwE, o[qq]);
          Value qRow = tc.idx(4 * qg + qq);
          Value col = split > 1 ? tc.add(off, colBase) : off;
          vector::StoreOp::create(
              b, loc, rounded, out, ValueRange{qRow, token, col},
              /*nontemporal=*/false, llvm::MaybeAlign(sw * 2));
        }
      }
    });
  }
  if (split > 1)
    emitClusterWait(b, loc);
}

void TCKernelBuilder::emitSweep2Mma() {
  // out (S x dl) = A (S x n) . V (n x dl): m over the queries (16 per
  // tile), k over the sources (16 per tile), A = the softmax weights split
  // into bf16 hi + lo (two mma). As block_score_grad's mma sweep
  // (BlockScoreGradTCKernel.cpp): warp w takes the 64-column blocks w,
  // w + warps, ... of this CTA's columns; n-tile jn of a block is the
  // columns base + 8 c + jn (c = 0..7), so that lane (grp, tig) loads 16
  // bytes of sources 2 tig + r (b0 b1) and 8 + 2 tig + r (b2 b3) of each
  // k-tile at columns base + 8 grp and pairs them column by column, and its
  // accumulators are columns base + 16 tig .. + 16 of queries grp and grp +
  // 8, in order: two 16-byte stores per query.
  unsigned kTiles = llvm::divideCeil(n, 16u);
  unsigned qTiles = llvm::divideCeil(s, 16u);
  // What the first block's loads use is defined before the barrier they are
  // issued ahead of (below).
  Value twoTig, zeroE;
  {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(firstBarrier);
    twoTig = tc.mul(tig, tc.idx(2));
    zeroE = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(v8e, b.getFloatAttr(e, 0.0)));
  }
  Value zeroF = tc.f32c(0.0);
  // A fragments: element el of a lane is query 16 mq + grp + 8 ((el / 2) %
  // 2), source 16 kt + 2 tig + el % 2 + 8 (el / 4).
  auto [aHi, aLo] = tc.splitFragmentsA(
      qTiles, kTiles, [&](unsigned mq, unsigned kt, unsigned el) -> Value {
        Value l = tc.add(grp, tc.idx(16 * mq + 8 * ((el / 2) % 2)));
        Value i = tc.add(twoTig, tc.idx(16 * kt + el % 2 + 8 * (el / 4)));
        Value lOk = tc.cmp(P::ult, l, tc.idx(s));
        Value iOk = tc.cmp(P::ult, i, tc.idx(n));
        Value ok = tc.andI(lOk, iOk);
        Value lC = arith::MinUIOp::create(b, loc, l, tc.idx(s - 1));
        Value iC = arith::MinUIOp::create(b, loc, i, tc.idx(n - 1));
        Value a = memref::LoadOp::create(b, loc, aSm, ValueRange{iC, lC});
        return arith::SelectOp::create(b, loc, ok, a, zeroF);
      });

  int64_t numBlocks = llvm::divideCeil(dl, int64_t(64));
  unsigned blocksPerWarp = llvm::divideCeil(numBlocks, int64_t(warps));
  auto blockBase = [&](unsigned k) -> Value {
    return tc.sweepBlockBase(warp, warps, k);
  };
  auto colOk = [&](unsigned k, Value col) -> Value {
    return tc.sweepChunkOk(warps, k, col, dl);
  };

  // The rows of block k, [kt][hp][r]: source 16 kt + 8 hp + 2 tig + r
  // at columns base + 8 grp (zeros past n or past the columns).
  using Rows = SmallVector<std::array<std::array<Value, 2>, 2>>;
  auto issue = [&](unsigned k) -> Rows {
    Rows rowsOut;
    if (k >= blocksPerWarp)
      return rowsOut;
    Value base = blockBase(k);
    Value off = tc.add(base, tc.mul(grp, tc.idx(8)));
    Value ok = colOk(k, off);
    rowsOut.resize(kTiles);
    for (unsigned kt = 0; kt < kTiles; ++kt)
      for (unsigned hp = 0; hp < 2; ++hp)
        for (unsigned r = 0; r < 2; ++r) {
          unsigned first = 16 * kt + 8 * hp + r;
          if (first >= n) {
            rowsOut[kt][hp][r] = zeroE;
            continue;
          }
          Value i = tc.add(twoTig, tc.idx(first));
          Value iOk = first + 6 < n ? Value() : tc.cmp(P::ult, i, tc.idx(n));
          Value v;
          if (spec.bulkCopy) {
            Value iC =
                iOk ? Value(arith::MinUIOp::create(b, loc, i, tc.idx(n - 1)))
                    : i;
            v = tc.maybeLoad(v8e, rowsSm, ValueRange{iC, off}, ok, 16);
          } else {
            // Source first + 2 tig: its memref picked per lane.
            Value m = sources[first];
            for (unsigned t = 1; t < 4 && first + 2 * t < n; ++t)
              m = arith::SelectOp::create(b, loc, tc.cmp(P::eq, tig, tc.idx(t)),
                                          sources[first + 2 * t], m);
            Value col = split > 1 ? tc.add(off, colBase) : off;
            v = tc.maybeLoad(v8e, m, ValueRange{token, col}, ok, 16);
          }
          if (iOk)
            v = arith::SelectOp::create(b, loc, iOk, v, zeroE);
          rowsOut[kt][hp][r] = v;
        }
    return rowsOut;
  };
  auto pairs = [&](std::array<Value, 2> x) -> SmallVector<Value> {
    return emitPairColumnsBF16(b, loc, x[0], x[1]);
  };

  // The first block's rows are loaded before the barrier after the
  // partials, as sweep 2's first chunk (emitSweep2).
  Rows next;
  {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(firstBarrier);
    next = issue(0);
  }
  for (unsigned k = 0; k < blocksPerWarp; ++k) {
    Rows cur = next;
    next = issue(k + 1);
    // The B registers; a half-tile with no source (16 kt + 8 hp >= n) is
    // zero.
    Value zeroI = tc.i32c(0);
    SmallVector<std::array<SmallVector<Value>, 2>> bRegs(kTiles);
    for (unsigned kt = 0; kt < kTiles; ++kt)
      for (unsigned hp = 0; hp < 2; ++hp)
        bRegs[kt][hp] = 16 * kt + 8 * hp < n ? pairs(cur[kt][hp])
                                             : SmallVector<Value>(8, zeroI);
    Value base = blockBase(k);
    Value col0 = tc.add(base, tc.mul(tig, tc.idx(16)));
    Value col1 = tc.add(col0, tc.idx(8));
    std::array<Value, 2> cols{col0, col1};
    std::array<Value, 2> colsOk{colOk(k, col0), colOk(k, col1)};
    for (unsigned mq = 0; mq < qTiles; ++mq) {
      SmallVector<SmallVector<Value>> acc(
          8, SmallVector<Value>{zeroF, zeroF, zeroF, zeroF});
      for (unsigned kt = 0; kt < kTiles; ++kt)
        for (unsigned jn = 0; jn < 8; ++jn) {
          SmallVector<Value> bv{bRegs[kt][0][jn], bRegs[kt][1][jn]};
          acc[jn] = emitMmaBF16(b, loc, aHi[mq][kt], bv, acc[jn]);
          acc[jn] = emitMmaBF16(b, loc, aLo[mq][kt], bv, acc[jn]);
        }
      // Query grp (c0, c1) and grp + 8 (c2, c3) of the tile.
      for (unsigned h = 0; h < 2; ++h) {
        unsigned firstQ = 16 * mq + 8 * h;
        if (firstQ >= s)
          continue;
        Value l = tc.add(grp, tc.idx(firstQ));
        Value lOk = firstQ + 8 <= s ? Value() : tc.cmp(P::ult, l, tc.idx(s));
        for (unsigned c = 0; c < 2; ++c) {
          SmallVector<Value> g;
          for (unsigned jn = 0; jn < 8; ++jn)
            g.push_back(acc[jn][2 * h + c]);
          Value gv = vector::FromElementsOp::create(b, loc, v8f, g);
          tc.when(both(lOk, colsOk[c]), [&]() {
            Value rounded = arith::TruncFOp::create(b, loc, v8e, gv);
            Value col = split > 1 ? tc.add(cols[c], colBase) : cols[c];
            vector::StoreOp::create(
                b, loc, rounded, out, ValueRange{l, token, col},
                /*nontemporal=*/false, llvm::MaybeAlign(16));
          });
        }
      }
    }
  }
  if (split > 1)
    emitClusterWait(b, loc);
}

gpu::GPUFuncOp
gpu_kernels::buildBlockScoreTCKernel(OpBuilder &b, Location loc,
                                     const BlockScoreTCSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  return TCKernelBuilder(b, loc, spec).build();
}
