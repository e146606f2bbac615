// REQUIRES: ptxas
// The target from the pass options (issue 16 item 1): with no kernel module
// in the input, convert-attnres-to-gpu creates gpu.module @attnres_kernels
// with #nvvm.target<chip = "sm_89", features = "+ptx78"> and derives its
// choices from it (no bulk copies, clusters or L2 prefetch; bf16 tensor
// cores). Upstream passes lower the kernel module (reading the chip from its
// target) and ptxas must accept the PTX for sm_89.
//
// RUN: attnres-opt %s --convert-attnres-to-gpu="chip=sm_89 features=+ptx78" | FileCheck %s --check-prefix=HOST
// RUN: attnres-opt %s --convert-attnres-to-gpu="chip=sm_89 features=+ptx78" | attnres-opt --pass-pipeline="builtin.module(convert-scf-to-cf,gpu.module(expand-strided-metadata,lower-affine,convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa})" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.ptx
// RUN: FileCheck %s --check-prefix=PTX --implicit-check-not=cp.async.bulk --implicit-check-not=mbarrier --implicit-check-not=prefetch.global.L2 --implicit-check-not=cluster < %t.ptx
// RUN: ptxas -arch=sm_89 %t.ptx -o %t.cubin
// With the default target (sm_90a) the same module uses them all.
// RUN: attnres-opt %s --convert-attnres-to-gpu | FileCheck %s --check-prefix=SM90

// HOST: gpu.module @attnres_kernels [#nvvm.target<chip = "sm_89", features = "+ptx78">]
// HOST-DAG: gpu.func @block_score_bf16_d7168_n9_s8_tc(
// HOST-DAG: gpu.func @block_score_bf16_d4096_n9_s8_tc(
// HOST-DAG: gpu.func @aggregate_bf16_d4096_n9(

// PTX: .target sm_89
// PTX: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32

// SM90: gpu.module @attnres_kernels [#nvvm.target<chip = "sm_90a", features = "+ptx80">]
// SM90-DAG: gpu.func @block_score_bf16_d7168_n9_s8_tc_tma_x2(
// SM90-DAG: llvm.nvvm.prefetch.global.L2


func.func @score_7168(%W: tensor<8x7168xbf16>, %G: tensor<8x7168xbf16>, %b: tensor<?x7168xbf16>, %o: tensor<8x?x7168xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x7168xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<8x?x7168xbf16>
  return %out, %lse : tensor<8x?x7168xbf16>, tensor<8x?xf32>
}

func.func @score_4096(%W: tensor<8x4096xbf16>, %G: tensor<8x4096xbf16>, %b: tensor<?x4096xbf16>, %o: tensor<8x?x4096xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x4096xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16> -> tensor<8x?x4096xbf16>
  return %out, %lse : tensor<8x?x4096xbf16>, tensor<8x?xf32>
}

func.func @agg(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

func.func @merge(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %u: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>) {
  %h, %p = attnres.merge %o, %lse, %w, %g update %u {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h, %p : tensor<?x4096xbf16>, tensor<?x4096xbf16>
}
