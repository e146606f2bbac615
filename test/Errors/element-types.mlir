// RUN: attnres-opt %s --split-input-file -verify-diagnostics
//
// Only f32, f16 and bf16 are storage types (spec 0.2): anything else is a
// verifier error naming the allowed types and the constraint, at the op.

func.func @aggregate_f64(%w: tensor<8xf64>, %g: tensor<8xf64>, %a: tensor<4x8xf64>) -> tensor<4x8xf64> {
  // expected-error @+1 {{element type must be f32, f16 or bf16, got 'f64' (C3)}}
  %h = attnres.aggregate %w, %g over %a, %a {epsilon = 1.0e-06 : f32} : tensor<4x8xf64>
  return %h : tensor<4x8xf64>
}

// -----

func.func @aggregate_i32(%w: tensor<8xi32>, %g: tensor<8xi32>, %a: tensor<4x8xi32>) -> tensor<4x8xi32> {
  // expected-error @+1 {{element type must be f32, f16 or bf16, got 'i32' (C3)}}
  %h = attnres.aggregate %w, %g over %a, %a {epsilon = 1.0e-06 : f32} : tensor<4x8xi32>
  return %h : tensor<4x8xi32>
}

// -----

func.func @block_sum_f8(%a: tensor<4x8xf8E4M3FN>) -> tensor<4x8xf8E4M3FN> {
  // expected-error @+1 {{element type must be f32, f16 or bf16}}
  %s = attnres.block_sum %a, %a : tensor<4x8xf8E4M3FN>
  return %s : tensor<4x8xf8E4M3FN>
}

// -----

func.func @inv_rms_f64(%a: tensor<4x8xf64>) -> tensor<4xf32> {
  // expected-error @+1 {{element type must be f32, f16 or bf16}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<4x8xf64> -> tensor<4xf32>
  return %r : tensor<4xf32>
}

// -----

// The per-token inverse RMS is always f32, whatever the storage type.
func.func @inv_rms_bf16_result(%a: tensor<4x8xbf16>) -> tensor<4xbf16> {
  // expected-error @+1 {{must have type 'tensor<4xf32>'}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<4x8xbf16> -> tensor<4xbf16>
  return %r : tensor<4xbf16>
}

// -----

// Queries and gains have the sources' storage type: no implicit casts.
func.func @aggregate_mixed(%w: tensor<8xf32>, %g: tensor<8xf32>, %a: tensor<4x8xbf16>) -> tensor<4x8xbf16> {
  // expected-error @+1 {{must have type 'tensor<8xbf16>' (one value per feature of the sources), got 'tensor<8xf32>'}}
  %h = "attnres.aggregate"(%w, %g, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8xf32>, tensor<8xf32>, tensor<4x8xbf16>) -> tensor<4x8xbf16>
  return %h : tensor<4x8xbf16>
}

// -----

func.func @epsilon_negative(%w: tensor<8xf32>, %g: tensor<8xf32>, %a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{epsilon must be finite and non-negative}}
  %h = attnres.aggregate %w, %g over %a, %a {epsilon = -1.0e-06 : f32} : tensor<4x8xf32>
  return %h : tensor<4x8xf32>
}
