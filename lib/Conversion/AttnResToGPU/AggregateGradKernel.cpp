//===- AggregateGradKernel.cpp - aggregate_grad (spec I.2) ----------------===//
//
// Part of the attnres project.
//
// The backward of `attnres.aggregate` (docs/gpu.md "Backward kernels"): one
// CTA per chunk of tokens, the gradients of every source and the per-CTA
// partials of the query and gain gradients.
//
//===----------------------------------------------------------------------===//

#include "GradKernelHelpers.h"

#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <array>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;
using namespace mlir::attnres::gpu_kernels::grad;

namespace {
/// Sources per token reduction in the re-read mode.
constexpr unsigned kGradGroup = 4;
} // namespace

//===----------------------------------------------------------------------===//
// aggregate_grad
//===----------------------------------------------------------------------===//

std::string AggregateGradSpec::getName() const {
  return "aggregate_grad_" + typeSuffix(elementType) + "_d" +
         std::to_string(d) + "_n" + std::to_string(numSources) +
         (accumulate ? "_acc" : "") +
         (rowsInRegisters            ? ""
          : sharedRows == numSources ? "_shared"
          : sharedRows               ? "_shared" + std::to_string(sharedRows)
                                     : "_reread");
}

/// The f32 workgroup regions of the kernel besides the rows: the scratch of
/// the token reductions (RowEmitter::scratchType, with several warps per
/// token) and, when the rows do not stay in registers, the per-source dot
/// products and coefficients: the sources are reduced kGradGroup at a time,
/// their dot products (rows 0-1) and the coefficients of pass 2 (a_i, k1_i,
/// k2_i: rows 2-4) go through workgroup memory instead of living in every
/// thread's registers.
static SmallVector<SmallVector<int64_t>>
sharedRegionShapes(const AggregateGradSpec &spec) {
  unsigned n = spec.numSources;
  bool coefShared = n > 1 && !spec.rowsInRegisters;
  unsigned perReduction = coefShared ? std::min(n, kGradGroup) : n;
  SmallVector<SmallVector<int64_t>> shapes;
  if (spec.layout.warpsPerToken() > 1 && n > 1)
    shapes.push_back(
        {2, int64_t(2 * perReduction), int64_t(spec.layout.warpsPerToken())});
  if (coefShared)
    shapes.push_back({5, int64_t(n)});
  return shapes;
}

// With the rows in shared memory all of the kernel's shared memory is one
// dynamic allocation (the rows, then the regions above, 16-byte aligned):
// NVPTX demotes the dynamic-shared-memory symbol of a kernel that also has
// static shared variables to a static variable, whose accesses past its
// first byte then overlap them (run 32: misaligned-address faults).
int64_t AggregateGradSpec::dynamicSharedBytes() const {
  if (rowsInRegisters || !sharedRows)
    return 0;
  int64_t total =
      int64_t(sharedRows) * d * (elementType.getIntOrFloatBitWidth() / 8);
  for (ArrayRef<int64_t> shape : sharedRegionShapes(*this))
    total = llvm::alignTo(total, 16) + 4 * ShapedType::getNumElements(shape);
  return llvm::alignTo(total, 16);
}

//===----------------------------------------------------------------------===//
// aggregate_grad's layout policy
//===----------------------------------------------------------------------===//

void gpu_kernels::chooseAggregateGradLayout(AggregateGradSpec &spec,
                                            const AggregateGradOptions &options,
                                            const NVVMTargetInfo &target) {
  // One token at a time per CTA (the CTA's partial of the parameter
  // gradients lives in its threads' registers).
  auto relayout = [&](unsigned elements) {
    spec.layout = computeRowLayout(spec.elementType, spec.d, elements);
    spec.layout.tokensPerCta = 1;
    spec.layout.minCtasPerSM = pickMinCtas(options.minCtasPerSM);
  };
  // Twelve or more rows per token (sources, and accumulators) at 8 elements
  // per thread spill at 128 registers (ptxas sm_90a, bf16 D = 4096: 52 bytes
  // at 12 sources, 496 at 17); 16 elements per thread halve the threads and
  // give each up to 255 registers (17 sources: 16 bytes; run 19 on an H100,
  // bench/NOTES.md: 3.78 -> 2.35 ms at T = 16384). The option overrides.
  // Past 512 16-byte vectors (bf16 D > 4096) the default is 16 elements per
  // thread and the re-read kernel spills at its 128 registers (bf16 D = 7168,
  // 10 sources: 184 bytes); 32 elements give it 255 (8 bytes; run 23 on an
  // H100: 1.453 -> 1.231 ms at T = 8192). With accumulators the re-reading
  // kernel spills about 590 bytes at 32 elements as at 16, so this step
  // leaves them at 16 (run 24, H200: 1.808 -> 1.653 ms); with the rows in
  // shared memory the last rule below takes 32. At bf16/f16 D = 4096 with
  // 3 to 11 sources and no accumulators 32 elements per thread (128
  // threads, 3 CTAs per SM) are also the default: run 24 (H200) 1.063 ->
  // 0.958 ms at 9 sources, run 23 (H100) equal (1.234 ms both).
  unsigned elements = options.elementsPerThread
                          ? options.elementsPerThread
                          : defaultRowElements(spec.elementType, spec.d);
  bool sixteenBit = spec.elementType.getIntOrFloatBitWidth() == 16;
  unsigned rowsPerToken = spec.numSources * (spec.accumulate ? 2 : 1);
  if (!options.elementsPerThread && elements == 8 && rowsPerToken >= 12)
    elements = 16;
  else if (!options.elementsPerThread && elements == 8 && sixteenBit &&
           spec.d >= 4096 && !spec.accumulate && spec.numSources >= 3)
    elements = 32;
  else if (!options.elementsPerThread && elements == 16 && !spec.accumulate &&
           spec.numSources >= 3 && sixteenBit)
    elements = 32;
  relayout(elements);
  // The token's rows stay in registers between the two passes (as f32:
  // LLVM keeps the conversions of pass 1 for pass 2) while they take at most
  // 32 registers per thread (sources, and accumulators); otherwise pass 2
  // re-reads them (L1/L2 hits) and a few sources are in flight at a time.
  // Measured by ptxas at D = 4096 (512 threads): 9 sources in registers
  // spill.
  int64_t rowRegs =
      int64_t(spec.layout.vectorsPerThread) * spec.layout.vectorWidth;
  spec.rowsInRegisters =
      int64_t(spec.numSources) * (spec.accumulate ? 2 : 1) * rowRegs <= 32;
  // Otherwise (grad-rows-in-shared) pass 1 keeps rows in dynamic shared
  // memory for pass 2: as many as fit the share of an SM's shared memory
  // that one CTA gets at the occupancy its registers allow (this kernel
  // takes about 255 registers per thread when the rows do not stay in
  // registers) or that min-ctas-per-sm asks for, less 4 KB for the
  // scratch and coefficients (in the same dynamic allocation); pass 2
  // re-reads the others. Run 26 (ncu, H100, bf16 n = 9 D = 4096): the
  // re-reads of pass 2 made DRAM traffic 1.19x the floor.
  int64_t rowBytes =
      spec.d * int64_t(spec.elementType.getIntOrFloatBitWidth() / 8);
  unsigned n = spec.numSources;
  // The shared memory one CTA gets when `ctas` share an SM, and the rows
  // that fit it.
  auto sharedBudget = [&](int64_t ctas) {
    return std::min(target.maxSharedBytesPerCta(),
                    target.sharedBytesPerSM() / ctas - 1024) -
           4096;
  };
  auto rowsThatFit = [&](int64_t ctas) {
    return unsigned(std::clamp<int64_t>(sharedBudget(ctas) / rowBytes, 0, n));
  };
  auto occupancy = [&]() {
    return std::max<int64_t>({1,
                              65536 / (int64_t(spec.layout.ctaThreads()) * 256),
                              int64_t(spec.layout.minCtasPerSM)});
  };
  if (!spec.rowsInRegisters && n > 1 && options.rowsInShared)
    spec.sharedRows = rowsThatFit(occupancy());
  // Where all n rows fit, and without accumulators, 16-bit rows take 16
  // elements per thread, and two CTAs per SM (ptxas: 128 registers, no
  // spill at n = 9 D = 4096) where two CTAs' rows all fit and CTAs have 129
  // to 256 threads, unless elements-per-thread or min-ctas-per-sm say
  // otherwise (min-ctas-per-sm=2 then keeps the rows that fit). At 128
  // threads or fewer the hint caps nothing (two CTAs may take 256 registers
  // per thread) and only lets ptxas take more: bf16 n = 9 D = 2048 (128
  // threads) 234 registers, two CTAs per SM, against 128 and four without
  // it; run 35 (H100, two calls): 2.068 / 2.063 -> 1.879 / 1.881 ms.
  // Run 33 (H100, fwd + bwd, same run): n = 9 D = 4096 1.650 -> 1.405 ms
  // (32 elements -> 16, two CTAs), n = 10 D = 7168 1.721 -> 1.450 (32 ->
  // 16), n = 9 D = 2048 2.966 -> 2.728 (8 -> 16), n = 17 D = 4096 3.211 ->
  // 3.032 (16 already; the rows in shared memory only). With accumulators
  // the layout stays (run 33: 16 elements and two CTAs per SM was slower at
  // n = 9 D = 4096).
  if (spec.sharedRows == n && sixteenBit && !spec.accumulate &&
      !options.elementsPerThread) {
    relayout(16);
    if (options.minCtasPerSM <= 1 && spec.layout.ctaThreads() > 128 &&
        spec.layout.ctaThreads() <= 256 && rowsThatFit(2) == n)
      spec.layout.minCtasPerSM = 2;
    rowRegs = int64_t(spec.layout.vectorsPerThread) * spec.layout.vectorWidth;
    spec.rowsInRegisters = int64_t(n) * rowRegs <= 32;
    spec.sharedRows = spec.rowsInRegisters ? 0 : rowsThatFit(occupancy());
  }
  // With accumulators and all rows in shared memory, 16-bit rows at 16
  // elements per thread take 32 where 16 make a CTA of more than 256
  // threads, whose register cap (65536 / threads) makes ptxas spill: run 34
  // (H100, same run) n = 10 D = 7168 1.907 ms at 448 threads (372 bytes of
  // spill stores) -> 1.499 ms at 224 (76 bytes).
  if (spec.sharedRows == n && sixteenBit && spec.accumulate &&
      !options.elementsPerThread &&
      spec.layout.vectorsPerThread * spec.layout.vectorWidth == 16 &&
      spec.layout.ctaThreads() > 256) {
    relayout(32);
    spec.sharedRows = rowsThatFit(occupancy());
  }
}

gpu::GPUFuncOp
gpu_kernels::buildAggregateGradKernel(OpBuilder &b, Location loc,
                                      const AggregateGradSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  const RowLayout &layout = spec.layout;
  assert(layout.tokensPerCta == 1 && "one token at a time per CTA");
  Type e = spec.elementType;
  int64_t d = spec.d;
  unsigned n = spec.numSources;
  bool acc = spec.accumulate;
  Type f32 = b.getF32Type();
  int64_t dyn = ShapedType::kDynamic;
  Type vec = MemRefType::get({d}, e), rows = rowsType(e, d);
  Type stat = MemRefType::get({dyn}, f32);

  SmallVector<Type> args{vec, vec};
  args.append(n, rows);
  args.push_back(stat);
  args.append(n, stat);
  args.push_back(rows);
  if (acc)
    args.append(n, rows);
  args.append(n, rows);
  args.push_back(MemRefType::get({dyn, d}, f32));
  args.push_back(b.getIndexType());

  RowEmitter em(b, loc, layout, e);
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  SmallVector<Type> wgTypes;
  for (ArrayRef<int64_t> shape : sharedRegionShapes(spec))
    wgTypes.push_back(
        MemRefType::get(shape, f32, MemRefLayoutAttrInterface(), workgroup));
  bool coefShared = n > 1 && !spec.rowsInRegisters;
  bool dynamicShared = spec.dynamicSharedBytes() > 0;
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args,
                   dynamicShared ? ArrayRef<Type>() : wgTypes, layout);
  Block &entry = fn.getBody().front();
  unsigned a = 0;
  Value query = entry.getArgument(a++), gain = entry.getArgument(a++);
  SmallVector<Value> sources, invRms, accs, grads;
  for (unsigned i = 0; i < n; ++i)
    sources.push_back(entry.getArgument(a++));
  Value lse = entry.getArgument(a++);
  for (unsigned i = 0; i < n; ++i)
    invRms.push_back(entry.getArgument(a++));
  Value dh = entry.getArgument(a++);
  if (acc)
    for (unsigned i = 0; i < n; ++i)
      accs.push_back(entry.getArgument(a++));
  for (unsigned i = 0; i < n; ++i)
    grads.push_back(entry.getArgument(a++));
  Value ws = entry.getArgument(a++);
  Value numTokens = entry.getArgument(a++);
  // The workgroup regions: attributions, or, in the shared-rows mode, views
  // of the dynamic allocation after the rows (the token's rows as pass 1
  // loaded them, for pass 2).
  SmallVector<Value> wgMem(fn.getWorkgroupAttributions());
  Value stash;
  if (dynamicShared)
    stash = viewSharedRows(b, loc, e, spec.sharedRows, d, wgTypes, wgMem);
  Value scratch = wgMem.empty() ? Value() : wgMem.front();

  em.emitIndices(1);
  unsigned c = layout.vectorsPerThread;
  auto [begin, end] = ctaTokenRange(b, loc, numTokens);

  // w*g (f32) for this thread's vectors, held over all tokens.
  SmallVector<Value> wg;
  if (n > 1)
    for (unsigned j = 0; j < c; ++j) {
      Value qv = em.toF32(em.loadVector(query, {}, j));
      Value gv = em.toF32(em.loadVector(gain, {}, j));
      wg.push_back(arith::MulFOp::create(b, loc, qv, gv));
    }

  SmallVector<Value> init(c, em.zeroF32Vec());
  auto loop = scf::ForOp::create(b, loc, begin, end, em.idx(1), init);
  {
    OpBuilder::InsertionGuard lg(b);
    b.setInsertionPointToStart(loop.getBody());
    Value tok = loop.getInductionVar();
    ValueRange tk(tok);
    SmallVector<Value> dwg(loop.getRegionIterArgs());
    SmallVector<Value> dhF;
    for (Value v : em.loadRow(dh, tk))
      dhF.push_back(em.toF32(v));

    // One source: dv_0 = [acc_0 +] dh, no parameter gradient (spec I.2).
    if (n == 1) {
      SmallVector<Value> accRow =
          acc ? em.loadRow(accs[0], tk) : SmallVector<Value>();
      for (unsigned j = 0; j < c; ++j) {
        Value v = dhF[j];
        if (acc)
          v = arith::AddFOp::create(b, loc, em.toF32(accRow[j]), v);
        em.storeVector(v, grads[0], tk, j);
      }
      scf::YieldOp::create(b, loc, dwg);
    } else {
      Value invD = em.f32c(1.0 / double(d));
      Value l, coef;
      SmallVector<Value> r, z(n), aw(n), da(n);
      Value s;
      // dz_i, k1_i = dz_i r_i, k2_i = k1_i r_i z_i / D.
      auto coefs = [&](unsigned i) -> std::array<Value, 3> {
        Value dz = arith::MulFOp::create(
            b, loc, aw[i], arith::SubFOp::create(b, loc, da[i], s));
        Value k1 = arith::MulFOp::create(b, loc, dz, r[i]);
        Value k2 = arith::MulFOp::create(
            b, loc,
            arith::MulFOp::create(
                b, loc, arith::MulFOp::create(b, loc, k1, r[i]), z[i]),
            invD);
        return {aw[i], k1, k2};
      };
      SmallVector<SmallVector<Value>> rowsIn(n), accIn(n);
      Value tokIter = arith::SubIOp::create(b, loc, tok, begin);
      if (!coefShared) {
        // Pass 1: every source's row is requested at once (the loads of a
        // token are all in flight), then the 2n dot products are reduced
        // together (one barrier).
        for (unsigned i = 0; i < n; ++i)
          rowsIn[i] = em.loadRow(sources[i], tk);
        SmallVector<Value> partials;
        sourceDots(em, sources, tk, 0, n, /*depth=*/0, /*keep=*/true, rowsIn,
                   wg, dhF, partials);
        // The accumulators and the statistics are requested before the
        // reduction's barrier.
        if (acc)
          for (unsigned i = 0; i < n; ++i)
            accIn[i] = em.loadRow(accs[i], tk);
        l = memref::LoadOp::create(b, loc, lse, tk);
        for (unsigned i = 0; i < n; ++i)
          r.push_back(memref::LoadOp::create(b, loc, invRms[i], tk));
        Value parity = arith::RemUIOp::create(b, loc, tokIter, em.idx(2));
        SmallVector<Value> tot = em.tokenSum(partials, scratch, parity);
        // The softmax derivative (f32, sources in order).
        s = em.f32c(0.0);
        for (unsigned i = 0; i < n; ++i) {
          z[i] = arith::MulFOp::create(b, loc, r[i], tot[2 * i]);
          aw[i] = em.exp(arith::SubFOp::create(b, loc, z[i], l));
          da[i] = tot[2 * i + 1];
          s = arith::AddFOp::create(
              b, loc, s, arith::MulFOp::create(b, loc, aw[i], da[i]));
        }
      } else {
        // Pass 1, kGradGroup sources per reduction, kGradPrefetchDepth
        // sources in flight; the token's first thread stores each group's
        // dot products.
        coef = wgMem.back();
        unsigned groups = llvm::divideCeil(n, kGradGroup);
        Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                            em.tpos, em.idx(0));
        Value base = arith::MulIOp::create(b, loc, tokIter, em.idx(groups));
        unsigned depth = kGradPrefetchDepth;
        for (unsigned i = 0; i < std::min(n, depth); ++i)
          rowsIn[i] = em.loadRow(sources[i], tk);
        for (unsigned g0 = 0; g0 < n; g0 += kGradGroup) {
          unsigned g1 = std::min(n, g0 + kGradGroup);
          SmallVector<Value> partials;
          sourceDots(em, sources, tk, g0, g1, depth, /*keep=*/false, rowsIn, wg,
                     dhF, partials, stash);
          Value step =
              arith::AddIOp::create(b, loc, base, em.idx(g0 / kGradGroup));
          Value parity = arith::RemUIOp::create(b, loc, step, em.idx(2));
          SmallVector<Value> tot = em.tokenSum(partials, scratch, parity);
          buildIf(b, loc, first, [&]() {
            for (unsigned i = g0; i < g1; ++i)
              for (unsigned q = 0; q < 2; ++q)
                memref::StoreOp::create(b, loc, tot[2 * (i - g0) + q], coef,
                                        ValueRange{em.idx(q), em.idx(i)});
          });
        }
        // With one warp per token the reductions have no barrier: wait
        // until every thread is done with the previous token's coefficients.
        if (layout.warpsPerToken() == 1)
          gpu::BarrierOp::create(b, loc);
        // The token's first thread turns the dot products and statistics
        // into the coefficients of pass 2 (sources in order).
        buildIf(b, loc, first, [&]() {
          l = memref::LoadOp::create(b, loc, lse, tk);
          s = em.f32c(0.0);
          for (unsigned i = 0; i < n; ++i) {
            r.push_back(memref::LoadOp::create(b, loc, invRms[i], tk));
            Value t0 = memref::LoadOp::create(b, loc, coef,
                                              ValueRange{em.idx(0), em.idx(i)});
            da[i] = memref::LoadOp::create(b, loc, coef,
                                           ValueRange{em.idx(1), em.idx(i)});
            z[i] = arith::MulFOp::create(b, loc, r[i], t0);
            aw[i] = em.exp(arith::SubFOp::create(b, loc, z[i], l));
            s = arith::AddFOp::create(
                b, loc, s, arith::MulFOp::create(b, loc, aw[i], da[i]));
          }
          for (unsigned i = 0; i < n; ++i) {
            std::array<Value, 3> k = coefs(i);
            for (unsigned q = 0; q < 3; ++q)
              memref::StoreOp::create(b, loc, k[q], coef,
                                      ValueRange{em.idx(2 + q), em.idx(i)});
          }
        });
        // The next token's stores come after its first reduction's barrier
        // (or the barrier above), which every thread reaches only after this
        // token's pass 2: one buffer suffices.
        gpu::BarrierOp::create(b, loc);
      }
      // Pass 2: dv_i = [acc_i +] a_i dh + k1_i w g - k2_i v_i with
      // k1_i = dz_i r_i, k2_i = k1_i r_i z_i / D; the token's term of dwg
      // is sum_i k1_i v_i (sources in order).
      SmallVector<Value> term;
      auto fetch = [&](unsigned i) {
        if (i >= n || spec.rowsInRegisters)
          return;
        rowsIn[i] = i < spec.sharedRows
                        ? em.loadRow(stash, ValueRange{em.idx(i)})
                        : em.loadRow(sources[i], tk);
        if (acc)
          accIn[i] = em.loadRow(accs[i], tk);
      };
      // Rows from shared memory need no window of loads in flight (only
      // the accumulators, and the rows past sharedRows, come from global
      // memory).
      unsigned ahead = spec.sharedRows && !acc ? 1 : kGradPrefetchDepth;
      for (unsigned i = 0; i < ahead; ++i)
        fetch(i);
      for (unsigned i = 0; i < n; ++i) {
        fetch(i + ahead);
        std::array<Value, 3> k;
        if (coefShared) {
          for (unsigned q = 0; q < 3; ++q)
            k[q] = memref::LoadOp::create(b, loc, coef,
                                          ValueRange{em.idx(2 + q), em.idx(i)});
        } else {
          k = coefs(i);
        }
        Value k1 = k[1], k2 = k[2];
        Value aV = em.splat(k[0]), k1V = em.splat(k1);
        Value nk2V = splatNeg(em, k2);
        for (unsigned j = 0; j < c; ++j) {
          Value x = em.toF32(rowsIn[i][j]);
          Value v = arith::MulFOp::create(b, loc, aV, dhF[j]);
          v = em.fma(k1V, wg[j], v);
          v = em.fma(nk2V, x, v);
          if (acc)
            v = arith::AddFOp::create(b, loc, em.toF32(accIn[i][j]), v);
          em.storeVector(v, grads[i], tk, j);
          if (i == 0)
            term.push_back(arith::MulFOp::create(b, loc, k1V, x));
          else
            term[j] = em.fma(k1V, x, term[j]);
        }
        if (!spec.rowsInRegisters) {
          rowsIn[i].clear();
          if (acc)
            accIn[i].clear();
        }
      }
      SmallVector<Value> next;
      for (unsigned j = 0; j < c; ++j)
        next.push_back(arith::AddFOp::create(b, loc, dwg[j], term[j]));
      scf::YieldOp::create(b, loc, next);
    }
  }
  // This CTA's partial of dwg: row blockIdx of the workspace.
  Value cta = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  storeF32Row(em, SmallVector<Value>(loop.getResults()), ws, cta, Value());
  return fn;
}
