// A module without any AttnRes is left exactly as it is by every attnres pass
// (no error, no change): the output equals the input printed by attnres-opt.
//
// RUN: attnres-opt %s > %t.in
// RUN: attnres-opt %s --attnres-detect-residual-chains > %t.detect
// RUN: diff %t.in %t.detect
// RUN: attnres-opt %s --attnres-detect-residual-chains=report=true 2>/dev/null > %t.detect-report
// RUN: diff %t.in %t.detect-report
// RUN: attnres-opt %s --attnres-blockify=block-size=2 > %t.blockify
// RUN: diff %t.in %t.blockify
// RUN: attnres-opt %s --attnres-blockify=num-blocks=3 > %t.blockify-n
// RUN: diff %t.in %t.blockify-n
// RUN: attnres-opt %s --attnres-fuse-summaries > %t.fuse
// RUN: diff %t.in %t.fuse
// RUN: attnres-opt %s --attnres-report=block-size=2 2>/dev/null > %t.report
// RUN: diff %t.in %t.report
// RUN: attnres-opt %s --convert-attnres-to-linalg > %t.linalg
// RUN: diff %t.in %t.linalg
// RUN: attnres-opt %s --convert-attnres-to-gpu > %t.gpu
// RUN: diff %t.in %t.gpu
//
// An empty module too.
// RUN: echo "" | attnres-opt --attnres-detect-residual-chains --attnres-blockify=block-size=4 --attnres-fuse-summaries --convert-attnres-to-linalg --convert-attnres-to-gpu | FileCheck %s --check-prefix=EMPTY
// EMPTY: module {
// EMPTY-NEXT: }

// A plain residual chain with no norms (not scale-invariant: section 4 says
// it is not converted), a matmul and a declaration.
func.func private @mlp(tensor<4x16xf32>) -> tensor<4x16xf32>

func.func @plain(%x: tensor<4x16xf32>, %w: tensor<16x16xf32>) -> tensor<4x16xf32> {
  %y0 = func.call @mlp(%x) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %h1 = arith.addf %x, %y0 : tensor<4x16xf32>
  %y1 = func.call @mlp(%h1) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %h2 = arith.addf %h1, %y1 : tensor<4x16xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %m = linalg.matmul ins(%h2, %w : tensor<4x16xf32>, tensor<16x16xf32>) outs(%z : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %m : tensor<4x16xf32>
}

func.func @scalars(%a: f32, %b: f32) -> f32 {
  %c = arith.mulf %a, %b : f32
  %d = math.exp %c : f32
  return %d : f32
}
