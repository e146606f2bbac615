//===- NVVMHelpers.h - NVVM ops of the kernels ------------------*- C++ -*-===//
//
// Part of the attnres project.
//
// Every NVVM intrinsic and NVVM dialect op the kernel generators emit, as
// free functions on an OpBuilder. The kernels hold no inline PTX
// (docs/gpu.md, "NVVM ops", lists the ops and the PTX they give).
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_NVVMHELPERS_H
#define ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_NVVMHELPERS_H

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"

namespace mlir {
namespace attnres {
namespace gpu_kernels {

/// f32 `name(x)` through the NVVM intrinsic `name` (e.g.
/// llvm.nvvm.ex2.approx.ftz.f32).
Value nvvmUnaryF32(OpBuilder &b, Location loc, StringRef name, Value x);

/// Requests every 128-byte line of row `token` of each memref<?xDxE> in
/// `rows` into L2 with prefetch.global.L2 (sm_90 and newer; no register is
/// held waiting for the data). Thread `tid` of `threads` takes lines tid,
/// tid + threads, ... of each row.
void emitL2PrefetchRows(OpBuilder &b, Location loc, ArrayRef<Value> rows,
                        Value token, Type e, int64_t d, Value tid,
                        unsigned threads);

/// Requests the `bytes` bytes from the global address `base` (i64) into L2
/// the same way: thread `tid` of `threads` takes the 128-byte lines tid,
/// tid + threads, ...
void emitL2PrefetchBytes(OpBuilder &b, Location loc, Value base, int64_t bytes,
                         Value tid, unsigned threads);

/// The 32-bit shared-window address of a workgroup memref.
Value sharedAddress(OpBuilder &b, Location loc, Value memref);

/// The !llvm.ptr<3> of the mbarrier held by the workgroup memref
/// `memref` (memref<1xi64>), which the mbarrier helpers below take as
/// `bar`.
Value mbarrierPointer(OpBuilder &b, Location loc, Value memref);

/// Initialises the mbarrier `bar` for one arrival and makes the
/// initialisation visible to the cluster.
void emitMBarrierInit(OpBuilder &b, Location loc, Value bar);

/// Arrives on the mbarrier `bar` announcing `bytes` (i32) of transactions.
void emitMBarrierArriveExpectTx(OpBuilder &b, Location loc, Value bar,
                                Value bytes);

/// Copies `bytes` (i32) from global address `src` (i64) to shared address
/// `dst` (i32) with cp.async.bulk, completing on the mbarrier `bar`.
void emitBulkCopyGlobalToShared(OpBuilder &b, Location loc, Value dst,
                                Value src, Value bytes, Value bar);

/// Waits until phase 0 of the mbarrier `bar` has completed (a loop on
/// mbarrier.try_wait.parity).
void emitMBarrierWaitPhase0(OpBuilder &b, Location loc, Value bar);

/// The f32 at shared address `addr` (i32) of CTA `rank` (i32) of the
/// cluster.
Value emitLoadClusterF32(OpBuilder &b, Location loc, Value addr, Value rank);

/// Cluster barrier, split in two: `barrier.cluster.arrive.aligned` (release
/// semantics, not `.relaxed`: the shared-memory writes before it become
/// visible to the cluster's other CTAs, which read them after the wait) and
/// `barrier.cluster.wait.aligned` (acquire). `.aligned`: every thread of the
/// warp executes the same barrier instruction.
void emitClusterArrive(OpBuilder &b, Location loc);
void emitClusterWait(OpBuilder &b, Location loc);

/// D = A * B + C on one mma.m16n8k16 (bf16 x bf16 -> f32): `a` four i32,
/// `bb` two i32, `c` four f32 registers; returns the four f32 of D.
SmallVector<Value> emitMmaBF16(OpBuilder &b, Location loc, ArrayRef<Value> a,
                               ArrayRef<Value> bb, ArrayRef<Value> c);

/// The mma B registers that pair two rows of a K x N operand column by
/// column: `row0` and `row1` (vector<8xbf16> each, eight consecutive columns
/// of two consecutive k) give eight i32, register j holding column j of
/// row0 in its low half and of row1 in its high half (one nvvm.prmt each:
/// selector 0x5410 for even j, 0x7632 for odd j). The mma sweeps over the
/// columns (block_score and block_score_grad, `_ms`) build their B operands
/// from rows this way, without shared memory.
SmallVector<Value> emitPairColumnsBF16(OpBuilder &b, Location loc, Value row0,
                                       Value row1);

} // namespace gpu_kernels
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_NVVMHELPERS_H
