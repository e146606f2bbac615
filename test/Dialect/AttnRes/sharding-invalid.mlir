// RUN: attnres-opt %s --verify-roundtrip --split-input-file --verify-diagnostics \
// RUN:   --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition))'

// Sharding D of block_score or merge is refused with a diagnostic
// (docs/interfaces-tiling-sharding.md); so is D sharding with a dynamic D.

shard.grid @grid(shape = 2)
func.func @block_score_d(%q: tensor<2x32xf32>, %g: tensor<2x32xf32>, %b0: tensor<8x32xf32>)
    -> tensor<2x8x32xf32> {
  %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
  %b0s = shard.shard %b0 to %sh annotate_for_users : tensor<8x32xf32>
  %oi = tensor.empty() : tensor<2x8x32xf32>
  %li = tensor.empty() : tensor<2x8xf32>
  // expected-error @below {{cannot be partitioned with the feature dimension D sharded (only inv_rms, aggregate and block_sum can); shard the token or query dimensions}}
  %o, %l = attnres.block_score %q, %g over %b0s outs %oi, %li {epsilon = 1.0e-06 : f32}
      : tensor<8x32xf32> -> tensor<2x8x32xf32>
  return %o : tensor<2x8x32xf32>
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
