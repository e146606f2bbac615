//===- GradKernels.cpp - backward kernels (spec I) ------------------------===//
//
// Part of the attnres project.
//
// The gradient ops on the GPU (docs/gpu.md "Backward kernels"). They keep
// the row layout and emitter of the forward kernels (RowEmitter: a token row
// owned by one or more warps, 16-byte vector accesses, f32 math, one
// rounding per stored element), and add what a backward needs:
//
// - a CTA handles a contiguous chunk of tokens, one token at a time, so that
//   its partial of the parameter gradients (sums over tokens) stays in
//   registers; it writes that partial (f32) to its row of a workspace;
// - a second small kernel sums the workspace rows in a fixed order (no
//   float atomics): the parameter gradients are deterministic.
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

namespace {

/// The chunk of tokens of this CTA: [begin, end) with chunk = ceil(T /
/// gridDim.x) (empty for the last CTAs when the chunks do not need them).
std::pair<Value, Value> ctaTokenRange(OpBuilder &b, Location loc,
                                      Value numTokens) {
  Value cta = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value grid = gpu::GridDimOp::create(b, loc, gpu::Dimension::x);
  Value chunk = arith::CeilDivUIOp::create(b, loc, numTokens, grid);
  Value begin = arith::MinUIOp::create(
      b, loc, arith::MulIOp::create(b, loc, cta, chunk), numTokens);
  Value end = arith::MinUIOp::create(
      b, loc, arith::AddIOp::create(b, loc, begin, chunk), numTokens);
  return {begin, end};
}

/// Stores this thread's f32 vectors `vals` of a row of the f32 workspace
/// `ws` (memref<?xKxf32>) at row `row`, column offset `base`.
void storeF32Row(RowEmitter &em, ArrayRef<Value> vals, Value ws, Value row,
                 Value base) {
  OpBuilder &b = em.b;
  uint64_t align = std::min<uint64_t>(16, 4 * em.layout.vectorWidth);
  for (unsigned j = 0; j < vals.size(); ++j) {
    Value v = vals[j];
    Value col = em.offset(j);
    if (base)
      col = arith::AddIOp::create(b, em.loc, col, base);
    buildIf(b, em.loc, em.valid(j), [&]() {
      vector::StoreOp::create(b, em.loc, v, ws, ValueRange{row, col},
                              /*nontemporal=*/false, llvm::MaybeAlign(align));
    });
  }
}

/// Sources whose loads are in flight ahead of the one being used, when the
/// rows are not kept in registers between the passes.
constexpr unsigned kGradPrefetchDepth = 3;
/// Sources per token reduction in the re-read mode.
constexpr unsigned kGradGroup = 4;

Value splatNeg(RowEmitter &em, Value scalar) {
  return em.splat(arith::NegFOp::create(em.b, em.loc, scalar));
}

/// Appends to `partials` the inputs of a token reduction for sources
/// [lo, hi): for each source i, this thread's sums of wg * b_i and of
/// b_i * other (in that order). rowsIn[i] holds source i's row: with
/// `depth` > 0 the row of source i + depth is requested before source i is
/// used (a window of loads in flight; the caller loads the first `depth`),
/// and a used row is released unless `keep`.
void sourceDots(RowEmitter &em, ArrayRef<Value> sources, ValueRange tk,
                unsigned lo, unsigned hi, unsigned depth, bool keep,
                MutableArrayRef<SmallVector<Value>> rowsIn, ArrayRef<Value> wg,
                ArrayRef<Value> other, SmallVectorImpl<Value> &partials) {
  unsigned n = sources.size();
  for (unsigned i = lo; i < hi; ++i) {
    if (depth && i + depth < n)
      rowsIn[i + depth] = em.loadRow(sources[i + depth], tk);
    Value pw = em.zeroF32Vec(), pd = em.zeroF32Vec();
    for (unsigned j = 0; j < wg.size(); ++j) {
      Value x = em.toF32(rowsIn[i][j]);
      pw = em.fma(wg[j], x, pw);
      pd = em.fma(x, other[j], pd);
    }
    if (!keep)
      rowsIn[i].clear();
    partials.push_back(em.hsum(pw));
    partials.push_back(em.hsum(pd));
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// aggregate_grad
//===----------------------------------------------------------------------===//

std::string AggregateGradSpec::getName() const {
  return "aggregate_grad_" + typeSuffix(elementType) + "_d" +
         std::to_string(d) + "_n" + std::to_string(numSources) +
         (accumulate ? "_acc" : "") + (rowsInRegisters ? "" : "_reread");
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
  SmallVector<Type> wgTypes;
  // Re-read mode: the sources are reduced kGradGroup at a time, their dot
  // products (rows 0-1) and the per-source coefficients of pass 2 (a_i,
  // k1_i, k2_i: rows 2-4) go through workgroup memory instead of living in
  // every thread's registers.
  bool coefShared = n > 1 && !spec.rowsInRegisters;
  unsigned perReduction = coefShared ? std::min(n, kGradGroup) : n;
  if (layout.warpsPerToken() > 1 && n > 1)
    wgTypes.push_back(em.scratchType(2 * perReduction));
  if (coefShared)
    wgTypes.push_back(
        MemRefType::get({5, int64_t(n)}, f32, MemRefLayoutAttrInterface(),
                        gpu::AddressSpaceAttr::get(
                            b.getContext(), gpu::AddressSpace::Workgroup)));
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args, wgTypes, layout);
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
  Value scratch =
      wgTypes.empty() ? Value() : Value(fn.getWorkgroupAttributions()[0]);

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
        coef = fn.getWorkgroupAttributions().back();
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
                     dhF, partials);
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
        rowsIn[i] = em.loadRow(sources[i], tk);
        if (acc)
          accIn[i] = em.loadRow(accs[i], tk);
      };
      for (unsigned i = 0; i < kGradPrefetchDepth; ++i)
        fetch(i);
      for (unsigned i = 0; i < n; ++i) {
        fetch(i + kGradPrefetchDepth);
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

//===----------------------------------------------------------------------===//
// The deterministic reduction of the per-CTA partials
//===----------------------------------------------------------------------===//

std::string ParamReduceSpec::getName() const {
  return "param_grad_reduce_" + typeSuffix(elementType) + "_k" +
         std::to_string(k) + (plain ? "_p" + std::to_string(plain) : "");
}

gpu::GPUFuncOp
gpu_kernels::buildParamReduceKernel(OpBuilder &b, Location loc,
                                    const ParamReduceSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  Type e = spec.elementType, f32 = b.getF32Type();
  int64_t k = spec.k, dyn = ShapedType::kDynamic;
  int64_t cols_total = k + spec.plain;
  const unsigned cols = ParamReduceSpec::kColumns,
                 slices = ParamReduceSpec::kSlices;
  Type vec = MemRefType::get({k}, e), out = MemRefType::get({k}, f32);
  SmallVector<Type> args{MemRefType::get({dyn, cols_total}, f32),
                         b.getIndexType(),
                         vec,
                         vec,
                         out,
                         out};
  if (spec.plain)
    args.push_back(MemRefType::get({spec.plain}, f32));
  auto wsAttr =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  SmallVector<Type> wgTypes{MemRefType::get({int64_t(slices), int64_t(cols)},
                                            f32, MemRefLayoutAttrInterface(),
                                            wsAttr)};
  RowLayout layout;
  layout.threadsPerToken = cols * slices;
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args, wgTypes, layout);
  Block &entry = fn.getBody().front();
  Value ws = entry.getArgument(0), numPartials = entry.getArgument(1);
  Value query = entry.getArgument(2), gain = entry.getArgument(3);
  Value dquery = entry.getArgument(4), dgain = entry.getArgument(5);
  Value smem = fn.getWorkgroupAttributions()[0];

  auto idx = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0));
  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value lane = arith::RemUIOp::create(b, loc, tid, idx(cols));
  Value slice = arith::DivUIOp::create(b, loc, tid, idx(cols));
  Value col = arith::AddIOp::create(
      b, loc, arith::MulIOp::create(b, loc, bid, idx(cols)), lane);
  Value colOk = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, col,
                                      idx(cols_total));
  // Slice s sums rows [s * per, min((s + 1) * per, P)) in increasing order,
  // four loads in flight per step (a missing row adds +0).
  Value per = arith::CeilDivUIOp::create(b, loc, numPartials, idx(slices));
  Value lo = arith::MinUIOp::create(
      b, loc, arith::MulIOp::create(b, loc, slice, per), numPartials);
  Value hi = arith::MinUIOp::create(
      b, loc, arith::AddIOp::create(b, loc, lo, per), numPartials);
  const int64_t unroll = 4;
  Value sliceSum =
      buildIfElse(
          b, loc, colOk,
          [&](Location) -> SmallVector<Value> {
            auto loop = scf::ForOp::create(b, loc, lo, hi, idx(unroll),
                                           ValueRange{zero});
            OpBuilder::InsertionGuard lg(b);
            b.setInsertionPointToStart(loop.getBody());
            Value row0 = loop.getInductionVar();
            SmallVector<Value> vals;
            for (int64_t u = 0; u < unroll; ++u) {
              Value row =
                  u ? arith::AddIOp::create(b, loc, row0, idx(u)).getResult()
                    : row0;
              Value ok = arith::CmpIOp::create(
                  b, loc, arith::CmpIPredicate::ult, row, hi);
              vals.push_back(
                  buildIfElse(
                      b, loc, ok,
                      [&](Location) -> SmallVector<Value> {
                        return {memref::LoadOp::create(b, loc, ws,
                                                       ValueRange{row, col})};
                      },
                      [&](Location) -> SmallVector<Value> { return {zero}; })
                      .getResult(0));
            }
            Value sum = loop.getRegionIterArgs()[0];
            for (Value v : vals)
              sum = arith::AddFOp::create(b, loc, sum, v);
            scf::YieldOp::create(b, loc, sum);
            b.setInsertionPointAfter(loop);
            return {loop.getResult(0)};
          },
          [&](Location) -> SmallVector<Value> { return {zero}; })
          .getResult(0);
  memref::StoreOp::create(b, loc, sliceSum, smem, ValueRange{slice, lane});
  gpu::BarrierOp::create(b, loc);
  Value first =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, slice, idx(0));
  Value write = arith::AndIOp::create(b, loc, first, colOk);
  buildIf(b, loc, write, [&]() {
    Value total =
        memref::LoadOp::create(b, loc, smem, ValueRange{idx(0), lane});
    for (unsigned s = 1; s < slices; ++s)
      total = arith::AddFOp::create(
          b, loc, total,
          memref::LoadOp::create(b, loc, smem, ValueRange{idx(s), lane}));
    auto toF32 = [&](Value v) -> Value {
      return e.isF32() ? v : arith::ExtFOp::create(b, loc, f32, v).getResult();
    };
    auto scaled = [&]() {
      Value q = toF32(memref::LoadOp::create(b, loc, query, ValueRange{col}));
      Value g = toF32(memref::LoadOp::create(b, loc, gain, ValueRange{col}));
      memref::StoreOp::create(b, loc, arith::MulFOp::create(b, loc, total, g),
                              dquery, ValueRange{col});
      memref::StoreOp::create(b, loc, arith::MulFOp::create(b, loc, total, q),
                              dgain, ValueRange{col});
    };
    if (!spec.plain)
      return scaled();
    Value isScaled =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, col, idx(k));
    auto ifOp = scf::IfOp::create(b, loc, isScaled, /*withElse=*/true);
    OpBuilder::InsertionGuard ig(b);
    b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
    scaled();
    b.setInsertionPoint(ifOp.elseBlock()->getTerminator());
    memref::StoreOp::create(
        b, loc, total, entry.getArgument(6),
        ValueRange{arith::SubIOp::create(b, loc, col, idx(k))});
  });
  return fn;
}

//===----------------------------------------------------------------------===//
// merge_grad
//===----------------------------------------------------------------------===//

std::string MergeGradSpec::getName() const {
  return "merge_grad_" + typeSuffix(elementType) + "_d" + std::to_string(d) +
         (hasPartial ? "_p" : "") + (hasNorm ? "_n" : "") +
         (zeroGrad ? "_z" : "");
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
  Type rows = rowsType(e, d), vec = MemRefType::get({d}, e);
  Type stat = MemRefType::get({dyn}, f32);
  SmallVector<Type> args{rows, stat, vec, vec, rows};
  if (spec.hasPartial)
    args.push_back(rows);
  if (norm)
    args.push_back(vec);
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
  Value outIn = entry.getArgument(a++), lse = entry.getArgument(a++);
  Value query = entry.getArgument(a++), gain = entry.getArgument(a++);
  Value update = entry.getArgument(a++);
  Value partial = spec.hasPartial ? entry.getArgument(a++) : Value();
  Value normGain = norm ? entry.getArgument(a++) : Value();
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
  auto loop = scf::ForOp::create(b, loc, begin, end, em.idx(1), init);
  {
    OpBuilder::InsertionGuard lg(b);
    b.setInsertionPointToStart(loop.getBody());
    Value tok = loop.getInductionVar();
    ValueRange tk(tok);
    SmallVector<Value> accs(loop.getRegionIterArgs());
    // Reductions per token: 2 without the norm, 3 with; the scratch halves
    // alternate over all of them.
    unsigned perToken = norm ? 3 : 2;
    Value tokIter = arith::SubIOp::create(b, loc, tok, begin);
    Value base = arith::MulIOp::create(b, loc, tokIter, em.idx(perToken));
    auto parity = [&](unsigned k) -> Value {
      Value step = arith::AddIOp::create(b, loc, base, em.idx(k));
      return arith::RemUIOp::create(b, loc, step, em.idx(2));
    };
    // Every load of the token first.
    SmallVector<Value> up = em.loadRow(update, tk);
    SmallVector<Value> pa =
        spec.hasPartial ? em.loadRow(partial, tk) : SmallVector<Value>();
    SmallVector<Value> o = em.loadRow(outIn, tk);
    SmallVector<Value> dhIn = dh ? em.loadRow(dh, tk) : SmallVector<Value>();
    SmallVector<Value> dpnIn = em.loadRow(dpNew, tk);
    SmallVector<Value> dhnIn =
        norm ? em.loadRow(dhn, tk) : SmallVector<Value>();
    Value l = memref::LoadOp::create(b, loc, lse, tk);

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
    scf::YieldOp::create(b, loc, next);
  }
  Value cta = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  SmallVector<Value> res(loop.getResults());
  storeF32Row(em, ArrayRef<Value>(res).take_front(c), ws, cta, Value());
  if (norm)
    storeF32Row(em, ArrayRef<Value>(res).drop_front(c), ws, cta, em.idx(d));
  return fn;
}

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
  int64_t d = spec.d, dyn = ShapedType::kDynamic;
  unsigned n = spec.numSources, s = spec.numQueries;
  bool acc = spec.accumulate;
  Type params = MemRefType::get({int64_t(s), d}, e), rows = rowsType(e, d);
  Type stat = MemRefType::get({dyn}, f32);
  Type stackedStat = MemRefType::get({int64_t(s), dyn}, f32);
  SmallVector<Type> args{params, params};
  args.append(n, rows);
  args.push_back(stackedStat);
  args.append(n, stat);
  args.push_back(MemRefType::get({int64_t(s), dyn, d}, e));
  args.push_back(stackedStat);
  if (acc)
    args.append(n, rows);
  args.append(n, rows);
  args.push_back(MemRefType::get({dyn, int64_t(s * n)}, f32));
  args.push_back(b.getIndexType());

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
  unsigned a = 0;
  Value queries = entry.getArgument(a++), gains = entry.getArgument(a++);
  SmallVector<Value> sources, invRms, accs, grads;
  for (unsigned i = 0; i < n; ++i)
    sources.push_back(entry.getArgument(a++));
  Value lse = entry.getArgument(a++);
  for (unsigned i = 0; i < n; ++i)
    invRms.push_back(entry.getArgument(a++));
  Value dout = entry.getArgument(a++), dlse = entry.getArgument(a++);
  if (acc)
    for (unsigned i = 0; i < n; ++i)
      accs.push_back(entry.getArgument(a++));
  for (unsigned i = 0; i < n; ++i)
    grads.push_back(entry.getArgument(a++));
  Value coefOut = entry.getArgument(a++);
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
