// RUN: attnres-opt %s --verify-roundtrip | FileCheck %s
// RUN: attnres-opt %s | attnres-opt | FileCheck %s
// RUN: attnres-opt %s --mlir-print-op-generic > %t.generic.mlir
// RUN: attnres-opt %s | attnres-opt --mlir-print-op-generic > %t.custom.mlir
// RUN: diff %t.generic.mlir %t.custom.mlir

// Operands whose type the custom forms derive from the value type (a
// query's tensor<D x E>, per-token f32 tensors) need only be compatible with
// it (spec 0.4). Written in the generic form with a type that differs from
// the derived one, each op must print a custom form that parses back to the
// same op: the custom form lists those types in `operand_types(...)`. The
// last RUN lines check that the custom form means the same as the generic
// input (identical generic print).

// CHECK-LABEL: func @aggregate_dynamic_query
func.func @aggregate_dynamic_query(%q: tensor<?xf32>, %g: tensor<16xf32>,
                                   %a: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<8x16xf32> operand_types(tensor<?xf32>, tensor<16xf32>)
  %h = "attnres.aggregate"(%q, %g, %a, %a) {epsilon = 1.0e-06 : f32}
      : (tensor<?xf32>, tensor<16xf32>, tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  return %h : tensor<8x16xf32>
}

// CHECK-LABEL: func @aggregate_dynamic_sources
func.func @aggregate_dynamic_sources(%q: tensor<16xbf16>, %a: tensor<8x?xbf16>)
    -> tensor<8x?xbf16> {
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}} {epsilon = 0.000000e+00 : f32} : tensor<8x?xbf16> operand_types(tensor<16xbf16>, tensor<16xbf16>)
  %h = "attnres.aggregate"(%q, %q, %a) {epsilon = 0.0 : f32}
      : (tensor<16xbf16>, tensor<16xbf16>, tensor<8x?xbf16>) -> tensor<8x?xbf16>
  return %h : tensor<8x?xbf16>
}

// When the types are the derived ones, no operand_types.
// CHECK-LABEL: func @aggregate_derived
func.func @aggregate_derived(%q: tensor<?xf32>, %a: tensor<8x?xf32>) -> tensor<8x?xf32> {
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<8x?xf32>{{$}}
  %h = "attnres.aggregate"(%q, %q, %a) {epsilon = 1.0e-06 : f32}
      : (tensor<?xf32>, tensor<?xf32>, tensor<8x?xf32>) -> tensor<8x?xf32>
  return %h : tensor<8x?xf32>
}

// CHECK-LABEL: func @block_score_types
func.func @block_score_types(%W: tensor<?x64xf32>, %G: tensor<?x64xf32>,
                             %b0: tensor<?x64xf32>, %r0: tensor<8xf32>,
                             %o: tensor<2x8x64xf32>, %l: tensor<2x8xf32>)
    -> (tensor<2x8x64xf32>, tensor<2x8xf32>) {
  // CHECK: attnres.block_score %{{.*}}, %{{.*}} over %{{.*}} inv_rms %{{.*}} outs %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<?x64xf32> -> tensor<2x8x64xf32> operand_types(tensor<?x64xf32>, tensor<?x64xf32>, tensor<8xf32>, tensor<2x8xf32>)
  %out, %lse = "attnres.block_score"(%W, %G, %b0, %r0, %o, %l)
      {epsilon = 1.0e-06 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1>}
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<8xf32>, tensor<2x8x64xf32>, tensor<2x8xf32>)
      -> (tensor<2x8x64xf32>, tensor<2x8xf32>)
  return %out, %lse : tensor<2x8x64xf32>, tensor<2x8xf32>
}

// CHECK-LABEL: func @merge_types
func.func @merge_types(%o: tensor<8x?xf16>, %lse: tensor<?xf32>,
                       %w: tensor<32xf16>, %y: tensor<8x?xf16>, %gn: tensor<?xf16>)
    -> (tensor<8x?xf16>, tensor<8x?xf16>, tensor<8x?xf16>) {
  // CHECK: attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} norm %{{.*}} {epsilon = 9.99999997E-7 : f32, norm_epsilon = 9.99999974E-6 : f32} : tensor<8x?xf16> operand_types(tensor<?xf32>, tensor<32xf16>, tensor<32xf16>, tensor<?xf16>)
  %h, %p, %hn = "attnres.merge"(%o, %lse, %w, %w, %y, %gn)
      {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32}
      : (tensor<8x?xf16>, tensor<?xf32>, tensor<32xf16>, tensor<32xf16>, tensor<8x?xf16>, tensor<?xf16>)
      -> (tensor<8x?xf16>, tensor<8x?xf16>, tensor<8x?xf16>)
  return %h, %p, %hn : tensor<8x?xf16>, tensor<8x?xf16>, tensor<8x?xf16>
}
