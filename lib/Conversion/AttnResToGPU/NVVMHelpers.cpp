//===- NVVMHelpers.cpp - NVVM ops of the kernels --------------------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "NVVMHelpers.h"
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

Value gpu_kernels::nvvmUnaryF32(OpBuilder &b, Location loc, StringRef name,
                                Value x) {
  return LLVM::CallIntrinsicOp::create(b, loc, b.getF32Type(),
                                       b.getStringAttr(name), ValueRange{x})
      .getResult(0);
}

void gpu_kernels::emitL2PrefetchRows(OpBuilder &b, Location loc,
                                     ArrayRef<Value> rows, Value token, Type e,
                                     int64_t d, Value tid, unsigned threads) {
  Type i64 = b.getI64Type();
  int64_t rowBytes = d * (e.getIntOrFloatBitWidth() / 8);
  Value rowOff = arith::IndexCastOp::create(
      b, loc, i64,
      arith::MulIOp::create(b, loc, token,
                            arith::ConstantIndexOp::create(b, loc, rowBytes)));
  for (Value row : rows) {
    Value base = arith::IndexCastOp::create(
        b, loc, i64,
        memref::ExtractAlignedPointerAsIndexOp::create(b, loc, row));
    base = arith::AddIOp::create(b, loc, base, rowOff);
    emitL2PrefetchBytes(b, loc, base, rowBytes, tid, threads);
  }
}

void gpu_kernels::emitL2PrefetchBytes(OpBuilder &b, Location loc, Value base,
                                      int64_t bytes, Value tid,
                                      unsigned threads) {
  MLIRContext *ctx = b.getContext();
  Type i64 = b.getI64Type();
  auto gptr = LLVM::LLVMPointerType::get(ctx, 1);
  auto idx = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  int64_t lines = llvm::divideCeil(bytes, int64_t(128));
  for (int64_t r = 0; r * threads < lines; ++r) {
    Value line = arith::AddIOp::create(b, loc, tid, idx(r * threads));
    Value ok = (r + 1) * threads <= lines
                   ? Value()
                   : Value(arith::CmpIOp::create(
                         b, loc, arith::CmpIPredicate::ult, line, idx(lines)));
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

Value gpu_kernels::sharedAddress(OpBuilder &b, Location loc, Value memref) {
  Value p = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref);
  return arith::IndexCastUIOp::create(b, loc, b.getI32Type(), p);
}

/// The pointer in NVVM memory space `space` at the integer address `addr`
/// (llvm.inttoptr: a 32-bit shared-window address is zero-extended to the
/// 64-bit pointers of the NVPTX data layout).
static Value pointerIn(OpBuilder &b, Location loc, NVVM::NVVMMemorySpace space,
                       Value addr) {
  auto ptr =
      LLVM::LLVMPointerType::get(b.getContext(), static_cast<unsigned>(space));
  return LLVM::IntToPtrOp::create(b, loc, ptr, addr);
}

/// The shared-memory pointer (!llvm.ptr<3>) at shared-window address `addr`
/// (i32), for the NVVM ops that take pointers.
static Value sharedPointer(OpBuilder &b, Location loc, Value addr) {
  return pointerIn(b, loc, NVVM::NVVMMemorySpace::Shared, addr);
}

// Every op below is an NVVM op with an LLVM intrinsic (none has a
// predicate), translated by gpu-module-to-binary without
// convert-nvvm-to-llvm: nvvm.mbarrier.init (llvm.nvvm.mbarrier.init.shared),
// nvvm.fence.mbarrier.init (llvm.nvvm.fence.mbarrier_init.release.cluster),
// nvvm.mbarrier.arrive.expect_tx (llvm.nvvm.mbarrier.arrive.expect.tx.
// scope.cta.space.cta), nvvm.cp.async.bulk.shared.cluster.global
// (llvm.nvvm.cp.async.bulk.global.to.shared.cluster), nvvm.mbarrier.try_wait
// with an i32 phase (llvm.nvvm.mbarrier.try.wait.parity.scope.cta.space.cta)
// and nvvm.mapa (llvm.nvvm.mapa.shared.cluster). docs/gpu.md lists the PTX
// they give.
Value gpu_kernels::mbarrierPointer(OpBuilder &b, Location loc, Value memref) {
  Value addr = sharedAddress(b, loc, memref);
  return sharedPointer(b, loc, addr);
}

void gpu_kernels::emitMBarrierInit(OpBuilder &b, Location loc, Value bar) {
  Value count = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(1));
  NVVM::MBarrierInitOp::create(b, loc, bar, count, /*predicate=*/Value());
  NVVM::FenceMbarrierInitOp::create(b, loc);
}

// Default semantics (.release, .cta scope) and no state result, as
// `mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar], bytes`.
void gpu_kernels::emitMBarrierArriveExpectTx(OpBuilder &b, Location loc,
                                             Value bar, Value bytes) {
  NVVM::MBarrierArriveExpectTxOp::create(b, loc, /*res=*/Type(), bar, bytes,
                                         NVVM::MemScopeKind::CTA,
                                         /*relaxed=*/false,
                                         /*predicate=*/Value());
}

// The destination is the executing CTA's shared::cta address used as a
// shared::cluster address (the shared::cta window lies in the
// shared::cluster window), as cp.async.bulk.shared::cluster.global takes it;
// no multicast mask, no L2 cache hint.
void gpu_kernels::emitBulkCopyGlobalToShared(OpBuilder &b, Location loc,
                                             Value dst, Value src, Value bytes,
                                             Value bar) {
  Value dstPtr = pointerIn(b, loc, NVVM::NVVMMemorySpace::SharedCluster, dst);
  Value srcPtr = pointerIn(b, loc, NVVM::NVVMMemorySpace::Global, src);
  NVVM::CpAsyncBulkGlobalToSharedClusterOp::create(
      b, loc, dstPtr, srcPtr, bar, bytes, /*multicastMask=*/Value(),
      /*l2CacheHint=*/Value());
}

// `scf.while (!try_wait.parity(bar, 0)) {}`: mbarrier.try_wait.parity may
// return false when its time limit passes, so it is retried until phase 0
// has completed. nvvm.mbarrier.try_wait.parity (a PTX-builder op without an
// intrinsic) would need convert-nvvm-to-llvm and gives an inline-asm loop;
// nvvm.mbarrier.try_wait with an i32 phase is the parity intrinsic.
void gpu_kernels::emitMBarrierWaitPhase0(OpBuilder &b, Location loc,
                                         Value bar) {
  Value phase = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(0));
  Value trueV = arith::ConstantOp::create(b, loc, b.getBoolAttr(true));
  scf::WhileOp::create(
      b, loc, TypeRange{}, ValueRange{},
      [&](OpBuilder &nb, Location l, ValueRange) {
        Value done = NVVM::MBarrierTryWaitOp::create(nb, l, nb.getI1Type(), bar,
                                                     phase, /*ticks=*/Value());
        Value pending = arith::XOrIOp::create(nb, l, done, trueV);
        scf::ConditionOp::create(nb, l, pending, ValueRange{});
      },
      [&](OpBuilder &nb, Location l, ValueRange) {
        scf::YieldOp::create(nb, l);
      });
}

// mapa.shared::cluster gives the shared::cluster address of `addr` in CTA
// `rank`; an llvm.load from that !llvm.ptr<7> is ld.shared::cluster (no
// NVVM op is needed for the load). The cluster barriers around the reads
// are intrinsics that LLVM treats as reading and writing all memory, so
// the loads stay between them.
Value gpu_kernels::emitLoadClusterF32(OpBuilder &b, Location loc, Value addr,
                                      Value rank) {
  Value local = sharedPointer(b, loc, addr);
  auto clusterPtr = LLVM::LLVMPointerType::get(
      b.getContext(),
      static_cast<unsigned>(NVVM::NVVMMemorySpace::SharedCluster));
  Value remote = NVVM::MapaOp::create(b, loc, clusterPtr, local, rank);
  return LLVM::LoadOp::create(b, loc, b.getF32Type(), remote, /*alignment=*/4);
}

// NVVM's cluster barriers are convergent (LLVM does not duplicate them into
// divergent paths, as it may inline assembly).
void gpu_kernels::emitClusterArrive(OpBuilder &b, Location loc) {
  NVVM::ClusterArriveOp::create(b, loc, b.getUnitAttr());
}

void gpu_kernels::emitClusterWait(OpBuilder &b, Location loc) {
  NVVM::ClusterWaitOp::create(b, loc, b.getUnitAttr());
}

SmallVector<Value> gpu_kernels::emitMmaBF16(OpBuilder &b, Location loc,
                                            ArrayRef<Value> a,
                                            ArrayRef<Value> bb,
                                            ArrayRef<Value> c) {
  Type f32 = b.getF32Type();
  auto st =
      LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  auto op = NVVM::MmaOp::create(
      b, loc, st, a, bb, c, ArrayRef<int64_t>{16, 8, 16},
      /*b1Op=*/std::nullopt, /*intOverflow=*/std::nullopt,
      std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16, NVVM::MMATypes::bf16},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  SmallVector<Value> d;
  for (int64_t k = 0; k < 4; ++k)
    d.push_back(LLVM::ExtractValueOp::create(b, loc, op.getResult(),
                                             ArrayRef<int64_t>{k}));
  return d;
}

SmallVector<Value> gpu_kernels::emitPairColumnsBF16(OpBuilder &b, Location loc,
                                                    Value row0, Value row1) {
  Type i32 = b.getI32Type();
  auto v4i = VectorType::get({4}, i32);
  Value x0 = vector::BitCastOp::create(b, loc, v4i, row0);
  Value x1 = vector::BitCastOp::create(b, loc, v4i, row1);
  // Bytes 0-3 are x0's register, 4-7 x1's: columns 2r (the low halves,
  // bytes 0 1 and 4 5) and 2r + 1 (the high halves, bytes 2 3 and 6 7).
  Value even = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(0x5410));
  Value odd = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(0x7632));
  SmallVector<Value> regs;
  for (int64_t r = 0; r < 4; ++r) {
    Value lo = vector::ExtractOp::create(b, loc, x0, ArrayRef<int64_t>{r});
    Value hi = vector::ExtractOp::create(b, loc, x1, ArrayRef<int64_t>{r});
    for (Value selector : {even, odd})
      regs.push_back(NVVM::PermuteOp::create(b, loc, i32, lo, hi, selector,
                                             NVVM::PermuteMode::DEFAULT));
  }
  return regs;
}
