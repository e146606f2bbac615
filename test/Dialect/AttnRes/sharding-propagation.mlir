// RUN: attnres-opt %s --verify-roundtrip --pass-pipeline='builtin.module(func.func(sharding-propagation))' | FileCheck %s

// Upstream sharding-propagation through attnres ops (ShardingInterface,
// docs/interfaces-tiling-sharding.md): a token sharding of the sources
// reaches every op; pseudo-queries and gains are replicated.

shard.grid @grid(shape = 2)

// CHECK-LABEL: func.func @tokens
// CHECK:         %[[SUM:.*]] = attnres.block_sum
// CHECK:         shard.shard %[[SUM]] to %{{.*}} : tensor<8x64xf32>
// CHECK-DAG:     %[[REP:.*]] = shard.sharding @grid split_axes = {{\[\[}}]] : !shard.sharding
// CHECK-DAG:     shard.shard %{{.*}} to %[[REP]] annotate_for_users : tensor<64xf32>
// CHECK:         %[[H:.*]] = attnres.aggregate
// CHECK:         %[[HS:.*]] = shard.sharding @grid split_axes = {{\[\[}}0]] : !shard.sharding
// CHECK:         shard.shard %[[H]] to %[[HS]] : tensor<8x64xf32>
// CHECK:         %[[R:.*]] = attnres.inv_rms
// CHECK:         %[[RS:.*]] = shard.sharding @grid split_axes = {{\[\[}}0]] : !shard.sharding
// CHECK:         shard.shard %[[R]] to %[[RS]] : tensor<8xf32>
func.func @tokens(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                  %v1: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>) {
  %sh = shard.sharding @grid split_axes = [[0]] : !shard.sharding
  %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<8x64xf32>
  %v1s = shard.shard %v1 to %sh annotate_for_users : tensor<8x64xf32>
  %s = attnres.block_sum %v0s, %v1s : tensor<8x64xf32>
  %h = attnres.aggregate %w, %g over %v0s, %s {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  %r = attnres.inv_rms %h {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  return %h, %r : tensor<8x64xf32>, tensor<8xf32>
}

// D sharded: the query and gain follow D, inv_rms's result (no D) is
// replicated.
// CHECK-LABEL: func.func @features
// CHECK:         %[[D:.*]] = shard.sharding @grid split_axes = {{\[\[}}0]] : !shard.sharding
// CHECK:         shard.shard %{{.*}} to %[[D]] annotate_for_users : tensor<64xf32>
// CHECK:         %[[H:.*]] = attnres.aggregate
// CHECK:         %[[HS:.*]] = shard.sharding @grid split_axes = {{\[\[}}], [0]] : !shard.sharding
// CHECK:         shard.shard %[[H]] to %[[HS]] : tensor<8x64xf32>
// CHECK:         %[[R:.*]] = attnres.inv_rms
// CHECK:         %[[RS:.*]] = shard.sharding @grid split_axes = {{\[\[}}]] : !shard.sharding
// CHECK:         shard.shard %[[R]] to %[[RS]] : tensor<8xf32>
func.func @features(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                    %v1: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>) {
  %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
  %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<8x64xf32>
  %v1s = shard.shard %v1 to %sh annotate_for_users : tensor<8x64xf32>
  %h = attnres.aggregate %w, %g over %v0s, %v1s {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  %r = attnres.inv_rms %h {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  return %h, %r : tensor<8x64xf32>, tensor<8xf32>
}

// block_score: sharding the queries' S axis reaches both outputs.
// CHECK-LABEL: func.func @queries
// CHECK:         %[[O:.*]], %[[L:.*]] = attnres.block_score
// CHECK-DAG:     %[[S1:.*]] = shard.sharding @grid split_axes = {{\[\[}}0]] : !shard.sharding
// CHECK-DAG:     shard.shard %[[L]] to %[[S1]] : tensor<4x8xf32>
// CHECK-DAG:     %[[S2:.*]] = shard.sharding @grid split_axes = {{\[\[}}0]] : !shard.sharding
// CHECK-DAG:     shard.shard %[[O]] to %[[S2]] : tensor<4x8x32xf32>
func.func @queries(%q: tensor<4x32xf32>, %g: tensor<4x32xf32>, %b0: tensor<8x32xf32>)
    -> (tensor<4x8x32xf32>, tensor<4x8xf32>) {
  %sh = shard.sharding @grid split_axes = [[0]] : !shard.sharding
  %qs = shard.shard %q to %sh annotate_for_users : tensor<4x32xf32>
  %oi = tensor.empty() : tensor<4x8x32xf32>
  %li = tensor.empty() : tensor<4x8xf32>
  %o, %l = attnres.block_score %qs, %g over %b0 outs %oi, %li {epsilon = 1.0e-06 : f32}
      : tensor<8x32xf32> -> tensor<4x8x32xf32>
  return %o, %l : tensor<4x8x32xf32>, tensor<4x8xf32>
}
