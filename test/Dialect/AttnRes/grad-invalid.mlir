// RUN: attnres-opt %s -split-input-file -verify-diagnostics

// One case per numbered constraint of docs/spec.md section I (I.1
// aggregate_stats, I.2 aggregate_grad, I.3 block_score_grad, I.4
// merge_grad), in custom form where the custom
// syntax can express the bad input and in generic form where it cannot,
// then the parser errors of the custom forms.

//===----------------------------------------------------------------------===//
// I.1 attnres.aggregate_stats
//===----------------------------------------------------------------------===//

func.func @stats_no_source(%q: tensor<64xf32>) {
  // expected-error @+1 {{'attnres.aggregate_stats' op requires at least one source (C1)}}
  %h, %l = "attnres.aggregate_stats"(%q, %q) <{epsilon = 1.0e-05 : f32}>
      : (tensor<64xf32>, tensor<64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>)
  return
}

// -----

func.func @stats_rank0(%q: tensor<1xf32>, %a: tensor<f32>) {
  // expected-error @+1 {{result must have rank >= 1 (the last dimension is D), got 'tensor<f32>' (C2)}}
  %h, %l, %r = "attnres.aggregate_stats"(%q, %q, %a) <{epsilon = 1.0e-05 : f32}>
      : (tensor<1xf32>, tensor<1xf32>, tensor<f32>) -> (tensor<f32>, tensor<f32>, tensor<f32>)
  return
}

// -----

func.func @stats_f64(%q: tensor<64xf64>, %a: tensor<8x64xf64>) {
  // expected-error @+1 {{result element type must be f32, f16 or bf16, got 'f64' (C3)}}
  %h, %l, %r:2 = attnres.aggregate_stats %q, %q over %a, %a {epsilon = 1.0e-05 : f32} : tensor<8x64xf64>
  return
}

// -----

func.func @stats_source_type(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %b: tensor<?x64xf32>) {
  // expected-error @+1 {{source #1 has type 'tensor<?x64xf32>' but the result has type 'tensor<8x64xf32>'; all sources and the result must have one type (C4)}}
  %h, %l, %r0, %r1 = "attnres.aggregate_stats"(%q, %q, %a, %b) <{epsilon = 1.0e-05 : f32}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<?x64xf32>)
      -> (tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @stats_query(%q: tensor<32xf32>, %g: tensor<64xf32>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{query must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<32xf32>' (C5)}}
  %h, %l, %r = "attnres.aggregate_stats"(%q, %g, %a) <{epsilon = 1.0e-05 : f32}>
      : (tensor<32xf32>, tensor<64xf32>, tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @stats_gain(%q: tensor<64xf32>, %g: tensor<64xbf16>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{norm_weight must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<64xbf16>' (C6)}}
  %h, %l, %r = "attnres.aggregate_stats"(%q, %g, %a) <{epsilon = 1.0e-05 : f32}>
      : (tensor<64xf32>, tensor<64xbf16>, tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @stats_epsilon(%q: tensor<64xf32>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{epsilon must be finite and non-negative, got -1.000000e+00 (C7)}}
  %h, %l, %r = attnres.aggregate_stats %q, %q over %a {epsilon = -1.0 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @stats_lse(%q: tensor<64xf32>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{lse result must have type 'tensor<8xf32>' (one f32 per token), got 'tensor<4xf32>' (C8)}}
  %h, %l, %r = "attnres.aggregate_stats"(%q, %q, %a) <{epsilon = 1.0e-05 : f32}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<4xf32>, tensor<8xf32>)
  return
}

// -----

func.func @stats_inv_rms_count(%q: tensor<64xf32>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{has 1 inv_rms results for 2 sources; it needs one per source (C9)}}
  %h, %l, %r = "attnres.aggregate_stats"(%q, %q, %a, %a) <{epsilon = 1.0e-05 : f32}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @stats_inv_rms_type(%q: tensor<64xf32>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{inv_rms result #1 must have type 'tensor<8xf32>' (one f32 per token), got 'tensor<8xf16>' (C9)}}
  %h, %l, %r0, %r1 = "attnres.aggregate_stats"(%q, %q, %a, %a) <{epsilon = 1.0e-05 : f32}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf16>)
  return
}

//===----------------------------------------------------------------------===//
// I.2 attnres.aggregate_grad
//===----------------------------------------------------------------------===//

// -----

func.func @grad_no_source(%q: tensor<64xf32>, %l: tensor<8xf32>, %dh: tensor<8x64xf32>) {
  // expected-error @+1 {{'attnres.aggregate_grad' op requires at least one source (C1)}}
  %dq, %dg = "attnres.aggregate_grad"(%q, %q, %l, %dh)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 1, 0>}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8xf32>, tensor<8x64xf32>) -> (tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

func.func @grad_rank0(%q: tensor<1xf32>, %a: tensor<f32>, %l: tensor<f32>) {
  // expected-error @+1 {{grad must have rank >= 1 (the last dimension is D), got 'tensor<f32>' (C2)}}
  %dv, %dq, %dg = "attnres.aggregate_grad"(%q, %q, %a, %l, %l, %a)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<1xf32>, tensor<1xf32>, tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>)
      -> (tensor<f32>, tensor<1xf32>, tensor<1xf32>)
  return
}

// -----

func.func @grad_i32(%q: tensor<64xi32>, %a: tensor<8x64xi32>, %l: tensor<8xf32>) {
  // expected-error @+1 {{grad element type must be f32, f16 or bf16, got 'i32' (C3)}}
  %dv, %dq, %dg = attnres.aggregate_grad %q, %q over %a stats %l, %l grad %a {epsilon = 1.0e-05 : f32} : tensor<8x64xi32>
  return
}

// -----

func.func @grad_source_type(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %b: tensor<8x64xf16>,
                            %l: tensor<8xf32>) {
  // expected-error @+1 {{source #1 has type 'tensor<8x64xf16>' but the grad has type 'tensor<8x64xf32>'; all sources and the grad must have one type (C4)}}
  %dv:2, %dq, %dg = "attnres.aggregate_grad"(%q, %q, %a, %b, %l, %l, %l, %a)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 2, 1, 2, 1, 0>}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8x64xf16>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

func.func @grad_query(%q: tensor<63xf32>, %g: tensor<64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>) {
  // expected-error @+1 {{query must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<63xf32>' (C5)}}
  %dv, %dq, %dg = "attnres.aggregate_grad"(%q, %g, %a, %l, %l, %a)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<63xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

func.func @grad_gain(%q: tensor<64xf32>, %g: tensor<2x64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>) {
  // expected-error @+1 {{norm_weight must have type 'tensor<64xf32>' (one value per feature of the sources), got 'tensor<2x64xf32>' (C6)}}
  %dv, %dq, %dg = "attnres.aggregate_grad"(%q, %g, %a, %l, %l, %a)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<64xf32>, tensor<2x64xf32>, tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

func.func @grad_epsilon(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must be finite and non-negative, got INF (C7)}}
  %dv, %dq, %dg = attnres.aggregate_grad %q, %q over %a stats %l, %l grad %a {epsilon = 0x7F800000 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @grad_lse(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>, %bad: tensor<8x1xf32>) {
  // expected-error @+1 {{lse operand must have type 'tensor<8xf32>' (one f32 per token), got 'tensor<8x1xf32>' (C8)}}
  %dv, %dq, %dg = "attnres.aggregate_grad"(%q, %q, %a, %bad, %l, %a)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8x1xf32>, tensor<8xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

func.func @grad_inv_rms_count(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>) {
  // expected-error @+1 {{has 3 inv_rms operands for 2 sources; it needs one per source (C9)}}
  %dv:2, %dq, %dg = attnres.aggregate_grad %q, %q over %a, %a stats %l, %l, %l, %l grad %a {epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @grad_inv_rms_type(%q: tensor<64xf32>, %a: tensor<?x64xf32>, %l: tensor<?xf32>,
                             %r2: tensor<5xf32>) {
  // The statistics have exactly the per-token type the custom form implies.
  // expected-error @+1 {{inv_rms operand #1 must have type 'tensor<?xf32>' (one f32 per token), got 'tensor<5xf32>' (C9)}}
  %dv:2, %dq, %dg = "attnres.aggregate_grad"(%q, %q, %a, %a, %l, %l, %r2, %a)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 2, 1, 2, 1, 0>}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>, tensor<5xf32>, tensor<?x64xf32>)
      -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

func.func @grad_accumulator_count(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>) {
  // expected-error @+1 {{has 1 accumulators for 2 sources; give none or one per source (C10)}}
  %dv:2, %dq, %dg = attnres.aggregate_grad %q, %q over %a, %a stats %l, %l, %l grad %a accumulate %a {epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @grad_accumulator_type(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>,
                                 %acc: tensor<?x64xf32>) {
  // expected-error @+1 {{accumulator #0 has type 'tensor<?x64xf32>' but the sources have type 'tensor<8x64xf32>' (C10)}}
  %dv, %dq, %dg = "attnres.aggregate_grad"(%q, %q, %a, %l, %l, %a, %acc)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1>}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8x64xf32>, tensor<?x64xf32>)
      -> (tensor<8x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

func.func @grad_result_count(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>) {
  // expected-error @+1 {{has 1 source gradients for 2 sources; it needs one per source (C11)}}
  %dv, %dq, %dg = "attnres.aggregate_grad"(%q, %q, %a, %a, %l, %l, %l, %a)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 2, 1, 2, 1, 0>}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

func.func @grad_result_type(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>) {
  // expected-error @+1 {{source gradient #0 has type 'tensor<8x64xf16>' but the sources have type 'tensor<8x64xf32>' (C11)}}
  %dv, %dq, %dg = "attnres.aggregate_grad"(%q, %q, %a, %l, %l, %a)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8x64xf32>)
      -> (tensor<8x64xf16>, tensor<64xf32>, tensor<64xf32>)
  return
}

// -----

func.func @grad_param_grad_type(%q: tensor<64xbf16>, %a: tensor<8x64xbf16>, %l: tensor<8xf32>) {
  // expected-error @+1 {{norm_weight_grad must have type 'tensor<64xf32>' (f32 sums over the tokens), got 'tensor<64xbf16>' (C12)}}
  %dv, %dq, %dg = "attnres.aggregate_grad"(%q, %q, %a, %l, %l, %a)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<64xbf16>, tensor<64xbf16>, tensor<8x64xbf16>, tensor<8xf32>, tensor<8xf32>, tensor<8x64xbf16>)
      -> (tensor<8x64xbf16>, tensor<64xf32>, tensor<64xbf16>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// Parser errors of the custom forms
//===----------------------------------------------------------------------===//

func.func @grad_stats_too_short(%q: tensor<64xf32>, %a: tensor<8x64xf32>, %l: tensor<8xf32>) {
  // expected-error @+1 {{expected 'stats' to list the lse and one inv_rms per source}}
  %dv, %dq, %dg = attnres.aggregate_grad %q, %q over %a stats %l grad %a {epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  return
}

// -----

func.func @stats_unranked(%q: tensor<64xf32>, %a: tensor<*xf32>) {
  // expected-error @+1 {{expected a ranked tensor type of rank >= 1, got 'tensor<*xf32>'}}
  %h, %l, %r = attnres.aggregate_stats %q, %q over %a {epsilon = 1.0e-05 : f32} : tensor<*xf32>
  return
}

// -----

// -----

// Required operand groups of the generic forms (ODS checks only optional
// and variadic groups; an accessor of an empty group read past the
// operands: a fuzzer finding).
func.func @grad_segment_no_lse(%q: tensor<8xf32>, %v: tensor<4x8xf32>, %r: tensor<4xf32>) {
  // expected-error @+1 {{'attnres.aggregate_grad' op needs exactly one 'lse' operand (operand group 3 of operandSegmentSizes), got 0}}
  %dv, %dq, %dg = "attnres.aggregate_grad"(%q, %q, %v, %r, %v)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1, 0>}>
      : (tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<4xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

//===----------------------------------------------------------------------===//
// I.3 attnres.block_score_grad
//===----------------------------------------------------------------------===//

func.func @bsg_no_source(%W: tensor<2x8xf32>, %l: tensor<2x4xf32>, %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'attnres.block_score_grad' op requires at least one source (C1)}}
  %dW, %dG = "attnres.block_score_grad"(%W, %W, %l, %do, %l)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 1, 1, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x4xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_rank0(%W: tensor<2x1xf32>, %a: tensor<f32>, %l: tensor<2xf32>, %do: tensor<2xf32>) {
  // expected-error @+1 {{first source must have rank >= 1 (the last dimension is D), got 'tensor<f32>' (C2)}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %W, %a, %l, %a, %do, %l)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<2x1xf32>, tensor<2x1xf32>, tensor<f32>, tensor<2xf32>, tensor<f32>, tensor<2xf32>, tensor<2xf32>)
      -> (tensor<f32>, tensor<2x1xf32>, tensor<2x1xf32>)
  return
}

// -----

func.func @bsg_f64(%W: tensor<2x8xf64>, %a: tensor<4x8xf64>, %l: tensor<2x4xf32>, %r: tensor<4xf32>,
                   %do: tensor<2x4x8xf64>) {
  // expected-error @+1 {{first source element type must be f32, f16 or bf16, got 'f64' (C3)}}
  %db, %dW, %dG = attnres.block_score_grad %W, %W over %a stats %l, %r grad %do, %l {epsilon = 1.0e-05 : f32} : tensor<4x8xf64> -> tensor<2x4x8xf64>
  return
}

// -----

func.func @bsg_source_type(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %b: tensor<?x8xf32>,
                           %l: tensor<2x4xf32>, %r: tensor<4xf32>, %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{source #1 has type 'tensor<?x8xf32>' but the first source has type 'tensor<4x8xf32>'; all sources and the first source must have one type (C4)}}
  %db:2, %dW, %dG = "attnres.block_score_grad"(%W, %W, %a, %b, %l, %r, %r, %do, %l)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 2, 1, 2, 1, 1, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<?x8xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>)
      -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_queries(%W: tensor<2x7xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>,
                       %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{queries must have type 'tensor<?x8xf32>' with any S (S pseudo-queries of the sources' D and E), got 'tensor<2x7xf32>' (C5)}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %W, %a, %l, %r, %do, %l)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<2x7xf32>, tensor<2x7xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>)
      -> (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_gains(%W: tensor<2x8xf32>, %G: tensor<3x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>,
                     %r: tensor<4xf32>, %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{norm_weights must have the queries' type 'tensor<2x8xf32>', got 'tensor<3x8xf32>' (C6)}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %G, %a, %l, %r, %do, %l)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<2x8xf32>, tensor<3x8xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>)
      -> (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_epsilon(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>,
                       %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{epsilon must be finite and non-negative, got -2.500000e-01 (C7)}}
  %db, %dW, %dG = attnres.block_score_grad %W, %W over %a stats %l, %r grad %do, %l {epsilon = -0.25 : f32} : tensor<4x8xf32> -> tensor<2x4x8xf32>
  return
}

// -----

func.func @bsg_lse(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<4xf32>, %r: tensor<4xf32>,
                   %do: tensor<2x4x8xf32>, %dl: tensor<2x4xf32>) {
  // expected-error @+1 {{lse operand must have type 'tensor<2x4xf32>' (one f32 per query and token), got 'tensor<4xf32>' (C8)}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %W, %a, %l, %r, %do, %dl)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>)
      -> (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_inv_rms(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>,
                       %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{has 2 inv_rms operands for 1 sources; it needs one per source (C9)}}
  %db, %dW, %dG = attnres.block_score_grad %W, %W over %a stats %l, %r, %r grad %do, %l {epsilon = 1.0e-05 : f32} : tensor<4x8xf32> -> tensor<2x4x8xf32>
  return
}

// -----

func.func @bsg_inv_rms_type(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<?xf32>,
                            %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{inv_rms operand #0 must have type 'tensor<4xf32>' (one f32 per token), got 'tensor<?xf32>' (C9)}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %W, %a, %l, %r, %do, %l)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<?xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>)
      -> (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_out_grad(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>,
                        %do: tensor<4x8xf32>) {
  // expected-error @+1 {{out_grad must have type 'tensor<2x4x8xf32>' (the gradient of block_score's out), got 'tensor<4x8xf32>' (C10)}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %W, %a, %l, %r, %do, %l)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<4x8xf32>, tensor<2x4xf32>)
      -> (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_lse_grad(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>,
                        %do: tensor<2x4x8xf32>, %dl: tensor<2x?xf32>) {
  // expected-error @+1 {{lse_grad must have type 'tensor<2x4xf32>' (the gradient of block_score's lse), got 'tensor<2x?xf32>' (C11)}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %W, %a, %l, %r, %do, %dl)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<2x4x8xf32>, tensor<2x?xf32>)
      -> (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_accumulators(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>,
                            %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{has 2 accumulators for 1 sources; give none or one per source (C12)}}
  %db, %dW, %dG = attnres.block_score_grad %W, %W over %a stats %l, %r grad %do, %l accumulate %a, %a {epsilon = 1.0e-05 : f32} : tensor<4x8xf32> -> tensor<2x4x8xf32>
  return
}

// -----

func.func @bsg_source_grads(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>,
                            %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{source gradient #0 has type 'tensor<4x8xbf16>' but the sources have type 'tensor<4x8xf32>' (C13)}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %W, %a, %l, %r, %do, %l)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>)
      -> (tensor<4x8xbf16>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_param_grads(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>,
                           %do: tensor<2x4x8xf32>) {
  // expected-error @+1 {{queries_grad must have type 'tensor<2x8xf32>' (f32 sums over the tokens), got 'tensor<8xf32>' (C14)}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %W, %a, %l, %r, %do, %l)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>)
      -> (tensor<4x8xf32>, tensor<8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @bsg_parse_rank(%W: tensor<2x8xf32>, %a: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>) {
  // expected-error @+1 {{expected the output gradient type to have one more dimension (S) than the source type}}
  %db, %dW, %dG = attnres.block_score_grad %W, %W over %a stats %l, %r grad %a, %l {epsilon = 1.0e-05 : f32} : tensor<4x8xf32> -> tensor<4x8xf32>
  return
}

// -----

// -----

func.func @sgrad_segment_two_out_grads(%W: tensor<2x8xf32>, %b: tensor<4x8xf32>, %l: tensor<2x4xf32>, %r: tensor<4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'attnres.block_score_grad' op needs exactly one 'out_grad' operand (operand group 5 of operandSegmentSizes), got 2}}
  %db, %dW, %dG = "attnres.block_score_grad"(%W, %W, %b, %l, %r, %d, %d)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 2, 0, 0>}>
      : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4x8xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>)
      -> (tensor<4x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

//===----------------------------------------------------------------------===//
// I.4 attnres.merge_grad
//===----------------------------------------------------------------------===//

// -----

func.func @mg_rank0(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>, %s: tensor<f32>) {
  // expected-error @+1 {{update must have rank >= 1}}
  %r:5 = "attnres.merge_grad"(%o, %l, %w, %w, %s, %o, %o)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0, 1, 1, 0>}>
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<f32>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @mg_f64(%o: tensor<4x8xf64>, %l: tensor<4xf32>, %w: tensor<8xf64>) {
  // expected-error @+1 {{update element type must be f32, f16 or bf16, got 'f64' (C2)}}
  %do, %dl, %dw, %dg, %dp = attnres.merge_grad %o, %l, %w, %w update %o grad %o, %o {epsilon = 1.0e-05 : f32} : tensor<4x8xf64>
  return
}

// -----

func.func @mg_partial_type(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>, %p: tensor<4x8xbf16>) {
  // expected-error @+1 {{partial must have update's type 'tensor<4x8xf32>', got 'tensor<4x8xbf16>' (C3)}}
  %r:5 = "attnres.merge_grad"(%o, %l, %w, %w, %o, %p, %o, %o)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0, 1, 1, 0>}>
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<4x8xbf16>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @mg_lse(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>, %d: tensor<?xf32>) {
  // expected-error @+1 {{lse must have type 'tensor<4xf32>' (one f32 per token), got 'tensor<?xf32>' (C4)}}
  %r:5 = "attnres.merge_grad"(%o, %d, %w, %w, %o, %o, %o)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0, 1, 1, 0>}>
      : (tensor<4x8xf32>, tensor<?xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @mg_query(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>, %q: tensor<7xf32>) {
  // expected-error @+1 {{query must have type 'tensor<8xf32>' (one value per feature of the sources), got 'tensor<7xf32>' (C5)}}
  %r:5 = "attnres.merge_grad"(%o, %l, %q, %w, %o, %o, %o)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0, 1, 1, 0>}>
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<7xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @mg_norm_weight(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>, %q: tensor<8xbf16>) {
  // expected-error @+1 {{norm_weight must have type 'tensor<8xf32>' (one value per feature of the sources), got 'tensor<8xbf16>' (C6)}}
  %r:5 = "attnres.merge_grad"(%o, %l, %w, %q, %o, %o, %o)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0, 1, 1, 0>}>
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xbf16>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @mg_epsilon(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must be finite and non-negative, got -2.500000e-01 (C7)}}
  %do, %dl, %dw, %dg, %dp = attnres.merge_grad %o, %l, %w, %w update %o grad %o, %o {epsilon = -0.25 : f32} : tensor<4x8xf32>
  return
}

// -----

func.func @mg_norm_pieces(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{the norm gain, norm_epsilon, the gradient of normed and the gradient of the norm gain must be all present or all absent (C8)}}
  %r:5 = "attnres.merge_grad"(%o, %l, %w, %w, %o, %o, %o)
      <{epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0, 1, 1, 0>}>
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @mg_norm_gain(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>, %q: tensor<7xf32>) {
  // expected-error @+1 {{norm gain must have type 'tensor<8xf32>' (one value per feature of the sources), got 'tensor<7xf32>' (C9)}}
  %r:6 = "attnres.merge_grad"(%o, %l, %w, %w, %o, %q, %o, %o, %o)
      <{epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 1, 1, 1, 1>}>
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<7xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @mg_norm_epsilon(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must be finite and non-negative, got -1.000000e+00 (C10)}}
  %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %l, %w, %w update %o norm %w grad %o, %o, %o {epsilon = 1.0e-05 : f32, norm_epsilon = -1.0 : f32} : tensor<4x8xf32>
  return
}

// -----

func.func @mg_param_grads(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{norm_weight_grad must have type 'tensor<8xf32>' (f32 sums over the tokens), got 'tensor<8xbf16>' (C11)}}
  %r:5 = "attnres.merge_grad"(%o, %l, %w, %w, %o, %o, %o)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0, 1, 1, 0>}>
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xbf16>, tensor<4x8xf32>)
  return
}

// -----

func.func @mg_parse_grads(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected 3 incoming gradients after 'grad' (of h and new_partial, and of normed with 'norm'), got 2}}
  %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %l, %w, %w update %o norm %w grad %o, %o {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<4x8xf32>
  return
}

// -----

// The fuzzer's input: new_partial_grad's group given no operand, the norm
// gain's one.
func.func @mg_segment_no_new_partial_grad(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'attnres.merge_grad' op needs exactly one 'new_partial_grad' operand (operand group 8 of operandSegmentSizes), got 0}}
  %r:5 = "attnres.merge_grad"(%o, %l, %w, %w, %o, %o, %o)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 1, 1, 0, 0>}>
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
  return
}
