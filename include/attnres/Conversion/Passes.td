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

    The kernels go into `gpu.module @attnres_kernels`. Their target is read
    once from that module's `#nvvm.target` when the input already holds the
    module (for example `gpu.module @attnres_kernels [#nvvm.target<chip =
    "sm_80", features = "+ptx70">] {}`); otherwise the pass creates the
    module with `#nvvm.target<O = opt-level, chip = chip, features =
    features>`. Every chip-dependent choice follows from that target:
    tensor cores (bf16 mma.sync) from sm_80, the L2 prefetch, bulk copies
    (TMA) and thread-block clusters from sm_90; the options below only turn
    them off. A chip/features pair that LLVM 22 or CUDA 13 cannot use, or a
    kernel module with targets but no `#nvvm.target`, is an error.

    Example: `attnres-opt --convert-attnres-to-gpu="chip=sm_89
    features=+ptx78" in.mlir` gives kernels that ptxas accepts for sm_89
    (no bulk copies, no clusters, no L2 prefetch).
  }];
  let dependentDialects = [
    "::mlir::gpu::GPUDialect", "::mlir::memref::MemRefDialect",
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::vector::VectorDialect", "::mlir::scf::SCFDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::NVVM::NVVMDialect"
  ];
  let options = [
    Option<"chip", "chip", "std::string",
           /*default=*/"::mlir::attnres::kDefaultChip",
           "Target chip of a kernel module the pass creates (a module that "
           "exists keeps its #nvvm.target)">,
    Option<"features", "features", "std::string",
           /*default=*/"::mlir::attnres::kDefaultFeatures",
           "PTX features (+ptxNN) of a kernel module the pass creates">,
    Option<"optLevel", "opt-level", "int", /*default=*/"2",
           "Optimisation level (O) of the #nvvm.target of a kernel module "
           "the pass creates">,
    Option<"elementsPerThread", "elements-per-thread", "unsigned",
           /*default=*/"0",
           "Elements of a token row owned by each thread (0: per-op default, "
           "8, or 16 when D needs more than 512 threads, for aggregate/merge; "
           "8 or 16 for block_score; for block_score_grad on the tensor "
           "cores the CTA has D / elements threads, default 16 elements up "
           "to 256 threads)">,
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
           "block_score: use the bf16 tensor-core kernel (mma.sync) for bf16 "
           "rows with D a multiple of 8 when the target has it (sm_80 and "
           "newer); false: never">,
    Option<"sweepWidth", "sweep-width", "unsigned", /*default=*/"0",
           "block_score on tensor cores: elements per thread access when "
           "writing the outputs (2, 4 or 8; 0: 2 for D > 4096 with more "
           "than 6 sources, else 4)">,
    Option<"l2Prefetch", "l2-prefetch", "bool", /*default=*/"true",
           "block_score on tensor cores: request the token's rows into L2 "
           "(prefetch.global.L2) before the first sweep when the target has "
           "it (sm_90 and newer; not done for 4096 < D < 8192, where it "
           "measured slower); false: never">,
    Option<"bulkCopy", "bulk-copy", "bool", /*default=*/"true",
           "block_score on tensor cores: copy the token's rows into dynamic "
           "shared memory with cp.async.bulk (TMA) on an mbarrier when the "
           "target has it (sm_90 and newer), for 4096 < D < 8192 (where it "
           "measured faster) when they fit 100 KB; both sweeps read shared "
           "memory; false: never">,
    Option<"clusterSplit", "cluster-split", "unsigned", /*default=*/"0",
           "block_score with bulk copies: 2 (or 4) CTAs of a thread-block "
           "cluster per token, each with a part of the columns, exchanging partial "
           "logits through distributed shared memory, on targets with "
           "clusters (sm_90 and newer) (0: when the rows do not "
           "fit 100 KB but their halves do; 1: never; 2 or 4: that many CTAs "
           "whenever their parts fit)">,
    Option<"smallTokens", "small-tokens", "unsigned", /*default=*/"128",
           "aggregate: token counts up to which a latency-oriented kernel "
           "runs (16-bit rows with 2048 < D <= 8192: two 16-byte vectors "
           "per thread, w*g in registers, four sources in flight, two per "
           "reduction), chosen by a run-time branch on T (at compile time "
           "when T is static); 0: never">,
    Option<"scoreSmallTokens", "score-small-tokens", "unsigned",
           /*default=*/"16",
           "block_score: token counts up to which the CUDA-core kernel with "
           "one query per CTA (grid T x S: more CTAs for a few tokens) runs "
           "instead of the kernel chosen for large T, by a run-time branch "
           "on T (at compile time when T is static); 0: never. 16: run 27 "
           "(H100) measured it 1.3-1.5x faster up to T = 16 and slower at "
           "T = 64 (bench/NOTES.md)">,
    Option<"wgInShared", "wg-in-shared", "int", /*default=*/"-1",
           "aggregate: keep w*g in workgroup memory and re-read it for every "
           "source instead of holding it in registers (-1: for two 16-byte "
           "vectors of 16-bit elements per thread in at most 448 threads, "
           "with prefetch-depth and sources-per-step 1 unless given; 0: "
           "never; 1: always)">,
    Option<"gradCtas", "grad-ctas", "unsigned", /*default=*/"528",
           "aggregate_grad / merge_grad / block_score_grad: CTAs that share "
           "the tokens (min(T, grad-ctas), each a contiguous chunk of "
           "ceil(T / CTAs) tokens) and write one f32 partial of the "
           "parameter gradients each, summed in CTA order by a second kernel "
           "(deterministic; 528 = 4 x the 132 SMs of an H100 or H200)">,
    Option<"gradTensorCores", "grad-tensor-cores", "bool",
           /*default=*/"true",
           "block_score_grad: the per-token kernel with the dot products on "
           "the tensor cores (mma.sync) for bf16 rows with D a multiple of 8 "
           "when the target has it (sm_80 and newer; false: the CUDA-core "
           "kernel); sweep-width=8, min-ctas-per-sm and "
           "elements-per-thread apply to it">,
    Option<"scoreGradSharedRows", "score-grad-shared-rows", "int",
           /*default=*/"0",
           "block_score_grad on tensor cores: keep the first k of the "
           "token's rows (the n sources, then the S rows of dout) in dynamic "
           "shared memory from the mma sweep for the source-gradient sweep, "
           "which re-reads the others (kernel name `_shared<k>`, `_shared` "
           "when all fit); -1: as many as fit beside the CTAs per SM that "
           "128 registers per thread (or min-ctas-per-sm) allow; 0: none, "
           "every row re-read (L1 / L2). Run 35 (H100): -1 1.07-1.10x faster "
           "with accumulators, 1.13-1.19x slower without">,
    Option<"scoreGradPersistent", "score-grad-persistent", "bool",
           /*default=*/"false",
           "block_score_grad on tensor cores: persistent CTAs, min(T, "
           "grad-ctas / 2) of them, each a chunk of consecutive tokens in "
           "turn with the next token's rows requested into L2 while the "
           "current one is computed (kernel name `_p`); false: one CTA per "
           "token, its rows requested at its start">,
    Option<"splitQueryGains", "split-query-gains", "bool",
           /*default=*/"false",
           "block_score and block_score_grad on tensor cores: compute w*g of "
           "the S queries split into bf16 hi and lo once per call (kernel "
           "`query_gain_split_*`, two S x D bf16 buffers) and pass the halves "
           "to the per-token kernel in place of the queries and gains, so "
           "that it loads its mma B operands instead of computing them for "
           "every token (kernel names `_qs`; results bit-identical). Not yet "
           "measured; false: every token computes w*g itself">,
    Option<"scoreMmaSweep", "score-mma-sweep", "bool", /*default=*/"false",
           "block_score on tensor cores: sweep 2 (the S outputs) with "
           "mma.sync as well, out = A V with the softmax weights split into "
           "bf16 hi and lo, instead of S n f32 FMAs per column (kernel name "
           "`_ms`). Not yet measured; false: the CUDA-core sweep">,
    Option<"scoreGradMmaSweep", "score-grad-mma-sweep", "bool",
           /*default=*/"false",
           "block_score_grad on tensor cores: compute the source gradients "
           "with mma.sync as well, g = C [dout; hi; lo] with the "
           "coefficients split into bf16 hi and lo, instead of 2 S n f32 FMAs "
           "per column (kernel name `_ms`; implies split-query-gains and no "
           "shared rows). Not yet measured; false: the CUDA-core sweep">,
    Option<"gradRowsInShared", "grad-rows-in-shared", "bool",
           /*default=*/"true",
           "aggregate_grad: where a token's source rows do not stay in "
           "registers between the two passes, store them into dynamic "
           "shared memory in the first pass and read them back in the "
           "second: as many as fit beside the CTAs per SM that the registers "
           "allow (kernel name `_shared`, or `_shared<k>` when only the "
           "first k fit and the second pass re-reads the others; where all "
           "fit, with 16-bit rows and no accumulators also 16 elements per "
           "thread and two CTAs per SM where their rows fit, unless "
           "elements-per-thread or min-ctas-per-sm are given; run 33, H100: "
           "fwd + bwd 1.06-1.19x); false: the second pass re-reads them "
           "from L2 / DRAM (`_reread`)">,
    Option<"gradPrefetchTokens", "grad-prefetch-tokens", "bool",
           /*default=*/"true",
           "merge_grad: load the next token's rows one token ahead "
           "(loop-carried registers) where a thread's share of them takes "
           "at most 96 bytes (16-bit rows at 8 elements per thread); the "
           "kernel name gets `_pf`. On since run 27 (H100, bf16 D = 4096: "
           "1.03-1.23x); false: the rows of each token loaded in its "
           "iteration">
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
    example at least +ptx80 for sm_90a), and that `format` names a format
    of the gpu.binary (`isa`, `bin` or `fatbin`), and emits an error
    otherwise (upstream gpu-module-to-binary only reports an unknown format
    and goes on).

    Example: `attnres-validate-nvvm-target{chip=sm_90a features=+ptx80
    format=isa}`.
  }];
  let options = [
    Option<"chip", "chip", "std::string",
           /*default=*/"::mlir::attnres::kDefaultChip",
           "Target chip">,
    Option<"features", "features", "std::string",
           /*default=*/"::mlir::attnres::kDefaultFeatures",
           "Target features (+ptxNN)">,
    Option<"format", "format", "std::string", /*default=*/"\"fatbin\"",
           "Binary format of the gpu.binary: isa, bin or fatbin">
  ];
}

def AttnResAttachNVVMTarget
    : Pass<"attnres-attach-nvvm-target", "ModuleOp"> {
  let summary = "Attach an #nvvm.target to every gpu.module that has none";
  let description = [{
    Used by `attnres-lower-to-nvvm` instead of upstream
    `nvvm-attach-target`, which appends its target to the targets a
    gpu.module already has: a kernel module made by a separate
    `convert-attnres-to-gpu` run already holds the target its kernels were
    generated for, and a second target would put two objects into the
    gpu.binary. This pass leaves every gpu.module that has targets as it is
    and gives the others `#nvvm.target<O = opt-level, chip, features>`.

    Example: `attnres-attach-nvvm-target{chip=sm_90a features=+ptx80
    opt-level=3}` on `gpu.module @k {}` gives
    `gpu.module @k [#nvvm.target<O = 3, chip = "sm_90a", features =
    "+ptx80">] {}`.
  }];
  let options = [
    Option<"chip", "chip", "std::string",
           /*default=*/"::mlir::attnres::kDefaultChip",
           "Target chip">,
    Option<"features", "features", "std::string",
           /*default=*/"::mlir::attnres::kDefaultFeatures",
           "Target features (+ptxNN)">,
    Option<"optLevel", "opt-level", "int", /*default=*/"2",
           "Optimization level of the NVVM target">
  ];
  let dependentDialects = ["::mlir::NVVM::NVVMDialect"];
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
