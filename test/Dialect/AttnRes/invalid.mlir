// RUN: attnres-opt %s --verify-roundtrip -split-input-file -verify-diagnostics

// One case per numbered constraint of docs/spec.md (sections A-E), in
// custom form where the custom syntax can express the bad input and in
// generic form where it cannot, then the parser errors of the custom forms.

//===----------------------------------------------------------------------===//
// A. attnres.aggregate
//===----------------------------------------------------------------------===//

func.func @aggregate_no_source(%q: tensor<64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{'attnres.aggregate' op requires at least one source (C1)}}
  %h = "attnres.aggregate"(%q, %q) <{epsilon = 1.0e-06 : f32}>
      : (tensor<64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

func.func @aggregate_rank0(%q: tensor<1xf32>, %a: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{result must have rank >= 1 (the last dimension is D), got 'tensor<f32>' (C2)}}
  %h = "attnres.aggregate"(%q, %q, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<1xf32>, tensor<1xf32>, tensor<f32>) -> tensor<f32>
  return %h : tensor<f32>
}

// -----

func.func @aggregate_int(%q: tensor<64xi32>, %a: tensor<8x64xi32>) -> tensor<8x64xi32> {
  // expected-error @+1 {{result element type must be f32, f16 or bf16, got 'i32' (C3)}}
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = 1.0e-06 : f32} : tensor<8x64xi32>
  return %h : tensor<8x64xi32>
}

// -----

func.func @aggregate_f64(%q: tensor<64xf64>, %a: tensor<8x64xf64>) -> tensor<8x64xf64> {
  // expected-error @+1 {{result element type must be f32, f16 or bf16, got 'f64' (C3)}}
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = 1.0e-06 : f32} : tensor<8x64xf64>
  return %h : tensor<8x64xf64>
}

// -----

func.func @aggregate_source_type(%q: tensor<64xf32>, %a: tensor<8x64xf32>,
                                 %b: tensor<?x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{source #1 has type 'tensor<?x64xf32>' but the result has type 'tensor<8x64xf32>'; all sources and the result must have one type (C4)}}
  %h = "attnres.aggregate"(%q, %q, %a, %b) <{epsilon = 1.0e-06 : f32}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<?x64xf32>) -> tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

func.func @aggregate_source_elt(%q: tensor<64xf32>, %a: tensor<8x64xf32>,
                                %b: tensor<8x64xbf16>) -> tensor<8x64xf32> {
  // expected-error @+1 {{source #1 has type 'tensor<8x64xbf16>' but the result has type 'tensor<8x64xf32>'; all sources and the result must have one type (C4)}}
  %h = "attnres.aggregate"(%q, %q, %a, %b) <{epsilon = 1.0e-06 : f32}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8x64xbf16>) -> tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

func.func @aggregate_query_d(%q: tensor<32xf32>, %g: tensor<64xf32>,
                             %a: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{query must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<32xf32>' (C5)}}
  %h = "attnres.aggregate"(%q, %g, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<32xf32>, tensor<64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

func.func @aggregate_query_rank(%q: tensor<1x64xf32>, %g: tensor<64xf32>,
                                %a: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{query must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<1x64xf32>' (C5)}}
  %h = "attnres.aggregate"(%q, %g, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<1x64xf32>, tensor<64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

func.func @aggregate_gain_elt(%q: tensor<64xbf16>, %g: tensor<64xf32>,
                              %a: tensor<8x64xbf16>) -> tensor<8x64xbf16> {
  // expected-error @+1 {{norm_weight must have type 'tensor<64xbf16>' (one value per feature of the sources), got 'tensor<64xf32>' (C6)}}
  %h = "attnres.aggregate"(%q, %g, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<64xbf16>, tensor<64xf32>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  return %h : tensor<8x64xbf16>
}

// -----

// With a dynamic D, the query fixes D = 64 and the gain must agree (spec 0.4).
func.func @aggregate_dynamic_d(%q: tensor<64xf32>, %g: tensor<32xf32>,
                               %a: tensor<8x?xf32>) -> tensor<8x?xf32> {
  // expected-error @+1 {{norm_weight must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<32xf32>' (C6)}}
  %h = "attnres.aggregate"(%q, %g, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<64xf32>, tensor<32xf32>, tensor<8x?xf32>) -> tensor<8x?xf32>
  return %h : tensor<8x?xf32>
}

// -----

func.func @aggregate_eps_negative(%q: tensor<64xf32>, %a: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{epsilon must be finite and non-negative, got -1.000000e-06 (C7)}}
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = -1.0e-06 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

func.func @aggregate_eps_nan(%q: tensor<64xf32>, %a: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{epsilon must be finite and non-negative, got nan (C7)}}
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = 0x7FC00000 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

func.func @aggregate_eps_inf(%q: tensor<64xf32>, %a: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{epsilon must be finite and non-negative, got INF (C7)}}
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = 0x7F800000 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

// A source whose static token count differs from the result's.
func.func @aggregate_source_tokens(%q: tensor<8xf32>, %a: tensor<4x8xf32>,
                                   %b: tensor<5x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{source #1 has type 'tensor<5x8xf32>' but the result has type 'tensor<4x8xf32>'; all sources and the result must have one type (C4)}}
  %h = "attnres.aggregate"(%q, %q, %a, %b) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<5x8xf32>) -> tensor<4x8xf32>
  return %h : tensor<4x8xf32>
}

// -----

// The query has the sources' storage type: no implicit cast from f32.
func.func @aggregate_query_elt(%q: tensor<8xf32>, %g: tensor<8xbf16>,
                               %a: tensor<4x8xbf16>) -> tensor<4x8xbf16> {
  // expected-error @+1 {{query must have type 'tensor<8xbf16>' (one value per feature of the sources), got 'tensor<8xf32>' (C5)}}
  %h = "attnres.aggregate"(%q, %g, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8xf32>, tensor<8xbf16>, tensor<4x8xbf16>) -> tensor<4x8xbf16>
  return %h : tensor<4x8xbf16>
}

// -----

// Signature errors (not numbered: part of the op definition, spec 0.2).
func.func @aggregate_eps_missing(%q: tensor<64xf32>, %a: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{'attnres.aggregate' op requires attribute 'epsilon'}}
  %h = attnres.aggregate %q, %q over %a, %a : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

func.func @aggregate_eps_f64(%q: tensor<64xf32>, %a: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{attribute 'epsilon' failed to satisfy constraint: 32-bit float attribute}}
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = 1.0e-06 : f64} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

func.func @aggregate_unranked(%q: tensor<64xf32>, %a: tensor<*xf32>) -> tensor<*xf32> {
  // expected-error @+1 {{operand #2 must be variadic of ranked tensor of f32, f16 or bf16 values, but got 'tensor<*xf32>'}}
  %h = "attnres.aggregate"(%q, %q, %a) <{epsilon = 1.0e-06 : f32}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<*xf32>) -> tensor<*xf32>
  return %h : tensor<*xf32>
}

//===----------------------------------------------------------------------===//
// B. attnres.block_sum
//===----------------------------------------------------------------------===//

// -----

func.func @block_sum_empty() -> tensor<8x64xf32> {
  // expected-error @+1 {{'attnres.block_sum' op requires at least one input (C1)}}
  %s = "attnres.block_sum"() : () -> tensor<8x64xf32>
  return %s : tensor<8x64xf32>
}

// -----

func.func @block_sum_rank0(%a: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{result must have rank >= 1 (the last dimension is D), got 'tensor<f32>' (C2)}}
  %s = "attnres.block_sum"(%a, %a) : (tensor<f32>, tensor<f32>) -> tensor<f32>
  return %s : tensor<f32>
}

// -----

func.func @block_sum_int(%a: tensor<8x64xi8>) -> tensor<8x64xi8> {
  // expected-error @+1 {{result element type must be f32, f16 or bf16, got 'i8' (C3)}}
  %s = attnres.block_sum %a, %a : tensor<8x64xi8>
  return %s : tensor<8x64xi8>
}

// -----

func.func @block_sum_type(%a: tensor<8x64xf32>, %b: tensor<8x64xf16>) -> tensor<8x64xf32> {
  // expected-error @+1 {{input #1 has type 'tensor<8x64xf16>' but the result has type 'tensor<8x64xf32>'; all inputs and the result must have one type (C4)}}
  %s = "attnres.block_sum"(%a, %b) : (tensor<8x64xf32>, tensor<8x64xf16>) -> tensor<8x64xf32>
  return %s : tensor<8x64xf32>
}

// -----

func.func @block_sum_dynamic(%a: tensor<8x64xf32>, %b: tensor<?x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{input #0 has type 'tensor<?x64xf32>' but the result has type 'tensor<8x64xf32>'; all inputs and the result must have one type (C4)}}
  %s = "attnres.block_sum"(%b, %a) : (tensor<?x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  return %s : tensor<8x64xf32>
}

// -----

// A float type other than the three storage types.
func.func @block_sum_f8(%a: tensor<4x8xf8E4M3FN>) -> tensor<4x8xf8E4M3FN> {
  // expected-error @+1 {{result element type must be f32, f16 or bf16, got 'f8E4M3FN' (C3)}}
  %s = attnres.block_sum %a, %a : tensor<4x8xf8E4M3FN>
  return %s : tensor<4x8xf8E4M3FN>
}

//===----------------------------------------------------------------------===//
// C. attnres.inv_rms
//===----------------------------------------------------------------------===//

// -----

func.func @inv_rms_rank0(%a: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{input must have rank >= 1 (the last dimension is D), got 'tensor<f32>' (C1)}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<f32> -> tensor<f32>
  return %r : tensor<f32>
}

// -----

func.func @inv_rms_int(%a: tensor<8x64xi16>) -> tensor<8xf32> {
  // expected-error @+1 {{input element type must be f32, f16 or bf16, got 'i16' (C2)}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<8x64xi16> -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

func.func @inv_rms_result_elt(%a: tensor<8x64xbf16>) -> tensor<8xbf16> {
  // expected-error @+1 {{result must have type 'tensor<8xf32>' (one f32 per token), got 'tensor<8xbf16>' (C3)}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<8x64xbf16> -> tensor<8xbf16>
  return %r : tensor<8xbf16>
}

// -----

func.func @inv_rms_result_shape(%a: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{result must have type 'tensor<8xf32>' (one f32 per token), got 'tensor<8x64xf32>' (C3)}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8x64xf32>
  return %r : tensor<8x64xf32>
}

// -----

func.func @inv_rms_result_dim(%a: tensor<?x4x64xf32>) -> tensor<2x5xf32> {
  // expected-error @+1 {{result must have type 'tensor<?x4xf32>' (one f32 per token), got 'tensor<2x5xf32>' (C3)}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<?x4x64xf32> -> tensor<2x5xf32>
  return %r : tensor<2x5xf32>
}

// -----

func.func @inv_rms_eps(%a: tensor<8x64xf32>) -> tensor<8xf32> {
  // expected-error @+1 {{epsilon must be finite and non-negative, got -1.000000e+00 (C4)}}
  %r = attnres.inv_rms %a {epsilon = -1.0 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

// A float type other than the three storage types.
func.func @inv_rms_f64(%a: tensor<4x8xf64>) -> tensor<4xf32> {
  // expected-error @+1 {{input element type must be f32, f16 or bf16, got 'f64' (C2)}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<4x8xf64> -> tensor<4xf32>
  return %r : tensor<4xf32>
}

//===----------------------------------------------------------------------===//
// D. attnres.block_score
//===----------------------------------------------------------------------===//

// -----

func.func @block_score_no_source(%W: tensor<2x64xf32>, %o: tensor<2x8x64xf32>,
                                 %l: tensor<2x8xf32>) {
  // expected-error @+1 {{'attnres.block_score' op requires at least one source (C1)}}
  %0:2 = "attnres.block_score"(%W, %W, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 0, 0, 1, 1>}>
      : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>)
      -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_rank0(%W: tensor<2x1xf32>, %b: tensor<f32>, %o: tensor<2xf32>,
                             %l: tensor<2xf32>) {
  // expected-error @+1 {{source #0 must have rank >= 1 (the last dimension is D), got 'tensor<f32>' (C2)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<2x1xf32>, tensor<2x1xf32>, tensor<f32>, tensor<2xf32>, tensor<2xf32>)
      -> (tensor<2xf32>, tensor<2xf32>)
  return
}

// -----

func.func @block_score_int(%W: tensor<2x64xi32>, %b: tensor<8x64xi32>,
                           %o: tensor<2x8x64xi32>, %l: tensor<2x8xf32>) {
  // expected-error @+1 {{source #0 element type must be f32, f16 or bf16, got 'i32' (C3)}}
  %0:2 = attnres.block_score %W, %W over %b outs %o, %l {epsilon = 1.0e-06 : f32}
      : tensor<8x64xi32> -> tensor<2x8x64xi32>
  return
}

// -----

func.func @block_score_source_type(%W: tensor<2x64xf32>, %a: tensor<8x64xf32>,
                                   %b: tensor<4x64xf32>, %o: tensor<2x8x64xf32>,
                                   %l: tensor<2x8xf32>) {
  // expected-error @+1 {{source #1 has type 'tensor<4x64xf32>' but source #0 has type 'tensor<8x64xf32>'; all sources must have one type (C4)}}
  %0:2 = "attnres.block_score"(%W, %W, %a, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 2, 0, 1, 1>}>
      : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<8x64xf32>, tensor<4x64xf32>,
         tensor<2x8x64xf32>, tensor<2x8xf32>) -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_queries_rank(%W: tensor<64xf32>, %b: tensor<8x64xf32>,
                                    %o: tensor<2x8x64xf32>, %l: tensor<2x8xf32>) {
  // expected-error @+1 {{queries must have type 'tensor<?x64xf32>' (S pseudo-queries of the sources' D and E), got 'tensor<64xf32>' (C5)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>)
      -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_queries_d(%W: tensor<2x32xf32>, %b: tensor<8x64xf32>,
                                 %o: tensor<2x8x64xf32>, %l: tensor<2x8xf32>) {
  // expected-error @+1 {{queries must have type 'tensor<?x64xf32>' (S pseudo-queries of the sources' D and E), got 'tensor<2x32xf32>' (C5)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<2x32xf32>, tensor<2x32xf32>, tensor<8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>)
      -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_gains(%W: tensor<2x64xf32>, %G: tensor<3x64xf32>,
                             %b: tensor<8x64xf32>, %o: tensor<2x8x64xf32>,
                             %l: tensor<2x8xf32>) {
  // expected-error @+1 {{norm_weights must have the queries' type 'tensor<2x64xf32>', got 'tensor<3x64xf32>' (C6)}}
  %0:2 = "attnres.block_score"(%W, %G, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<2x64xf32>, tensor<3x64xf32>, tensor<8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>)
      -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_inv_rms_count(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                                     %r: tensor<8xf32>, %o: tensor<2x8x64xf32>,
                                     %l: tensor<2x8xf32>) {
  // expected-error @+1 {{has 1 inv_rms operands for 2 sources; give none or one per source (C7)}}
  %0:2 = attnres.block_score %W, %W over %b, %b inv_rms %r outs %o, %l
      {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<2x8x64xf32>
  return
}

// -----

func.func @block_score_inv_rms_type(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                                    %r: tensor<4xf32>, %o: tensor<2x8x64xf32>,
                                    %l: tensor<2x8xf32>) {
  // expected-error @+1 {{inv_rms #0 must have type 'tensor<8xf32>' (one f32 per token), got 'tensor<4xf32>' (C8)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %r, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1>}>
      : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<8x64xf32>, tensor<4xf32>,
         tensor<2x8x64xf32>, tensor<2x8xf32>) -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_inv_rms_elt(%W: tensor<2x64xbf16>, %b: tensor<8x64xbf16>,
                                   %r: tensor<8xbf16>, %o: tensor<2x8x64xbf16>,
                                   %l: tensor<2x8xf32>) {
  // expected-error @+1 {{inv_rms #0 must have type 'tensor<8xf32>' (one f32 per token), got 'tensor<8xbf16>' (C8)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %r, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1>}>
      : (tensor<2x64xbf16>, tensor<2x64xbf16>, tensor<8x64xbf16>, tensor<8xbf16>,
         tensor<2x8x64xbf16>, tensor<2x8xf32>) -> (tensor<2x8x64xbf16>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_out_d(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                             %o: tensor<2x8x32xf32>, %l: tensor<2x8xf32>) {
  // expected-error @+1 {{out_init must have type 'tensor<2x8x64xf32>' (one output per query), got 'tensor<2x8x32xf32>' (C9)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<8x64xf32>, tensor<2x8x32xf32>, tensor<2x8xf32>)
      -> (tensor<2x8x32xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_out_s(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                             %o: tensor<3x8x64xf32>, %l: tensor<3x8xf32>) {
  // expected-error @+1 {{out_init must have type 'tensor<2x8x64xf32>' (one output per query), got 'tensor<3x8x64xf32>' (C9)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<8x64xf32>, tensor<3x8x64xf32>, tensor<3x8xf32>)
      -> (tensor<3x8x64xf32>, tensor<3x8xf32>)
  return
}

// -----

func.func @block_score_out_elt(%W: tensor<2x64xbf16>, %b: tensor<8x64xbf16>,
                               %o: tensor<2x8x64xf32>, %l: tensor<2x8xf32>) {
  // expected-error @+1 {{out_init must have type 'tensor<2x8x64xbf16>' (one output per query), got 'tensor<2x8x64xf32>' (C9)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<2x64xbf16>, tensor<2x64xbf16>, tensor<8x64xbf16>, tensor<2x8x64xf32>, tensor<2x8xf32>)
      -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_lse(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                           %o: tensor<2x8x64xf32>, %l: tensor<2x8xf16>) {
  // expected-error @+1 {{lse_init must have type 'tensor<2x8xf32>' (one f32 per query and token), got 'tensor<2x8xf16>' (C10)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf16>)
      -> (tensor<2x8x64xf32>, tensor<2x8xf16>)
  return
}

// -----

// Dynamic sources and queries: out_init fixes S = 6 and 16 tokens, and
// lse_init must agree with it (spec 0.4).
func.func @block_score_lse_refined(%W: tensor<?x64xf32>, %b: tensor<?x64xf32>,
                                   %o: tensor<6x16x64xf32>, %l: tensor<6x8xf32>) {
  // expected-error @+1 {{lse_init must have type 'tensor<6x16xf32>' (one f32 per query and token), got 'tensor<6x8xf32>' (C10)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<6x16x64xf32>, tensor<6x8xf32>)
      -> (tensor<6x16x64xf32>, tensor<6x8xf32>)
  return
}

// -----

func.func @block_score_results(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                               %o: tensor<2x8x64xf32>, %l: tensor<2x8xf32>) {
  // expected-error @+1 {{results must have the types of out_init and lse_init ('tensor<2x8x64xf32>', 'tensor<2x8xf32>'), got ('tensor<2x?x64xf32>', 'tensor<2x8xf32>') (C11)}}
  %0:2 = "attnres.block_score"(%W, %W, %b, %o, %l)
      <{epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1>}>
      : (tensor<2x64xf32>, tensor<2x64xf32>, tensor<8x64xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>)
      -> (tensor<2x?x64xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @block_score_eps(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                           %o: tensor<2x8x64xf32>, %l: tensor<2x8xf32>) {
  // expected-error @+1 {{epsilon must be finite and non-negative, got -INF (C12)}}
  %0:2 = attnres.block_score %W, %W over %b outs %o, %l {epsilon = 0xFF800000 : f32}
      : tensor<8x64xf32> -> tensor<2x8x64xf32>
  return
}

// -----

// A generic form whose operandSegmentSizes gives a required operand no
// operand (ODS checks only optional and variadic groups; the accessor read
// past the operands).
func.func @bs_segment_no_lse_init(%W: tensor<2x8xf32>, %b: tensor<4x8xf32>, %o: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'attnres.block_score' op needs exactly one 'lse_init' operand (operand group 5 of operandSegmentSizes), got 0}}
  %out, %lse = "attnres.block_score"(%W, %W, %b, %o)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<2x4x8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4xf32>)
  return
}

//===----------------------------------------------------------------------===//
// E. attnres.merge
//===----------------------------------------------------------------------===//

// -----

func.func @merge_rank0(%o: tensor<f32>, %q: tensor<1xf32>) {
  // expected-error @+1 {{result must have rank >= 1 (the last dimension is D), got 'tensor<f32>' (C1)}}
  %0:2 = "attnres.merge"(%o, %o, %q, %q, %o) <{epsilon = 1.0e-06 : f32}>
      : (tensor<f32>, tensor<f32>, tensor<1xf32>, tensor<1xf32>, tensor<f32>)
      -> (tensor<f32>, tensor<f32>)
  return
}

// -----

func.func @merge_int(%o: tensor<8x64xi32>, %l: tensor<8xf32>, %q: tensor<64xi32>) {
  // expected-error @+1 {{result element type must be f32, f16 or bf16, got 'i32' (C2)}}
  %0:2 = attnres.merge %o, %l, %q, %q update %o {epsilon = 1.0e-06 : f32} : tensor<8x64xi32>
  return
}

// -----

func.func @merge_update_type(%o: tensor<8x64xf32>, %l: tensor<8xf32>,
                             %q: tensor<64xf32>, %y: tensor<8x64xf16>) {
  // expected-error @+1 {{update has type 'tensor<8x64xf16>' but the result has type 'tensor<8x64xf32>' (C3)}}
  %0:2 = "attnres.merge"(%o, %l, %q, %q, %y) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf16>)
      -> (tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_partial_type(%o: tensor<8x64xf32>, %l: tensor<8xf32>,
                              %q: tensor<64xf32>, %p: tensor<?x64xf32>) {
  // expected-error @+1 {{partial has type 'tensor<?x64xf32>' but the result has type 'tensor<8x64xf32>' (C3)}}
  %0:2 = "attnres.merge"(%o, %l, %q, %q, %o, %p) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>,
         tensor<?x64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_new_partial_type(%o: tensor<8x64xf32>, %l: tensor<8xf32>,
                                  %q: tensor<64xf32>) {
  // expected-error @+1 {{new_partial has type 'tensor<8x64xbf16>' but the result has type 'tensor<8x64xf32>' (C3)}}
  %0:2 = "attnres.merge"(%o, %l, %q, %q, %o) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<8x64xbf16>)
  return
}

// -----

func.func @merge_lse(%o: tensor<8x64xf32>, %l: tensor<8x1xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{lse must have type 'tensor<8xf32>' (one f32 per token), got 'tensor<8x1xf32>' (C4)}}
  %0:2 = "attnres.merge"(%o, %l, %q, %q, %o) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8x1xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

// lse of the right rank but another token count.
func.func @merge_lse_tokens(%o: tensor<4x8xf32>, %l: tensor<5xf32>, %q: tensor<8xf32>) {
  // expected-error @+1 {{lse must have type 'tensor<4xf32>' (one f32 per token), got 'tensor<5xf32>' (C4)}}
  %0:2 = "attnres.merge"(%o, %l, %q, %q, %o) <{epsilon = 1.0e-06 : f32}>
      : (tensor<4x8xf32>, tensor<5xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @merge_query(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf16>,
                       %g: tensor<64xf32>) {
  // expected-error @+1 {{query must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<64xf16>' (C5)}}
  %0:2 = "attnres.merge"(%o, %l, %q, %g, %o) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf16>, tensor<64xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_gain(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>,
                      %g: tensor<65xf32>) {
  // expected-error @+1 {{norm_weight must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<65xf32>' (C6)}}
  %0:2 = "attnres.merge"(%o, %l, %q, %g, %o) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<65xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_eps(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be finite and non-negative, got -2.000000e+00 (C7)}}
  %0:2 = attnres.merge %o, %l, %q, %q update %o {epsilon = -2.0 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @merge_three_tail(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{takes at most a partial sum and a norm gain after 'update', got 3 more operands (C8)}}
  %0:3 = "attnres.merge"(%o, %l, %q, %q, %o, %o, %o, %q) <{epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>,
         tensor<8x64xf32>, tensor<8x64xf32>, tensor<64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_two_partials(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{takes at most one partial sum after 'update', got 2 more operands (C8)}}
  %0:2 = "attnres.merge"(%o, %l, %q, %q, %o, %o, %o) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>,
         tensor<8x64xf32>, tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_norm_eps_no_gain(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{has 'norm_epsilon' but no norm gain operand (C8)}}
  %0:3 = "attnres.merge"(%o, %l, %q, %q, %o) <{epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_norm_two_results(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{with a fused norm must have a third result 'normed' (C8)}}
  %0:2 = "attnres.merge"(%o, %l, %q, %q, %o, %q) <{epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<64xf32>)
      -> (tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_third_result_no_norm(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{without 'norm_epsilon' has no norm gain and must have two results (C8)}}
  %0:3 = "attnres.merge"(%o, %l, %q, %q, %o) <{epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_normed_type(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{normed has type 'tensor<8x64xf16>' but the result has type 'tensor<8x64xf32>' (C3)}}
  %0:3 = "attnres.merge"(%o, %l, %q, %q, %o, %q) <{epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<64xf32>)
      -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf16>)
  return
}

// -----

func.func @merge_norm_gain(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>,
                           %gn: tensor<32xf32>) {
  // expected-error @+1 {{norm gain must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<32xf32>' (C9)}}
  %0:3 = "attnres.merge"(%o, %l, %q, %q, %o, %o, %gn) <{epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-06 : f32}>
      : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>,
         tensor<8x64xf32>, tensor<32xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @merge_norm_eps(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{norm_epsilon must be finite and non-negative, got -1.000000e+00 (C10)}}
  %0:3 = attnres.merge %o, %l, %q, %q update %o norm %q {epsilon = 1.0e-06 : f32, norm_epsilon = -1.0 : f32} : tensor<8x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// Parser errors of the custom forms
//===----------------------------------------------------------------------===//

// -----

func.func @parse_aggregate_no_over(%q: tensor<64xf32>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{expected 'over'}}
  %h = attnres.aggregate %q, %q %a {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @parse_aggregate_no_source(%q: tensor<64xf32>) {
  // expected-error @+1 {{expected SSA operand}}
  %h = attnres.aggregate %q, %q over {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @parse_aggregate_rank0(%q: tensor<64xf32>, %a: tensor<f32>) {
  // expected-error @+1 {{expected a ranked tensor type of rank >= 1, got 'tensor<f32>'}}
  %h = attnres.aggregate %q, %q over %a {epsilon = 1.0e-06 : f32} : tensor<f32>
  return
}

// -----

func.func @parse_aggregate_memref(%q: tensor<64xf32>, %a: memref<8x64xf32>) {
  // expected-error @+1 {{expected a ranked tensor type of rank >= 1, got 'memref<8x64xf32>'}}
  %h = attnres.aggregate %q, %q over %a {epsilon = 1.0e-06 : f32} : memref<8x64xf32>
  return
}

// -----

func.func @parse_aggregate_query_type(%q: tensor<32xf32>, %a: tensor<8x64xf32>) {
  // expected-note @-1 {{prior use here}}
  // expected-error @+1 {{use of value '%q' expects different type than prior uses: 'tensor<64xf32>' vs 'tensor<32xf32>'}}
  %h = attnres.aggregate %q, %q over %a {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @parse_block_sum_unranked(%a: tensor<*xf32>) {
  // expected-error @+1 {{expected a ranked tensor type of rank >= 1, got 'tensor<*xf32>'}}
  %s = attnres.block_sum %a, %a : tensor<*xf32>
  return
}

// -----

func.func @parse_block_sum_no_type(%a: tensor<8x64xf32>) {
  // expected-error @+1 {{expected ':'}}
  %s = attnres.block_sum %a, %a
  return
}

// -----

func.func @parse_block_score_rank(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                                  %o: tensor<8x64xf32>, %l: tensor<2x8xf32>) {
  // expected-error @+1 {{expected the output type to have one more dimension (S) than the source type}}
  %0:2 = attnres.block_score %W, %W over %b outs %o, %l {epsilon = 1.0e-06 : f32}
      : tensor<8x64xf32> -> tensor<8x64xf32>
  return
}

// -----

func.func @parse_block_score_no_outs(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>) {
  // expected-error @+1 {{expected 'outs'}}
  %0:2 = attnres.block_score %W, %W over %b {epsilon = 1.0e-06 : f32}
      : tensor<8x64xf32> -> tensor<2x8x64xf32>
  return
}

// -----

func.func @parse_block_score_no_arrow(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                                      %o: tensor<2x8x64xf32>, %l: tensor<2x8xf32>) {
  // expected-error @+2 {{expected '->'}}
  %0:2 = attnres.block_score %W, %W over %b outs %o, %l {epsilon = 1.0e-06 : f32}
      : tensor<8x64xf32>
  return
}

// -----

func.func @parse_merge_no_update(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{expected 'update'}}
  %0:2 = attnres.merge %o, %l, %q, %q %o {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @parse_merge_partial_operand(%o: tensor<8x64xf32>, %l: tensor<8xf32>,
                                       %q: tensor<64xf32>) {
  // expected-error @+1 {{expected SSA operand}}
  %0:2 = attnres.merge %o, %l, %q, %q update %o partial {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @parse_merge_lse_type(%o: tensor<8x64xf32>, %l: tensor<8x64xf32>, %q: tensor<64xf32>) {
  // expected-note @-1 {{prior use here}}
  // expected-error @+1 {{use of value '%l' expects different type than prior uses: 'tensor<8xf32>' vs 'tensor<8x64xf32>'}}
  %0:2 = attnres.merge %o, %l, %q, %q update %o {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @parse_merge_norm_without_eps(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{'norm %gain' and the 'norm_epsilon' attribute go together (C8)}}
  %0:3 = attnres.merge %o, %l, %q, %q update %o norm %q {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @parse_operand_types_count(%q: tensor<?xf32>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{expected 2 types in 'operand_types', got 1}}
  %h = attnres.aggregate %q, %q over %a {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> operand_types(tensor<?xf32>)
  return
}

// -----

func.func @parse_operand_types_merge(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  // expected-error @+1 {{expected 3 types in 'operand_types', got 4}}
  %0:2 = attnres.merge %o, %l, %q, %q update %o {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> operand_types(tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

// operand_types gives a type that the verifier rejects: the op's
// diagnostic, not a parser error.
func.func @parse_operand_types_invalid(%q: tensor<32xf32>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{query must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<32xf32>' (C5)}}
  %h = attnres.aggregate %q, %q over %a {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> operand_types(tensor<32xf32>, tensor<32xf32>)
  return
}
