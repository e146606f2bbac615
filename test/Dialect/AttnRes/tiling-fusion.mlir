// RUN: attnres-opt %s --verify-roundtrip --split-input-file --transform-interpreter --canonicalize | FileCheck %s

// Producer fusion (transform.structured.fuse_into_containing_op) of attnres
// ops into the loop of a tiled consumer: generateResultTileValue computes
// the consumer's token tile of the producer (docs/interfaces-tiling-sharding.md).

// A chain block_sum -> aggregate -> linalg.generic; the generic is tiled
// over tokens and both attnres producers are fused into the scf.forall.
// CHECK-LABEL: func.func @fuse_chain
// CHECK-SAME:    %[[W:[a-z0-9]+]]: tensor<64xf32>, %[[G:[a-z0-9]+]]: tensor<64xf32>, %[[V0:[a-z0-9]+]]: tensor<8x64xf32>, %[[V1:[a-z0-9]+]]: tensor<8x64xf32>
// CHECK-NOT:     = attnres.
// CHECK:         scf.forall (%[[I:[a-z0-9_]+]]) in (4)
// CHECK:           %[[OFF:.*]] = affine.apply
// CHECK-DAG:       %[[A:.*]] = tensor.extract_slice %[[V0]][%[[OFF]], 0] [2, 64] [1, 1]
// CHECK-DAG:       %[[B:.*]] = tensor.extract_slice %[[V1]][%[[OFF]], 0] [2, 64] [1, 1]
// CHECK:           %[[S:.*]] = attnres.block_sum %{{.*}}, %[[B]] : tensor<2x64xf32>
// CHECK:           %[[H:.*]] = attnres.aggregate %[[W]], %[[G]] over %{{.*}}, %[[S]] {{.*}} : tensor<2x64xf32>
// CHECK:           linalg.generic {{.*}} ins(%[[H]] : tensor<2x64xf32>)
// CHECK:         scf.forall.in_parallel
// CHECK-NOT:     = attnres.
func.func @fuse_chain(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                      %v1: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %s = attnres.block_sum %v0, %v1 : tensor<8x64xf32>
  %h = attnres.aggregate %w, %g over %v0, %s {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  %e = tensor.empty() : tensor<8x64xf32>
  %o = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%h : tensor<8x64xf32>) outs(%e : tensor<8x64xf32>) {
  ^bb0(%a: f32, %b: f32):
    %m = arith.mulf %a, %a : f32
    linalg.yield %m : f32
  } -> tensor<8x64xf32>
  return %o : tensor<8x64xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %c = transform.structured.match ops{["linalg.generic"]} in %root : (!transform.any_op) -> !transform.any_op
    %tiled, %forall = transform.structured.tile_using_forall %c tile_sizes [2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %a = transform.structured.match ops{["attnres.aggregate"]} in %root : (!transform.any_op) -> !transform.any_op
    %fa, %f1 = transform.structured.fuse_into_containing_op %a into %forall : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)
    %s = transform.structured.match ops{["attnres.block_sum"]} in %root : (!transform.any_op) -> !transform.any_op
    %fs, %f2 = transform.structured.fuse_into_containing_op %s into %f1 : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// inv_rms produces a per-token result: fusing it into the tiled block_score
// that reads it computes the token tile of the inverse RMS over all of D.
// CHECK-LABEL: func.func @fuse_inv_rms_into_block_score
// CHECK:         scf.for %[[T:[a-z0-9_]+]] =
// CHECK:           tensor.extract_slice
// CHECK:           %[[X:.*]] = tensor.extract_slice %{{.*}}[%[[T]], 0] [4, 32] [1, 1] : tensor<8x32xf32> to tensor<4x32xf32>
// CHECK-NEXT:      %[[R:.*]] = attnres.inv_rms %[[X]] {{.*}} : tensor<4x32xf32> -> tensor<4xf32>
// CHECK:           attnres.block_score {{.*}} inv_rms %[[R]] outs
func.func @fuse_inv_rms_into_block_score(%q: tensor<2x32xf32>, %g: tensor<2x32xf32>,
    %b0: tensor<8x32xf32>) -> (tensor<2x8x32xf32>, tensor<2x8xf32>) {
  %r0 = attnres.inv_rms %b0 {epsilon = 1.0e-06 : f32} : tensor<8x32xf32> -> tensor<8xf32>
  %oi = tensor.empty() : tensor<2x8x32xf32>
  %li = tensor.empty() : tensor<2x8xf32>
  %o, %l = attnres.block_score %q, %g over %b0 inv_rms %r0 outs %oi, %li
      {epsilon = 1.0e-06 : f32} : tensor<8x32xf32> -> tensor<2x8x32xf32>
  return %o, %l : tensor<2x8x32xf32>, tensor<2x8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %b = transform.structured.match ops{["attnres.block_score"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %loop = transform.structured.tile_using_for %b tile_sizes [0, 4, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %r = transform.structured.match ops{["attnres.inv_rms"]} in %root : (!transform.any_op) -> !transform.any_op
    %fr, %l2 = transform.structured.fuse_into_containing_op %r into %loop : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// A consumer tiled along D: aggregate cannot produce a D tile (D is its
// reduction), generateResultTileValue fails and upstream
// fuse_into_containing_op falls back to cloning the whole producer into the
// loop (correct, but the full aggregate is recomputed per tile).
// CHECK-LABEL: func.func @fuse_aggregate_into_d_tile
// CHECK:         scf.forall (%{{.*}}, %{{.*}}) in (4, 4)
// CHECK:           %[[H:.*]] = attnres.aggregate {{.*}} : tensor<8x64xf32>
// CHECK:           tensor.extract_slice %[[H]][%{{.*}}, %{{.*}}] [2, 16] [1, 1]
func.func @fuse_aggregate_into_d_tile(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %h = attnres.aggregate %w, %g over %v0, %v0 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  %e = tensor.empty() : tensor<8x64xf32>
  %o = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%h : tensor<8x64xf32>) outs(%e : tensor<8x64xf32>) {
  ^bb0(%a: f32, %b: f32):
    linalg.yield %a : f32
  } -> tensor<8x64xf32>
  return %o : tensor<8x64xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %c = transform.structured.match ops{["linalg.generic"]} in %root : (!transform.any_op) -> !transform.any_op
    %tiled, %forall = transform.structured.tile_using_forall %c tile_sizes [2, 16] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %a = transform.structured.match ops{["attnres.aggregate"]} in %root : (!transform.any_op) -> !transform.any_op
    %fa, %f1 = transform.structured.fuse_into_containing_op %a into %forall : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}
