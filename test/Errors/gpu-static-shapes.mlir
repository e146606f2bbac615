// RUN: attnres-opt %s --split-input-file --convert-attnres-to-gpu -verify-diagnostics
//
// convert-attnres-to-gpu specialises its kernels on D and needs at least one
// token dimension: a dynamic D or a rank-1 value is a diagnostic on the op
// that says what is needed, never a crash. (Token dimensions may be dynamic.)

func.func @aggregate_dynamic_d(%w: tensor<?xf32>, %g: tensor<?xf32>, %a: tensor<4x?xf32>, %b: tensor<4x?xf32>) -> tensor<4x?xf32> {
  // expected-error @+1 {{convert-attnres-to-gpu needs a static feature dimension D}}
  %h = attnres.aggregate %w, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<4x?xf32>
  return %h : tensor<4x?xf32>
}

// -----

func.func @block_sum_dynamic_d(%a: tensor<?x?xbf16>, %b: tensor<?x?xbf16>) -> tensor<?x?xbf16> {
  // expected-error @+1 {{convert-attnres-to-gpu needs a static feature dimension D}}
  %s = attnres.block_sum %a, %b : tensor<?x?xbf16>
  return %s : tensor<?x?xbf16>
}

// -----

func.func @inv_rms_dynamic_d(%a: tensor<8x?xf16>) -> tensor<8xf32> {
  // expected-error @+1 {{convert-attnres-to-gpu needs a static feature dimension D}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<8x?xf16> -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

func.func @aggregate_one_token(%w: tensor<64xf32>, %g: tensor<64xf32>, %a: tensor<64xf32>, %b: tensor<64xf32>) -> tensor<64xf32> {
  // expected-error @+1 {{convert-attnres-to-gpu needs at least one token dimension before D (rank >= 2)}}
  %h = attnres.aggregate %w, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<64xf32>
  return %h : tensor<64xf32>
}
