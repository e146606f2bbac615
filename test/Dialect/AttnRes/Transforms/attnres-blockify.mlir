// RUN: attnres-opt %s --verify-roundtrip --split-input-file --attnres-blockify=block-size=2 | FileCheck %s --check-prefixes=CHECK,S2
// RUN: attnres-opt %s --split-input-file --attnres-blockify=block-size=3 | FileCheck %s --check-prefixes=CHECK,S3
// RUN: attnres-opt %s --split-input-file --attnres-blockify=block-size=8 | FileCheck %s --check-prefixes=CHECK,S8
// RUN: attnres-opt %s --split-input-file --attnres-blockify=num-blocks=2 | FileCheck %s --check-prefixes=CHECK,N2

// block-size=1 gives back exactly the Full AttnRes function, and block-size
// wins over num-blocks.
// RUN: attnres-opt %s --split-input-file > %t.orig.mlir
// RUN: attnres-opt %s --split-input-file --attnres-blockify=block-size=1 > %t.s1.mlir
// RUN: diff %t.orig.mlir %t.s1.mlir
// RUN: attnres-opt %s --split-input-file --attnres-blockify="block-size=1 num-blocks=3" > %t.s1n3.mlir
// RUN: diff %t.orig.mlir %t.s1n3.mlir

// Bad options (issue 14.4) are one error each, located on the chain the
// options apply to (or the function when there is none), and never followed
// by a dump of the op or module ("see current operation", builtin.module).
// The same checks resolve S for attnres-report (attnres-report.mlir).
// RUN: not attnres-opt %s --split-input-file --attnres-blockify 2>&1 | FileCheck %s --check-prefixes=NOOPT,NODUMP
// RUN: not attnres-opt %s --split-input-file --attnres-blockify=block-size=-2 2>&1 | FileCheck %s --check-prefixes=NEG,NODUMP
// RUN: not attnres-opt %s --split-input-file --attnres-blockify=block-size=0 2>&1 | FileCheck %s --check-prefixes=ZERO,NODUMP
// RUN: not attnres-opt %s --split-input-file --attnres-blockify=num-blocks=0 2>&1 | FileCheck %s --check-prefixes=NZERO,NODUMP
// RUN: not attnres-opt %s --split-input-file --attnres-blockify=num-blocks=-3 2>&1 | FileCheck %s --check-prefixes=NNEG,NODUMP
// RUN: not attnres-opt %s --split-input-file --pass-pipeline='builtin.module(attnres-blockify{block-size=abc})' 2>&1 | FileCheck %s --check-prefixes=ABC,NODUMP
// NODUMP-NOT: see current operation
// NODUMP-NOT: builtin.module
// NOOPT: attnres-blockify.mlir:[[#@LINE+71]]:10: error: attnres-blockify needs block-size=S or num-blocks=N (for example attnres-blockify{block-size=4})
// NEG: attnres-blockify.mlir:[[#@LINE+70]]:10: error: attnres-blockify: block-size must be a positive integer, got block-size=-2
// ZERO: attnres-blockify.mlir:[[#@LINE+69]]:10: error: attnres-blockify: block-size must be a positive integer, got block-size=0
// NZERO: attnres-blockify.mlir:[[#@LINE+68]]:10: error: attnres-blockify: num-blocks must be a positive integer, got num-blocks=0
// NNEG: attnres-blockify.mlir:[[#@LINE+67]]:10: error: attnres-blockify: num-blocks must be a positive integer, got num-blocks=-3
// ABC: for the --block-size option: 'abc' value invalid for {{.*}} argument
// ABC: failed to add `attnres-blockify` with options `block-size=abc`
// NODUMP-NOT: see current operation
// NODUMP-NOT: builtin.module

// More than the chain has is a warning naming what is used, at the chain.
// RUN: attnres-opt %s --split-input-file --attnres-blockify=block-size=100 2>&1 >/dev/null | FileCheck %s --check-prefixes=BIG,NODUMP
// RUN: attnres-opt %s --split-input-file --attnres-blockify=num-blocks=9 2>&1 >/dev/null | FileCheck %s --check-prefixes=MANY,NODUMP
// BIG: attnres-blockify.mlir:[[#@LINE+58]]:10: warning: attnres-blockify: block-size=100 is larger than the chain's 4 sublayers; using S = 4 (one block)
// BIG: warning: attnres-blockify: block-size=100 is larger than the chain's 5 sublayers; using S = 5 (one block)
// MANY: attnres-blockify.mlir:[[#@LINE+56]]:10: warning: attnres-blockify: num-blocks=9 is more than the chain's 4 sublayers; using N = 4 (S = 1, Full AttnRes)

// Rewrites of Full AttnRes chains into Block AttnRes (semantics section 3):
// sublayer i of block n reads [b_0 .. b_(n-1)] (i = 0) or
// [b_0 .. b_(n-1), b_n^i] (i >= 1); b_0 is the embedding %arg0; every
// aggregation keeps its own query and gain; the final one reads all b.

// L = 4. Arguments: %arg0 = v_0, %arg1..%arg5 = w_0..w_4, %arg6..%arg10 = g_0..g_4.
// CHECK-LABEL: func.func @l4
// CHECK:      %[[H0:.*]] = attnres.aggregate %arg1, %arg6 over %arg0 {
// CHECK-NEXT: %[[Y0:.*]] = call @f(%[[H0]])
// CHECK-NEXT: %[[H1:.*]] = attnres.aggregate %arg2, %arg7 over %arg0, %[[Y0]] {
// CHECK-NEXT: %[[Y1:.*]] = call @f(%[[H1]])
// S2-NEXT:    %[[B1:.*]] = attnres.block_sum %[[Y0]], %[[Y1]] :
// S2-NEXT:    %[[H2:.*]] = attnres.aggregate %arg3, %arg8 over %arg0, %[[B1]] {
// S2-NEXT:    %[[Y2:.*]] = call @f(%[[H2]])
// S2-NEXT:    %[[H3:.*]] = attnres.aggregate %arg4, %arg9 over %arg0, %[[B1]], %[[Y2]] {
// S2-NEXT:    %[[Y3:.*]] = call @f(%[[H3]])
// S2-NEXT:    %[[B2:.*]] = attnres.block_sum %[[Y2]], %[[Y3]] :
// S2-NEXT:    %[[OUT:.*]] = attnres.aggregate %arg5, %arg10 over %arg0, %[[B1]], %[[B2]] {
// S2-NEXT:    return %[[OUT]]
// S3-NEXT:    %[[P2:.*]] = attnres.block_sum %[[Y0]], %[[Y1]] :
// S3-NEXT:    %[[H2:.*]] = attnres.aggregate %arg3, %arg8 over %arg0, %[[P2]] {
// S3-NEXT:    %[[Y2:.*]] = call @f(%[[H2]])
// S3-NEXT:    %[[B1:.*]] = attnres.block_sum %[[P2]], %[[Y2]] :
// S3-NEXT:    %[[H3:.*]] = attnres.aggregate %arg4, %arg9 over %arg0, %[[B1]] {
// S3-NEXT:    %[[Y3:.*]] = call @f(%[[H3]])
// S3-NEXT:    %[[OUT:.*]] = attnres.aggregate %arg5, %arg10 over %arg0, %[[B1]], %[[Y3]] {
// S3-NEXT:    return %[[OUT]]
// S8-NEXT:    %[[P2:.*]] = attnres.block_sum %[[Y0]], %[[Y1]] :
// S8-NEXT:    %[[H2:.*]] = attnres.aggregate %arg3, %arg8 over %arg0, %[[P2]] {
// S8-NEXT:    %[[Y2:.*]] = call @f(%[[H2]])
// S8-NEXT:    %[[P3:.*]] = attnres.block_sum %[[P2]], %[[Y2]] :
// S8-NEXT:    %[[H3:.*]] = attnres.aggregate %arg4, %arg9 over %arg0, %[[P3]] {
// S8-NEXT:    %[[Y3:.*]] = call @f(%[[H3]])
// S8-NEXT:    %[[B1:.*]] = attnres.block_sum %[[P3]], %[[Y3]] :
// S8-NEXT:    %[[OUT:.*]] = attnres.aggregate %arg5, %arg10 over %arg0, %[[B1]] {
// S8-NEXT:    return %[[OUT]]
// N2-NEXT:    %[[B1:.*]] = attnres.block_sum %[[Y0]], %[[Y1]] :
// N2-NEXT:    %[[H2:.*]] = attnres.aggregate %arg3, %arg8 over %arg0, %[[B1]] {
// N2-NEXT:    %[[Y2:.*]] = call @f(%[[H2]])
// N2-NEXT:    %[[H3:.*]] = attnres.aggregate %arg4, %arg9 over %arg0, %[[B1]], %[[Y2]] {
// N2-NEXT:    %[[Y3:.*]] = call @f(%[[H3]])
// N2-NEXT:    %[[B2:.*]] = attnres.block_sum %[[Y2]], %[[Y3]] :
// N2-NEXT:    %[[OUT:.*]] = attnres.aggregate %arg5, %arg10 over %arg0, %[[B1]], %[[B2]] {
// N2-NEXT:    return %[[OUT]]
func.func private @f(tensor<8x16xf32>) -> tensor<8x16xf32>
func.func @l4(%v0: tensor<8x16xf32>, %w0: tensor<16xf32>, %w1: tensor<16xf32>, %w2: tensor<16xf32>, %w3: tensor<16xf32>, %w4: tensor<16xf32>, %g0: tensor<16xf32>, %g1: tensor<16xf32>, %g2: tensor<16xf32>, %g3: tensor<16xf32>, %g4: tensor<16xf32>) -> tensor<8x16xf32> {
  %h0 = attnres.aggregate %w0, %g0 over %v0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y0 = func.call @f(%h0) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h1 = attnres.aggregate %w1, %g1 over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y1 = func.call @f(%h1) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h2 = attnres.aggregate %w2, %g2 over %v0, %y0, %y1 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y2 = func.call @f(%h2) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h3 = attnres.aggregate %w3, %g3 over %v0, %y0, %y1, %y2 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y3 = func.call @f(%h3) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %out = attnres.aggregate %w4, %g4 over %v0, %y0, %y1, %y2, %y3 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  return %out : tensor<8x16xf32>
}

// -----

// L = 5: with S = 2 the last block is shorter (2, 2, 1); num-blocks=2
// gives S = 3 (3, 2). %arg1..%arg6 = w_0..w_5, %arg7..%arg12 = g_0..g_5.
// CHECK-LABEL: func.func @l5
// CHECK:      %[[H0:.*]] = attnres.aggregate %arg1, %arg7 over %arg0 {
// CHECK-NEXT: %[[Y0:.*]] = call @f(%[[H0]])
// CHECK-NEXT: %[[H1:.*]] = attnres.aggregate %arg2, %arg8 over %arg0, %[[Y0]] {
// CHECK-NEXT: %[[Y1:.*]] = call @f(%[[H1]])
// S2-NEXT:    %[[B1:.*]] = attnres.block_sum %[[Y0]], %[[Y1]] :
// S2-NEXT:    %[[H2:.*]] = attnres.aggregate %arg3, %arg9 over %arg0, %[[B1]] {
// S2-NEXT:    %[[Y2:.*]] = call @f(%[[H2]])
// S2-NEXT:    %[[H3:.*]] = attnres.aggregate %arg4, %arg10 over %arg0, %[[B1]], %[[Y2]] {
// S2-NEXT:    %[[Y3:.*]] = call @f(%[[H3]])
// S2-NEXT:    %[[B2:.*]] = attnres.block_sum %[[Y2]], %[[Y3]] :
// S2-NEXT:    %[[H4:.*]] = attnres.aggregate %arg5, %arg11 over %arg0, %[[B1]], %[[B2]] {
// S2-NEXT:    %[[Y4:.*]] = call @f(%[[H4]])
// S2-NEXT:    %[[OUT:.*]] = attnres.aggregate %arg6, %arg12 over %arg0, %[[B1]], %[[B2]], %[[Y4]] {
// S2-NEXT:    return %[[OUT]]
// N2-NEXT:    %[[P2:.*]] = attnres.block_sum %[[Y0]], %[[Y1]] :
// N2-NEXT:    %[[H2:.*]] = attnres.aggregate %arg3, %arg9 over %arg0, %[[P2]] {
// N2-NEXT:    %[[Y2:.*]] = call @f(%[[H2]])
// N2-NEXT:    %[[B1:.*]] = attnres.block_sum %[[P2]], %[[Y2]] :
// N2-NEXT:    %[[H3:.*]] = attnres.aggregate %arg4, %arg10 over %arg0, %[[B1]] {
// N2-NEXT:    %[[Y3:.*]] = call @f(%[[H3]])
// N2-NEXT:    %[[H4:.*]] = attnres.aggregate %arg5, %arg11 over %arg0, %[[B1]], %[[Y3]] {
// N2-NEXT:    %[[Y4:.*]] = call @f(%[[H4]])
// N2-NEXT:    %[[B2:.*]] = attnres.block_sum %[[Y3]], %[[Y4]] :
// N2-NEXT:    %[[OUT:.*]] = attnres.aggregate %arg6, %arg12 over %arg0, %[[B1]], %[[B2]] {
// N2-NEXT:    return %[[OUT]]
func.func private @f(tensor<8x16xf32>) -> tensor<8x16xf32>
func.func @l5(%v0: tensor<8x16xf32>, %w0: tensor<16xf32>, %w1: tensor<16xf32>, %w2: tensor<16xf32>, %w3: tensor<16xf32>, %w4: tensor<16xf32>, %w5: tensor<16xf32>, %g0: tensor<16xf32>, %g1: tensor<16xf32>, %g2: tensor<16xf32>, %g3: tensor<16xf32>, %g4: tensor<16xf32>, %g5: tensor<16xf32>) -> tensor<8x16xf32> {
  %h0 = attnres.aggregate %w0, %g0 over %v0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y0 = func.call @f(%h0) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h1 = attnres.aggregate %w1, %g1 over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y1 = func.call @f(%h1) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h2 = attnres.aggregate %w2, %g2 over %v0, %y0, %y1 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y2 = func.call @f(%h2) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h3 = attnres.aggregate %w3, %g3 over %v0, %y0, %y1, %y2 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y3 = func.call @f(%h3) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h4 = attnres.aggregate %w4, %g4 over %v0, %y0, %y1, %y2, %y3 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y4 = func.call @f(%h4) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %out = attnres.aggregate %w5, %g5 over %v0, %y0, %y1, %y2, %y3, %y4 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  return %out : tensor<8x16xf32>
}

// -----

// L = 6 with inline sublayers and the first one-source aggregation folded
// away (h_0 = v_0). %arg1..%arg7 = w_0..w_6 (w_0 unused), %arg8.. = g.
// CHECK-LABEL: func.func @l6_folded_inline
// CHECK:      %[[T0:.*]] = arith.mulf %arg0, %arg0
// CHECK-NEXT: %[[Y0:.*]] = arith.addf %[[T0]], %arg0
// CHECK-NEXT: %[[H1:.*]] = attnres.aggregate %arg2, %arg9 over %arg0, %[[Y0]] {
// CHECK-NEXT: arith.mulf %[[H1]], %[[H1]]
// CHECK-NEXT: %[[Y1:.*]] = arith.addf
// S3-NEXT:    %[[P2:.*]] = attnres.block_sum %[[Y0]], %[[Y1]] :
// S3-NEXT:    %[[H2:.*]] = attnres.aggregate %arg3, %arg10 over %arg0, %[[P2]] {
// S3-NEXT:    arith.mulf %[[H2]], %[[H2]]
// S3-NEXT:    %[[Y2:.*]] = arith.addf
// S3-NEXT:    %[[B1:.*]] = attnres.block_sum %[[P2]], %[[Y2]] :
// S3-NEXT:    %[[H3:.*]] = attnres.aggregate %arg4, %arg11 over %arg0, %[[B1]] {
// S3-NEXT:    arith.mulf %[[H3]], %[[H3]]
// S3-NEXT:    %[[Y3:.*]] = arith.addf
// S3-NEXT:    %[[H4:.*]] = attnres.aggregate %arg5, %arg12 over %arg0, %[[B1]], %[[Y3]] {
// S3-NEXT:    arith.mulf %[[H4]], %[[H4]]
// S3-NEXT:    %[[Y4:.*]] = arith.addf
// S3-NEXT:    %[[P5:.*]] = attnres.block_sum %[[Y3]], %[[Y4]] :
// S3-NEXT:    %[[H5:.*]] = attnres.aggregate %arg6, %arg13 over %arg0, %[[B1]], %[[P5]] {
// S3-NEXT:    arith.mulf %[[H5]], %[[H5]]
// S3-NEXT:    %[[Y5:.*]] = arith.addf
// S3-NEXT:    %[[B2:.*]] = attnres.block_sum %[[P5]], %[[Y5]] :
// S3-NEXT:    %[[OUT:.*]] = attnres.aggregate %arg7, %arg14 over %arg0, %[[B1]], %[[B2]] {
// S3-NEXT:    return %[[OUT]]
// S2:         attnres.aggregate %arg7, %arg14 over %arg0, %{{.*}}, %{{.*}}, %{{.*}} {
// S8:         attnres.aggregate %arg7, %arg14 over %arg0, %{{[^,]*}} {
// N2:         attnres.aggregate %arg7, %arg14 over %arg0, %{{.*}}, %{{[^,]*}} {
func.func @l6_folded_inline(%v0: tensor<8x16xf32>, %w0: tensor<16xf32>, %w1: tensor<16xf32>, %w2: tensor<16xf32>, %w3: tensor<16xf32>, %w4: tensor<16xf32>, %w5: tensor<16xf32>, %w6: tensor<16xf32>, %g0: tensor<16xf32>, %g1: tensor<16xf32>, %g2: tensor<16xf32>, %g3: tensor<16xf32>, %g4: tensor<16xf32>, %g5: tensor<16xf32>, %g6: tensor<16xf32>) -> tensor<8x16xf32> {
  %t0 = arith.mulf %v0, %v0 : tensor<8x16xf32>
  %y0 = arith.addf %t0, %v0 : tensor<8x16xf32>
  %h1 = attnres.aggregate %w1, %g1 over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %t1 = arith.mulf %h1, %h1 : tensor<8x16xf32>
  %y1 = arith.addf %t1, %h1 : tensor<8x16xf32>
  %h2 = attnres.aggregate %w2, %g2 over %v0, %y0, %y1 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %t2 = arith.mulf %h2, %h2 : tensor<8x16xf32>
  %y2 = arith.addf %t2, %h2 : tensor<8x16xf32>
  %h3 = attnres.aggregate %w3, %g3 over %v0, %y0, %y1, %y2 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %t3 = arith.mulf %h3, %h3 : tensor<8x16xf32>
  %y3 = arith.addf %t3, %h3 : tensor<8x16xf32>
  %h4 = attnres.aggregate %w4, %g4 over %v0, %y0, %y1, %y2, %y3 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %t4 = arith.mulf %h4, %h4 : tensor<8x16xf32>
  %y4 = arith.addf %t4, %h4 : tensor<8x16xf32>
  %h5 = attnres.aggregate %w5, %g5 over %v0, %y0, %y1, %y2, %y3, %y4 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %t5 = arith.mulf %h5, %h5 : tensor<8x16xf32>
  %y5 = arith.addf %t5, %h5 : tensor<8x16xf32>
  %out = attnres.aggregate %w6, %g6 over %v0, %y0, %y1, %y2, %y3, %y4, %y5 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  return %out : tensor<8x16xf32>
}

// -----

// Not chains: a lone aggregation over unrelated values, and aggregations
// whose new source does not depend on the previous result. Unchanged.
// CHECK-LABEL: func.func @not_chains
// CHECK-NOT:   attnres.block_sum
// CHECK:       attnres.aggregate %arg3, %arg4 over %arg0, %arg1, %arg2 {
// CHECK:       attnres.aggregate %arg3, %arg4 over %arg0 {
// CHECK:       attnres.aggregate %arg3, %arg4 over %arg0, %arg1 {
// CHECK:       attnres.aggregate %arg3, %arg4 over %arg0, %arg1, %arg2 {
// CHECK-NOT:   attnres.block_sum
func.func @not_chains(%a: tensor<8x16xf32>, %b: tensor<8x16xf32>, %c: tensor<8x16xf32>,
                      %w: tensor<16xf32>, %g: tensor<16xf32>) -> (tensor<8x16xf32>, tensor<8x16xf32>) {
  %lone = attnres.aggregate %w, %g over %a, %b, %c {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %h0 = attnres.aggregate %w, %g over %a {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %h1 = attnres.aggregate %w, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %h2 = attnres.aggregate %w, %g over %a, %b, %c {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %s = arith.addf %h0, %h1 : tensor<8x16xf32>
  %t = arith.addf %s, %h2 : tensor<8x16xf32>
  return %lone, %t : tensor<8x16xf32>, tensor<8x16xf32>
}


// -----

// A chain already in block form (S = 2) is left alone.
// CHECK-LABEL: func.func @already_blocked
// CHECK-COUNT-2: attnres.block_sum
// CHECK-NOT:     attnres.block_sum
func.func private @f(tensor<8x16xf32>) -> tensor<8x16xf32>
func.func @already_blocked(%v0: tensor<8x16xf32>, %w: tensor<16xf32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  %h0 = attnres.aggregate %w, %g over %v0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y0 = func.call @f(%h0) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h1 = attnres.aggregate %w, %g over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y1 = func.call @f(%h1) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %b1 = attnres.block_sum %y0, %y1 : tensor<8x16xf32>
  %h2 = attnres.aggregate %w, %g over %v0, %b1 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y2 = func.call @f(%h2) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %h3 = attnres.aggregate %w, %g over %v0, %b1, %y2 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  %y3 = func.call @f(%h3) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %b2 = attnres.block_sum %y2, %y3 : tensor<8x16xf32>
  %out = attnres.aggregate %w, %g over %v0, %b1, %b2 {epsilon = 1.0e-06 : f32} : tensor<8x16xf32>
  return %out : tensor<8x16xf32>
}


// -----

// Dynamic token count and bf16: the sums take the sources' type.
// CHECK-LABEL: func.func @dynamic_bf16
// S2:          %[[B1:.*]] = attnres.block_sum %{{.*}}, %{{.*}} : tensor<?x64xbf16>
// S2:          attnres.aggregate %arg1, %arg2 over %arg0, %[[B1]] {{{.*}}} : tensor<?x64xbf16>
func.func private @f(tensor<?x64xbf16>) -> tensor<?x64xbf16>
func.func @dynamic_bf16(%v0: tensor<?x64xbf16>, %w: tensor<64xbf16>, %g: tensor<64xbf16>) -> tensor<?x64xbf16> {
  %h0 = attnres.aggregate %w, %g over %v0 {epsilon = 1.0e-06 : f32} : tensor<?x64xbf16>
  %y0 = func.call @f(%h0) : (tensor<?x64xbf16>) -> tensor<?x64xbf16>
  %h1 = attnres.aggregate %w, %g over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<?x64xbf16>
  %y1 = func.call @f(%h1) : (tensor<?x64xbf16>) -> tensor<?x64xbf16>
  %out = attnres.aggregate %w, %g over %v0, %y0, %y1 {epsilon = 1.0e-06 : f32} : tensor<?x64xbf16>
  return %out : tensor<?x64xbf16>
}


// Idempotence: blockify run on its own output, with the same S or another,
// and on the fused form, changes nothing (no Full chain is left).
// RUN: attnres-opt %attnres_src/test/Inputs/full-chain.mlir --attnres-blockify=block-size=2 > %t.idem-b1
// RUN: attnres-opt %t.idem-b1 --attnres-blockify=block-size=2 > %t.idem-b2
// RUN: diff %t.idem-b1 %t.idem-b2
// RUN: attnres-opt %t.idem-b1 --attnres-blockify=block-size=3 > %t.idem-b3
// RUN: diff %t.idem-b1 %t.idem-b3
// RUN: attnres-opt %t.idem-b1 --attnres-fuse-summaries > %t.idem-f1
// RUN: attnres-opt %t.idem-f1 --attnres-blockify=block-size=2 > %t.idem-f2
// RUN: diff %t.idem-f1 %t.idem-f2
// The first runs did something (so the diffs above are not vacuous).
// RUN: FileCheck %s --check-prefix=IDEM < %t.idem-b1
// IDEM: attnres.block_sum
// RUN: FileCheck %s --check-prefix=IDEM-FUSED < %t.idem-f1
// IDEM-FUSED: attnres.block_score

// A module without AttnRes is left exactly as it is (no error, no change):
// the output equals the input as printed by attnres-opt.
// RUN: attnres-opt %attnres_src/test/Inputs/no-attnres.mlir > %t.none
// RUN: attnres-opt %attnres_src/test/Inputs/no-attnres.mlir --attnres-blockify=block-size=2 > %t.none0
// RUN: diff %t.none %t.none0
// RUN: attnres-opt %attnres_src/test/Inputs/no-attnres.mlir --attnres-blockify=num-blocks=3 > %t.none1
// RUN: diff %t.none %t.none1
// An empty module too.
// RUN: echo "" | attnres-opt --attnres-blockify=block-size=4 | FileCheck %s --check-prefix=EMPTY
// EMPTY: module {
// EMPTY-NEXT: }
