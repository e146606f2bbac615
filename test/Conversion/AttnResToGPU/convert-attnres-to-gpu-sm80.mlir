// REQUIRES: ptxas
// The target comes from the kernel module's #nvvm.target (issue 16 item 1):
// convert-attnres-to-gpu alone, with no option, on a module whose
// gpu.module @attnres_kernels targets sm_80 must produce kernels without the
// sm_90 features (bulk copies, clusters, mbarrier transactions, L2 prefetch)
// that the defaults use at these shapes on sm_90a, but still with bf16
// tensor cores (mma.sync, sm_80). The kernel module is then lowered with
// upstream passes only (none is told the chip) and ptxas must accept the PTX
// for sm_80.
//
// RUN: attnres-opt %s --convert-attnres-to-gpu | FileCheck %s --check-prefix=HOST
// RUN: attnres-opt %s --convert-attnres-to-gpu | attnres-opt --pass-pipeline="builtin.module(convert-scf-to-cf,gpu.module(expand-strided-metadata,lower-affine,convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa})" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.ptx
// RUN: FileCheck %s --check-prefix=PTX --implicit-check-not=cp.async.bulk --implicit-check-not=mbarrier --implicit-check-not=prefetch.global.L2 --implicit-check-not=cluster < %t.ptx
// RUN: ptxas -arch=sm_80 %t.ptx -o %t.cubin

// HOST: gpu.module @attnres_kernels [#nvvm.target<chip = "sm_80", features = "+ptx70">]
// On sm_90a these would be block_score_..._d7168_n9_s8_tc_tma_x2 (cluster of
// two CTAs with bulk copies) and an L2-prefetching d4096 kernel.
// HOST-DAG: gpu.func @block_score_bf16_d7168_n9_s8_tc(
// HOST-DAG: gpu.func @block_score_bf16_d4096_n9_s8_tc(
// HOST-DAG: gpu.func @aggregate_bf16_d4096_n9(

// PTX: .target sm_80
// PTX: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32

gpu.module @attnres_kernels [#nvvm.target<chip = "sm_80", features = "+ptx70">] {
}

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
