//===- KernelEmitter.h - Shared emitters of the attnres kernels -*- C++ -*-===//
//
// Part of the attnres project.
//
// What the kernel generators (ScoreKernel.cpp, BlockScoreTCKernel.cpp,
// MergeKernel.cpp, RowKernels.cpp) share: scf.if builders, the row-kernel
// emitter (RowEmitter: indices, guarded vector loads and stores, f32
// conversions, token-wide reductions), the tensor-core kernel's scalar
// emitter (TCEmitter), kernel creation and the aggregate / block_score
// argument list. NVVM ops and intrinsics live in NVVMHelpers.h.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_KERNELEMITTER_H
#define ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_KERNELEMITTER_H

#include "Kernels.h"
#include "NVVMHelpers.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/ADT/STLExtras.h"

#include <array>
#include <string>
#include <utility>

namespace mlir {
namespace attnres {
namespace gpu_kernels {

/// "f32", "f16" or "bf16": the element type in kernel names.
std::string typeSuffix(Type t);

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
  void emitIndices(unsigned groupCount);

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
    return nvvmUnaryF32(b, loc, name, x);
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
    return tokenSum(values, scratch, idx(parity));
  }
  /// The same with a run-time parity (an index, 0 or 1): a reduction in a
  /// loop alternates the halves of the scratch by iteration.
  SmallVector<Value> tokenSum(ArrayRef<Value> values, Value scratch,
                              Value parity);
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

/// Row h of the mma A tile m of a lane: row 16 m + 8 h + grp of `rows`
/// (the token's sources), its memref picked once per lane. `ok` is null when
/// every lane has a row; `any` is false when no lane has one.
struct FragmentRow {
  Value memref, ok;
  bool any = false;
};

/// Emission helpers of the tensor-core kernels (BlockScoreTCKernel.cpp,
/// BlockScoreGradTCKernel.cpp).
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

  /// The mma.sync coordinates of thread `tid`: its lane and warp, its group
  /// (lane / 4: the fragment row it holds) and thread in group (lane % 4).
  struct LaneIndices {
    Value lane, warp, grp, tig;
  };
  LaneIndices laneIndices(Value tid) {
    LaneIndices li;
    li.lane = arith::RemUIOp::create(b, loc, tid, idx(32));
    li.warp = arith::DivUIOp::create(b, loc, tid, idx(32));
    li.grp = arith::DivUIOp::create(b, loc, li.lane, idx(4));
    li.tig = arith::RemUIOp::create(b, loc, li.lane, idx(4));
    return li;
  }

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

  /// The A-tile rows of every lane (FragmentRow) for `rows`: ceil(n / 16)
  /// tiles of two halves; `grp` is the lane's fragment row.
  SmallVector<std::array<FragmentRow, 2>> fragmentRows(ArrayRef<Value> rows,
                                                       Value grp) {
    unsigned n = rows.size();
    SmallVector<std::array<FragmentRow, 2>> out((n + 15) / 16);
    for (unsigned m = 0; m < out.size(); ++m)
      for (unsigned h = 0; h < 2; ++h) {
        unsigned base = 16 * m + 8 * h;
        FragmentRow &r = out[m][h];
        if (base >= n)
          continue;
        r.any = true;
        r.memref = rows[base];
        for (unsigned k = 1; k < 8 && base + k < n; ++k)
          r.memref = arith::SelectOp::create(
              b, loc, cmp(arith::CmpIPredicate::eq, grp, idx(k)),
              rows[base + k], r.memref);
        if (base + 8 > n)
          r.ok = cmp(arith::CmpIPredicate::ult, grp, idx(n - base));
      }
    return out;
  }

  /// The column of this lane's 8 elements in 32-element block k of a sweep
  /// where warp w takes blocks w, w + warps, ... and lane (grp, tig) the
  /// elements [8 tig, 8 tig + 8) of a block.
  Value blockOffset(Value warp, Value tig, unsigned warps, unsigned k) {
    Value blk = add(warp, idx(int64_t(k) * warps));
    Value blkOff = mul(blk, idx(32));
    Value tigOff = mul(tig, idx(8));
    return add(blkOff, tigOff);
  }
  /// Whether those 8 elements are within `columns` (null: always).
  Value blockOk(unsigned warps, unsigned k, Value off, int64_t columns) {
    if (int64_t(k + 1) * warps * 32 <= columns)
      return nullptr;
    Value end = add(off, idx(8));
    Value limit = idx(columns);
    return cmp(arith::CmpIPredicate::ule, end, limit);
  }

  /// The first column of 64-column block k of the mma sweeps over the
  /// columns (score-mma-sweep, score-grad-mma-sweep), where warp w takes the
  /// blocks w, w + warps, ...
  Value sweepBlockBase(Value warp, unsigned warps, unsigned k) {
    Value block = add(warp, idx(int64_t(k) * warps));
    return mul(block, idx(64));
  }
  /// Whether the 8 columns at `col` of such a block k are within `columns`
  /// (null: always, when every block of this k is whole).
  Value sweepChunkOk(unsigned warps, unsigned k, Value col, int64_t columns) {
    if (int64_t(k + 1) * warps * 64 <= columns)
      return nullptr;
    Value end = add(col, idx(8));
    return cmp(arith::CmpIPredicate::ule, end, idx(columns));
  }

  /// The A fragments of the mma sweeps over the columns, every coefficient
  /// split into bf16 hi + lo (splitBF16): for each m-tile m < mTiles and
  /// k-tile kt < kTiles, `element(m, kt, el)` gives the lane's f32 element el
  /// (row grp + 8 ((el / 2) % 2) of the m-tile, k 2 tig + el % 2 + 8 (el / 4)
  /// of the k-tile). Returns the registers {hi[m][kt], lo[m][kt]}.
  using Fragments = SmallVector<SmallVector<SmallVector<Value>>>;
  std::pair<Fragments, Fragments>
  splitFragmentsA(unsigned mTiles, unsigned kTiles,
                  function_ref<Value(unsigned, unsigned, unsigned)> element) {
    auto v8f = VectorType::get({8}, f32);
    auto v8i = VectorType::get({8}, i32);
    Value hiMask = arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(v8i, b.getI32IntegerAttr(int32_t(0xFFFF0000))));
    Fragments hi(mTiles), lo(mTiles);
    for (unsigned m = 0; m < mTiles; ++m) {
      hi[m].resize(kTiles);
      lo[m].resize(kTiles);
      for (unsigned kt = 0; kt < kTiles; ++kt) {
        SmallVector<Value> elems;
        for (unsigned el = 0; el < 8; ++el)
          elems.push_back(element(m, kt, el));
        Value v = vector::FromElementsOp::create(b, loc, v8f, elems);
        std::tie(hi[m][kt], lo[m][kt]) = splitBF16(v, hiMask);
      }
    }
    return {hi, lo};
  }

  /// The mma B registers of the f32 vector<8> `v` split exactly into two
  /// bf16 parts: hi keeps the top 8 significant bits (v's upper 16 bits;
  /// the product of two bf16 has at most 16), lo = v - hi has at most 8.
  /// `hiMask` is the vector<8xi32> splat 0xFFFF0000.
  std::pair<SmallVector<Value>, SmallVector<Value>> splitBF16(Value v,
                                                              Value hiMask) {
    std::pair<Value, Value> parts = splitBF16Parts(v, hiMask);
    auto v8bf = VectorType::get({8}, b.getBF16Type());
    SmallVector<Value> hi = regs(parts.first);
    SmallVector<Value> lo =
        regs(arith::TruncFOp::create(b, loc, v8bf, parts.second));
    return {hi, lo};
  }
  /// The parts of that split: hi's bits (a vector<8xi16>) and lo = v - hi
  /// in f32 (exactly representable in bf16). buildQueryGainSplitKernel
  /// stores them.
  std::pair<Value, Value> splitBF16Parts(Value v, Value hiMask) {
    auto v8f = cast<VectorType>(v.getType());
    auto v8i = VectorType::get({8}, i32);
    Value hiF = vector::BitCastOp::create(
        b, loc, v8f,
        arith::AndIOp::create(b, loc, vector::BitCastOp::create(b, loc, v8i, v),
                              hiMask));
    Value loF = arith::SubFOp::create(b, loc, v, hiF);
    // The bf16 bits of hi: the upper halves of the f32 words of v.
    auto v16h = VectorType::get({16}, b.getI16Type());
    Value halves = vector::BitCastOp::create(b, loc, v16h, v);
    Value upper = vector::ShuffleOp::create(
        b, loc, halves, halves, ArrayRef<int64_t>{1, 3, 5, 7, 9, 11, 13, 15});
    return {upper, loF};
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

  OpBuilder &b;
  Location loc;
  Type f32, i32;
};

/// Creates an empty kernel `name` with `argTypes` and optional workgroup
/// scratch, and positions `b` in its body.
gpu::GPUFuncOp createKernel(OpBuilder &b, Location loc, StringRef name,
                            ArrayRef<Type> argTypes,
                            ArrayRef<Type> workgroupTypes,
                            const RowLayout &layout);

/// memref<?xDxE>: T token rows.
MemRefType rowsType(Type e, int64_t d);

/// The argument types of the aggregate / block_score kernels, in the order
/// documented at buildScoreKernel.
SmallVector<Type> scoreArgTypes(OpBuilder &b, Type e, int64_t d, unsigned n,
                                unsigned s, bool stacked, bool hasInvRms,
                                bool withStats = false);

/// The arguments of an aggregate / block_score kernel (scoreArgTypes).
struct ScoreArgs {
  ScoreArgs(Block &entry, unsigned n, bool stacked, bool hasInvRms,
            bool withStats = false) {
    unsigned a = 0;
    queries = entry.getArgument(a++);
    gains = entry.getArgument(a++);
    for (unsigned i = 0; i < n; ++i)
      sources.push_back(entry.getArgument(a++));
    if (hasInvRms)
      for (unsigned i = 0; i < n; ++i)
        invRms.push_back(entry.getArgument(a++));
    out = entry.getArgument(a++);
    lse = stacked || withStats ? entry.getArgument(a++) : Value();
    if (withStats)
      for (unsigned i = 0; i < n; ++i)
        invRmsOut.push_back(entry.getArgument(a++));
    numTokens = entry.getArgument(a++);
    eps = entry.getArgument(a++);
  }

  Value queries, gains;
  SmallVector<Value> sources, invRms, invRmsOut;
  Value out, lse, numTokens, eps;
};

/// The argument types the merge and merge_grad kernels start with: out
/// (rows), lse (memref<?xf32>), query, norm_weight (memref<DxE>), update,
/// [partial] (rows), [norm_gain] (memref<DxE>).
SmallVector<Type> mergeInputArgTypes(OpBuilder &b, Type e, int64_t d,
                                     bool hasPartial, bool hasNorm);

/// Those arguments of a merge / merge_grad kernel (mergeInputArgTypes); `a`
/// is left at the first argument after them.
struct MergeInputArgs {
  MergeInputArgs(Block &entry, unsigned &a, bool hasPartial, bool hasNorm) {
    out = entry.getArgument(a++);
    lse = entry.getArgument(a++);
    query = entry.getArgument(a++);
    gain = entry.getArgument(a++);
    update = entry.getArgument(a++);
    partial = hasPartial ? entry.getArgument(a++) : Value();
    normGain = hasNorm ? entry.getArgument(a++) : Value();
  }

  Value out, lse, query, gain, update, partial, normGain;
};

} // namespace gpu_kernels
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_KERNELEMITTER_H
