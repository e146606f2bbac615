//===- Passes.td - AttnRes conversion passes ---------------*- tablegen -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_CONVERSION_PASSES_TD
#define ATTNRES_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertAttnResToLinalg : Pass<"convert-attnres-to-linalg"> {
  let summary = "Lower attnres ops to linalg, tensor, arith and math on tensors";
  let description = [{
    Expresses every attnres op as linalg.generic reductions and elementwise
    maps on tensors, accumulating in f32 and rounding once to the storage
    type. The result bufferizes with one-shot bufferization and runs on the
    CPU through `attnres-lower-to-llvm`.
  }];
  let dependentDialects = [
    "::mlir::linalg::LinalgDialect", "::mlir::tensor::TensorDialect",
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect"
  ];
}

def ConvertAttnResToGPU : Pass<"convert-attnres-to-gpu", "ModuleOp"> {
  let summary = "Lower attnres ops to hand-designed GPU kernels";
  let description = [{
    Lowers each attnres op to a `gpu.func` in a `gpu.module` designed for the
    memory-bound shape of the op: every source read once with 16-byte vector
    loads, f32 accumulation, online softmax over the sources and warp
    shuffles for the per-token reductions, and a `gpu.launch_func` on the
    host side that takes buffers.
  }];
  let dependentDialects = [
    "::mlir::gpu::GPUDialect", "::mlir::memref::MemRefDialect",
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::vector::VectorDialect", "::mlir::scf::SCFDialect",
    "::mlir::bufferization::BufferizationDialect"
  ];
}

#endif // ATTNRES_CONVERSION_PASSES_TD
