// Deterministic output (issue 16 item 3): a module shaped like the benchmark
// modules (bench/gen_modules.py: aggregation and phase 1 at the benchmark
// shapes, plus a merge, a block_sum and an inv_rms) is lowered twice to PTX
// and the two PTX texts must be byte-identical. Only the PTX is compared:
// gpu-module-to-binary also records its compile time in the gpu.object.
// Whether a g++ and a clang build give the same PTX is checked by
// scripts/check-compilers.sh (it builds both).
//
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.1.ptx
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.2.ptx
// RUN: diff %t.1.ptx %t.2.ptx
// RUN: FileCheck %s < %t.1.ptx

// Every kernel is in the PTX (so the diff compares real code).
// CHECK-DAG: .entry aggregate_bf16_d4096_n9
// CHECK-DAG: .entry aggregate_bf16_d7168_n10
// CHECK-DAG: .entry block_score_bf16_d2048_n5_s6_tc
// CHECK-DAG: .entry block_score_bf16_d7168_n9_s8_tc_tma_x2
// CHECK-DAG: .entry merge_bf16_d4096
// CHECK-DAG: .entry block_sum_bf16_d4096_n3
// CHECK-DAG: .entry inv_rms_bf16_d4096

func.func @agg9(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v0: tensor<?x4096xbf16>, %v1: tensor<?x4096xbf16>, %v2: tensor<?x4096xbf16>, %v3: tensor<?x4096xbf16>, %v4: tensor<?x4096xbf16>, %v5: tensor<?x4096xbf16>, %v6: tensor<?x4096xbf16>, %v7: tensor<?x4096xbf16>, %v8: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v0, %v1, %v2, %v3, %v4, %v5, %v6, %v7, %v8 {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

func.func @agg10(%w: tensor<7168xbf16>, %g: tensor<7168xbf16>, %v: tensor<?x7168xbf16>) -> tensor<?x7168xbf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16>
  return %h : tensor<?x7168xbf16>
}

func.func @score5(%W: tensor<6x2048xbf16>, %G: tensor<6x2048xbf16>, %b0: tensor<?x2048xbf16>, %b1: tensor<?x2048xbf16>, %b2: tensor<?x2048xbf16>, %b3: tensor<?x2048xbf16>, %b4: tensor<?x2048xbf16>, %o: tensor<6x?x2048xbf16>, %l: tensor<6x?xf32>) -> (tensor<6x?x2048xbf16>, tensor<6x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b0, %b1, %b2, %b3, %b4 outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16> -> tensor<6x?x2048xbf16>
  return %out, %lse : tensor<6x?x2048xbf16>, tensor<6x?xf32>
}

func.func @score9(%W: tensor<8x7168xbf16>, %G: tensor<8x7168xbf16>, %b: tensor<?x7168xbf16>, %o: tensor<8x?x7168xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x7168xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<8x?x7168xbf16>
  return %out, %lse : tensor<8x?x7168xbf16>, tensor<8x?xf32>
}

func.func @merge(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %u: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>) {
  %h, %p = attnres.merge %o, %lse, %w, %g update %u {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h, %p : tensor<?x4096xbf16>, tensor<?x4096xbf16>
}

func.func @sum_rms(%a: tensor<?x4096xbf16>, %b: tensor<?x4096xbf16>, %c: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>) {
  %s = attnres.block_sum %a, %b, %c : tensor<?x4096xbf16>
  %r = attnres.inv_rms %s {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16> -> tensor<?xf32>
  return %s, %r : tensor<?x4096xbf16>, tensor<?xf32>
}
