// RUN: attnres-opt %s --convert-attnres-to-gpu=split-query-gains=1 --split-input-file --verify-diagnostics | FileCheck %s
// RUN: attnres-opt %s --convert-attnres-to-gpu --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=OFF
// RUN: attnres-opt %s --convert-attnres-to-gpu="split-query-gains=1 min-ctas-per-sm=0" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=NOHINT

// split-query-gains (docs/gpu.md "Kernel design"): w*g of the S queries is
// split into bf16 hi and lo once per call by query_gain_split_*, and the
// tensor-core kernels of block_score and block_score_grad take the two
// halves in place of the queries and gains (kernel names `_qs`). Their mma
// sweep then loads the B operands instead of multiplying and splitting w*g
// for every token: no vector<8xi32> mask before the first mma. The split
// kernel: one thread per 16-byte vector, grid ceil(S D / 8 / 256).

// block_score at run-time T: the small-T kernel (T <= 16) takes w and g as
// they are; the tensor-core kernel's branch launches the split first.
// CHECK-LABEL: func.func @block_score
// CHECK:         %[[W:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<8x2048xbf16> to memref<8x2048xbf16>
// CHECK:         %[[G:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<8x2048xbf16> to memref<8x2048xbf16>
// CHECK:         scf.if
// CHECK:           gpu.launch_func  @attnres_kernels::@block_score_bf16_d2048_n2_s8_g1 {{.*}} args(%[[W]] : memref<8x2048xbf16>, %[[G]] : memref<8x2048xbf16>,
// CHECK:         } else {
// CHECK:           %[[HI:.*]] = memref.alloc() : memref<8x2048xbf16>
// CHECK:           %[[LO:.*]] = memref.alloc() : memref<8x2048xbf16>
// CHECK:           %[[C8:.*]] = arith.constant 8 : index
// CHECK:           gpu.launch_func  @attnres_kernels::@query_gain_split_bf16_s8_d2048 blocks in (%[[C8]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}})  args(%[[W]] : memref<8x2048xbf16>, %[[G]] : memref<8x2048xbf16>, %[[HI]] : memref<8x2048xbf16>, %[[LO]] : memref<8x2048xbf16>)
// CHECK:           gpu.launch_func  @attnres_kernels::@block_score_bf16_d2048_n2_s8_tc_qs {{.*}} args(%[[HI]] : memref<8x2048xbf16>, %[[LO]] : memref<8x2048xbf16>,
// CHECK:         gpu.func @block_score_bf16_d2048_n2_s8_tc_qs(%[[HIA:.*]]: memref<8x2048xbf16>, %[[LOA:.*]]: memref<8x2048xbf16>,
// CHECK-NOT:       arith.andi %{{.*}} : vector<8xi32>
// CHECK:           vector.load %[[HIA]]
// CHECK:           vector.load %[[LOA]]
// CHECK-NOT:       arith.andi %{{.*}} : vector<8xi32>
// CHECK:           nvvm.mma.sync
// The split: hi = the upper halves of w*g, lo = bf16(w*g - hi).
// CHECK:         gpu.func @query_gain_split_bf16_s8_d2048(%[[WA:.*]]: memref<8x2048xbf16>, %[[GA:.*]]: memref<8x2048xbf16>, %[[HO:.*]]: memref<8x2048xbf16>, %[[LOO:.*]]: memref<8x2048xbf16>) kernel attributes {known_block_size = array<i32: 256, 1, 1>}
// CHECK:           %[[C2048:.*]] = arith.constant 2048 : index
// CHECK:           arith.cmpi ult, %{{.*}}, %[[C2048]] : index
// CHECK:           %[[WV:.*]] = vector.load %[[WA]]
// CHECK:           %[[WF:.*]] = arith.extf %[[WV]]
// CHECK:           %[[GV:.*]] = vector.load %[[GA]]
// CHECK:           %[[GF:.*]] = arith.extf %[[GV]]
// CHECK:           %[[WG:.*]] = arith.mulf %[[WF]], %[[GF]] : vector<8xf32>
// CHECK:           %[[MASK:.*]] = arith.constant dense<-65536> : vector<8xi32>
// CHECK:           %[[BITS:.*]] = vector.bitcast %[[WG]] : vector<8xf32> to vector<8xi32>
// CHECK:           %[[HIBITS:.*]] = arith.andi %[[BITS]], %[[MASK]] : vector<8xi32>
// CHECK:           %[[HIF:.*]] = vector.bitcast %[[HIBITS]] : vector<8xi32> to vector<8xf32>
// CHECK:           %[[LOF:.*]] = arith.subf %[[WG]], %[[HIF]] : vector<8xf32>
// CHECK:           %[[HALVES:.*]] = vector.bitcast %[[WG]] : vector<8xf32> to vector<16xi16>
// CHECK:           %[[UPPER:.*]] = vector.shuffle %[[HALVES]], %[[HALVES]] [1, 3, 5, 7, 9, 11, 13, 15]
// CHECK:           %[[HIV:.*]] = vector.bitcast %[[UPPER]] : vector<8xi16> to vector<8xbf16>
// CHECK:           %[[LOV:.*]] = arith.truncf %[[LOF]] : vector<8xf32> to vector<8xbf16>
// CHECK:           vector.store %[[HIV]], %[[HO]]
// CHECK:           vector.store %[[LOV]], %[[LOO]]

// Without the option: no split, w and g go to the tensor-core kernel, which
// splits w*g itself.
// OFF-LABEL:   func.func @block_score
// OFF-NOT:       query_gain_split
// OFF:           gpu.launch_func  @attnres_kernels::@block_score_bf16_d2048_n2_s8_tc blocks
// OFF:         gpu.func @block_score_bf16_d2048_n2_s8_tc(
// OFF:           arith.andi %{{.*}} : vector<8xi32>
// OFF:           nvvm.mma.sync
func.func @block_score(%W: tensor<8x2048xbf16>, %G: tensor<8x2048xbf16>, %b0: tensor<?x2048xbf16>, %b1: tensor<?x2048xbf16>, %o: tensor<8x?x2048xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x2048xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b0, %b1 outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16> -> tensor<8x?x2048xbf16>
  return %out, %lse : tensor<8x?x2048xbf16>, tensor<8x?xf32>
}

// -----

// A cluster of two CTAs per token (bulk copies, D = 7168): both read the
// halves at their own columns. S = 3: ceil(3 * 7168 / 8 / 256) = 11 CTAs of
// the split.
// CHECK-LABEL: func.func @block_score_cluster
// CHECK:         %[[C11:.*]] = arith.constant 11 : index
// CHECK:         gpu.launch_func  @attnres_kernels::@query_gain_split_bf16_s3_d7168 blocks in (%[[C11]],
// CHECK:         gpu.launch_func  @attnres_kernels::@block_score_bf16_d7168_n9_s3_tc_tma_x2_qs blocks
func.func @block_score_cluster(%W: tensor<3x7168xbf16>, %G: tensor<3x7168xbf16>, %b: tensor<64x7168xbf16>, %o: tensor<3x64x7168xbf16>, %l: tensor<3x64xf32>) -> (tensor<3x64x7168xbf16>, tensor<3x64xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<64x7168xbf16> -> tensor<3x64x7168xbf16>
  return %out, %lse : tensor<3x64x7168xbf16>, tensor<3x64xf32>
}

// -----

// The option applies to the tensor-core kernels only: f16 rows keep the
// CUDA-core kernel and w, g.
// CHECK-LABEL: func.func @block_score_f16
// CHECK-NOT:     query_gain_split
// CHECK:         gpu.launch_func  @attnres_kernels::@block_score_f16_d2048_n2_s8
// CHECK-NOT:     query_gain_split
// CHECK:         gpu.module
func.func @block_score_f16(%W: tensor<8x2048xf16>, %G: tensor<8x2048xf16>, %b0: tensor<?x2048xf16>, %b1: tensor<?x2048xf16>, %o: tensor<8x?x2048xf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x2048xf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b0, %b1 outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x2048xf16> -> tensor<8x?x2048xf16>
  return %out, %lse : tensor<8x?x2048xf16>, tensor<8x?xf32>
}

// -----

// block_score_grad: the split runs before the per-token kernel, which takes
// the halves; the parameter kernels take w and g (dW = dwg g, dG = dwg w).
// The source-gradient sweep adds the halves (hi + lo = w*g exactly) where
// the default kernel multiplies w and g. At 256 threads the kernel asks for
// two CTAs per SM (nvvm.minctasm = 2) unless min-ctas-per-sm is given.
// CHECK-LABEL: func.func @score_grad
// CHECK:         %[[W:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<3x4096xbf16> to memref<3x4096xbf16>
// CHECK:         %[[G:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<3x4096xbf16> to memref<3x4096xbf16>
// CHECK:         %[[HI:.*]] = memref.alloc() : memref<3x4096xbf16>
// CHECK:         %[[LO:.*]] = memref.alloc() : memref<3x4096xbf16>
// CHECK:         %[[C6:.*]] = arith.constant 6 : index
// CHECK:         gpu.launch_func  @attnres_kernels::@query_gain_split_bf16_s3_d4096 blocks in (%[[C6]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}})  args(%[[W]] : memref<3x4096xbf16>, %[[G]] : memref<3x4096xbf16>, %[[HI]] : memref<3x4096xbf16>, %[[LO]] : memref<3x4096xbf16>)
// CHECK:         gpu.launch_func  @attnres_kernels::@block_score_grad_bf16_d4096_s3_n2_tc_qs {{.*}} args(%[[HI]] : memref<3x4096xbf16>, %[[LO]] : memref<3x4096xbf16>,
// CHECK:         gpu.launch_func  @attnres_kernels::@block_score_grad_params_bf16_d4096_s3_n2
// CHECK:         %[[WF:.*]] = memref.collapse_shape %[[W]]
// CHECK:         %[[GF:.*]] = memref.collapse_shape %[[G]]
// CHECK:         gpu.launch_func  @attnres_kernels::@param_grad_reduce_bf16_k12288 {{.*}} args(%{{.*}} : memref<?x12288xf32>, %{{.*}} : index, %[[WF]] : memref<12288xbf16>, %[[GF]] : memref<12288xbf16>,
// CHECK:       gpu.func @block_score_grad_bf16_d4096_s3_n2_tc_qs(
// CHECK-SAME:    nvvm.minctasm = 2
// CHECK-NOT:     arith.andi %{{.*}} : vector<8xi32>
// CHECK:         nvvm.mma.sync
// CHECK:         scf.for %{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xbf16>, vector<4xbf16>, vector<4xbf16>) {
// CHECK:           %[[H:.*]] = arith.extf %{{.*}} : vector<4xbf16> to vector<4xf32>
// CHECK:           %[[L:.*]] = arith.extf %{{.*}} : vector<4xbf16> to vector<4xf32>
// CHECK:           %[[WG:.*]] = arith.addf %[[H]], %[[L]] : vector<4xf32>
// CHECK:           vector.fma %{{.*}}, %[[WG]], %{{.*}} : vector<4xf32>
// CHECK:       gpu.func @query_gain_split_bf16_s3_d4096(

// OFF-LABEL:   func.func @score_grad
// OFF-NOT:       query_gain_split
// OFF:         gpu.func @block_score_grad_bf16_d4096_s3_n2_tc(
// OFF-NOT:       nvvm.minctasm
// OFF:           scf.for %{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xbf16>, vector<4xbf16>, vector<4xbf16>) {
// OFF:             %[[W:.*]] = arith.extf %{{.*}} : vector<4xbf16> to vector<4xf32>
// OFF:             %[[G:.*]] = arith.extf %{{.*}} : vector<4xbf16> to vector<4xf32>
// OFF:             arith.mulf %[[W]], %[[G]] : vector<4xf32>

// NOHINT-LABEL: func.func @score_grad
// NOHINT:       gpu.func @block_score_grad_bf16_d4096_s3_n2_tc_qs(
// NOHINT-NOT:     nvvm.minctasm
// NOHINT-SAME:    {
func.func @score_grad(%W: tensor<3x4096xbf16>, %G: tensor<3x4096xbf16>, %b0: tensor<?x4096xbf16>, %b1: tensor<?x4096xbf16>, %lse: tensor<3x?xf32>, %r0: tensor<?xf32>, %r1: tensor<?xf32>, %dout: tensor<3x?x4096xbf16>, %dlse: tensor<3x?xf32>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<3x4096xf32>, tensor<3x4096xf32>) {
  %db:2, %dW, %dG = attnres.block_score_grad %W, %G over %b0, %b1 stats %lse, %r0, %r1 grad %dout, %dlse {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16> -> tensor<3x?x4096xbf16>
  return %db#0, %db#1, %dW, %dG : tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<3x4096xf32>, tensor<3x4096xf32>
}
