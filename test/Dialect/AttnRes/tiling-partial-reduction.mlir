// RUN: attnres-opt %s --verify-roundtrip --split-input-file --transform-interpreter --canonicalize | FileCheck %s

// The gradient ops through upstream's partial-reduction tiling
// (PartialReductionOpInterface; docs/interfaces-tiling-sharding.md): per-token
// gradients are written tile by tile, parameter gradients (sums over the
// tokens) get one partial sum per tile, merged by one linalg.reduce.

// tile_reduction_using_for: every tile adds its query and gain gradients into
// row 0 of a [tile size, D] partial tensor (linalg.add); the source gradients
// follow the token tiles.
// CHECK-LABEL: func.func @aggregate_grad_for
// CHECK:         %[[ZQ:.*]] = linalg.fill {{.*}} -> tensor<4x16xf32>
// CHECK:         %[[ZG:.*]] = linalg.fill {{.*}} -> tensor<4x16xf32>
// CHECK:         %[[LOOP:.*]]:4 = scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[DV0:.*]] = %{{.*}}, %[[DV1:.*]] = %{{.*}}, %[[PQ:.*]] = %[[ZQ]], %[[PG:.*]] = %[[ZG]])
// CHECK:           %[[SZ:.*]] = affine.min
// CHECK:           %{{.*}}, %[[TQ:.*]], %[[TG:.*]] = attnres.aggregate_grad {{.*}} : tensor<?x16xf32>
// CHECK:           %[[AQ:.*]] = tensor.extract_slice %[[PQ]][0, 0] [1, 16] [1, 1] : tensor<4x16xf32> to tensor<16xf32>
// CHECK:           %[[SQ:.*]] = linalg.add ins(%[[AQ]], %[[TQ]] : {{.*}}) outs(%[[AQ]] : tensor<16xf32>)
// CHECK:           linalg.add
// CHECK:           tensor.insert_slice %{{.*}} into %[[DV0]][%[[T]], 0] [%[[SZ]], 16]
// CHECK:           tensor.insert_slice %{{.*}} into %[[DV1]][%[[T]], 0] [%[[SZ]], 16]
// CHECK:           tensor.insert_slice %[[SQ]] into %[[PQ]][0, 0] [1, 16]
// CHECK:         %[[R:.*]]:2 = linalg.reduce ins(%[[LOOP]]#2, %[[LOOP]]#3 : tensor<4x16xf32>, tensor<4x16xf32>) outs({{.*}}) dimensions = [0]
// CHECK:           arith.addf
// CHECK:           arith.addf
// CHECK:         return %[[LOOP]]#0, %[[LOOP]]#1, %[[R]]#0, %[[R]]#1
func.func @aggregate_grad_for(%q: tensor<16xf32>, %g: tensor<16xf32>, %v0: tensor<10x16xf32>,
    %v1: tensor<10x16xf32>, %lse: tensor<10xf32>, %r0: tensor<10xf32>, %r1: tensor<10xf32>,
    %dh: tensor<10x16xf32>)
    -> (tensor<10x16xf32>, tensor<10x16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %dv:2, %dq, %dg = attnres.aggregate_grad %q, %g over %v0, %v1 stats %lse, %r0, %r1 grad %dh
      {epsilon = 1.0e-6 : f32} : tensor<10x16xf32>
  return %dv#0, %dv#1, %dq, %dg : tensor<10x16xf32>, tensor<10x16xf32>, tensor<16xf32>, tensor<16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate_grad"]} in %root : (!transform.any_op) -> !transform.any_op
    %fill:4, %split, %merge, %loop = transform.structured.tile_reduction_using_for %op by tile_sizes = [4, 0]
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op,
          !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// tile_reduction_using_forall: tile i writes row i of a [3, D] partial tensor.
// CHECK-LABEL: func.func @aggregate_grad_forall
// CHECK:         %[[LOOP:.*]]:4 = scf.forall (%[[I:.*]]) in (3) shared_outs(%[[DV0:.*]] = %{{.*}}, %[[DV1:.*]] = %{{.*}}, %[[PQ:.*]] = %{{.*}}, %[[PG:.*]] = %{{.*}}) -> (tensor<10x16xf32>, tensor<10x16xf32>, tensor<3x16xf32>, tensor<3x16xf32>)
// CHECK:           %{{.*}}:2, %[[TQ:.*]], %[[TG:.*]] = attnres.aggregate_grad {{.*}} : tensor<?x16xf32>
// CHECK-NOT:       linalg.add
// CHECK:           scf.forall.in_parallel
// CHECK-COUNT-2:     tensor.parallel_insert_slice %{{.*}} into %{{.*}}[%{{.*}}, 0] [%{{.*}}, 16] [1, 1] : tensor<?x16xf32> into tensor<10x16xf32>
// CHECK:             tensor.parallel_insert_slice %[[TQ]] into %[[PQ]][%[[I]], 0] [1, 16] [1, 1] : tensor<16xf32> into tensor<3x16xf32>
// CHECK:             tensor.parallel_insert_slice %[[TG]] into %[[PG]][%[[I]], 0] [1, 16] [1, 1] : tensor<16xf32> into tensor<3x16xf32>
// CHECK:         linalg.reduce ins(%[[LOOP]]#2, %[[LOOP]]#3 : tensor<3x16xf32>, tensor<3x16xf32>) {{.*}} dimensions = [0]
func.func @aggregate_grad_forall(%q: tensor<16xf32>, %g: tensor<16xf32>, %v0: tensor<10x16xf32>,
    %v1: tensor<10x16xf32>, %lse: tensor<10xf32>, %r0: tensor<10xf32>, %r1: tensor<10xf32>,
    %dh: tensor<10x16xf32>)
    -> (tensor<10x16xf32>, tensor<10x16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %dv:2, %dq, %dg = attnres.aggregate_grad %q, %g over %v0, %v1 stats %lse, %r0, %r1 grad %dh
      {epsilon = 1.0e-6 : f32} : tensor<10x16xf32>
  return %dv#0, %dv#1, %dq, %dg : tensor<10x16xf32>, tensor<10x16xf32>, tensor<16xf32>, tensor<16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate_grad"]} in %root : (!transform.any_op) -> !transform.any_op
    %fill:4, %split, %merge, %loop = transform.structured.tile_reduction_using_forall %op by num_threads = [3, 0]
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op,
          !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// merge_grad with its fused norm: out, lse and update gradients per token; the
// query, gain and norm gain gradients merged by one linalg.reduce.
// CHECK-LABEL: func.func @merge_grad_for
// CHECK:         %[[LOOP:.*]]:6 = scf.for
// CHECK:           attnres.merge_grad {{.*}} : tensor<2x8xf32>
// CHECK-COUNT-3:   linalg.add
// CHECK:         %[[R:.*]]:3 = linalg.reduce ins(%[[LOOP]]#2, %[[LOOP]]#3, %[[LOOP]]#5 : tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
// CHECK:         return %[[LOOP]]#0, %[[LOOP]]#1, %[[R]]#0, %[[R]]#1, %[[LOOP]]#4, %[[R]]#2
func.func @merge_grad_for(%o: tensor<6x8xf32>, %lse: tensor<6xf32>, %w: tensor<8xf32>,
    %y: tensor<6x8xf32>, %p: tensor<6x8xf32>, %gn: tensor<8xf32>, %dh: tensor<6x8xf32>,
    %dpn: tensor<6x8xf32>, %dhn: tensor<6x8xf32>)
    -> (tensor<6x8xf32>, tensor<6xf32>, tensor<8xf32>, tensor<8xf32>, tensor<6x8xf32>, tensor<8xf32>) {
  %do, %dl, %dw, %dg, %dy, %dn = attnres.merge_grad %o, %lse, %w, %w update %y partial %p
      norm %gn grad %dh, %dpn, %dhn {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32}
      : tensor<6x8xf32>
  return %do, %dl, %dw, %dg, %dy, %dn
      : tensor<6x8xf32>, tensor<6xf32>, tensor<8xf32>, tensor<8xf32>, tensor<6x8xf32>, tensor<8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.merge_grad"]} in %root : (!transform.any_op) -> !transform.any_op
    %fill:6, %split, %merge, %loop = transform.structured.tile_reduction_using_for %op by tile_sizes = [2, 0]
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op,
          !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// block_score_grad split along the tokens (loop 1; S, loop 0, untiled): the
// source gradients follow the tokens, the [S, D] query and gain gradients
// get [K, S, D] partial sums.
// CHECK-LABEL: func.func @block_score_grad_forall
// CHECK:         %[[LOOP:.*]]:4 = scf.forall (%[[I:.*]]) in (2) {{.*}} -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<2x3x16xf32>, tensor<2x3x16xf32>)
// CHECK:           attnres.block_score_grad {{.*}} : tensor<2x16xf32> -> tensor<3x2x16xf32>
// CHECK:             tensor.parallel_insert_slice %{{.*}} into %{{.*}}[%[[I]], 0, 0] [1, 3, 16] [1, 1, 1] : tensor<3x16xf32> into tensor<2x3x16xf32>
// CHECK:         linalg.reduce ins(%[[LOOP]]#2, %[[LOOP]]#3 : tensor<2x3x16xf32>, tensor<2x3x16xf32>) {{.*}} dimensions = [0]
func.func @block_score_grad_forall(%W: tensor<3x16xf32>, %G: tensor<3x16xf32>,
    %a: tensor<4x16xf32>, %b: tensor<4x16xf32>, %lse: tensor<3x4xf32>, %ra: tensor<4xf32>,
    %rb: tensor<4xf32>, %dout: tensor<3x4x16xf32>, %dlse: tensor<3x4xf32>)
    -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<3x16xf32>, tensor<3x16xf32>) {
  %db:2, %dW, %dG = attnres.block_score_grad %W, %G over %a, %b stats %lse, %ra, %rb
      grad %dout, %dlse {epsilon = 1.0e-05 : f32} : tensor<4x16xf32> -> tensor<3x4x16xf32>
  return %db#0, %db#1, %dW, %dG : tensor<4x16xf32>, tensor<4x16xf32>, tensor<3x16xf32>, tensor<3x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.block_score_grad"]} in %root : (!transform.any_op) -> !transform.any_op
    %fill:4, %split, %merge, %loop = transform.structured.tile_reduction_using_forall %op by num_threads = [0, 2, 0]
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op,
          !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}
