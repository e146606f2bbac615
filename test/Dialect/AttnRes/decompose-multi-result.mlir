// RUN: attnres-opt %s --verify-roundtrip --split-input-file --convert-attnres-to-linalg --canonicalize --cse | FileCheck %s

// The decompositions of the ops whose results are not each defined by one
// new op (docs/decomposition.md): block_score and merge (several results,
// each from its own linalg.generic) and a one-source aggregate (its result is
// the source, a block argument). Upstream's
// transform.structured.decompose_interface requires exactly one payload op
// per decomposed op for its result handle and reports "expected to produce 1
// results" for them, so they are checked here through the
// convert-attnres-to-linalg driver, which calls the same decomposeOperation.

// One source: the aggregation is the source (spec: weight exactly 1).
// CHECK-LABEL: func.func @aggregate_one_source
// CHECK-SAME:    %{{.*}}: tensor<16xbf16>, %{{.*}}: tensor<16xbf16>, %[[V:.*]]: tensor<?x16xbf16>
// CHECK-NEXT:    return %[[V]]
func.func @aggregate_one_source(%w: tensor<16xbf16>, %g: tensor<16xbf16>,
                                %v0: tensor<?x16xbf16>) -> tensor<?x16xbf16> {
  %h = attnres.aggregate %w, %g over %v0 {epsilon = 1.0e-06 : f32} : tensor<?x16xbf16>
  return %h : tensor<?x16xbf16>
}

// -----

// block_score is in destination style: the decomposition writes into its
// `outs` (the weighted sum into %oi, the log-sum-exp into %li).
// CHECK-LABEL: func.func @block_score
// CHECK:         %[[OI:.*]] = tensor.empty() : tensor<4x8x32xf32>
// CHECK:         %[[LI:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK:         %{{.*}}:3 = linalg.generic {{.*}} outs(%{{.*}}, %{{.*}}, %[[LI]] : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
// CHECK:           math.log
// CHECK:         %[[O:.*]] = linalg.generic {{.*}} outs(%[[OI]] : tensor<4x8x32xf32>)
func.func @block_score(%q: tensor<4x32xf32>, %g: tensor<4x32xf32>,
                       %b0: tensor<8x32xf32>, %b1: tensor<8x32xf32>,
                       %r0: tensor<8xf32>, %r1: tensor<8xf32>)
    -> (tensor<4x8x32xf32>, tensor<4x8xf32>) {
  %oi = tensor.empty() : tensor<4x8x32xf32>
  %li = tensor.empty() : tensor<4x8xf32>
  %o, %l = attnres.block_score %q, %g over %b0, %b1 inv_rms %r0, %r1 outs %oi, %li
      {epsilon = 1.0e-06 : f32} : tensor<8x32xf32> -> tensor<4x8x32xf32>
  return %o, %l : tensor<4x8x32xf32>, tensor<4x8xf32>
}

// -----

// merge with a partial sum and the fused norm: three results.
// CHECK-LABEL: func.func @merge_norm
// CHECK:         math.exp
// CHECK:         %[[HP:.*]]:2 = linalg.generic {{.*}} outs(%{{.*}}, %{{.*}} : tensor<8x32xbf16>, tensor<8x32xbf16>)
// CHECK:         %[[HN:.*]] = linalg.generic {{.*}} ins(%[[HP]]#0, %{{.*}}, %{{.*}} : tensor<8x32xbf16>, tensor<8xf32>, tensor<32xbf16>)
// CHECK:         return %[[HP]]#0, %[[HP]]#1, %[[HN]]
func.func @merge_norm(%out: tensor<8x32xbf16>, %lse: tensor<8xf32>, %w: tensor<32xbf16>,
    %g: tensor<32xbf16>, %u: tensor<8x32xbf16>, %p: tensor<8x32xbf16>, %n: tensor<32xbf16>)
    -> (tensor<8x32xbf16>, tensor<8x32xbf16>, tensor<8x32xbf16>) {
  %h, %p2, %hn = attnres.merge %out, %lse, %w, %g update %u partial %p norm %n
      {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<8x32xbf16>
  return %h, %p2, %hn : tensor<8x32xbf16>, tensor<8x32xbf16>, tensor<8x32xbf16>
}
