// RUN: attnres-opt %s --verify-roundtrip --split-input-file --verify-diagnostics \
// RUN:   --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition))'

// Sharding D of aggregate_stats (the training forward) is refused with a
// diagnostic (docs/interfaces-tiling-sharding.md); so is D sharding with a
// dynamic D.

shard.grid @grid(shape = 2)
func.func @stats_d(%w: tensor<32xf32>, %g: tensor<32xf32>, %v0: tensor<8x32xf32>,
                   %v1: tensor<8x32xf32>) -> tensor<8xf32> {
  %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
  %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<8x32xf32>
  // expected-error @below {{cannot be partitioned with the feature dimension D sharded (only inv_rms, aggregate, block_score, merge and block_sum can); shard the token dimensions}}
  %h, %lse, %r:2 = attnres.aggregate_stats %w, %g over %v0s, %v1 {epsilon = 1.0e-06 : f32}
      : tensor<8x32xf32>
  return %lse : tensor<8xf32>
}

// -----

shard.grid @grid(shape = 2)
func.func @inv_rms_dynamic_d(%x: tensor<8x?xf32>) -> tensor<8xf32> {
  %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
  %xs = shard.shard %x to %sh annotate_for_users : tensor<8x?xf32>
  // expected-error @below {{D must be static}}
  %r = attnres.inv_rms %xs {epsilon = 1.0e-06 : f32} : tensor<8x?xf32> -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

// aggregate_grad with D sharded is refused: shard its tokens.
shard.grid @grid(shape = 2)
func.func @grad_d(%w: tensor<32xf32>, %g: tensor<32xf32>, %v0: tensor<8x32xf32>,
                  %v1: tensor<8x32xf32>, %lse: tensor<8xf32>, %r0: tensor<8xf32>,
                  %r1: tensor<8xf32>, %dh: tensor<8x32xf32>)
    -> (tensor<8x32xf32>, tensor<32xf32>) {
  %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
  %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<8x32xf32>
  %v1s = shard.shard %v1 to %sh annotate_for_users : tensor<8x32xf32>
  %dhs = shard.shard %dh to %sh annotate_for_users : tensor<8x32xf32>
  // expected-error @below {{cannot be partitioned with the feature dimension D sharded; shard the token dimensions}}
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %g over %v0s, %v1s stats %lse, %r0, %r1
      grad %dhs {epsilon = 1.0e-06 : f32} : tensor<8x32xf32>
  return %dv#0, %dq : tensor<8x32xf32>, tensor<32xf32>
}

// -----

// block_score_grad with its queries sharded is refused: every source gradient
// sums over all the queries.
shard.grid @grid(shape = 3)
func.func @block_score_grad_s(%W: tensor<3x16xf32>, %G: tensor<3x16xf32>, %a: tensor<4x16xf32>,
    %b: tensor<4x16xf32>, %lse: tensor<3x4xf32>, %ra: tensor<4xf32>, %rb: tensor<4xf32>,
    %dout: tensor<3x4x16xf32>, %dlse: tensor<3x4xf32>) -> tensor<4x16xf32> {
  %sh = shard.sharding @grid split_axes = [[0]] : !shard.sharding
  %Ws = shard.shard %W to %sh annotate_for_users : tensor<3x16xf32>
  %Gs = shard.shard %G to %sh annotate_for_users : tensor<3x16xf32>
  // expected-error @below {{cannot be partitioned with the queries sharded (each source gradient sums over all of them); shard the token dimensions}}
  %db:2, %dW, %dG = attnres.block_score_grad %Ws, %Gs over %a, %b stats %lse, %ra, %rb
      grad %dout, %dlse {epsilon = 1.0e-05 : f32} : tensor<4x16xf32> -> tensor<3x4x16xf32>
  return %db#0 : tensor<4x16xf32>
}
