// RUN: %mlir_opt %s --load-dialect-plugin=%attnres_plugin \
// RUN:   --transform-interpreter --canonicalize | FileCheck %s --check-prefix=TILE
// RUN: %mlir_opt %s --load-dialect-plugin=%attnres_plugin \
// RUN:   --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition,canonicalize))' \
// RUN:   | FileCheck %s --check-prefix=SHARD

// Debian's stock mlir-opt with the attnres plugin runs the same upstream
// passes on attnres ops as attnres-opt: the plugin registers the
// TilingInterface and ShardingInterface external models with the dialect
// (docs/interfaces-tiling-sharding.md).
// UNSUPPORTED: asan

// TILE-LABEL: func.func @tile
// TILE:         scf.forall (%{{.*}}) in (4)
// TILE:           attnres.aggregate {{.*}} : tensor<2x64xf32>
// SHARD-LABEL: func.func @tile
// SHARD:         attnres.aggregate {{.*}} : tensor<8x64xf32>
func.func @tile(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                %v1: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_forall %op tile_sizes [2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// TILE-LABEL: func.func @shard
// TILE-NOT:     scf.forall
// SHARD-LABEL: func.func @shard
// SHARD-SAME:    tensor<8x32xf32>
// SHARD:         shard.all_reduce {{.*}} : tensor<8xf32> -> tensor<8xf32>
// SHARD:         math.rsqrt
shard.grid @grid(shape = 2)
func.func @shard(%x: tensor<8x64xf32>) -> tensor<8xf32> {
  %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
  %xs = shard.shard %x to %sh annotate_for_users : tensor<8x64xf32>
  %r = attnres.inv_rms %xs {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  return %r : tensor<8xf32>
}
