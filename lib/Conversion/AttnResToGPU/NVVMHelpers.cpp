//===- NVVMHelpers.cpp - NVVM ops and inline PTX of the kernels -----------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "NVVMHelpers.h"
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
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

LLVM::InlineAsmOp gpu_kernels::emitInlinePtx(OpBuilder &b, Location loc,
                                             TypeRange results, StringRef text,
                                             StringRef constraints,
                                             ValueRange operands) {
  return LLVM::InlineAsmOp::create(
      b, loc, results, operands, text, constraints, /*has_side_effects=*/true,
      /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
      LLVM::AsmDialectAttr(), ArrayAttr());
}

Value gpu_kernels::sharedAddress(OpBuilder &b, Location loc, Value memref) {
  Value p = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref);
  return arith::IndexCastUIOp::create(b, loc, b.getI32Type(), p);
}

/// The shared-memory pointer (!llvm.ptr<3>) at shared-window address `addr`
/// (i32), for the NVVM ops that take pointers.
static Value sharedPointer(OpBuilder &b, Location loc, Value addr) {
  auto ptr3 = LLVM::LLVMPointerType::get(
      b.getContext(), static_cast<unsigned>(NVVM::NVVMMemorySpace::Shared));
  return LLVM::IntToPtrOp::create(b, loc, ptr3, addr);
}

// nvvm.mbarrier.init (llvm.nvvm.mbarrier.init.shared) and
// nvvm.fence.mbarrier.init (llvm.nvvm.fence.mbarrier_init.release.cluster):
// intrinsics, translated by gpu-module-to-binary without
// convert-nvvm-to-llvm.
void gpu_kernels::emitMBarrierInit(OpBuilder &b, Location loc, Value bar) {
  Value ptr = sharedPointer(b, loc, bar);
  Value count = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(1));
  NVVM::MBarrierInitOp::create(b, loc, ptr, count, /*predicate=*/Value());
  NVVM::FenceMbarrierInitOp::create(b, loc);
}

void gpu_kernels::emitMBarrierArriveExpectTx(OpBuilder &b, Location loc,
                                             Value bar, Value bytes) {
  emitInlinePtx(b, loc, TypeRange{},
                "mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r",
                ValueRange{bar, bytes});
}

void gpu_kernels::emitBulkCopyGlobalToShared(OpBuilder &b, Location loc,
                                             Value dst, Value src, Value bytes,
                                             Value bar) {
  emitInlinePtx(b, loc, TypeRange{},
                "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::"
                "bytes [$0], [$1], $2, [$3];",
                "r,l,r,r", ValueRange{dst, src, bytes, bar});
}

void gpu_kernels::emitMBarrierWaitPhase0(OpBuilder &b, Location loc,
                                         Value bar) {
  emitInlinePtx(b, loc, TypeRange{},
                "{\n\t.reg .pred p;\n\tattnres_wait:\n\t"
                "mbarrier.try_wait.parity.shared::cta.b64 p, [$0], 0;\n\t"
                "@!p bra attnres_wait;\n\t}",
                "r", ValueRange{bar});
}

Value gpu_kernels::emitLoadClusterF32(OpBuilder &b, Location loc, Value addr,
                                      Value rank) {
  Type i32 = b.getI32Type(), f32 = b.getF32Type();
  Value remote =
      emitInlinePtx(b, loc, i32, "mapa.shared::cluster.u32 $0, $1, $2;",
                    "=r,r,r", ValueRange{addr, rank})
          .getResult(0);
  return emitInlinePtx(b, loc, f32, "ld.shared::cluster.f32 $0, [$1];", "=f,r",
                       ValueRange{remote})
      .getResult(0);
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
