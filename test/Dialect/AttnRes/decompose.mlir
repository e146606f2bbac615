// RUN: attnres-opt %s --verify-roundtrip --split-input-file --transform-interpreter --canonicalize --cse | FileCheck %s

// linalg::AggregatedOpInterface of the attnres ops (external models,
// lib/Dialect/AttnRes/Transforms/DecompositionInterfaceImpl.cpp) driven by
// upstream's transform.structured.decompose_interface. Each op becomes
// linalg.generic reductions (sum of squares, dot) and maps (inv RMS,
// softmax, weighted sum) on tensors. See docs/decomposition.md.

// CHECK-LABEL: func.func @aggregate
// CHECK-NOT:     attnres.
// Per source: sum of squares and dot over D (reductions), inv RMS (map).
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK:         math.rsqrt
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// Softmax over the sources (max-subtracted) and the weighted sum.
// CHECK:         arith.maximumf
// CHECK:         math.exp
// CHECK:         %[[H:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK:         return %[[H]] : tensor<8x64xf32>
func.func @aggregate(%w: tensor<64xf32>, %g: tensor<64xf32>,
                     %v0: tensor<8x64xf32>, %v1: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate"]} in %root : (!transform.any_op) -> !transform.any_op
    %d = transform.structured.decompose_interface %op : (!transform.any_op) -> !transform.any_op
    transform.yield
  }
}

// -----

// Dynamic tokens, f16: the destination is a tensor.empty of the reified
// shape; storage elements are widened to f32 and the sum is rounded once.
// CHECK-LABEL: func.func @block_sum
// CHECK-SAME:    %[[A:.*]]: tensor<?x32xf16>, %[[B:.*]]: tensor<?x32xf16>
// CHECK:         %[[N:.*]] = tensor.dim %[[A]], %c0
// CHECK:         %[[E:.*]] = tensor.empty(%[[N]]) : tensor<?x32xf16>
// CHECK:         %[[S:.*]] = linalg.generic {{.*}} ins(%[[A]], %[[B]] : tensor<?x32xf16>, tensor<?x32xf16>) outs(%[[E]] : tensor<?x32xf16>)
// CHECK:           arith.extf
// CHECK:           arith.extf
// CHECK:           arith.addf
// CHECK:           arith.truncf
// CHECK:         return %[[S]]
func.func @block_sum(%a: tensor<?x32xf16>, %b: tensor<?x32xf16>) -> tensor<?x32xf16> {
  %s = attnres.block_sum %a, %b : tensor<?x32xf16>
  return %s : tensor<?x32xf16>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.block_sum"]} in %root : (!transform.any_op) -> !transform.any_op
    %d = transform.structured.decompose_interface %op : (!transform.any_op) -> !transform.any_op
    transform.yield
  }
}

// -----

// CHECK-LABEL: func.func @inv_rms
// CHECK:         %[[SS:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK:         %[[R:.*]] = linalg.generic {{.*}} ins(%[[SS]] : tensor<4x6xf32>) outs(%{{.*}} : tensor<4x6xf32>)
// CHECK:           arith.divf
// CHECK:           arith.addf
// CHECK:           math.rsqrt
// CHECK:         return %[[R]] : tensor<4x6xf32>
func.func @inv_rms(%x: tensor<4x6x32xf32>) -> tensor<4x6xf32> {
  %r = attnres.inv_rms %x {epsilon = 1.0e-06 : f32} : tensor<4x6x32xf32> -> tensor<4x6xf32>
  return %r : tensor<4x6xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.inv_rms"]} in %root : (!transform.any_op) -> !transform.any_op
    %d = transform.structured.decompose_interface %op : (!transform.any_op) -> !transform.any_op
    transform.yield
  }
}

// -----

// Tiling then decomposition, as an integrator does: tile the tokens with
// tile_using_for, then decompose the tiled attnres op inside the loop.
// CHECK-LABEL: func.func @tile_then_decompose
// CHECK:         scf.for
// CHECK:           tensor.extract_slice {{.*}} [2, 64] [1, 1]
// CHECK-NOT:       attnres.
// CHECK:           linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK:           math.exp
// CHECK:           %[[T:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<2x64xf32>)
// CHECK:           tensor.insert_slice %[[T]] into %{{.*}} [2, 64] [1, 1]
func.func @tile_then_decompose(%w: tensor<64xf32>, %g: tensor<64xf32>,
                               %v0: tensor<8x64xf32>, %v1: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %op tile_sizes [2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %d = transform.structured.decompose_interface %t : (!transform.any_op) -> !transform.any_op
    transform.yield
  }
}
