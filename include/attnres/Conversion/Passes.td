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
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::NVVM::NVVMDialect"
  ];
  let options = [
    Option<"elementsPerThread", "elements-per-thread", "unsigned",
           /*default=*/"0",
           "Elements of a token row owned by each thread (0: per-op default, "
           "8, or 16 when D needs more than 512 threads, for aggregate/merge; "
           "8 or 16 for block_score)">,
    Option<"queriesPerCta", "queries-per-cta", "unsigned", /*default=*/"0",
           "block_score: queries handled by one CTA (0: chosen from the "
           "register budget; must divide S)">,
    Option<"prefetchDepth", "prefetch-depth", "unsigned", /*default=*/"0",
           "aggregate/block_score: sources whose loads are in flight ahead "
           "of the source being reduced (0: 3 for one vector per thread, "
           "else 2)">,
    Option<"sourcesPerStep", "sources-per-step", "unsigned", /*default=*/"0",
           "aggregate/block_score: sources reduced together (one barrier "
           "per step; 0: 1 for one vector per thread, else 2)">,
    Option<"minCtasPerSM", "min-ctas-per-sm", "int", /*default=*/"-1",
           "Occupancy hint for ptxas (nvvm.minctasm): CTAs that must fit one "
           "SM; -1 (default), 0 or 1: none">,
    Option<"tensorCores", "tensor-cores", "bool", /*default=*/"true",
           "block_score: use the bf16 tensor-core kernel (mma.sync, sm_80 "
           "and newer) for bf16 rows with D a multiple of 8">,
    Option<"sweepWidth", "sweep-width", "unsigned", /*default=*/"0",
           "block_score on tensor cores: elements per thread access when "
           "writing the outputs (2, 4 or 8; 0: 2 for D > 4096 with more "
           "than 6 sources, else 4)">,
    Option<"l2Prefetch", "l2-prefetch", "bool", /*default=*/"true",
           "block_score on tensor cores: request the token's rows into L2 "
           "(prefetch.global.L2, sm_90 and newer) before the first sweep (not "
           "done for 4096 < D < 8192, where it measured slower)">,
    Option<"bulkCopy", "bulk-copy", "bool", /*default=*/"true",
           "block_score on tensor cores: copy the token's rows into dynamic "
           "shared memory with cp.async.bulk (TMA, sm_90 and newer) on an "
           "mbarrier, for 4096 < D < 8192 (where it measured faster) when "
           "they fit 100 KB; both sweeps read shared memory">,
    Option<"clusterSplit", "cluster-split", "unsigned", /*default=*/"0",
           "block_score with bulk copies: 2 (or 4) CTAs of a thread-block "
           "cluster per token, each with a part of the columns, exchanging partial "
           "logits through distributed shared memory (0: when the rows do not "
           "fit 100 KB but their halves do; 1: never; 2 or 4: that many CTAs "
           "whenever their parts fit)">,
    Option<"wgInShared", "wg-in-shared", "int", /*default=*/"-1",
           "aggregate: keep w*g in workgroup memory and re-read it for every "
           "source instead of holding it in registers (-1: for two 16-byte "
           "vectors of 16-bit elements per thread in at most 448 threads, "
           "with prefetch-depth and sources-per-step 1 unless given; 0: "
           "never; 1: always)">
  ];
}

def AttnResValidateNVVMTarget
    : Pass<"attnres-validate-nvvm-target", "ModuleOp"> {
  let summary = "Reject an NVVM chip/features pair the toolchain cannot use";
  let description = [{
    Runs first in `attnres-lower-to-nvvm`: pipeline builders cannot fail, and
    LLVM's NVPTX backend aborts the process on a PTX version too old for the
    chip. The pass checks that `chip` is a CUDA 13 target (sm_75 and newer,
    with optional `a`/`f` suffix, as known to LLVM 22) and that `features`
    is `+ptxNN` with a PTX ISA version LLVM knows and the chip needs (for
    example at least +ptx80 for sm_90a), and emits an error otherwise.
  }];
  let options = [
    Option<"chip", "chip", "std::string",
           /*default=*/"::mlir::attnres::kDefaultChip",
           "Target chip">,
    Option<"features", "features", "std::string",
           /*default=*/"::mlir::attnres::kDefaultFeatures",
           "Target features (+ptxNN)">
  ];
}

def AttnResGPUHostMemory : Pass<"attnres-gpu-host-memory", "ModuleOp"> {
  let summary = "Host memref.alloc/dealloc/copy to gpu.alloc/dealloc/memcpy";
  let description = [{
    After bufferization of a module whose kernels run through
    `gpu.launch_func`, every buffer the host code allocates or copies lives
    on the device. This pass rewrites `memref.alloc` (and `memref.alloca`)
    into `gpu.alloc`, `memref.dealloc` into `gpu.dealloc` and `memref.copy`
    into `gpu.memcpy` in host functions (outside `gpu.module`); deallocation
    and copies are made synchronous with `gpu.wait`. It also marks every
    public host function `llvm.emit_c_interface`, so that callers use
    `_mlir_ciface_<name>` with memref descriptors.
  }];
  let dependentDialects = [
    "::mlir::gpu::GPUDialect", "::mlir::memref::MemRefDialect",
    "::mlir::LLVM::LLVMDialect"
  ];
}

#endif // ATTNRES_CONVERSION_PASSES_TD
