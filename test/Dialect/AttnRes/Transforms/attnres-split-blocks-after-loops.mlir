// RUN: attnres-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(attnres-split-blocks-after-loops))' | FileCheck %s

// The function's block ends after each loop; the pieces are joined by
// cf.br, in order. The loop bodies are not split.
// CHECK-LABEL: func.func @loops(
//       CHECK:   scf.for
//  CHECK-NEXT:     scf.for
//  CHECK-NEXT:       memref.store
//  CHECK-NEXT:     }
//  CHECK-NEXT:     memref.store
//  CHECK-NEXT:   }
//  CHECK-NEXT:   cf.br ^[[B1:bb[0-9]+]]
//  CHECK-NEXT: ^[[B1]]:
//  CHECK-NEXT:   arith.addf
//  CHECK-NEXT:   scf.for
//       CHECK:   }
//  CHECK-NEXT:   cf.br ^[[B2:bb[0-9]+]]
//  CHECK-NEXT: ^[[B2]]:
//  CHECK-NEXT:   return
func.func @loops(%m: memref<4xf32>, %x: f32) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %i = %c0 to %c4 step %c1 {
    scf.for %j = %c0 to %c4 step %c1 {
      memref.store %x, %m[%j] : memref<4xf32>
    }
    memref.store %x, %m[%i] : memref<4xf32>
  }
  %y = arith.addf %x, %x : f32
  scf.for %i = %c0 to %c4 step %c1 {
    memref.store %y, %m[%i] : memref<4xf32>
  }
  return %y : f32
}

// -----

// Nothing to split: no op with regions, or the last one ends the block.
// CHECK-LABEL: func.func @none(
//   CHECK-NOT:   cf.br
//       CHECK:   return
func.func @none(%x: f32) -> f32 {
  %y = arith.addf %x, %x : f32
  return %y : f32
}
