// RUN: attnres-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(attnres-stack-aggregate-sources))' | FileCheck %s

// A Full AttnRes chain: every aggregation reads a prefix of v0, y0, y1, y2.
// The sequence lives in one tensor<4x2x64xf32>, each value inserted once
// right after its definition; each aggregation becomes the same constant
// number of linalg ops over the slice holding its sources.
// CHECK-LABEL: func.func @chain(
//  CHECK-SAME:   %[[V0:[^:]*]]: tensor<2x64xf32>
//       CHECK:   %[[E:.*]] = tensor.empty() : tensor<4x2x64xf32>
//       CHECK:   %[[S1:.*]] = tensor.insert_slice %[[V0]] into %[[E]][0, 0, 0] [1, 2, 64] [1, 1, 1]
//       CHECK:   %[[Y0:.*]] = call @f(
//  CHECK-NEXT:   %[[S2:.*]] = tensor.insert_slice %[[Y0]] into %[[S1]][1, 0, 0] [1, 2, 64] [1, 1, 1]
//       CHECK:   %[[R2:.*]] = tensor.extract_slice %[[S2]][0, 0, 0] [2, 2, 64] [1, 1, 1] : tensor<4x2x64xf32> to tensor<2x2x64xf32>
// One reduction over D giving sum of squares and dot of every source.
//       CHECK:   linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]{{.*}} ins(%[[R2]], {{.*}}) outs({{.*}} : tensor<2x2xf32>, tensor<2x2xf32>)
//       CHECK:     math.rsqrt
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
//  CHECK-NEXT:   %[[S3:.*]] = tensor.insert_slice %[[Y1]] into %[[S2]][2, 0, 0]
//       CHECK:   tensor.extract_slice %[[S3]][0, 0, 0] [3, 2, 64]
//       CHECK:   %[[Y2:.*]] = call @f(
//  CHECK-NEXT:   %[[S4:.*]] = tensor.insert_slice %[[Y2]] into %[[S3]][3, 0, 0]
// The last aggregation reads the whole stack.
//   CHECK-NOT:   tensor.extract_slice
//       CHECK:   linalg.generic {{.*}} ins(%[[S4]],
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

// A run that does not start the sequence reads a slice at its offset.
// Block arguments are defined in their order.
// CHECK-LABEL: func.func @offset_run(
//       CHECK:   %[[E:.*]] = tensor.empty() : tensor<3x4x8xf32>
//       CHECK:   %[[S1:.*]] = tensor.insert_slice %{{.*}} into %[[E]][0, 0, 0]
//       CHECK:   %[[S2:.*]] = tensor.insert_slice %{{.*}} into %[[S1]][1, 0, 0]
//       CHECK:   %[[S3:.*]] = tensor.insert_slice %{{.*}} into %[[S2]][2, 0, 0]
//       CHECK:   linalg.generic {{.*}} ins(%[[S3]],
//       CHECK:   tensor.extract_slice %[[S3]][1, 0, 0] [2, 4, 8] [1, 1, 1]
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
//       CHECK:   tensor.empty(%[[T]]) : tensor<2x?x16xbf16>
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
//   CHECK-NOT:   tensor.insert_slice
//       CHECK:   attnres.aggregate %{{.*}} over %[[B:.*]], %[[A:.*]] {
//       CHECK:   attnres.aggregate %{{.*}} over %{{.*}}, %{{.*}}, %{{.*}} {
//       CHECK:   attnres.aggregate %{{.*}} over %{{.*}} {
//       CHECK:   scf.if
//       CHECK:     attnres.aggregate
//   CHECK-NOT:   tensor.insert_slice
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
