// RUN: attnres-opt %s --convert-attnres-to-gpu="score-mma-sweep=1 score-grad-mma-sweep=1" --split-input-file --verify-diagnostics | FileCheck %s --check-prefixes=CHECK,GMS
// RUN: attnres-opt %s --convert-attnres-to-gpu="score-mma-sweep=1 score-grad-mma-sweep=1 score-grad-shared-rows=-1" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=GMS
// RUN: attnres-opt %s --convert-attnres-to-gpu --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=OFF

// The mma sweeps over the columns (docs/gpu.md): the second sweep of the
// tensor-core block_score (score-mma-sweep) and block_score_grad's
// source-gradient sweep (score-grad-mma-sweep) on the tensor cores instead
// of f32 FMAs. Each warp takes 64-column blocks; the rows of a block are
// paired across k (sources, or queries) with nvvm.prmt, the coefficients
// (softmax weights, or a and k1) are split into bf16 hi + lo, and every lane
// writes two 16-byte vectors per row. The numerics are checked on the CPU
// by python/tests/test_gpu_emulator.py.

// block_score, D = 2048, n = 2, S = 8, 128 threads (4 warps): sweep 1's 96
// mma (16 blocks of 32 columns per warp x 2 k-tiles x (hi, lo, the sums of
// squares)), the logits and the softmax (three barriers), then per warp 8
// blocks of 64 columns: the two source rows paired (8 nvvm.prmt; the
// half-tile of sources 8..15 is zero, no prmt), 8 n-tiles x 2 mma (the
// weights' hi and lo), no f32 FMA sweep, one 16-byte store per chunk and
// query. The occupancy hint: the CTAs per SM that 128 registers per thread
// allow (4 of 128 threads; shared memory allows more).
// CHECK-LABEL: func.func @block_score
// CHECK:         gpu.launch_func  @attnres_kernels::@block_score_bf16_d2048_n2_s8_tc_ms blocks
// CHECK:       gpu.func @block_score_bf16_d2048_n2_s8_tc_ms(
// CHECK-SAME:    nvvm.minctasm = 4
// CHECK-COUNT-96: nvvm.mma.sync
// CHECK-COUNT-3:  gpu.barrier
// CHECK-NOT:      vector.fma
// CHECK-COUNT-8:  nvvm.prmt <default> %{{.*}}, %{{.*}}, %{{.*}} : i32
// CHECK-NOT:      nvvm.prmt
// CHECK-COUNT-16: nvvm.mma.sync
// CHECK-NOT:      nvvm.mma.sync
// CHECK:          arith.truncf %{{.*}} : vector<8xf32> to vector<8xbf16>
// CHECK:          vector.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<8x?x2048xbf16>, vector<8xbf16>
// CHECK-NOT:      vector.fma
// CHECK:          gpu.return

// OFF-LABEL:   func.func @block_score
// OFF:         gpu.func @block_score_bf16_d2048_n2_s8_tc(
// OFF-NOT:       nvvm.prmt
// OFF:           vector.fma
func.func @block_score(%W: tensor<8x2048xbf16>, %G: tensor<8x2048xbf16>, %b0: tensor<?x2048xbf16>, %b1: tensor<?x2048xbf16>, %o: tensor<8x?x2048xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x2048xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b0, %b1 outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16> -> tensor<8x?x2048xbf16>
  return %out, %lse : tensor<8x?x2048xbf16>, tensor<8x?xf32>
}

// -----

// Bulk copies into shared memory (D = 7168, one CTA of 224 threads): the
// mma sweep reads the rows from there. Hint: 2 CTAs per SM (128 registers
// for 224 threads; the 74 KB of shared memory would allow 3).
// CHECK-LABEL: func.func @block_score_bulk
// CHECK:       gpu.func @block_score_bf16_d7168_n5_s6_tc_tma_ms(
// CHECK-SAME:    nvvm.minctasm = 2
// CHECK:         %[[ROWS:.*]] = memref.view %{{.*}}[%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<5x7200xbf16, #gpu.address_space<workgroup>>
// CHECK:         nvvm.mbarrier.try_wait
// CHECK-COUNT-3: gpu.barrier
// CHECK:         vector.load %[[ROWS]]
// CHECK:         nvvm.prmt
// CHECK:         nvvm.mma.sync
func.func @block_score_bulk(%W: tensor<6x7168xbf16>, %G: tensor<6x7168xbf16>, %b: tensor<?x7168xbf16>, %o: tensor<6x?x7168xbf16>, %l: tensor<6x?xf32>) -> (tensor<6x?x7168xbf16>, tensor<6x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<6x?x7168xbf16>
  return %out, %lse : tensor<6x?x7168xbf16>, tensor<6x?xf32>
}

// -----

// score-grad-mma-sweep (`_ms`, implies the split, no shared rows): the
// source gradients on the tensor cores too; no dynamic shared memory, even
// with score-grad-shared-rows=-1. After the mma sweep (96 mma: 16 blocks
// per warp x 2 k-tiles x 3 B tiles) and the coefficient phases (four
// barriers), no CUDA-core loop over the queries:
// per 64-column block the rows of each piece (dout, hi, lo of w*g) are paired
// across queries (nvvm.prmt, two rows' registers per pair), 8 n-tiles x (2 + 1) mma (the
// coefficients' hi and lo on the dout/hi k-tile, hi only on the lo one),
// 8 blocks per warp: 192; then db = g - K2 b, 16-byte stores.
// GMS-LABEL:   func.func @score_grad
// GMS:            gpu.launch_func  @attnres_kernels::@query_gain_split_bf16_s3_d4096
// GMS:            gpu.launch_func  @attnres_kernels::@block_score_grad_bf16_d4096_s3_n2_tc_qs_ms blocks
// GMS-SAME:         threads in ({{[^)]*}})  args(
// GMS-NOT:        gpu.launch_func  @attnres_kernels::@block_score_grad_bf16_d4096_s3_n2_tc_qs_ms
// GMS:          gpu.func @block_score_grad_bf16_d4096_s3_n2_tc_qs_ms(
// GMS-COUNT-96:   nvvm.mma.sync
// GMS-COUNT-4:    gpu.barrier
// GMS-NOT:        scf.for
// GMS:            nvvm.prmt <default> %{{.*}}, %{{.*}}, %{{.*}} : i32
// GMS-COUNT-192:  nvvm.mma.sync
// GMS-NOT:        nvvm.mma.sync
// GMS-NOT:        scf.for
// GMS:            vector.fma %{{.*}} : vector<8xf32>
// GMS:            vector.store %{{.*}} : memref<?x4096xbf16>, vector<8xbf16>
// GMS:            gpu.return

func.func @score_grad(%W: tensor<3x4096xbf16>, %G: tensor<3x4096xbf16>, %b0: tensor<?x4096xbf16>, %b1: tensor<?x4096xbf16>, %lse: tensor<3x?xf32>, %r0: tensor<?xf32>, %r1: tensor<?xf32>, %dout: tensor<3x?x4096xbf16>, %dlse: tensor<3x?xf32>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<3x4096xf32>, tensor<3x4096xf32>) {
  %db:2, %dW, %dG = attnres.block_score_grad %W, %G over %b0, %b1 stats %lse, %r0, %r1 grad %dout, %dlse {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16> -> tensor<3x?x4096xbf16>
  return %db#0, %db#1, %dW, %dG : tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<3x4096xf32>, tensor<3x4096xf32>
}
