// RUN: %mlir_opt %s --load-dialect-plugin=%attnres_plugin \
// RUN:   --transform-interpreter --canonicalize | FileCheck %s

// Debian's stock mlir-opt with the attnres plugin decomposes attnres ops with
// upstream's transform.structured.decompose_interface: the plugin registers
// the linalg::AggregatedOpInterface external models (docs/decomposition.md).
// UNSUPPORTED: asan

// CHECK-LABEL: func.func @decompose
// CHECK-NOT:     attnres.
// CHECK:         math.rsqrt
// CHECK:         math.exp
// CHECK:         return
func.func @decompose(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                     %v1: tensor<8x64xf32>) -> tensor<8x64xf32> {
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
