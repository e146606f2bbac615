// RUN: attnres-opt %s --verify-roundtrip --split-input-file --attnres-blockify=block-size=4 --attnres-fuse-summaries --attnres-report --verify-diagnostics -o /dev/null
// RUN: attnres-opt %s --split-input-file --attnres-blockify=block-size=4 --attnres-fuse-summaries | FileCheck %s

// Memory: after attnres-blockify and attnres-fuse-summaries, at most N + 1
// summaries plus one partial sum are live, whatever L is (liveness of the
// depth sources computed by attnres-report on the rewritten IR), and no
// aggregation over all L outputs remains. L = 12: N + 1 = 4 (Full: 13);
// L = 24: N + 1 = 7 (Full: 25).

// CHECK-LABEL: func.func @chain12
// CHECK-NOT:   attnres.aggregate
// CHECK-COUNT-4: attnres.block_score
// CHECK-NOT:   attnres.block_score
// CHECK:       return
func.func private @f(tensor<16x64xbf16>) -> tensor<16x64xbf16>
// expected-remark @+1 {{attnres-report: max live depth sources: 4}}
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
  %out = attnres.aggregate %w12, %g12 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  return %out : tensor<16x64xbf16>
}

// -----

// CHECK-LABEL: func.func @chain24
// CHECK-NOT:   attnres.aggregate
// CHECK-COUNT-7: attnres.block_score
// CHECK-NOT:   attnres.block_score
// CHECK:       return
func.func private @f(tensor<16x64xbf16>) -> tensor<16x64xbf16>
// expected-remark @+1 {{attnres-report: max live depth sources: 7}}
func.func @chain24(%v0: tensor<16x64xbf16>, %w0: tensor<64xbf16>, %w1: tensor<64xbf16>, %w2: tensor<64xbf16>, %w3: tensor<64xbf16>, %w4: tensor<64xbf16>, %w5: tensor<64xbf16>, %w6: tensor<64xbf16>, %w7: tensor<64xbf16>, %w8: tensor<64xbf16>, %w9: tensor<64xbf16>, %w10: tensor<64xbf16>, %w11: tensor<64xbf16>, %w12: tensor<64xbf16>, %w13: tensor<64xbf16>, %w14: tensor<64xbf16>, %w15: tensor<64xbf16>, %w16: tensor<64xbf16>, %w17: tensor<64xbf16>, %w18: tensor<64xbf16>, %w19: tensor<64xbf16>, %w20: tensor<64xbf16>, %w21: tensor<64xbf16>, %w22: tensor<64xbf16>, %w23: tensor<64xbf16>, %w24: tensor<64xbf16>, %g0: tensor<64xbf16>, %g1: tensor<64xbf16>, %g2: tensor<64xbf16>, %g3: tensor<64xbf16>, %g4: tensor<64xbf16>, %g5: tensor<64xbf16>, %g6: tensor<64xbf16>, %g7: tensor<64xbf16>, %g8: tensor<64xbf16>, %g9: tensor<64xbf16>, %g10: tensor<64xbf16>, %g11: tensor<64xbf16>, %g12: tensor<64xbf16>, %g13: tensor<64xbf16>, %g14: tensor<64xbf16>, %g15: tensor<64xbf16>, %g16: tensor<64xbf16>, %g17: tensor<64xbf16>, %g18: tensor<64xbf16>, %g19: tensor<64xbf16>, %g20: tensor<64xbf16>, %g21: tensor<64xbf16>, %g22: tensor<64xbf16>, %g23: tensor<64xbf16>, %g24: tensor<64xbf16>) -> tensor<16x64xbf16> {
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
  %h12 = attnres.aggregate %w12, %g12 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y12 = func.call @f(%h12) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h13 = attnres.aggregate %w13, %g13 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y13 = func.call @f(%h13) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h14 = attnres.aggregate %w14, %g14 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y14 = func.call @f(%h14) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h15 = attnres.aggregate %w15, %g15 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y15 = func.call @f(%h15) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h16 = attnres.aggregate %w16, %g16 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y16 = func.call @f(%h16) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h17 = attnres.aggregate %w17, %g17 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15, %y16 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y17 = func.call @f(%h17) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h18 = attnres.aggregate %w18, %g18 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15, %y16, %y17 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y18 = func.call @f(%h18) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h19 = attnres.aggregate %w19, %g19 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15, %y16, %y17, %y18 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y19 = func.call @f(%h19) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h20 = attnres.aggregate %w20, %g20 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15, %y16, %y17, %y18, %y19 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y20 = func.call @f(%h20) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h21 = attnres.aggregate %w21, %g21 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15, %y16, %y17, %y18, %y19, %y20 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y21 = func.call @f(%h21) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h22 = attnres.aggregate %w22, %g22 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15, %y16, %y17, %y18, %y19, %y20, %y21 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y22 = func.call @f(%h22) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %h23 = attnres.aggregate %w23, %g23 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15, %y16, %y17, %y18, %y19, %y20, %y21, %y22 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  %y23 = func.call @f(%h23) : (tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %out = attnres.aggregate %w24, %g24 over %v0, %y0, %y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15, %y16, %y17, %y18, %y19, %y20, %y21, %y22, %y23 {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  return %out : tensor<16x64xbf16>
}
