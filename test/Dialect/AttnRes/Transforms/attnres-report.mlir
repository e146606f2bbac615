// RUN: attnres-opt %s --verify-roundtrip --split-input-file --attnres-report=block-size=4 --verify-diagnostics -o /dev/null
// RUN: attnres-opt %s --split-input-file --attnres-report=num-blocks=3 --verify-diagnostics -o /dev/null

// attnres-report and attnres-blockify resolve block-size / num-blocks in one
// place (resolveBlocking in ChainAnalysis): run one after the other with the
// same options, they print the same S and N for the 12-sublayer chain,
// including the clamped cases, which both warn about.
// RUN: attnres-opt %s --split-input-file --attnres-report=block-size=5 --attnres-blockify="block-size=5 report=true" 2>&1 >/dev/null | FileCheck %s --check-prefix=AGREE-S5
// AGREE-S5: attnres-report: Full AttnRes chain: L = 12 sublayers, S = [[S:5]], N = [[N:3]] blocks (last block 2)
// AGREE-S5: attnres-blockify: L = 12 sublayers, S = [[S]], N = [[N]] blocks (last block 2)
// RUN: attnres-opt %s --split-input-file --attnres-report=num-blocks=5 --attnres-blockify="num-blocks=5 report=true" 2>&1 >/dev/null | FileCheck %s --check-prefix=AGREE-N5
// AGREE-N5: attnres-report: Full AttnRes chain: L = 12 sublayers, S = [[S:3]], N = [[N:4]] blocks,
// AGREE-N5: attnres-blockify: L = 12 sublayers, S = [[S]], N = [[N]] blocks,
// RUN: attnres-opt %s --split-input-file --attnres-report=block-size=100 --attnres-blockify="block-size=100 report=true" 2>&1 >/dev/null | FileCheck %s --check-prefix=AGREE-BIG
// AGREE-BIG: warning: attnres-report: block-size=100 is larger than the chain's 12 sublayers; using S = 12 (one block)
// AGREE-BIG: attnres-report: Full AttnRes chain: L = 12 sublayers, S = [[S:12]], N = [[N:1]] blocks,
// AGREE-BIG: warning: attnres-blockify: block-size=100 is larger than the chain's 12 sublayers; using S = 12 (one block)
// AGREE-BIG: attnres-blockify: L = 12 sublayers, S = [[S]], N = [[N]] blocks,
// RUN: attnres-opt %s --split-input-file --attnres-report=num-blocks=20 --attnres-blockify="num-blocks=20 report=true" 2>&1 >/dev/null | FileCheck %s --check-prefix=AGREE-MANY
// AGREE-MANY: warning: attnres-report: num-blocks=20 is more than the chain's 12 sublayers; using N = 12 (S = 1, Full AttnRes)
// AGREE-MANY: attnres-report: Full AttnRes chain: L = 12 sublayers, S = [[S:1]], N = [[N:12]] blocks,
// AGREE-MANY: warning: attnres-blockify: num-blocks=20 is more than the chain's 12 sublayers; using N = 12 (S = 1, Full AttnRes)
// AGREE-MANY: attnres-blockify: L = 12 sublayers, S = [[S]], N = [[N]] blocks,

// Bad options: one error at the chain, no dump of the op or module.
// RUN: not attnres-opt %s --split-input-file --attnres-report=block-size=0 2>&1 | FileCheck %s --check-prefix=ZERO
// RUN: not attnres-opt %s --split-input-file --attnres-report=num-blocks=-1 2>&1 | FileCheck %s --check-prefix=NNEG
// ZERO-NOT: see current operation
// ZERO: attnres-report.mlir:[[#@LINE+44]]:10: error: attnres-report: block-size must be a positive integer, got block-size=0
// ZERO-NOT: see current operation
// ZERO-NOT: builtin.module
// NNEG: attnres-report.mlir:[[#@LINE+41]]:10: error: attnres-report: num-blocks must be a positive integer, got num-blocks=-1
// NNEG-NOT: see current operation
// NNEG-NOT: builtin.module

// attnres-report: one remark per chain (L, S, N, D, element size, bytes moved
// per token per sublayer by the Full, naive block and two-phase forms, from
// the I/O model of section 6 of the semantics, and the sources of every
// aggregation) and one per function (the largest number of depth sources
// live at once). Full AttnRes chains are reported for block-size=4 (or
// num-blocks=3, the same S here).

// The bundled 12-sublayer example: L = 12, D = 64, bf16. Full AttnRes keeps
// all 13 sources live.
func.func private @f(tensor<16x64xbf16>) -> tensor<16x64xbf16>
// expected-remark @+1 {{attnres-report: max live depth sources: 13}}
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
  // expected-remark @+1 {{attnres-report: Full AttnRes chain: L = 12 sublayers, S = 4, N = 3 blocks, D = 64 bf16 (2 B/element); bytes moved per token per sublayer: Full 960 B, naive block 1024 B, two-phase 736 B (standard residual 384 B); sources per aggregation: 1 2 3 4 5 6 7 8 9 10 11 12, final 13}}
  %out = attnres.aggregate %w12, %g12 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  return %out : tensor<16x64xbf16>
}

// -----

// A chain already in block form is reported with its own S and N, and it
// keeps N + 1 = 3 summaries plus one partial sum at most.
// expected-remark @+2 {{attnres-report: max live depth sources: 3}}
func.func private @f(tensor<8x16xf32>) -> tensor<8x16xf32>
func.func @blocked(%v0: tensor<8x16xf32>, %w: tensor<16xf32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  %h0 = attnres.aggregate %w, %g over %v0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y0 = func.call @f(%h0) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h1 = attnres.aggregate %w, %g over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y1 = func.call @f(%h1) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %b1 = attnres.block_sum %y0, %y1 : tensor<8x16xf32>
  %h2 = attnres.aggregate %w, %g over %v0, %b1 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y2 = func.call @f(%h2) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  // expected-remark @+1 {{attnres-report: Block AttnRes chain: L = 3 sublayers, S = 2, N = 2 blocks (last block 1), D = 16 f32 (4 B/element); bytes moved per token per sublayer: Full 192 B, naive block 320 B, two-phase 384 B (standard residual 192 B); sources per aggregation: 1 2 2, final 3}}
  %out = attnres.aggregate %w, %g over %v0, %b1, %y2 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  return %out : tensor<8x16xf32>
}

// -----

// Refused: two aggregations extend the first one and feed the same next
// one, so the chain is ambiguous.
// expected-remark @+2 {{attnres-report: max live depth sources: 3}}
func.func private @f(tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
func.func @ambiguous(%v0: tensor<8x16xf32>, %y0: tensor<8x16xf32>, %w: tensor<16xf32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  %h0 = attnres.aggregate %w, %g over %v0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y = func.call @f(%h0, %h0) : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  // expected-remark @+2 {{attnres-report: aggregation chain is ambiguous: several aggregations extend the same aggregation}}
  // expected-remark @+2 {{attnres-report: aggregation chain is ambiguous: several aggregations extend the same aggregation}}
  %h1a = attnres.aggregate %w, %g over %v0, %y {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %h1b = attnres.aggregate %g, %w over %v0, %y {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y1 = func.call @f(%h1a, %h1b) : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  %out = attnres.aggregate %w, %g over %v0, %y, %y1 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  return %out : tensor<8x16xf32>
}

// A module without AttnRes is left exactly as it is (no error, no change):
// the output equals the input as printed by attnres-opt.
// RUN: attnres-opt %attnres_src/test/Inputs/no-attnres.mlir > %t.none
// RUN: attnres-opt %attnres_src/test/Inputs/no-attnres.mlir --attnres-report=block-size=2 2>/dev/null > %t.none0
// RUN: diff %t.none %t.none0
