// RUN: attnres-opt %s --verify-roundtrip --split-input-file --attnres-blockify="block-size=4 report=true" --attnres-fuse-summaries=report=true --verify-diagnostics -o /dev/null

// The reports of attnres-blockify and attnres-fuse-summaries on the bundled
// 12-sublayer example (L = 12, S = 4, D = 64, bf16): block structure, sources
// per aggregation before -> after, bytes moved per token per sublayer
// (section 6), and the largest number of depth sources live at once in the
// function before -> after (Full: L + 1 = 13; block and two-phase: N + 1 = 4).

func.func private @f(tensor<16x64xbf16>) -> tensor<16x64xbf16>
// expected-remark @+1 {{attnres-fuse-summaries: max live depth sources 4 -> 4}}
func.func @chain12(%v0: tensor<16x64xbf16>, %w0: tensor<64xbf16>, %w1: tensor<64xbf16>, %w2: tensor<64xbf16>, %w3: tensor<64xbf16>, %w4: tensor<64xbf16>, %w5: tensor<64xbf16>, %w6: tensor<64xbf16>, %w7: tensor<64xbf16>, %w8: tensor<64xbf16>, %w9: tensor<64xbf16>, %w10: tensor<64xbf16>, %w11: tensor<64xbf16>, %w12: tensor<64xbf16>, %g0: tensor<64xbf16>, %g1: tensor<64xbf16>, %g2: tensor<64xbf16>, %g3: tensor<64xbf16>, %g4: tensor<64xbf16>, %g5: tensor<64xbf16>, %g6: tensor<64xbf16>, %g7: tensor<64xbf16>, %g8: tensor<64xbf16>, %g9: tensor<64xbf16>, %g10: tensor<64xbf16>, %g11: tensor<64xbf16>, %g12: tensor<64xbf16>) -> tensor<16x64xbf16> {
  %h0 = attnres.aggregate %w0, %g0 over %v0 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y0 = func.call @f(%h0) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h1 = attnres.aggregate %w1, %g1 over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y1 = func.call @f(%h1) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h2 = attnres.aggregate %w2, %g2 over %v0, %y0, %y1 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y2 = func.call @f(%h2) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h3 = attnres.aggregate %w3, %g3 over %v0, %y0, %y1, %y2 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y3 = func.call @f(%h3) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h4 = attnres.aggregate %w4, %g4 over %v0, %y0, %y1, %y2, %y3 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y4 = func.call @f(%h4) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h5 = attnres.aggregate %w5, %g5 over %v0, %y0, %y1, %y2, %y3, %y4 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y5 = func.call @f(%h5) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h6 = attnres.aggregate %w6, %g6 over %v0, %y0, %y1, %y2, %y3, %y4, %y5 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y6 = func.call @f(%h6) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h7 = attnres.aggregate %w7, %g7 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y7 = func.call @f(%h7) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h8 = attnres.aggregate %w8, %g8 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y8 = func.call @f(%h8) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h9 = attnres.aggregate %w9, %g9 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y9 = func.call @f(%h9) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h10 = attnres.aggregate %w10, %g10 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y10 = func.call @f(%h10) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h11 = attnres.aggregate %w11, %g11 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y11 = func.call @f(%h11) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  // expected-remark @+2 {{attnres-blockify: L = 12 sublayers, S = 4, N = 3 blocks, D = 64 bf16 (2 B/element); bytes moved per token per sublayer: Full 960 B, naive block 1024 B, two-phase 736 B (standard residual 384 B); sources per aggregation: 1 2 3 4 5 6 7 8 9 10 11 12, final 13 -> 1 2 2 2 2 3 3 3 3 4 4 4, final 4; max live depth sources: 13 -> 4}}
  // expected-remark @+1 {{attnres-fuse-summaries: L = 12 sublayers, S = 4, N = 3 blocks, D = 64 bf16 (2 B/element); bytes moved per token per sublayer: Full 960 B, naive block 1024 B, two-phase 736 B (standard residual 384 B); sources per aggregation: 1 2 2 2 2 3 3 3 3 4 4 4, final 4; two-phase form: 4 inv_rms, 4 block_score, 9 merge}}
  %out = attnres.aggregate %w12, %g12 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  return %out : tensor<16x64xbf16>
}

// -----

// Aggregations with different epsilons cannot share the inverse RMS of a
// summary: the chain stays in block form, with a warning.
func.func private @f(tensor<8x16xf32>) -> tensor<8x16xf32>
// expected-remark @+1 {{attnres-fuse-summaries: max live depth sources 2 -> 2}}
func.func @eps_mismatch(%v0: tensor<8x16xf32>, %w: tensor<16xf32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  %h0 = attnres.aggregate %w, %g over %v0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y0 = func.call @f(%h0) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  // expected-warning @+3 {{attnres-blockify: block-size=4 is larger than the chain's 1 sublayers; using S = 1 (one block)}}
  // expected-remark @+2 {{attnres-blockify: L = 1 sublayers, S = 1, N = 1 blocks}}
  // expected-warning @+1 {{attnres-fuse-summaries: the aggregations of this chain use different epsilons}}
  %out = attnres.aggregate %w, %g over %v0, %y0 {epsilon = 1.0e-05 : f32} : tensor<8x16xf32>
  return %out : tensor<8x16xf32>
}

// -----

// A later query of the block is a parameter something stores to: its load
// cannot move to the start of the block, so the chain stays in block form.
ml_program.global private mutable @w1(dense<0.25> : tensor<16xf32>) : tensor<16xf32>
func.func private @f(tensor<8x16xf32>) -> tensor<8x16xf32>
// expected-remark @+1 {{attnres-fuse-summaries: max live depth sources 2 -> 2}}
func.func @stored_query(%v0: tensor<8x16xf32>, %w: tensor<16xf32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  %h0 = attnres.aggregate %w, %g over %v0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y0 = func.call @f(%h0) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  ml_program.global_store @w1 = %w : tensor<16xf32>
  %w1 = ml_program.global_load @w1 : tensor<16xf32>
  %h1 = attnres.aggregate %w1, %g over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y1 = func.call @f(%h1) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %b1 = attnres.block_sum %y0, %y1 : tensor<8x16xf32>
  // expected-remark @+2 {{attnres-blockify: chain of 2 sublayers is already in block form (block size 2), left unchanged}}
  // expected-warning @+1 {{attnres-fuse-summaries: the pseudo-query or gain of a sublayer of block 1 is computed after the block starts and cannot be moved there; chain left in block form}}
  %out = attnres.aggregate %w, %g over %v0, %b1 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  return %out : tensor<8x16xf32>
}
