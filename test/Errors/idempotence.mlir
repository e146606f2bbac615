// Every attnres pass run a second time on its own output changes nothing
// (convert-attnres-to-gpu: gpu-idempotence.mlir). Blockify, fuse-summaries
// and detection find no Full chain in their own output; the lowerings leave
// no attnres op behind.
//
// RUN: attnres-opt %s --attnres-detect-residual-chains > %t.d1
// RUN: attnres-opt %t.d1 --attnres-detect-residual-chains > %t.d2
// RUN: diff %t.d1 %t.d2
// RUN: attnres-opt %s --attnres-blockify=block-size=2 > %t.b1
// RUN: attnres-opt %t.b1 --attnres-blockify=block-size=2 > %t.b2
// RUN: diff %t.b1 %t.b2
// RUN: attnres-opt %t.b1 --attnres-blockify=block-size=3 > %t.b3
// RUN: diff %t.b1 %t.b3
// RUN: attnres-opt %t.b1 --attnres-fuse-summaries > %t.f1
// RUN: attnres-opt %t.f1 --attnres-fuse-summaries > %t.f2
// RUN: diff %t.f1 %t.f2
// RUN: attnres-opt %t.f1 --attnres-blockify=block-size=2 > %t.f3
// RUN: diff %t.f1 %t.f3
// A Full chain is Block AttnRes with S = 1: fusing it, then fusing again.
// RUN: attnres-opt %s --attnres-fuse-summaries > %t.ff1
// RUN: attnres-opt %t.ff1 --attnres-fuse-summaries > %t.ff2
// RUN: diff %t.ff1 %t.ff2
// RUN: attnres-opt %t.f1 --convert-attnres-to-linalg > %t.l1
// RUN: attnres-opt %t.l1 --convert-attnres-to-linalg > %t.l2
// RUN: diff %t.l1 %t.l2
//
// The first runs did something (so the diffs above are not vacuous).
// RUN: FileCheck %s --check-prefix=BLOCK < %t.b1
// BLOCK: attnres.block_sum
// RUN: FileCheck %s --check-prefix=FUSED < %t.f1
// FUSED: attnres.block_score
// FUSED: attnres.merge
// RUN: FileCheck %s --check-prefix=LINALG < %t.l1
// LINALG-NOT: attnres.

func.func private @f(tensor<2x64xf32>) -> tensor<2x64xf32>

func.func @chain(%v0: tensor<2x64xf32>, %w: tensor<5x64xf32>) -> tensor<2x64xf32> {
  %w0 = tensor.extract_slice %w[0, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %w1 = tensor.extract_slice %w[1, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %w2 = tensor.extract_slice %w[2, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %w3 = tensor.extract_slice %w[3, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %w4 = tensor.extract_slice %w[4, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %h0 = attnres.aggregate %w0, %w0 over %v0 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y0 = func.call @f(%h0) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %h1 = attnres.aggregate %w1, %w1 over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y1 = func.call @f(%h1) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %h2 = attnres.aggregate %w2, %w2 over %v0, %y0, %y1 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y2 = func.call @f(%h2) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %h3 = attnres.aggregate %w3, %w3 over %v0, %y0, %y1, %y2 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y3 = func.call @f(%h3) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %out = attnres.aggregate %w4, %w4 over %v0, %y0, %y1, %y2, %y3 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  return %out : tensor<2x64xf32>
}
