// RUN: %mlir_opt %s --load-dialect-plugin=%attnres_plugin \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:   | FileCheck %s --implicit-check-not=attnres. --implicit-check-not='tensor<'

// Debian's stock mlir-opt with the attnres plugin bufferizes attnres ops
// with upstream's one-shot-bufferize alone: the plugin registers the
// BufferizableOpInterface models (and the decompositions they use) with the
// dialect (docs/interfaces-tiling-sharding.md, "Bufferization"). No attnres
// op and no tensor is left; block_score writes into its outs argument.
// UNSUPPORTED: asan

// CHECK-LABEL: func.func @model
// CHECK-SAME:    %[[OI:arg6]]: memref<3x8x64xf32>
// CHECK:         linalg.generic {{.*}} outs(%[[OI]] : memref<3x8x64xf32>)
// CHECK:         math.exp
// CHECK:         return
func.func @model(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                 %v1: tensor<8x64xf32>, %W: tensor<3x64xf32>, %G: tensor<3x64xf32>,
                 %oi: tensor<3x8x64xf32>, %li: tensor<3x8xf32>)
    -> (tensor<8x64xf32>, tensor<3x8x64xf32>, tensor<3x8xf32>, tensor<8x64xf32>) {
  %s = attnres.block_sum %v0, %v1 : tensor<8x64xf32>
  %r0 = attnres.inv_rms %v0 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  %r1 = attnres.inv_rms %s {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  %o, %lse = attnres.block_score %W, %G over %v0, %s inv_rms %r0, %r1 outs %oi, %li
      {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<3x8x64xf32>
  %o0 = tensor.extract_slice %o[0, 0, 0] [1, 8, 64] [1, 1, 1] : tensor<3x8x64xf32> to tensor<8x64xf32>
  %l0 = tensor.extract_slice %lse[0, 0] [1, 8] [1, 1] : tensor<3x8xf32> to tensor<8xf32>
  %m, %p = attnres.merge %o0, %l0, %w, %g update %v1 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  %h = attnres.aggregate %w, %g over %v0, %s, %m {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return %h, %o, %lse, %p : tensor<8x64xf32>, tensor<3x8x64xf32>, tensor<3x8xf32>, tensor<8x64xf32>
}
