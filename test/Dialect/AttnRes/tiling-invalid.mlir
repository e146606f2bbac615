// RUN: attnres-opt %s --verify-roundtrip --split-input-file --transform-interpreter --verify-diagnostics

// D is a reduction for the logits and the sums of squares: tiling it is
// refused with a diagnostic (docs/interfaces-tiling-sharding.md).

func.func @inv_rms_tile_d(%x: tensor<8x64xf32>) -> tensor<8xf32> {
  // expected-error @below {{cannot be tiled along the feature dimension D (loop 1): D is a reduction}}
  // expected-error @below {{faild to tile operation}}
  // expected-error @below {{failed to generate tiling loops}}
  %r = attnres.inv_rms %x {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  return %r : tensor<8xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.inv_rms"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l:2 = transform.structured.tile_using_for %op tile_sizes [2, 16] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

func.func @aggregate_tile_d(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @below {{cannot be tiled along the feature dimension D (loop 1)}}
  // expected-error @below {{faild to tile operation}}
  // expected-error @below {{failed to generate tiling loops}}
  %h = attnres.aggregate %w, %g over %v0, %v0 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %op tile_sizes [0, 16] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

func.func @block_score_tile_d(%q: tensor<2x32xf32>, %g: tensor<2x32xf32>, %b0: tensor<8x32xf32>) -> tensor<2x8x32xf32> {
  %oi = tensor.empty() : tensor<2x8x32xf32>
  %li = tensor.empty() : tensor<2x8xf32>
  // expected-error @below {{cannot be tiled along the feature dimension D (loop 2): D is a reduction for the logits and the sum of squares, so every tile needs all of D; use tile size 0 for D and tile the token and query dimensions}}
  // expected-error @below {{faild to tile operation}}
  // expected-error @below {{failed to generate tiling loops}}
  %o, %l = attnres.block_score %q, %g over %b0 outs %oi, %li {epsilon = 1.0e-06 : f32} : tensor<8x32xf32> -> tensor<2x8x32xf32>
  return %o : tensor<2x8x32xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.block_score"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l:2 = transform.structured.tile_using_for %op tile_sizes [1, 0, 8] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// The tokens are a reduction for the gradient ops (their parameter gradients
// sum over them): plain tiling of a token loop is refused, pointing to the
// partial-reduction transforms.
func.func @aggregate_grad_tile_tokens(%q: tensor<16xf32>, %g: tensor<16xf32>, %v0: tensor<8x16xf32>,
    %lse: tensor<8xf32>, %r0: tensor<8xf32>, %dh: tensor<8x16xf32>)
    -> (tensor<8x16xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<16xf32>) {
  // expected-error @below {{cannot be tiled along loop 0 by tile_using_for/forall: the parameter gradients are sums over it}}
  // expected-error @below {{faild to tile operation}}
  // expected-error @below {{failed to generate tiling loops}}
  %dv:2, %dq, %dg = attnres.aggregate_grad %q, %g over %v0, %v0 stats %lse, %r0, %r0 grad %dh
      {epsilon = 1.0e-6 : f32} : tensor<8x16xf32>
  return %dv#0, %dv#1, %dq, %dg : tensor<8x16xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate_grad"]} in %root : (!transform.any_op) -> !transform.any_op
    %t, %l = transform.structured.tile_using_for %op tile_sizes [4, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// D stays whole in the partial-reduction tiling of a gradient op too.
func.func @aggregate_grad_split_d(%q: tensor<16xf32>, %g: tensor<16xf32>, %v0: tensor<8x16xf32>,
    %lse: tensor<8xf32>, %r0: tensor<8xf32>, %dh: tensor<8x16xf32>)
    -> (tensor<8x16xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<16xf32>) {
  // expected-error @below {{cannot be tiled along the feature dimension D (loop 1): every token's gradient needs its logits}}
  // expected-error @below {{faild to tile operation}}
  // expected-error @below {{failed to generate tiling loops}}
  %dv:2, %dq, %dg = attnres.aggregate_grad %q, %g over %v0, %v0 stats %lse, %r0, %r0 grad %dh
      {epsilon = 1.0e-6 : f32} : tensor<8x16xf32>
  return %dv#0, %dv#1, %dq, %dg : tensor<8x16xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate_grad"]} in %root : (!transform.any_op) -> !transform.any_op
    // expected-error @below {{failed to tile using partial reduction}}
    %fill:4, %split, %merge, %loop = transform.structured.tile_reduction_using_for %op by tile_sizes = [4, 8]
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op,
          !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// block_score_grad's source gradients sum over the queries S: splitting S
// would add bf16/f16 tiles in their own type, so it is refused.
func.func @block_score_grad_split_queries(%W: tensor<3x16xf32>, %G: tensor<3x16xf32>,
    %a: tensor<4x16xf32>, %lse: tensor<3x4xf32>, %ra: tensor<4xf32>,
    %dout: tensor<3x4x16xf32>, %dlse: tensor<3x4xf32>)
    -> (tensor<4x16xf32>, tensor<3x16xf32>, tensor<3x16xf32>) {
  // expected-error @below {{cannot be split along the queries S (loop 0)}}
  // expected-error @below {{faild to tile operation}}
  // expected-error @below {{failed to generate tiling loops}}
  %db, %dW, %dG = attnres.block_score_grad %W, %G over %a stats %lse, %ra
      grad %dout, %dlse {epsilon = 1.0e-05 : f32} : tensor<4x16xf32> -> tensor<3x4x16xf32>
  return %db, %dW, %dG : tensor<4x16xf32>, tensor<3x16xf32>, tensor<3x16xf32>
}
module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.block_score_grad"]} in %root : (!transform.any_op) -> !transform.any_op
    // expected-error @below {{failed to tile using partial reduction}}
    %fill:3, %split, %merge, %loop = transform.structured.tile_reduction_using_for %op by tile_sizes = [1, 0, 0]
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op,
          !transform.any_op, !transform.any_op)
    transform.yield
  }
}
