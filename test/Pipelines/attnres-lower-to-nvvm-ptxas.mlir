// REQUIRES: ptxas
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.ptx
// RUN: ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=bin" | FileCheck %s --check-prefix=BIN

// ptxas resource report: no stack frame and no spills for the issue's
// aggregation and phase-1 shapes, and for phase 1 at D = 8192 with 17
// sources (kernels are listed in reverse order). D = 7168 aggregation (10
// sources, w*g in shared memory) fits 72 registers: two CTAs of 448
// threads per SM.

// CHECK-LABEL: Compiling entry function 'aggregate_bf16_d7168_n10'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK:       Used {{([0-9]|[1-6][0-9]|7[0-2])}} registers
// CHECK-LABEL: Compiling entry function 'block_score_bf16_d8192_n17_s8_tc'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_bf16_d7168_n9_s6_tc_tma_x2_r'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_bf16_d4096_n9_s8_tc'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_bf16_d2048_n5_s8_tc'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'aggregate_bf16_d2048_n9'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'aggregate_bf16_d4096_n17'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'aggregate_bf16_d4096_n9'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

// BIN: gpu.binary @attnres_kernels {{.*}}bin = "

func.func @agg9(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

func.func @agg17(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

func.func @agg2048(%w: tensor<2048xbf16>, %g: tensor<2048xbf16>, %v: tensor<?x2048xbf16>) -> tensor<?x2048xbf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16>
  return %h : tensor<?x2048xbf16>
}

func.func @s8_2048(%W: tensor<8x2048xbf16>, %G: tensor<8x2048xbf16>, %b: tensor<?x2048xbf16>, %o: tensor<8x?x2048xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x2048xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16> -> tensor<8x?x2048xbf16>
  return %out, %lse : tensor<8x?x2048xbf16>, tensor<8x?xf32>
}

func.func @s8_4096(%W: tensor<8x4096xbf16>, %G: tensor<8x4096xbf16>, %b: tensor<?x4096xbf16>, %o: tensor<8x?x4096xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x4096xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16> -> tensor<8x?x4096xbf16>
  return %out, %lse : tensor<8x?x4096xbf16>, tensor<8x?xf32>
}

func.func @s6_7168(%W: tensor<6x7168xbf16>, %G: tensor<6x7168xbf16>, %b: tensor<?x7168xbf16>, %r: tensor<?xf32>, %o: tensor<6x?x7168xbf16>, %l: tensor<6x?xf32>) -> (tensor<6x?x7168xbf16>, tensor<6x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b inv_rms %r, %r, %r, %r, %r, %r, %r, %r, %r outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<6x?x7168xbf16>
  return %out, %lse : tensor<6x?x7168xbf16>, tensor<6x?xf32>
}

func.func @s8_8192_17(%W: tensor<8x8192xbf16>, %G: tensor<8x8192xbf16>, %b: tensor<?x8192xbf16>, %o: tensor<8x?x8192xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x8192xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x8192xbf16> -> tensor<8x?x8192xbf16>
  return %out, %lse : tensor<8x?x8192xbf16>, tensor<8x?xf32>
}

func.func @agg7168(%w: tensor<7168xbf16>, %g: tensor<7168xbf16>, %v: tensor<?x7168xbf16>) -> tensor<?x7168xbf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16>
  return %h : tensor<?x7168xbf16>
}
