// RUN: attnres-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(attnres-stack-aggregate-sources))' | FileCheck %s

// A Full AttnRes chain: every aggregation reads a prefix of v0, y0, y1, y2.
// The sequence lives in one buffer, each value copied into its slot once
// right after its definition; each aggregation reads a read-only tensor of
// the slots of its sources and becomes the same constant number of linalg
// ops, whatever its number of sources.
// CHECK-LABEL: func.func @chain(
//  CHECK-SAME:   %[[V0:[^:]*]]: tensor<2x64xf32>
//       CHECK:   %[[STACK:.*]] = memref.alloc() : memref<4x2x64xf32>
//       CHECK:   %[[SLOT0:.*]] = memref.subview %[[STACK]][0, 0, 0] [1, 2, 64] [1, 1, 1] : memref<4x2x64xf32> to memref<2x64xf32, strided<[64, 1]>>
//  CHECK-NEXT:   bufferization.materialize_in_destination %[[V0]] in restrict writable %[[SLOT0]]
//       CHECK:   %[[Y0:.*]] = call @f(
//  CHECK-NEXT:   %[[SLOT1:.*]] = memref.subview %[[STACK]][1, 0, 0] [1, 2, 64] [1, 1, 1]
//  CHECK-NEXT:   bufferization.materialize_in_destination %[[Y0]] in restrict writable %[[SLOT1]]
//  CHECK-NEXT:   %[[RUN2:.*]] = memref.subview %[[STACK]][0, 0, 0] [2, 2, 64] [1, 1, 1] : memref<4x2x64xf32> to memref<2x2x64xf32, strided<[128, 64, 1]>>
//  CHECK-NEXT:   %[[R2:.*]] = bufferization.to_tensor %[[RUN2]] restrict : {{.*}} to tensor<2x2x64xf32>
// Sums of squares and inverse RMS of every source, then every dot.
//       CHECK:   linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]{{.*}} ins(%[[R2]] : tensor<2x2x64xf32>) outs({{.*}} : tensor<2x2xf32>)
//       CHECK:     math.rsqrt
//       CHECK:   linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]{{.*}} ins(%[[R2]], {{.*}}) outs({{.*}} : tensor<2x2xf32>)
//       CHECK:   linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
//       CHECK:     arith.mulf
// Max, then sum of exponentials, over the sources (the outer loop).
//       CHECK:   linalg.generic {{.*}}iterator_types = ["reduction", "parallel"]
//       CHECK:     arith.maximumf
//       CHECK:   linalg.generic {{.*}}iterator_types = ["reduction", "parallel"]
//       CHECK:     math.exp
//       CHECK:   linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
//       CHECK:     arith.divf
// Weighted sum, reducing over the sources.
//       CHECK:   %[[H1:.*]] = linalg.generic {{.*}}iterator_types = ["reduction", "parallel", "parallel"]{{.*}} outs({{.*}} : tensor<2x64xf32>)
//       CHECK:   %[[Y1:.*]] = call @f(%[[H1]])
//  CHECK-NEXT:   memref.subview %[[STACK]][2, 0, 0]
//  CHECK-NEXT:   bufferization.materialize_in_destination %[[Y1]]
//  CHECK-NEXT:   memref.subview %[[STACK]][0, 0, 0] [3, 2, 64]
//       CHECK:   %[[Y2:.*]] = call @f(
//  CHECK-NEXT:   memref.subview %[[STACK]][3, 0, 0]
//  CHECK-NEXT:   bufferization.materialize_in_destination %[[Y2]]
// The last aggregation reads the whole stack.
//  CHECK-NEXT:   %[[ALL:.*]] = bufferization.to_tensor %[[STACK]] restrict : memref<4x2x64xf32> to tensor<4x2x64xf32>
//       CHECK:   linalg.generic {{.*}} ins(%[[ALL]] :
//   CHECK-NOT:   attnres.aggregate
//       CHECK:   return
func.func private @f(tensor<2x64xf32>) -> tensor<2x64xf32>

func.func @chain(%v0: tensor<2x64xf32>, %q: tensor<64xf32>, %g: tensor<64xf32>) -> tensor<2x64xf32> {
  %y0 = func.call @f(%v0) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %h1 = attnres.aggregate %q, %g over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y1 = func.call @f(%h1) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %h2 = attnres.aggregate %q, %g over %v0, %y0, %y1 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y2 = func.call @f(%h2) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %out = attnres.aggregate %q, %g over %v0, %y0, %y1, %y2 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  return %out : tensor<2x64xf32>
}

// -----

// A run that does not start the sequence reads the slots from its offset.
// Block arguments are defined in their order.
// CHECK-LABEL: func.func @offset_run(
//       CHECK:   %[[STACK:.*]] = memref.alloc() : memref<3x4x8xf32>
//       CHECK:   memref.subview %[[STACK]][0, 0, 0] [1, 4, 8]
//       CHECK:   memref.subview %[[STACK]][1, 0, 0] [1, 4, 8]
//       CHECK:   memref.subview %[[STACK]][2, 0, 0] [1, 4, 8]
//       CHECK:   bufferization.to_tensor %[[STACK]] restrict
//       CHECK:   memref.subview %[[STACK]][1, 0, 0] [2, 4, 8] [1, 1, 1]
//   CHECK-NOT:   attnres.aggregate
func.func @offset_run(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>, %c: tensor<4x8xf32>, %q: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %h0 = attnres.aggregate %q, %q over %a, %b, %c {epsilon = 1.0e-06 : f32} : tensor<4x8xf32>
  %h1 = attnres.aggregate %q, %q over %b, %c {epsilon = 1.0e-06 : f32} : tensor<4x8xf32>
  return %h0, %h1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// bf16 sources with a dynamic token dimension: the stack's size is read from
// the first source, the weighted sum is accumulated in f32 and rounded once.
// CHECK-LABEL: func.func @dynamic_bf16(
//  CHECK-SAME:   %[[A:[^:]*]]: tensor<?x16xbf16>
//       CHECK:   %[[C0:.*]] = arith.constant 0 : index
//       CHECK:   %[[T:.*]] = tensor.dim %[[A]], %[[C0]]
//       CHECK:   memref.alloc(%[[T]]) : memref<2x?x16xbf16>
//       CHECK:   arith.extf
//       CHECK:   linalg.generic {{.*}}iterator_types = ["reduction", "parallel", "parallel"]{{.*}} outs({{.*}} : tensor<?x16xf32>)
//       CHECK:   linalg.generic
//       CHECK:     arith.truncf {{.*}} : f32 to bf16
//   CHECK-NOT:   attnres.aggregate
func.func @dynamic_bf16(%a: tensor<?x16xbf16>, %b: tensor<?x16xbf16>, %q: tensor<16xbf16>) -> tensor<?x16xbf16> {
  %h = attnres.aggregate %q, %q over %a, %b {epsilon = 1.0e-06 : f32} : tensor<?x16xbf16>
  return %h : tensor<?x16xbf16>
}

// -----

// Left unchanged: sources out of definition order, a repeated source, one
// source, and sources defined outside the aggregation's block.
// CHECK-LABEL: func.func @unchanged(
//   CHECK-NOT:   memref.alloc
//       CHECK:   attnres.aggregate %{{.*}} over %[[B:.*]], %[[A:.*]] {
//       CHECK:   attnres.aggregate %{{.*}} over %{{.*}}, %{{.*}}, %{{.*}} {
//       CHECK:   attnres.aggregate %{{.*}} over %{{.*}} {
//       CHECK:   scf.if
//       CHECK:     attnres.aggregate
//   CHECK-NOT:   memref.alloc
func.func @unchanged(%a: tensor<2x8xf32>, %b: tensor<2x8xf32>, %q: tensor<8xf32>, %p: i1) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) {
  %h0 = attnres.aggregate %q, %q over %b, %a {epsilon = 1.0e-06 : f32} : tensor<2x8xf32>
  %h1 = attnres.aggregate %q, %q over %a, %b, %a {epsilon = 1.0e-06 : f32} : tensor<2x8xf32>
  %h2 = attnres.aggregate %q, %q over %a {epsilon = 1.0e-06 : f32} : tensor<2x8xf32>
  %h3 = scf.if %p -> tensor<2x8xf32> {
    %h = attnres.aggregate %q, %q over %a, %b {epsilon = 1.0e-06 : f32} : tensor<2x8xf32>
    scf.yield %h : tensor<2x8xf32>
  } else {
    scf.yield %a : tensor<2x8xf32>
  }
  return %h0, %h1, %h2, %h3 : tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>
}

// -----

// block_score of a Full chain after attnres-fuse-summaries (S = 1 query,
// inverse RMS operands): sources and inverse RMS each get their stack; the
// scores carry the query dimension and the lse is written into its outs.
// CHECK-LABEL: func.func @block_score(
//  CHECK-SAME:   %[[V0:[^:]*]]: tensor<2x8xf32>, %[[V1:[^:]*]]: tensor<2x8xf32>, %[[R0:[^:]*]]: tensor<2xf32>, %[[R1:[^:]*]]: tensor<2xf32>
//   CHECK-DAG:   %[[XS:.*]] = memref.alloc() : memref<2x2x8xf32>
//   CHECK-DAG:   %[[RS:.*]] = memref.alloc() : memref<2x2xf32>
//   CHECK-DAG:   bufferization.materialize_in_destination %[[V1]]
//   CHECK-DAG:   bufferization.materialize_in_destination %[[R1]]
//   CHECK-DAG:   %[[X:.*]] = bufferization.to_tensor %[[XS]] restrict
//   CHECK-DAG:   %[[R:.*]] = bufferization.to_tensor %[[RS]] restrict
// No sum of squares: the inverse RMS are read from their stack.
//   CHECK-NOT:   math.rsqrt
//       CHECK:   linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]{{.*}} ins(%[[X]], {{.*}}) outs({{.*}} : tensor<1x2x2xf32>)
//       CHECK:   linalg.generic {{.*}} ins(%{{.*}}, %[[R]] : tensor<1x2x2xf32>, tensor<2x2xf32>)
//       CHECK:   linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]
//       CHECK:     arith.maximumf
//       CHECK:   math.log
//       CHECK:   linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel", "parallel"]{{.*}} outs(%{{.*}} : tensor<1x2x8xf32>)
//   CHECK-NOT:   attnres.block_score
func.func @block_score(%v0: tensor<2x8xf32>, %v1: tensor<2x8xf32>, %r0: tensor<2xf32>, %r1: tensor<2xf32>, %q: tensor<1x8xf32>, %out: tensor<1x2x8xf32>, %lse: tensor<1x2xf32>) -> (tensor<1x2x8xf32>, tensor<1x2xf32>) {
  %o, %l = attnres.block_score %q, %q over %v0, %v1 inv_rms %r0, %r1 outs %out, %lse {epsilon = 1.0e-06 : f32} : tensor<2x8xf32> -> tensor<1x2x8xf32>
  return %o, %l : tensor<1x2x8xf32>, tensor<1x2xf32>
}
