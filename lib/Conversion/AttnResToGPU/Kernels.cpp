//===- Kernels.cpp - GPU kernel generators for attnres ops ----------------===//
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

#include "Kernels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

RowLayout gpu_kernels::computeRowLayout(Type elementType, int64_t d,
                                        unsigned targetElements) {
  RowLayout l;
  l.d = d;
  unsigned bytes = elementType.getIntOrFloatBitWidth() / 8;
  // 16-byte accesses need every row to start 16-byte aligned: the vector
  // width must divide D. Otherwise fall back to the widest width that does.
  unsigned vw = 16 / bytes;
  while (vw > 1 && d % vw != 0)
    vw /= 2;
  l.vectorWidth = vw;
  l.numVectors = d / vw;
  int64_t perThread = std::max<int64_t>(1, targetElements / vw);
  int64_t tpt = llvm::divideCeil(l.numVectors, perThread);
  tpt = llvm::alignTo(tpt, 32);
  tpt = std::clamp<int64_t>(tpt, 32, 1024);
  l.threadsPerToken = tpt;
  l.vectorsPerThread = llvm::divideCeil(l.numVectors, tpt);
  // A token that fits in one warp: pack 4 tokens (warps) per CTA so that an
  // SM can hold enough of them.
  l.tokensPerCta = tpt == 32 ? 4 : 1;
  return l;
}

static std::string typeSuffix(Type t) {
  if (t.isF32())
    return "f32";
  if (t.isF16())
    return "f16";
  return "bf16";
}

std::string ScoreKernelSpec::getName() const {
  std::string name = stacked ? "block_score_" : "aggregate_";
  name += typeSuffix(elementType) + "_d" + std::to_string(d) + "_n" +
          std::to_string(numSources);
  if (stacked)
    name += "_s" + std::to_string(numQueries) + "_g" +
            std::to_string(queriesPerCta) + (hasInvRms ? "_r" : "");
  return name;
}

std::string MergeKernelSpec::getName() const {
  return "merge_" + typeSuffix(elementType) + "_d" + std::to_string(d) +
         (hasPartial ? "_p" : "") + (hasNorm ? "_n" : "") +
         (writeH ? "" : "_nh");
}

std::string RowKernelSpec::getName() const {
  if (kind == InvRms)
    return "inv_rms_" + typeSuffix(elementType) + "_d" + std::to_string(d);
  return "block_sum_" + typeSuffix(elementType) + "_d" + std::to_string(d) +
         "_n" + std::to_string(numInputs);
}

//===----------------------------------------------------------------------===//
// Emission helpers
//===----------------------------------------------------------------------===//

namespace {

/// `scf.if cond` yielding what `thenFn` / `elseFn` (each called with `b`
/// positioned in its branch) return.
template <typename ThenFn, typename ElseFn>
scf::IfOp buildIfElse(OpBuilder &b, Location loc, Value cond, ThenFn thenFn,
                      ElseFn elseFn) {
  auto branch = [&b](auto fn) {
    return [&b, fn](OpBuilder &rb, Location l) {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPoint(rb.getInsertionBlock(), rb.getInsertionPoint());
      scf::YieldOp::create(b, l, fn(l));
    };
  };
  return scf::IfOp::create(b, loc, cond, branch(thenFn), branch(elseFn));
}

/// Runs `body` with `b` inside `scf.if cond` (a null cond: unconditionally).
template <typename Fn>
void buildIf(OpBuilder &b, Location loc, Value cond, Fn body) {
  if (!cond)
    return body();
  auto ifOp = scf::IfOp::create(b, loc, cond, /*withElse=*/false);
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPoint(ifOp.getThenRegion().front().getTerminator());
  body();
}

/// Builds the common skeleton of a row kernel: thread/token indices, guarded
/// vector loads and stores, f32 conversions and the token-wide reduction.
class RowEmitter {
public:
  RowEmitter(OpBuilder &b, Location loc, const RowLayout &layout,
             Type elementType)
      : b(b), loc(loc), layout(layout), elementType(elementType) {
    f32 = b.getF32Type();
    storageVecType = VectorType::get({layout.vectorWidth}, elementType);
    f32VecType = VectorType::get({layout.vectorWidth}, f32);
  }

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32c(double v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }
  Value zeroF32Vec() {
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(f32VecType, b.getF32FloatAttr(0.0)));
  }
  Value zeroStorageVec() {
    return arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(storageVecType,
                               b.getFloatAttr(elementType, 0.0)));
  }

  /// Computes tid, lane, warp and the token index of this thread and the
  /// position of the thread in its token (`tpos`). `groupCount` CTAs share a
  /// token (phase 1); `group` is this CTA's index among them.
  void emitIndices(unsigned groupCount) {
    tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
    Value bid = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
    Value c32 = idx(32);
    lane = arith::RemUIOp::create(b, loc, tid, c32);
    warp = arith::DivUIOp::create(b, loc, tid, c32);
    Value tokenBlock = bid;
    group = idx(0);
    if (groupCount > 1) {
      Value g = idx(groupCount);
      group = arith::RemUIOp::create(b, loc, bid, g);
      tokenBlock = arith::DivUIOp::create(b, loc, bid, g);
    }
    if (layout.tokensPerCta > 1) {
      token = arith::AddIOp::create(
          b, loc,
          arith::MulIOp::create(b, loc, tokenBlock, idx(layout.tokensPerCta)),
          warp);
      tpos = lane;
      warpInToken = idx(0);
    } else {
      token = tokenBlock;
      tpos = tid;
      warpInToken = warp;
    }
  }

  /// When several tokens share a CTA the last CTA may run past T: guard the
  /// body (no barrier is used in that configuration).
  void guardTokens(Value numTokens) {
    if (layout.tokensPerCta == 1)
      return;
    Value inRange = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                          token, numTokens);
    auto ifOp = scf::IfOp::create(b, loc, inRange, /*withElse=*/false);
    b.setInsertionPointToStart(&ifOp.getThenRegion().front());
  }

  /// Element offset of this thread's j-th vector.
  Value offset(unsigned j) {
    Value v = arith::AddIOp::create(
        b, loc, idx(int64_t(j) * layout.threadsPerToken), tpos);
    return arith::MulIOp::create(b, loc, v, idx(layout.vectorWidth));
  }

  /// Whether the j-th vector exists (null when always true).
  Value valid(unsigned j) {
    if (int64_t(j + 1) * layout.threadsPerToken <= layout.numVectors)
      return nullptr;
    Value v = arith::AddIOp::create(
        b, loc, idx(int64_t(j) * layout.threadsPerToken), tpos);
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, v,
                                 idx(layout.numVectors));
  }

  uint64_t alignment() const {
    return uint64_t(layout.vectorWidth) *
           (elementType.getIntOrFloatBitWidth() / 8);
  }

  Value rawLoad(Value memref, ValueRange indices) {
    return vector::LoadOp::create(b, loc, storageVecType, memref, indices,
                                  /*nontemporal=*/false,
                                  llvm::MaybeAlign(alignment()));
  }

  /// Loads the j-th vector of this thread from `memref` at `prefix..., off`;
  /// zeros where the vector is past the row.
  Value loadVector(Value memref, ValueRange prefix, unsigned j) {
    SmallVector<Value> indices(prefix);
    indices.push_back(offset(j));
    Value ok = valid(j);
    if (!ok)
      return rawLoad(memref, indices);
    return buildIfElse(
               b, loc, ok, [&](Location) { return rawLoad(memref, indices); },
               [&](Location) { return zeroStorageVec(); })
        .getResult(0);
  }

  SmallVector<Value> loadRow(Value memref, ValueRange prefix) {
    SmallVector<Value> r;
    for (unsigned j = 0; j < layout.vectorsPerThread; ++j)
      r.push_back(loadVector(memref, prefix, j));
    return r;
  }

  /// Stores f32 vector `v` rounded to the storage type as this thread's
  /// j-th vector.
  void storeVector(Value v, Value memref, ValueRange prefix, unsigned j) {
    storeRaw(toStorage(v), memref, prefix, j);
  }

  /// Stores storage-type vector `s` as this thread's j-th vector.
  void storeRaw(Value s, Value memref, ValueRange prefix, unsigned j) {
    SmallVector<Value> indices(prefix);
    indices.push_back(offset(j));
    buildIf(b, loc, valid(j), [&]() {
      vector::StoreOp::create(b, loc, s, memref, indices,
                              /*nontemporal=*/false,
                              llvm::MaybeAlign(alignment()));
    });
  }

  Value toF32(Value v) {
    if (elementType.isF32())
      return v;
    return arith::ExtFOp::create(b, loc, f32VecType, v);
  }
  Value toStorage(Value v) {
    if (elementType.isF32())
      return v;
    return arith::TruncFOp::create(b, loc, storageVecType, v);
  }
  Value splat(Value scalar) {
    return vector::BroadcastOp::create(b, loc, f32VecType, scalar);
  }
  Value fma(Value a, Value x, Value acc) {
    return vector::FMAOp::create(b, loc, a, x, acc);
  }
  Value hsum(Value v) {
    if (layout.vectorWidth == 1)
      return vector::ExtractOp::create(b, loc, v, ArrayRef<int64_t>{0});
    return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, v);
  }

  Value intrinsic(StringRef name, Value x) {
    return LLVM::CallIntrinsicOp::create(b, loc, f32, b.getStringAttr(name),
                                         ValueRange{x})
        .getResult(0);
  }
  /// exp(x) = 2^(x log2 e) with ex2.approx.ftz.
  Value exp(Value x) {
    Value y = arith::MulFOp::create(b, loc, x, f32c(1.4426950408889634));
    return intrinsic("llvm.nvvm.ex2.approx.ftz.f32", y);
  }
  /// log(x) = lg2(x) ln 2.
  Value log(Value x) {
    Value y = intrinsic("llvm.nvvm.lg2.approx.ftz.f", x);
    return arith::MulFOp::create(b, loc, y, f32c(0.6931471805599453));
  }
  Value rsqrt(Value x) { return intrinsic("llvm.nvvm.rsqrt.approx.ftz.f", x); }

  /// inv_rms from a sum of squares: rsqrt(ss / D + eps).
  Value invRms(Value ss, Value eps) {
    Value ms = arith::MulFOp::create(b, loc, ss, f32c(1.0 / double(layout.d)));
    return rsqrt(arith::AddFOp::create(b, loc, ms, eps));
  }

  Value warpXorSum(Value v, unsigned width) {
    for (unsigned off = width / 2; off >= 1; off /= 2) {
      auto sh =
          gpu::ShuffleOp::create(b, loc, v, off, 32, gpu::ShuffleMode::XOR);
      v = arith::AddFOp::create(b, loc, v, sh.getShuffleResult());
    }
    return v;
  }

  /// Sums each value over the threads of the token; every thread gets the
  /// totals. With several warps per token the warp totals go through
  /// `scratch` (memref<2 x K x W x f32, workgroup>), double-buffered by
  /// `parity` so that one barrier per reduction suffices.
  SmallVector<Value> tokenSum(ArrayRef<Value> values, Value scratch,
                              unsigned parity) {
    SmallVector<Value> r;
    for (Value v : values)
      r.push_back(warpXorSum(v, 32));
    unsigned w = layout.warpsPerToken();
    if (w == 1)
      return r;
    Value par = idx(parity);
    Value isLane0 =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, lane, idx(0));
    auto ifOp = scf::IfOp::create(b, loc, isLane0, /*withElse=*/false);
    {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPoint(ifOp.getThenRegion().front().getTerminator());
      for (auto [k, v] : llvm::enumerate(r))
        memref::StoreOp::create(b, loc, v, scratch,
                                ValueRange{par, idx(k), warpInToken});
    }
    gpu::BarrierOp::create(b, loc);
    // Lanes of every group of p2 lanes read the W warp totals, so that the
    // xor tree leaves the total in every lane.
    unsigned p2 = llvm::PowerOf2Ceil(w);
    Value slot = arith::RemUIOp::create(b, loc, lane, idx(p2));
    Value has =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, slot, idx(w));
    SmallVector<Type> types(r.size(), f32);
    auto rd = buildIfElse(
        b, loc, has,
        [&](Location l) {
          SmallVector<Value> vals;
          for (unsigned k = 0; k < r.size(); ++k)
            vals.push_back(memref::LoadOp::create(
                b, l, scratch, ValueRange{par, idx(k), slot}));
          return vals;
        },
        [&](Location) { return SmallVector<Value>(r.size(), f32c(0.0)); });
    SmallVector<Value> out;
    for (Value v : rd.getResults())
      out.push_back(warpXorSum(v, p2));
    return out;
  }

  /// The workgroup scratch type for K values per reduction.
  MemRefType scratchType(unsigned k) const {
    auto ws = gpu::AddressSpaceAttr::get(b.getContext(),
                                         gpu::AddressSpace::Workgroup);
    return MemRefType::get({2, k, int64_t(layout.warpsPerToken())}, f32,
                           MemRefLayoutAttrInterface(), ws);
  }

  OpBuilder &b;
  Location loc;
  const RowLayout &layout;
  Type elementType;
  Type f32;
  VectorType storageVecType, f32VecType;
  Value tid, lane, warp, warpInToken, token, tpos, group;
};

/// Creates an empty kernel `name` with `argTypes` and optional workgroup
/// scratch, and positions `b` in its body.
gpu::GPUFuncOp createKernel(OpBuilder &b, Location loc, StringRef name,
                            ArrayRef<Type> argTypes,
                            ArrayRef<Type> workgroupTypes,
                            const RowLayout &layout) {
  auto fnType = b.getFunctionType(argTypes, {});
  auto fn = gpu::GPUFuncOp::create(b, loc, name, fnType, workgroupTypes);
  fn->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  fn.setKnownBlockSizeAttr(
      b.getDenseI32ArrayAttr({int32_t(layout.ctaThreads()), 1, 1}));
  // Ask ptxas for a register budget that lets this many CTAs share an SM.
  if (layout.minCtasPerSM > 1)
    fn->setAttr("nvvm.minctasm", b.getI32IntegerAttr(layout.minCtasPerSM));
  Block &entry = fn.getBody().front();
  b.setInsertionPointToStart(&entry);
  auto ret = gpu::ReturnOp::create(b, loc);
  b.setInsertionPoint(ret);
  return fn;
}

MemRefType rowsType(Type e, int64_t d) {
  return MemRefType::get({ShapedType::kDynamic, d}, e);
}

/// Requests every 128-byte line of row `token` of each memref<?xDxE> in
/// `rows` into L2 with prefetch.global.L2 (sm_90 and newer; no register is
/// held waiting for the data). Thread `tid` of `threads` takes lines tid,
/// tid + threads, ... of each row.
void emitL2PrefetchRows(OpBuilder &b, Location loc, ArrayRef<Value> rows,
                        Value token, Type e, int64_t d, Value tid,
                        unsigned threads) {
  MLIRContext *ctx = b.getContext();
  Type i64 = b.getI64Type();
  auto gptr = LLVM::LLVMPointerType::get(ctx, 1);
  auto idx = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  int64_t rowBytes = d * (e.getIntOrFloatBitWidth() / 8);
  int64_t lines = llvm::divideCeil(rowBytes, int64_t(128));
  Value rowOff = arith::IndexCastOp::create(
      b, loc, i64, arith::MulIOp::create(b, loc, token, idx(rowBytes)));
  for (Value row : rows) {
    Value base = arith::IndexCastOp::create(
        b, loc, i64,
        memref::ExtractAlignedPointerAsIndexOp::create(b, loc, row));
    base = arith::AddIOp::create(b, loc, base, rowOff);
    for (int64_t r = 0; r * threads < lines; ++r) {
      Value line = arith::AddIOp::create(b, loc, tid, idx(r * threads));
      Value ok =
          (r + 1) * threads <= lines
              ? Value()
              : Value(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                            line, idx(lines)));
      buildIf(b, loc, ok, [&]() {
        Value off = arith::IndexCastOp::create(
            b, loc, i64, arith::MulIOp::create(b, loc, line, idx(128)));
        Value sum = arith::AddIOp::create(b, loc, base, off);
        Value addr = LLVM::IntToPtrOp::create(b, loc, gptr, sum);
        LLVM::CallIntrinsicOp::create(
            b, loc, b.getStringAttr("llvm.nvvm.prefetch.global.L2"),
            ValueRange{addr});
      });
    }
  }
}

/// The argument types of the aggregate / block_score kernels, in the order
/// documented at buildScoreKernel.
SmallVector<Type> scoreArgTypes(OpBuilder &b, Type e, int64_t d, unsigned n,
                                unsigned s, bool stacked, bool hasInvRms) {
  int64_t dyn = ShapedType::kDynamic;
  Type f32 = b.getF32Type();
  SmallVector<Type> args;
  Type vecType = stacked ? MemRefType::get({s, d}, e) : MemRefType::get({d}, e);
  args.push_back(vecType);
  args.push_back(vecType);
  for (unsigned i = 0; i < n; ++i)
    args.push_back(rowsType(e, d));
  if (hasInvRms)
    for (unsigned i = 0; i < n; ++i)
      args.push_back(MemRefType::get({dyn}, f32));
  args.push_back(stacked ? MemRefType::get({s, dyn, d}, e) : rowsType(e, d));
  if (stacked)
    args.push_back(MemRefType::get({s, dyn}, f32));
  args.push_back(b.getIndexType());
  args.push_back(f32);
  return args;
}

/// The arguments of an aggregate / block_score kernel (scoreArgTypes).
struct ScoreArgs {
  ScoreArgs(Block &entry, unsigned n, bool stacked, bool hasInvRms) {
    unsigned a = 0;
    queries = entry.getArgument(a++);
    gains = entry.getArgument(a++);
    for (unsigned i = 0; i < n; ++i)
      sources.push_back(entry.getArgument(a++));
    if (hasInvRms)
      for (unsigned i = 0; i < n; ++i)
        invRms.push_back(entry.getArgument(a++));
    out = entry.getArgument(a++);
    lse = stacked ? entry.getArgument(a++) : Value();
    numTokens = entry.getArgument(a++);
    eps = entry.getArgument(a++);
  }

  Value queries, gains;
  SmallVector<Value> sources, invRms;
  Value out, lse, numTokens, eps;
};

} // namespace

//===----------------------------------------------------------------------===//
// Aggregate / block_score
//===----------------------------------------------------------------------===//

gpu::GPUFuncOp gpu_kernels::buildScoreKernel(OpBuilder &b, Location loc,
                                             const ScoreKernelSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  const RowLayout &layout = spec.layout;
  Type e = spec.elementType;
  int64_t d = spec.d;
  unsigned n = spec.numSources, s = spec.numQueries, g = spec.queriesPerCta;

  SmallVector<Type> args =
      scoreArgTypes(b, e, d, n, s, spec.stacked, spec.hasInvRms);

  // One source: the weight is exactly 1 whatever the score (spec A.2), so
  // the aggregate is a copy of the source; no score is computed.
  if (!spec.stacked && n == 1) {
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
  ScoreArgs ka(entry, n, spec.stacked, spec.hasInvRms);
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
    if (spec.stacked) {
      Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                          em.tpos, em.idx(0));
      auto ifOp = scf::IfOp::create(b, loc, first, /*withElse=*/false);
      OpBuilder::InsertionGuard ig(b);
      b.setInsertionPoint(ifOp.getThenRegion().front().getTerminator());
      Value l = arith::AddFOp::create(b, loc, m[q], em.log(sum[q]));
      memref::StoreOp::create(b, loc, l, lse, ValueRange{qRows[q], em.token});
    }
  }
  return fn;
}

//===----------------------------------------------------------------------===//
// block_score on tensor cores (bf16)
//===----------------------------------------------------------------------===//

std::string BlockScoreTCSpec::getName() const {
  return "block_score_" + typeSuffix(elementType) + "_d" + std::to_string(d) +
         "_n" + std::to_string(numSources) + "_s" + std::to_string(numQueries) +
         "_tc" + (bulkCopy ? "_tma" : "") +
         (clusterSplit > 1 ? "_x" + std::to_string(clusterSplit) : "") +
         (hasInvRms ? "_r" : "");
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
    int64_t bytes = spec.elementType.getIntOrFloatBitWidth() / 8;
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

/// Emission helpers of the tensor-core phase-1 kernel.
struct TCEmitter {
  TCEmitter(OpBuilder &b, Location loc) : b(b), loc(loc) {
    f32 = b.getF32Type();
    i32 = b.getI32Type();
  }

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32c(double v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }
  Value i32c(int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  }
  Value cmp(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, loc, p, x, y);
  }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value andI(Value x, Value y) { return arith::AndIOp::create(b, loc, x, y); }

  /// `ok ? load : zeros` of a vector of `type` (ok null: unconditional).
  Value maybeLoad(VectorType type, Value memref, ValueRange indices, Value ok,
                  uint64_t align) {
    auto load = [&]() -> Value {
      return vector::LoadOp::create(b, loc, type, memref, indices,
                                    /*nontemporal=*/false,
                                    llvm::MaybeAlign(align));
    };
    if (!ok)
      return load();
    return buildIfElse(
               b, loc, ok, [&](Location) { return load(); },
               [&](Location l) -> Value {
                 return arith::ConstantOp::create(
                     b, l,
                     DenseElementsAttr::get(
                         type, b.getFloatAttr(type.getElementType(), 0.0)));
               })
        .getResult(0);
  }

  /// Inline PTX with side effects and `results` (none or one type).
  LLVM::InlineAsmOp inlinePtx(TypeRange results, StringRef text,
                              StringRef constraints, ValueRange operands) {
    return LLVM::InlineAsmOp::create(
        b, loc, results, operands, text, constraints, /*has_side_effects=*/true,
        /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
        LLVM::AsmDialectAttr(), ArrayAttr());
  }
  void ptx(StringRef text, StringRef constraints, ValueRange operands) {
    inlinePtx(TypeRange{}, text, constraints, operands);
  }
  Value ptxValue(Type type, StringRef text, StringRef constraints,
                 ValueRange operands) {
    return inlinePtx(type, text, constraints, operands).getResult(0);
  }

  /// The f32 at shared address `addr` (i32) of CTA `rank` of the cluster.
  Value loadClusterF32(Value addr, Value rank) {
    Value remote = ptxValue(i32, "mapa.shared::cluster.u32 $0, $1, $2;",
                            "=r,r,r", ValueRange{addr, rank});
    return ptxValue(f32, "ld.shared::cluster.f32 $0, [$1];", "=f,r",
                    ValueRange{remote});
  }

  /// The 32-bit shared-window address of a workgroup memref.
  Value sharedAddr(Value memref) {
    Value p = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref);
    return arith::IndexCastUIOp::create(b, loc, i32, p);
  }

  /// `ok ? memref[indices] : zeros` without a branch: the indices must be
  /// in bounds whatever `ok` is (ok null: the plain load).
  Value selectLoad(VectorType type, Value memref, ValueRange indices, Value ok,
                   uint64_t align) {
    Value v =
        vector::LoadOp::create(b, loc, type, memref, indices,
                               /*nontemporal=*/false, llvm::MaybeAlign(align));
    if (!ok)
      return v;
    return arith::SelectOp::create(
        b, loc, ok, v,
        arith::ConstantOp::create(
            b, loc,
            DenseElementsAttr::get(
                type, b.getFloatAttr(type.getElementType(), 0.0))));
  }

  /// Runs `body` under `cond` (a null cond: unconditionally).
  template <typename Fn> void when(Value cond, Fn body) {
    buildIf(b, loc, cond, body);
  }

  /// The four i32 registers of a vector of eight 16-bit values.
  SmallVector<Value> regs(Value v8) {
    auto vt = VectorType::get({4}, i32);
    Value v = vector::BitCastOp::create(b, loc, vt, v8);
    SmallVector<Value> r;
    for (int64_t k = 0; k < 4; ++k)
      r.push_back(vector::ExtractOp::create(b, loc, v, ArrayRef<int64_t>{k}));
    return r;
  }

  /// D = A * B + C on one mma.m16n8k16 (bf16 x bf16 -> f32).
  SmallVector<Value> mma(ArrayRef<Value> a, ArrayRef<Value> bb,
                         ArrayRef<Value> c) {
    auto st =
        LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
    auto op =
        NVVM::MmaOp::create(b, loc, st, a, bb, c, ArrayRef<int64_t>{16, 8, 16},
                            /*b1Op=*/std::nullopt, /*intOverflow=*/std::nullopt,
                            std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16,
                                                          NVVM::MMATypes::bf16},
                            std::array<NVVM::MMALayout, 2>{
                                NVVM::MMALayout::row, NVVM::MMALayout::col});
    SmallVector<Value> d;
    for (int64_t k = 0; k < 4; ++k)
      d.push_back(LLVM::ExtractValueOp::create(b, loc, op.getResult(),
                                               ArrayRef<int64_t>{k}));
    return d;
  }

  OpBuilder &b;
  Location loc;
  Type f32, i32;
};

} // namespace

int64_t BlockScoreTCSpec::dynamicSharedBytes() const {
  return TCSharedLayout(*this).total;
}

gpu::GPUFuncOp
gpu_kernels::buildBlockScoreTCKernel(OpBuilder &b, Location loc,
                                     const BlockScoreTCSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  MLIRContext *ctx = b.getContext();
  Type e = spec.elementType;
  int64_t d = spec.d;
  unsigned n = spec.numSources, s = spec.numQueries;
  unsigned threads = spec.threads, warps = threads / 32;
  Type f32 = b.getF32Type();

  SmallVector<Type> args =
      scoreArgTypes(b, e, d, n, s, /*stacked=*/true, spec.hasInvRms);

  // Shared memory (TCSharedLayout): workgroup attributions, or views of
  // dynamic shared memory with bulk copies.
  unsigned sPad = llvm::alignTo(s, 4);
  auto ws = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  auto wgMem = [&](ArrayRef<int64_t> shape, Type t) -> MemRefType {
    return MemRefType::get(shape, t, MemRefLayoutAttrInterface(), ws);
  };
  TCSharedLayout shared(spec);
  SmallVector<Type> wgTypes;
  if (!spec.bulkCopy)
    for (auto &shape : shared.shapes)
      wgTypes.push_back(wgMem(shape, f32));
  RowLayout layout;
  layout.d = d;
  layout.vectorWidth = 8;
  layout.numVectors = d / 8;
  layout.threadsPerToken = threads;
  layout.minCtasPerSM = spec.minCtasPerSM;
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args, wgTypes, layout);
  for (unsigned k = 0; k < wgTypes.size(); ++k)
    fn.setWorkgroupAttributionAttr(k, LLVM::LLVMDialect::getAlignAttrName(),
                                   b.getI64IntegerAttr(16));
  Block &entry = fn.getBody().front();
  ScoreArgs ka(entry, n, /*stacked=*/true, spec.hasInvRms);
  Value queries = ka.queries, gains = ka.gains, out = ka.out, lse = ka.lse;
  // T: one CTA per token, grid = T; T / 2^62 (always 0) is an opaque zero.
  Value numTokens = ka.numTokens, eps = ka.eps;
  ArrayRef<Value> sources = ka.sources, invRms = ka.invRms;
  // rowsSm (n x stride rows) and barSm (the mbarrier): bulk copies only.
  int64_t stride = spec.sharedRowStride();
  // Cluster split: this CTA owns columns [colBase, colBase + dl) of the
  // token; everything below works on dl columns.
  unsigned split = spec.bulkCopy ? std::max(1u, spec.clusterSplit) : 1;
  int64_t dl = d / split;
  Value zPart, ssPart, zTot, aSm, rowsSm, barSm, zLoc, ssLoc;
  if (!spec.bulkCopy) {
    auto attributions = fn.getWorkgroupAttributions();
    zPart = attributions[0];
    ssPart = attributions[1];
    zTot = attributions[2];
    aSm = attributions[3];
  } else {
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

  RowEmitter em(b, loc, layout, e);
  TCEmitter tc(b, loc);
  using P = arith::CmpIPredicate;
  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  Value token = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value rank = tc.idx(0), colBase = tc.idx(0);
  if (split > 1) {
    fn.setKnownClusterSizeAttr(b.getDenseI32ArrayAttr({int32_t(split), 1, 1}));
    rank = arith::RemUIOp::create(b, loc, token, tc.idx(split));
    token = arith::DivUIOp::create(b, loc, token, tc.idx(split));
    colBase = tc.mul(rank, tc.idx(dl));
  }
  Value lane = arith::RemUIOp::create(b, loc, tid, tc.idx(32));
  Value warp = arith::DivUIOp::create(b, loc, tid, tc.idx(32));
  // mma fragment coordinates: group (row of A, column of B) and thread in
  // group (k pairs).
  Value grp = arith::DivUIOp::create(b, loc, lane, tc.idx(4));
  Value tig = arith::RemUIOp::create(b, loc, lane, tc.idx(4));

  auto v8e = VectorType::get({8}, e);
  auto v8f = VectorType::get({8}, f32);
  auto v8i = VectorType::get({8}, tc.i32);
  unsigned mTiles = llvm::divideCeil(n, 16), nTiles = llvm::divideCeil(s, 8);

  // Row h of the A tile m is source 16m + 8h + grp: pick its memref once.
  // rowOk is null when every lane has a source, false-valued (nullptr
  // row) when none has.
  struct RowSrc {
    Value memref, ok;
    bool any = false;
  };
  SmallVector<std::array<RowSrc, 2>> rows(mTiles);
  for (unsigned m = 0; m < mTiles; ++m)
    for (unsigned h = 0; h < 2; ++h) {
      unsigned base = 16 * m + 8 * h;
      RowSrc &r = rows[m][h];
      if (base >= n)
        continue;
      r.any = true;
      r.memref = sources[base];
      for (unsigned k = 1; k < 8 && base + k < n; ++k)
        r.memref = arith::SelectOp::create(
            b, loc, tc.cmp(P::eq, grp, tc.idx(k)), sources[base + k], r.memref);
      if (base + 8 > n)
        r.ok = tc.cmp(P::ult, grp, tc.idx(n - base));
    }

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
    Value bar = tc.sharedAddr(barSm);
    Value rowsAddr = tc.sharedAddr(rowsSm);
    Value first = tc.cmp(P::eq, tid, tc.idx(0));
    tc.when(first, [&]() {
      tc.ptx("mbarrier.init.shared::cta.b64 [$0], 1;\n\t"
             "fence.mbarrier_init.release.cluster;",
             "r", ValueRange{bar});
    });
    gpu::BarrierOp::create(b, loc);
    tc.when(first, [&]() {
      tc.ptx("mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r",
             ValueRange{bar, tc.i32c(int64_t(n) * copyBytes)});
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
        tc.ptx("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::"
               "bytes [$0], [$1], $2, [$3];",
               "r,l,r,r", ValueRange{dst, src, tc.i32c(copyBytes), bar});
      }
    });
    tc.ptx("{\n\t.reg .pred p;\n\tattnres_wait:\n\t"
           "mbarrier.try_wait.parity.shared::cta.b64 p, [$0], 0;\n\t"
           "@!p bra attnres_wait;\n\t}",
           "r", ValueRange{bar});
  }

  // Sweep 1. Warp w handles the 32-element blocks w, w + warps, ...; lane
  // (grp, tig) loads elements [8 tig, 8 tig + 8) of its rows; the k index
  // of the mma is permuted so that k-tile kt holds elements 8 tig + 4 kt +
  // {0..3} (the sum over k does not depend on the order).
  int64_t numBlocks = llvm::divideCeil(dl, int64_t(32));
  unsigned blocksPerWarp = llvm::divideCeil(numBlocks, int64_t(warps));
  auto elemOffset = [&](unsigned k) {
    Value blk = tc.add(warp, tc.idx(int64_t(k) * warps));
    Value blkOff = tc.mul(blk, tc.idx(32));
    Value tigOff = tc.mul(tig, tc.idx(8));
    return tc.add(blkOff, tigOff);
  };
  auto elemOk = [&](unsigned k, Value off) -> Value {
    if (int64_t(k + 1) * warps * 32 <= dl)
      return nullptr;
    Value end = tc.add(off, tc.idx(8));
    Value limit = tc.idx(dl);
    return tc.cmp(P::ule, end, limit);
  };
  auto both = [&](Value x, Value y) -> Value {
    if (!x)
      return y;
    if (!y)
      return x;
    return arith::AndIOp::create(b, loc, x, y);
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
        RowSrc &r = rows[m][h];
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
  SmallVector<SmallVector<SmallVector<Value>>> acc(
      mTiles,
      SmallVector<SmallVector<Value>>(nTiles, {zero, zero, zero, zero}));
  // The lo halves accumulate separately (two independent mma chains).
  auto accLo = acc;
  SmallVector<std::array<SmallVector<Value>, 2>> ssAcc(mTiles);
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
      Value wf = arith::ExtFOp::create(b, loc, v8f, wv);
      Value gf = arith::ExtFOp::create(b, loc, v8f, gv);
      Value wg = arith::MulFOp::create(b, loc, wf, gf);
      if (qok)
        wg = arith::SelectOp::create(
            b, loc, qok, wg,
            arith::ConstantOp::create(
                b, loc, DenseElementsAttr::get(v8f, b.getF32FloatAttr(0.0))));
      Value hiF = vector::BitCastOp::create(
          b, loc, v8f,
          arith::AndIOp::create(
              b, loc, vector::BitCastOp::create(b, loc, v8i, wg), hiMask));
      Value loF = arith::SubFOp::create(b, loc, wg, hiF);
      {
        // The bf16 bits of hi: the upper halves of the f32 words of wg.
        auto v16h = VectorType::get({16}, b.getI16Type());
        Value halves = vector::BitCastOp::create(b, loc, v16h, wg);
        Value upper = vector::ShuffleOp::create(
            b, loc, halves, halves,
            ArrayRef<int64_t>{1, 3, 5, 7, 9, 11, 13, 15});
        wgHi[t] = tc.regs(upper);
      }
      wgLo[t] = tc.regs(arith::TruncFOp::create(b, loc, v8e, loF));
    }
    for (unsigned m = 0; m < mTiles; ++m) {
      SmallVector<Value> lo = tc.regs(xs[k][m][0]);
      SmallVector<Value> hi =
          rows[m][1].any ? tc.regs(xs[k][m][1]) : SmallVector<Value>(4, zeroI);
      for (unsigned kt = 0; kt < 2; ++kt) {
        SmallVector<Value> fa{lo[2 * kt], hi[2 * kt], lo[2 * kt + 1],
                              hi[2 * kt + 1]};
        for (unsigned t = 0; t < nTiles; ++t) {
          acc[m][t] =
              tc.mma(fa, {wgHi[t][2 * kt], wgHi[t][2 * kt + 1]}, acc[m][t]);
          accLo[m][t] =
              tc.mma(fa, {wgLo[t][2 * kt], wgLo[t][2 * kt + 1]}, accLo[m][t]);
        }
        if (spec.hasInvRms)
          continue;
        // Sums of squares: B = the rows themselves; the diagonal of
        // A A^T.
        ssAcc[m][0] = tc.mma(fa, {fa[0], fa[2]}, ssAcc[m][0]);
        if (rows[m][1].any)
          ssAcc[m][1] = tc.mma(fa, {fa[1], fa[3]}, ssAcc[m][1]);
      }
    }
    xs[k].clear();
  }

  for (unsigned m = 0; m < mTiles; ++m)
    for (unsigned t = 0; t < nTiles; ++t)
      for (unsigned r = 0; r < 4; ++r)
        acc[m][t][r] =
            arith::AddFOp::create(b, loc, acc[m][t][r], accLo[m][t][r]);

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
  Operation *firstBarrier = gpu::BarrierOp::create(b, loc);

  // Logits: thread t < n S sums the warps' partials of (i, q) = (t / S,
  // t % S) and scales them by inv_rms of source i. With a cluster split the
  // CTA's sums go to zLoc/ssLoc first; after a cluster barrier each CTA adds
  // the other's (a + b: the same bits in both CTAs).
  auto warpSum = [&](Value part, ValueRange idx) {
    SmallVector<Value> at{tc.idx(0)};
    at.append(idx.begin(), idx.end());
    Value v = memref::LoadOp::create(b, loc, part, at);
    for (unsigned w = 1; w < warps; ++w) {
      at[0] = tc.idx(w);
      v = arith::AddFOp::create(b, loc, v,
                                memref::LoadOp::create(b, loc, part, at));
    }
    return v;
  };
  auto forLogits = [&](auto body) {
    Value upper = tc.idx(int64_t(n) * s);
    Value stepSize = tc.idx(threads);
    auto loop = scf::ForOp::create(b, loc, tid, upper, stepSize);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(loop.getBody()->getTerminator());
    Value t = loop.getInductionVar();
    Value i = arith::DivUIOp::create(b, loc, t, tc.idx(s));
    Value q = arith::RemUIOp::create(b, loc, t, tc.idx(s));
    body(i, q);
  };
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
    // NVVM's cluster barriers are convergent (LLVM does not duplicate them
    // into divergent paths, as it may inline assembly).
    NVVM::ClusterArriveOp::create(b, loc, b.getUnitAttr());
    NVVM::ClusterWaitOp::create(b, loc, b.getUnitAttr());
  }
  // The sum over the cluster's CTAs of the value at (i[, q]) of their
  // `region`, in rank order (the same bits in every CTA): rank 0 + rank 1
  // for two CTAs (commutative, so the own value is read locally), through
  // distributed shared memory for more.
  auto clusterSum = [&](Value region, ValueRange idx, Value flat) {
    Value base = tc.sharedAddr(region);
    Value flat32 = arith::IndexCastUIOp::create(b, loc, tc.i32, flat);
    Value byteOff = arith::MulIOp::create(b, loc, flat32, tc.i32c(4));
    Value addr = arith::AddIOp::create(b, loc, base, byteOff);
    if (split == 2) {
      Value own = memref::LoadOp::create(b, loc, region, idx);
      Value other = arith::IndexCastUIOp::create(
          b, loc, tc.i32, arith::XOrIOp::create(b, loc, rank, tc.idx(1)));
      return Value(
          arith::AddFOp::create(b, loc, own, tc.loadClusterF32(addr, other)));
    }
    Value sum = tc.loadClusterF32(addr, tc.i32c(0));
    for (unsigned r = 1; r < split; ++r)
      sum = arith::AddFOp::create(b, loc, sum,
                                  tc.loadClusterF32(addr, tc.i32c(r)));
    return sum;
  };
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
    NVVM::ClusterArriveOp::create(b, loc, b.getUnitAttr());
  gpu::BarrierOp::create(b, loc);

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
      Value m = z[0];
      for (unsigned i = 1; i < n; ++i)
        m = arith::MaxNumFOp::create(b, loc, m, z[i]);
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
    NVVM::ClusterWaitOp::create(b, loc, b.getUnitAttr());
  return fn;
}

//===----------------------------------------------------------------------===//
// Merge (phase 2)
//===----------------------------------------------------------------------===//

gpu::GPUFuncOp gpu_kernels::buildMergeKernel(OpBuilder &b, Location loc,
                                             const MergeKernelSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  const RowLayout &layout = spec.layout;
  Type e = spec.elementType;
  int64_t d = spec.d;
  Type f32 = b.getF32Type();
  Type rows = rowsType(e, d);
  Type vec = MemRefType::get({d}, e);
  bool norm = spec.hasNorm, writeH = spec.writeH || !spec.hasNorm;

  SmallVector<Type> args{rows, MemRefType::get({ShapedType::kDynamic}, f32),
                         vec, vec, rows};
  if (spec.hasPartial)
    args.push_back(rows);
  if (norm)
    args.push_back(vec);
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
  Value outIn = entry.getArgument(a++), lse = entry.getArgument(a++);
  Value query = entry.getArgument(a++), gain = entry.getArgument(a++);
  Value update = entry.getArgument(a++);
  Value partial = spec.hasPartial ? entry.getArgument(a++) : Value();
  Value normGain = norm ? entry.getArgument(a++) : Value();
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

//===----------------------------------------------------------------------===//
// block_sum / inv_rms
//===----------------------------------------------------------------------===//

gpu::GPUFuncOp gpu_kernels::buildRowKernel(OpBuilder &b, Location loc,
                                           const RowKernelSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  const RowLayout &layout = spec.layout;
  Type e = spec.elementType;
  Type f32 = b.getF32Type();
  Type rows = rowsType(e, spec.d);
  bool isInvRms = spec.kind == RowKernelSpec::InvRms;
  unsigned numIn = isInvRms ? 1 : spec.numInputs;

  SmallVector<Type> args(numIn, rows);
  args.push_back(isInvRms ? Type(MemRefType::get({ShapedType::kDynamic}, f32))
                          : rows);
  args.push_back(b.getIndexType());
  if (isInvRms)
    args.push_back(f32);

  RowEmitter em(b, loc, layout, e);
  SmallVector<Type> wgTypes;
  if (isInvRms && layout.warpsPerToken() > 1)
    wgTypes.push_back(em.scratchType(1));
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args, wgTypes, layout);
  Block &entry = fn.getBody().front();
  SmallVector<Value> ins;
  for (unsigned i = 0; i < numIn; ++i)
    ins.push_back(entry.getArgument(i));
  Value out = entry.getArgument(numIn);
  Value numTokens = entry.getArgument(numIn + 1);
  Value scratch =
      wgTypes.empty() ? Value() : Value(fn.getWorkgroupAttributions()[0]);

  em.emitIndices(1);
  em.guardTokens(numTokens);
  unsigned c = layout.vectorsPerThread;
  ValueRange tok(em.token);

  SmallVector<SmallVector<Value>> rowsIn;
  for (Value in : ins)
    rowsIn.push_back(em.loadRow(in, tok));
  if (!isInvRms) {
    for (unsigned j = 0; j < c; ++j) {
      Value acc = em.toF32(rowsIn[0][j]);
      for (unsigned i = 1; i < numIn; ++i)
        acc = arith::AddFOp::create(b, loc, acc, em.toF32(rowsIn[i][j]));
      em.storeVector(acc, out, tok, j);
    }
    return fn;
  }
  Value eps = entry.getArgument(numIn + 2);
  Value ss = em.zeroF32Vec();
  for (unsigned j = 0; j < c; ++j) {
    Value x = em.toF32(rowsIn[0][j]);
    ss = em.fma(x, x, ss);
  }
  SmallVector<Value> tot = em.tokenSum({em.hsum(ss)}, scratch, 0);
  Value r = em.invRms(tot[0], eps);
  Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, em.tpos,
                                      em.idx(0));
  auto ifOp = scf::IfOp::create(b, loc, first, /*withElse=*/false);
  b.setInsertionPoint(ifOp.getThenRegion().front().getTerminator());
  memref::StoreOp::create(b, loc, r, out, tok);
  return fn;
}
