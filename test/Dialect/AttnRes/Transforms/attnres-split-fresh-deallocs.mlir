// RUN: attnres-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(attnres-split-fresh-deallocs))' | FileCheck %s

// Two fresh buffers freed unconditionally: each is freed right after its last
// use and leaves the block's bufferization.dealloc, which keeps the argument.
// CHECK-LABEL: func.func @fresh(
//  CHECK-SAME:   %[[ARG:.*]]: memref<4xf32>, %[[C:.*]]: i1, %[[OUT:.*]]: memref<4xf32>)
//       CHECK:   %[[A:.*]] = memref.alloc()
//       CHECK:   %[[B:.*]] = memref.alloc()
//       CHECK:   memref.copy %[[A]], %[[B]]
//  CHECK-NEXT:   memref.dealloc %[[A]]
//       CHECK:   memref.copy %[[B]], %[[OUT]]
//  CHECK-NEXT:   memref.dealloc %[[B]]
//  CHECK-NEXT:   arith.constant
//  CHECK-NEXT:   bufferization.dealloc (%[[ARG]] : memref<4xf32>) if (%[[C]])
//  CHECK-NEXT:   return
func.func @fresh(%arg: memref<4xf32>, %c: i1, %out: memref<4xf32>) {
  %true = arith.constant true
  %a = memref.alloc() : memref<4xf32>
  memref.copy %arg, %a : memref<4xf32> to memref<4xf32>
  %b = memref.alloc() : memref<4xf32>
  memref.copy %a, %b : memref<4xf32> to memref<4xf32>
  memref.copy %b, %out : memref<4xf32> to memref<4xf32>
  %f = arith.constant 1.0 : f32
  bufferization.dealloc (%a, %arg, %b : memref<4xf32>, memref<4xf32>, memref<4xf32>) if (%true, %c, %true)
  return
}

// -----

// The ownership-based pass lists buffers through
// memref.extract_strided_metadata; the buffer itself is freed after its last
// use, not counting the metadata op. A use inside a region counts as a use
// by the op holding the region.
// CHECK-LABEL: func.func @through_metadata(
//       CHECK:   %[[A:.*]] = memref.alloc()
//       CHECK:   scf.for
//       CHECK:     memref.store %{{.*}}, %[[A]]
//       CHECK:   }
//  CHECK-NEXT:   memref.dealloc %[[A]]
//  CHECK-NEXT:   memref.extract_strided_metadata %[[A]]
//  CHECK-NEXT:   bufferization.dealloc{{$}}
//  CHECK-NEXT:   return
func.func @through_metadata(%x: f32) {
  %true = arith.constant true
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %a = memref.alloc() : memref<4xf32>
  scf.for %i = %c0 to %c4 step %c1 {
    memref.store %x, %a[%i] : memref<4xf32>
  }
  %base, %off, %size, %stride = memref.extract_strided_metadata %a : memref<4xf32> -> memref<f32>, index, index, index
  bufferization.dealloc (%base : memref<f32>) if (%true)
  return
}

// -----

// Left in the dealloc: a returned buffer (retained), a buffer whose view is
// retained, a buffer passed to a call whose result is retained (the call may
// return it), a buffer freed under a condition, and one listed twice.
// CHECK-LABEL: func.func @kept(
//   CHECK-NOT:   memref.dealloc
//       CHECK:   bufferization.dealloc (%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} :
//   CHECK-NOT:   memref.dealloc
//       CHECK:   return
func.func private @identity(memref<4xf32>) -> memref<4xf32>
func.func @kept(%c: i1) -> (memref<4xf32>, memref<2xf32, strided<[1]>>, memref<4xf32>) {
  %true = arith.constant true
  %ret = memref.alloc() : memref<4xf32>
  %viewed = memref.alloc() : memref<4xf32>
  %view = memref.subview %viewed[0] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1]>>
  %called = memref.alloc() : memref<4xf32>
  %result = func.call @identity(%called) : (memref<4xf32>) -> memref<4xf32>
  %cond = memref.alloc() : memref<4xf32>
  %twice = memref.alloc() : memref<4xf32>
  %r:3 = bufferization.dealloc (%ret, %viewed, %called, %cond, %twice, %twice : memref<4xf32>, memref<4xf32>, memref<4xf32>, memref<4xf32>, memref<4xf32>, memref<4xf32>) if (%true, %true, %true, %c, %true, %true) retain (%ret, %view, %result : memref<4xf32>, memref<2xf32, strided<[1]>>, memref<4xf32>)
  return %ret, %view, %result : memref<4xf32>, memref<2xf32, strided<[1]>>, memref<4xf32>
}

// -----

// A buffer used in a later block (here: a successor) stays with the dealloc.
// CHECK-LABEL: func.func @other_block(
//   CHECK-NOT:   memref.dealloc
//       CHECK:   bufferization.dealloc (%{{.*}} : memref<4xf32>)
func.func @other_block(%x: f32) {
  %true = arith.constant true
  %c0 = arith.constant 0 : index
  %a = memref.alloc() : memref<4xf32>
  bufferization.dealloc (%a : memref<4xf32>) if (%true)
  cf.br ^bb1
^bb1:
  memref.store %x, %a[%c0] : memref<4xf32>
  return
}
