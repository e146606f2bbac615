// RUN: attnres-opt %s --split-input-file -verify-diagnostics
//
// Mismatched shapes are verifier errors that name the operand, the type it
// must have and the constraint (spec 0.4: static sizes that disagree are an
// error even when another operand is dynamic there).

func.func @sources_differ(%w: tensor<8xf32>, %g: tensor<8xf32>, %a: tensor<4x8xf32>, %b: tensor<5x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{source #1 has type 'tensor<5x8xf32>'}}
  %h = "attnres.aggregate"(%w, %g, %a, %b) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<5x8xf32>) -> tensor<4x8xf32>
  return %h : tensor<4x8xf32>
}

// -----

func.func @query_wrong_d(%w: tensor<7xf32>, %g: tensor<8xf32>, %a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{must have type 'tensor<8xf32>' (one value per feature of the sources), got 'tensor<7xf32>'}}
  %h = "attnres.aggregate"(%w, %g, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<7xf32>, tensor<8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %h : tensor<4x8xf32>
}

// -----

// The query fixes D = 8 where the sources are dynamic; the gain disagrees.
func.func @gain_disagrees_with_query(%w: tensor<8xf32>, %g: tensor<9xf32>, %a: tensor<4x?xf32>) -> tensor<4x?xf32> {
  // expected-error @+1 {{must have type 'tensor<8xf32>'}}
  %h = "attnres.aggregate"(%w, %g, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8xf32>, tensor<9xf32>, tensor<4x?xf32>) -> tensor<4x?xf32>
  return %h : tensor<4x?xf32>
}

// -----

func.func @block_sum_differ(%a: tensor<4x8xf16>, %b: tensor<4x?xf16>) -> tensor<4x8xf16> {
  // expected-error @+1 {{input #1 has type 'tensor<4x?xf16>'}}
  %s = "attnres.block_sum"(%a, %b) : (tensor<4x8xf16>, tensor<4x?xf16>) -> tensor<4x8xf16>
  return %s : tensor<4x8xf16>
}

// -----

func.func @inv_rms_tokens(%a: tensor<4x8xf32>) -> tensor<5xf32> {
  // expected-error @+1 {{must have type 'tensor<4xf32>'}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<4x8xf32> -> tensor<5xf32>
  return %r : tensor<5xf32>
}

// -----

func.func @block_score_out_init(%q: tensor<3x8xf32>, %g: tensor<3x8xf32>, %b0: tensor<4x8xf32>, %o: tensor<2x4x8xf32>, %l: tensor<3x4xf32>) -> tensor<2x4x8xf32> {
  // expected-error @+1 {{out_init must have type 'tensor<3x4x8xf32>'}}
  %r:2 = "attnres.block_score"(%q, %g, %b0, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<3x8xf32>, tensor<3x8xf32>, tensor<4x8xf32>, tensor<2x4x8xf32>, tensor<3x4xf32>)
      -> (tensor<2x4x8xf32>, tensor<3x4xf32>)
  return %r#0 : tensor<2x4x8xf32>
}

// -----

func.func @merge_lse_tokens(%o: tensor<4x8xf32>, %lse: tensor<5xf32>, %w: tensor<8xf32>, %g: tensor<8xf32>, %y: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{lse must have type 'tensor<4xf32>'}}
  %r:2 = "attnres.merge"(%o, %lse, %w, %g, %y) <{epsilon = 1.0e-06 : f32}>
      : (tensor<4x8xf32>, tensor<5xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return %r#0 : tensor<4x8xf32>
}
