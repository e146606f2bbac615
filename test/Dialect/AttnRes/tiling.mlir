// RUN: attnres-opt %s --verify-roundtrip --split-input-file --transform-interpreter --canonicalize | FileCheck %s

// TilingInterface of the attnres ops driven by upstream's transform dialect
// (docs/interfaces-tiling-sharding.md). Loops: [S] T.. D; S and the tokens
// are parallel, D is a reduction (untiled) except for block_sum.

// CHECK-LABEL: func.func @aggregate_for
// CHECK-SAME:    %[[W:[a-z0-9]+]]: tensor<64xf32>, %[[G:[a-z0-9]+]]: tensor<64xf32>, %[[V0:[a-z0-9]+]]: tensor<8x64xf32>, %[[V1:[a-z0-9]+]]: tensor<8x64xf32>
// CHECK:         %[[INIT:.*]] = tensor.empty() : tensor<8x64xf32>
// CHECK:         scf.for %[[IV:[a-z0-9_]+]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:[a-z0-9_]+]] = %[[INIT]])
// CHECK-DAG:       %[[S0:.*]] = tensor.extract_slice %[[V0]][%[[IV]], 0] [2, 64] [1, 1]
// CHECK-DAG:       %[[S1:.*]] = tensor.extract_slice %[[V1]][%[[IV]], 0] [2, 64] [1, 1]
// The pseudo-query and the gain are read whole by every tile.
// CHECK:           %[[H:.*]] = attnres.aggregate %[[W]], %[[G]] over %[[S0]], %[[S1]] {epsilon = 9.99999997E-7 : f32} : tensor<2x64xf32>
// CHECK:           tensor.insert_slice %[[H]] into %[[ACC]][%[[IV]], 0] [2, 64] [1, 1]
func.func @aggregate_for(%w: tensor<64xf32>, %g: tensor<64xf32>,
                         %v0: tensor<8x64xf32>, %v1: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %op tile_sizes [2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// Dynamic tokens, bf16, tile_using_forall with a partial last tile.
// CHECK-LABEL: func.func @aggregate_forall_dynamic
// CHECK:         scf.forall (%[[I:[a-z0-9_]+]]) in (%{{.*}}) shared_outs(%[[OUT:[a-z0-9_]+]] = %{{.*}}) -> (tensor<?x16xbf16>)
// CHECK:           %[[SZ:.*]] = affine.min
// CHECK:           %[[S0:.*]] = tensor.extract_slice %{{.*}}[%{{.*}}, 0] [%[[SZ]], 16] [1, 1] : tensor<?x16xbf16> to tensor<?x16xbf16>
// CHECK:           %[[H:.*]] = attnres.aggregate %{{.*}}, %{{.*}} over %[[S0]], %{{.*}} {{.*}} : tensor<?x16xbf16>
// CHECK:           tensor.parallel_insert_slice %[[H]] into %[[OUT]][%{{.*}}, 0] [%[[SZ]], 16] [1, 1]
func.func @aggregate_forall_dynamic(%w: tensor<16xbf16>, %g: tensor<16xbf16>,
                                    %v0: tensor<?x16xbf16>, %v1: tensor<?x16xbf16>) -> tensor<?x16xbf16> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<?x16xbf16>
  return %h : tensor<?x16xbf16>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_forall %op tile_sizes [3] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// block_sum is elementwise: D tiles too.
// CHECK-LABEL: func.func @block_sum_tokens_and_d
// CHECK:         scf.for %[[I:[a-z0-9_]+]] =
// CHECK:           scf.for %[[J:[a-z0-9_]+]] =
// CHECK-DAG:         %[[A:[a-z0-9_]+]] = tensor.extract_slice %{{.*}}[%[[I]], %[[J]]] [4, 16] [1, 1] : tensor<8x64xf16> to tensor<4x16xf16>
// CHECK-DAG:         %[[B:[a-z0-9_]+]] = tensor.extract_slice %{{.*}}[%[[I]], %[[J]]] [4, 16] [1, 1] : tensor<8x64xf16> to tensor<4x16xf16>
// CHECK:             %[[S:[a-z0-9_]+]] = attnres.block_sum %[[A]], %[[B]] : tensor<4x16xf16>
// CHECK:             tensor.insert_slice %[[S]] into %{{.*}}[%[[I]], %[[J]]] [4, 16] [1, 1]
func.func @block_sum_tokens_and_d(%a: tensor<8x64xf16>, %b: tensor<8x64xf16>) -> tensor<8x64xf16> {
  %s = attnres.block_sum %a, %b : tensor<8x64xf16>
  return %s : tensor<8x64xf16>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.block_sum"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l:2 = transform.structured.tile_using_for %op tile_sizes [4, 16] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// inv_rms: the result has no D; each tile reduces over all of D.
// CHECK-LABEL: func.func @inv_rms_forall
// CHECK:         scf.forall (%[[I:[a-z0-9_]+]], %[[J:[a-z0-9_]+]]) in (2, 3) shared_outs(%[[OUT:[a-z0-9_]+]] = %{{.*}}) -> (tensor<4x6xf32>)
// CHECK:           %[[X:.*]] = tensor.extract_slice %{{.*}}[%{{.*}}, %{{.*}}, 0] [2, 2, 32] [1, 1, 1] : tensor<4x6x32xf32> to tensor<2x2x32xf32>
// CHECK:           %[[R:.*]] = attnres.inv_rms %[[X]] {epsilon = 9.99999997E-7 : f32} : tensor<2x2x32xf32> -> tensor<2x2xf32>
// CHECK:           tensor.parallel_insert_slice %[[R]] into %[[OUT]][%{{.*}}, %{{.*}}] [2, 2] [1, 1]
func.func @inv_rms_forall(%x: tensor<4x6x32xf32>) -> tensor<4x6xf32> {
  %r = attnres.inv_rms %x {epsilon = 1.0e-06 : f32} : tensor<4x6x32xf32> -> tensor<4x6xf32>
  return %r : tensor<4x6xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.inv_rms"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_forall %op tile_sizes [2, 2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// block_score: the queries (S) tile like tokens; rows of the queries and
// gains, token tiles of the sources and inv_rms, tiles of both outputs.
// CHECK-LABEL: func.func @block_score_s_and_tokens
// CHECK:         scf.for %[[S:[a-z0-9_]+]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[O:[a-z0-9_]+]] = %{{.*}}, %[[L:[a-z0-9_]+]] = %{{.*}})
// CHECK:           scf.for %[[T:[a-z0-9_]+]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[O2:[a-z0-9_]+]] = %[[O]], %[[L2:[a-z0-9_]+]] = %[[L]])
// CHECK-DAG:         %[[Q:.*]] = tensor.extract_slice %{{.*}}[%[[S]], 0] [1, 32] [1, 1] : tensor<4x32xf32> to tensor<1x32xf32>
// CHECK-DAG:         %[[B0:.*]] = tensor.extract_slice %{{.*}}[%[[T]], 0] [4, 32] [1, 1] : tensor<8x32xf32> to tensor<4x32xf32>
// CHECK-DAG:         %[[R0:.*]] = tensor.extract_slice %{{.*}}[%[[T]]] [4] [1] : tensor<8xf32> to tensor<4xf32>
// CHECK:             %{{.*}}, %{{.*}} = attnres.block_score %[[Q]], %{{.*}} over %[[B0]], %{{.*}} inv_rms %[[R0]], %{{.*}} outs %{{.*}}, %{{.*}} {{.*}} : tensor<4x32xf32> -> tensor<1x4x32xf32>
// CHECK:             tensor.insert_slice %{{.*}} into %[[O2]][%[[S]], %[[T]], 0] [1, 4, 32] [1, 1, 1]
// CHECK:             tensor.insert_slice %{{.*}} into %[[L2]][%[[S]], %[[T]]] [1, 4] [1, 1]
func.func @block_score_s_and_tokens(%q: tensor<4x32xf32>, %g: tensor<4x32xf32>,
    %b0: tensor<8x32xf32>, %b1: tensor<8x32xf32>, %r0: tensor<8xf32>, %r1: tensor<8xf32>)
    -> (tensor<4x8x32xf32>, tensor<4x8xf32>) {
  %oi = tensor.empty() : tensor<4x8x32xf32>
  %li = tensor.empty() : tensor<4x8xf32>
  %o, %l = attnres.block_score %q, %g over %b0, %b1 inv_rms %r0, %r1 outs %oi, %li
      {epsilon = 1.0e-06 : f32} : tensor<8x32xf32> -> tensor<4x8x32xf32>
  return %o, %l : tensor<4x8x32xf32>, tensor<4x8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.block_score"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l:2 = transform.structured.tile_using_for %op tile_sizes [1, 4, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// merge with a partial sum and the fused norm: three results per tile; the
// norm gain, like the query and the gain, is read whole.
// CHECK-LABEL: func.func @merge_norm_forall
// CHECK-SAME:    %[[OUT:[a-z0-9]+]]: tensor<8x32xbf16>, %[[LSE:[a-z0-9]+]]: tensor<8xf32>, %[[W:[a-z0-9]+]]: tensor<32xbf16>, %[[G:[a-z0-9]+]]: tensor<32xbf16>, %[[U:[a-z0-9]+]]: tensor<8x32xbf16>, %[[P:[a-z0-9]+]]: tensor<8x32xbf16>, %[[N:[a-z0-9]+]]: tensor<32xbf16>
// CHECK:         scf.forall (%[[I:[a-z0-9_]+]]) in (4) shared_outs(%[[A:[a-z0-9_]+]] = %{{.*}}, %[[B:[a-z0-9_]+]] = %{{.*}}, %[[C:[a-z0-9_]+]] = %{{.*}})
// CHECK-DAG:       %[[O:[a-z0-9_]+]] = tensor.extract_slice %[[OUT]][%{{.*}}, 0] [2, 32] [1, 1]
// CHECK-DAG:       %[[L:[a-z0-9_]+]] = tensor.extract_slice %[[LSE]][%{{.*}}] [2] [1]
// CHECK-DAG:       %[[US:.*]] = tensor.extract_slice %[[U]][%{{.*}}, 0] [2, 32] [1, 1]
// CHECK-DAG:       %[[PS:.*]] = tensor.extract_slice %[[P]][%{{.*}}, 0] [2, 32] [1, 1]
// CHECK:           %{{.*}}, %{{.*}}, %{{.*}} = attnres.merge %[[O]], %[[L]], %[[W]], %[[G]] update %[[US]] partial %[[PS]] norm %[[N]] {{.*}} : tensor<2x32xbf16>
// CHECK-COUNT-3:     tensor.parallel_insert_slice
func.func @merge_norm_forall(%out: tensor<8x32xbf16>, %lse: tensor<8xf32>, %w: tensor<32xbf16>,
    %g: tensor<32xbf16>, %u: tensor<8x32xbf16>, %p: tensor<8x32xbf16>, %n: tensor<32xbf16>)
    -> (tensor<8x32xbf16>, tensor<8x32xbf16>, tensor<8x32xbf16>) {
  %h, %p2, %hn = attnres.merge %out, %lse, %w, %g update %u partial %p norm %n
      {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<8x32xbf16>
  return %h, %p2, %hn : tensor<8x32xbf16>, tensor<8x32xbf16>, tensor<8x32xbf16>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.merge"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_forall %op tile_sizes [2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}
