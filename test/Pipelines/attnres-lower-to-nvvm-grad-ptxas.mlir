// REQUIRES: ptxas
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.ptx
// RUN: ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s

// The backward kernels through the whole NVVM pipeline are accepted by
// ptxas, with no stack frame and no spills (a few bytes where noted) for the
// statistics forward and the backward of 9 sources at D = 4096 and 2048 (rows kept in
// shared memory for the second pass), of 2 sources (rows kept in registers) and for merge_grad
// with the fused norm (`_pf`, the next token's rows loaded one token ahead;
// kernels are listed in reverse order).

// CHECK-LABEL: Compiling entry function 'param_grad_reduce_bf16_k4096_p4096'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'merge_grad_bf16_d4096_p_n_pf'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'aggregate_grad_bf16_d4096_n2'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'aggregate_grad_bf16_d2048_n9_shared'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'param_grad_reduce_bf16_k4096'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// With the rows in shared memory (the default since run 33): 16 elements
// per thread and two 256-thread CTAs per SM, 128 registers and no spill
// (the kernel that re-read the rows took 32 elements per thread, 255
// registers and spilled 4 bytes).
// CHECK-LABEL: Compiling entry function 'aggregate_grad_bf16_d4096_n9_shared'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK:       Used {{[0-9]+}} registers
// CHECK-LABEL: Compiling entry function 'aggregate_stats_bf16_d7168_n10'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'aggregate_stats_bf16_d4096_n9'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

func.func @stats9(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>, tensor<?xf32>) {
  %h, %lse, %r:9 = attnres.aggregate_stats %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h, %lse, %r#8 : tensor<?x4096xbf16>, tensor<?xf32>, tensor<?xf32>
}

func.func @stats10(%w: tensor<7168xbf16>, %g: tensor<7168xbf16>, %v: tensor<?x7168xbf16>) -> (tensor<?x7168xbf16>, tensor<?xf32>, tensor<?xf32>) {
  %h, %lse, %r:10 = attnres.aggregate_stats %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16>
  return %h, %lse, %r#9 : tensor<?x7168xbf16>, tensor<?xf32>, tensor<?xf32>
}

func.func @grad9(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v: tensor<?x4096xbf16>, %r: tensor<?xf32>, %dh: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<4096xf32>) {
  %dv:9, %dq, %dg = attnres.aggregate_grad %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v stats %r, %r, %r, %r, %r, %r, %r, %r, %r, %r grad %dh {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %dv#0, %dq : tensor<?x4096xbf16>, tensor<4096xf32>
}

func.func @grad9_2048(%w: tensor<2048xbf16>, %g: tensor<2048xbf16>, %v: tensor<?x2048xbf16>, %r: tensor<?xf32>, %dh: tensor<?x2048xbf16>) -> (tensor<?x2048xbf16>, tensor<2048xf32>) {
  %dv:9, %dq, %dg = attnres.aggregate_grad %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v stats %r, %r, %r, %r, %r, %r, %r, %r, %r, %r grad %dh {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16>
  return %dv#0, %dq : tensor<?x2048xbf16>, tensor<2048xf32>
}

func.func @grad2(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v: tensor<?x4096xbf16>, %r: tensor<?xf32>, %dh: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<4096xf32>) {
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %g over %v, %v stats %r, %r, %r grad %dh {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %dv#0, %dq : tensor<?x4096xbf16>, tensor<4096xf32>
}

func.func @mgrad(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %y: tensor<?x4096xbf16>, %gn: tensor<4096xbf16>, %dh: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<4096xf32>) {
  %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %lse, %w, %g update %y partial %y norm %gn grad %dh, %dh, %dh {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %dp, %dgn : tensor<?x4096xbf16>, tensor<4096xf32>
}
