// RUN: attnres-opt %s --convert-attnres-to-gpu --split-input-file | FileCheck %s
// RUN: attnres-opt %s --convert-attnres-to-gpu=small-tokens=16 --split-input-file | FileCheck %s --check-prefix=T16
// RUN: attnres-opt %s --convert-attnres-to-gpu=small-tokens=0 --split-input-file | FileCheck %s --check-prefix=NONE
// RUN: attnres-opt %s --convert-attnres-to-gpu=score-small-tokens=64 --split-input-file | FileCheck %s --check-prefix=BS64
// RUN: attnres-opt %s --convert-attnres-to-gpu=score-small-tokens=0 --split-input-file | FileCheck %s --check-prefix=BS0

// Small token counts (decode, small-batch serving): a dynamic T branches at
// run time between the latency kernel (two 16-byte vectors per thread: 256
// threads at D = 4096) for T <= small-tokens (default 128) and the
// throughput kernel (512 threads) above it. The throughput kernel comes
// first in the kernel module.

// CHECK-LABEL: func.func @dynamic_tokens
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x4096xbf16>
// CHECK:         %[[LIMIT:.*]] = arith.constant 128 : index
// CHECK:         %[[SMALL:.*]] = arith.cmpi ule, %[[T]], %[[LIMIT]] : index
// CHECK:         scf.if %[[SMALL]] {
// CHECK:           gpu.launch_func @attnres_kernels::@aggregate_bf16_d4096_n3_small blocks in (%[[T]], %{{.*}}, %{{.*}}) threads in (%[[C256:.*]], %{{.*}}, %{{.*}})
// CHECK:         } else {
// CHECK:           gpu.launch_func @attnres_kernels::@aggregate_bf16_d4096_n3 blocks in (%[[T]], %{{.*}}, %{{.*}}) threads in (%[[C512:.*]], %{{.*}}, %{{.*}})
// CHECK:         }
// CHECK:       gpu.module @attnres_kernels
// CHECK:         gpu.func @aggregate_bf16_d4096_n3({{.*}}known_block_size = array<i32: 512, 1, 1>
// CHECK:         gpu.func @aggregate_bf16_d4096_n3_small({{.*}}known_block_size = array<i32: 256, 1, 1>
// T16:           %[[LIMIT:.*]] = arith.constant 16 : index
// T16:           arith.cmpi ule, %{{.*}}, %[[LIMIT]] : index
// NONE-LABEL:  func.func @dynamic_tokens
// NONE-NOT:      scf.if
// NONE-NOT:      {{_small\b}}
// NONE:          gpu.launch_func @attnres_kernels::@aggregate_bf16_d4096_n3 blocks
// NONE-NOT:      {{_small\b}}
func.func @dynamic_tokens(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v0: tensor<?x4096xbf16>, %v1: tensor<?x4096xbf16>, %v2: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v0, %v1, %v2 {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

// -----

// A static T is decided at compile time: 2 x 3 = 6 tokens take only the
// latency kernel (no branch, no throughput kernel), 6 > 0 with
// small-tokens=0 only the throughput kernel.

// CHECK-LABEL: func.func @static_few_tokens
// CHECK-NOT:     scf.if
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_f16_d7168_n2_small
// CHECK-NOT:     gpu.func @aggregate_f16_d7168_n2(
// CHECK:         gpu.func @aggregate_f16_d7168_n2_small({{.*}}known_block_size = array<i32: 448, 1, 1>
// CHECK-NOT:     gpu.func @aggregate_f16_d7168_n2(
// T16-LABEL:   func.func @static_few_tokens
// T16:           gpu.launch_func @attnres_kernels::@aggregate_f16_d7168_n2_small
// NONE-LABEL:  func.func @static_few_tokens
// NONE:          gpu.launch_func @attnres_kernels::@aggregate_f16_d7168_n2 blocks
// NONE-NOT:      {{_small\b}}
func.func @static_few_tokens(%w: tensor<7168xf16>, %g: tensor<7168xf16>, %v0: tensor<2x3x7168xf16>, %v1: tensor<2x3x7168xf16>) -> tensor<2x3x7168xf16> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<2x3x7168xf16>
  return %h : tensor<2x3x7168xf16>
}

// -----

// 4 x 64 = 256 static tokens: above the default limit, the throughput
// kernel only.

// CHECK-LABEL: func.func @static_many_tokens
// CHECK-NOT:     scf.if
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_bf16_d4096_n2 blocks
// CHECK-NOT:     _small
func.func @static_many_tokens(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v0: tensor<4x64x4096xbf16>, %v1: tensor<4x64x4096xbf16>) -> tensor<4x64x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<4x64x4096xbf16>
  return %h : tensor<4x64x4096xbf16>
}

// -----

// Where no latency kernel was measured faster there is no branch: f32 rows,
// D <= 2048, one source (a copy).

// CHECK-LABEL: func.func @no_latency_kernel
// CHECK-NOT:     arith.cmpi ule
// CHECK-NOT:     _small
func.func @no_latency_kernel(%w: tensor<4096xf32>, %g: tensor<4096xf32>, %v0: tensor<?x4096xf32>, %v1: tensor<?x4096xf32>,
                           %w2: tensor<2048xbf16>, %g2: tensor<2048xbf16>, %u0: tensor<?x2048xbf16>, %u1: tensor<?x2048xbf16>,
                           %x0: tensor<?x4096xbf16>, %w3: tensor<4096xbf16>) -> (tensor<?x4096xf32>, tensor<?x2048xbf16>, tensor<?x4096xbf16>) {
  %a = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<?x4096xf32>
  %b = attnres.aggregate %w2, %g2 over %u0, %u1 {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16>
  %c = attnres.aggregate %w3, %w3 over %x0 {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %a, %b, %c : tensor<?x4096xf32>, tensor<?x2048xbf16>, tensor<?x4096xbf16>
}

// -----

// block_score with score-small-tokens (default 16, measured in run 27): a
// dynamic T branches at run time between the CUDA-core kernel with one query
// per CTA (grid T x S) for T <= the limit and the tensor-core kernel (grid T)
// above it; score-small-tokens=0 (BS0) keeps the tensor-core kernel only.

// CHECK-LABEL: func.func @score_dynamic_tokens
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x4096xbf16>
// CHECK:         %[[LIMIT:.*]] = arith.constant 16 : index
// CHECK:         %[[SMALL:.*]] = arith.cmpi ule, %[[T]], %[[LIMIT]] : index
// CHECK:         scf.if %[[SMALL]] {
// CHECK:           gpu.launch_func @attnres_kernels::@block_score_bf16_d4096_n2_s8_g1 blocks
// CHECK:         } else {
// CHECK:           gpu.launch_func @attnres_kernels::@block_score_bf16_d4096_n2_s8_tc blocks
// BS0-LABEL:   func.func @score_dynamic_tokens
// BS0-NOT:       scf.if
// BS0:           gpu.launch_func @attnres_kernels::@block_score_bf16_d4096_n2_s8_tc blocks
// BS0-NOT:       _g1
// BS64-LABEL:  func.func @score_dynamic_tokens
// BS64:          %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x4096xbf16>
// BS64:          %[[LIMIT:.*]] = arith.constant 64 : index
// BS64:          %[[SMALL:.*]] = arith.cmpi ule, %[[T]], %[[LIMIT]] : index
// BS64:          scf.if %[[SMALL]] {
// BS64:            %[[GRID:.*]] = arith.muli %[[T]], %{{.*}} : index
// BS64:            gpu.launch_func @attnres_kernels::@block_score_bf16_d4096_n2_s8_g1 blocks in (%[[GRID]], %{{.*}}, %{{.*}})
// BS64:          } else {
// BS64:            gpu.launch_func @attnres_kernels::@block_score_bf16_d4096_n2_s8_tc blocks in (%[[T]], %{{.*}}, %{{.*}})
// BS64:          }
// BS64:        gpu.module @attnres_kernels
// BS64:          gpu.func @block_score_bf16_d4096_n2_s8_tc(
// BS64:          gpu.func @block_score_bf16_d4096_n2_s8_g1(
func.func @score_dynamic_tokens(%W: tensor<8x4096xbf16>, %G: tensor<8x4096xbf16>, %b0: tensor<?x4096xbf16>, %b1: tensor<?x4096xbf16>, %o: tensor<8x?x4096xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x4096xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b0, %b1 outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16> -> tensor<8x?x4096xbf16>
  return %out, %lse : tensor<8x?x4096xbf16>, tensor<8x?xf32>
}

// -----

// Static T: 4 tokens take only the one-query kernel (grid 4 x 8 = 32), 256
// only the tensor-core kernel.

// BS64-LABEL:  func.func @score_static_tokens
// BS64-NOT:      scf.if
// BS64:          %[[G32:.*]] = arith.muli %{{.*}}, %{{.*}} : index
// BS64:          gpu.launch_func @attnres_kernels::@block_score_bf16_d4096_n2_s8_g1 blocks in (%[[G32]], %{{.*}}, %{{.*}})
// BS64-NOT:      scf.if
// BS64:          gpu.launch_func @attnres_kernels::@block_score_bf16_d4096_n2_s8_tc blocks
// BS64:        gpu.module @attnres_kernels
func.func @score_static_tokens(%W: tensor<8x4096xbf16>, %G: tensor<8x4096xbf16>, %b0: tensor<4x4096xbf16>, %c0: tensor<256x4096xbf16>, %o: tensor<8x4x4096xbf16>, %l: tensor<8x4xf32>, %o2: tensor<8x256x4096xbf16>, %l2: tensor<8x256xf32>) -> (tensor<8x4x4096xbf16>, tensor<8x4xf32>, tensor<8x256x4096xbf16>, tensor<8x256xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b0, %b0 outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<4x4096xbf16> -> tensor<8x4x4096xbf16>
  %out2, %lse2 = attnres.block_score %W, %G over %c0, %c0 outs %o2, %l2 {epsilon = 1.0e-06 : f32} : tensor<256x4096xbf16> -> tensor<8x256x4096xbf16>
  return %out, %lse, %out2, %lse2 : tensor<8x4x4096xbf16>, tensor<8x4xf32>, tensor<8x256x4096xbf16>, tensor<8x256xf32>
}
