// REQUIRES: ptxas
// RUN: attnres-opt %s --convert-attnres-to-gpu="grad-prefetch-tokens=1 score-small-tokens=64 grad-rows-in-shared=1" | attnres-opt --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.ptx
// RUN: ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s

// The kernels of the tuning options that are off by default until measured
// (bench/NOTES.md run 27) through the whole NVVM pipeline: merge_grad with
// the next token's rows loaded one token ahead (`_pf`, grad-prefetch-tokens;
// with the fused norm and dh, 128 registers) and block_score's one-query
// kernel for small T (`_g1`, score-small-tokens; n = 9 S = 6 D = 7168, the
// largest phase-1 shape, next to its tensor-core kernel) and
// block_score_grad on the tensor cores (`_tc`, the default; n = 9 S = 8
// D = 7168 with accumulators), aggregate_grad with the rows kept in shared
// memory between its passes (`_shared`, grad-rows-in-shared, the default
// since run 33; n = 9 at D = 4096 and n = 10 at D = 7168, 16 elements per
// thread, 128 registers each, where the kernels that re-read the rows spill
// 4 and 8 bytes at 32 elements per thread). ptxas accepts them
// with no stack frame and no spills (kernels are listed in reverse order).

// CHECK-LABEL: Compiling entry function 'aggregate_grad_bf16_d7168_n10_shared'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'aggregate_grad_bf16_d4096_n9_shared'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_grad_bf16_d7168_s8_n9_tc_acc'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_bf16_d7168_n9_s6_g1'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_bf16_d7168_n9_s6_tc_tma_x2'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'param_grad_reduce_bf16_k4096_p4096'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'merge_grad_bf16_d4096_p_n_pf'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

func.func @merge_grad_pf(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %y: tensor<?x4096xbf16>, %p: tensor<?x4096xbf16>, %gn: tensor<4096xbf16>, %dh: tensor<?x4096xbf16>, %dpn: tensor<?x4096xbf16>, %dhn: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<?x4096xbf16>, tensor<4096xf32>) {
  %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %lse, %w, %g update %y partial %p norm %gn grad %dh, %dpn, %dhn {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %do, %dl, %dw, %dg, %dp, %dgn : tensor<?x4096xbf16>, tensor<?xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<?x4096xbf16>, tensor<4096xf32>
}
func.func @score_small(%W: tensor<6x7168xbf16>, %G: tensor<6x7168xbf16>, %b: tensor<?x7168xbf16>, %o: tensor<6x?x7168xbf16>, %l: tensor<6x?xf32>) -> (tensor<6x?x7168xbf16>, tensor<6x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<6x?x7168xbf16>
  return %out, %lse : tensor<6x?x7168xbf16>, tensor<6x?xf32>
}
func.func @score_grad_tc(%W: tensor<8x7168xbf16>, %G: tensor<8x7168xbf16>, %b: tensor<?x7168xbf16>, %lse: tensor<8x?xf32>, %r: tensor<?xf32>, %dout: tensor<8x?x7168xbf16>, %dlse: tensor<8x?xf32>, %a: tensor<?x7168xbf16>) -> (tensor<?x7168xbf16>, tensor<8x7168xf32>, tensor<8x7168xf32>) {
  %db:9, %dW, %dG = attnres.block_score_grad %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b stats %lse, %r, %r, %r, %r, %r, %r, %r, %r, %r grad %dout, %dlse accumulate %a, %a, %a, %a, %a, %a, %a, %a, %a {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<8x?x7168xbf16>
  return %db#0, %dW, %dG : tensor<?x7168xbf16>, tensor<8x7168xf32>, tensor<8x7168xf32>
}
func.func @grad_shared(%w: tensor<4096xbf16>, %v: tensor<?x4096xbf16>, %s: tensor<?xf32>, %dh: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %a:9, %aq, %ag = attnres.aggregate_grad %w, %w over %v, %v, %v, %v, %v, %v, %v, %v, %v stats %s, %s, %s, %s, %s, %s, %s, %s, %s, %s grad %dh {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %a#0 : tensor<?x4096xbf16>
}
func.func @grad_shared_wide(%w: tensor<7168xbf16>, %v: tensor<?x7168xbf16>, %s: tensor<?xf32>, %dh: tensor<?x7168xbf16>) -> tensor<?x7168xbf16> {
  %a:10, %aq, %ag = attnres.aggregate_grad %w, %w over %v, %v, %v, %v, %v, %v, %v, %v, %v, %v stats %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s grad %dh {epsilon = 1.0e-05 : f32} : tensor<?x7168xbf16>
  return %a#0 : tensor<?x7168xbf16>
}
