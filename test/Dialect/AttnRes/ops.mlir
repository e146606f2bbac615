// RUN: attnres-opt %s --verify-roundtrip | attnres-opt | FileCheck %s
// RUN: attnres-opt %s --mlir-print-op-generic | attnres-opt | FileCheck %s
// RUN: attnres-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// Round trip of every op and every form in custom and generic form
// (docs/spec.md sections A-E). The second RUN line parses the generic form
// and prints the custom form again; the third checks the generic form itself.

// CHECK-LABEL: func @aggregate
// GENERIC-LABEL: sym_name = "aggregate"
func.func @aggregate(%q: tensor<64xbf16>, %g: tensor<64xbf16>,
                     %a: tensor<?x64xbf16>, %b: tensor<?x64xbf16>)
    -> tensor<?x64xbf16> {
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<?x64xbf16>
  // GENERIC: "attnres.aggregate"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epsilon = 9.99999997E-7 : f32}> : (tensor<64xbf16>, tensor<64xbf16>, tensor<?x64xbf16>, tensor<?x64xbf16>) -> tensor<?x64xbf16>
  %h = attnres.aggregate %q, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<?x64xbf16>
  return %h : tensor<?x64xbf16>
}

// CHECK-LABEL: func @aggregate_one_source_f32
func.func @aggregate_one_source_f32(%q: tensor<8xf32>, %g: tensor<8xf32>,
                                    %a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}} {epsilon = 0.000000e+00 : f32} : tensor<4x8xf32>
  %h = attnres.aggregate %q, %g over %a {epsilon = 0.0 : f32} : tensor<4x8xf32>
  return %h : tensor<4x8xf32>
}

// CHECK-LABEL: func @aggregate_3d_f16
func.func @aggregate_3d_f16(%q: tensor<32xf16>, %g: tensor<32xf16>,
                            %a: tensor<2x3x32xf16>, %b: tensor<2x3x32xf16>,
                            %c: tensor<2x3x32xf16>) -> tensor<2x3x32xf16> {
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 9.99999974E-6 : f32} : tensor<2x3x32xf16>
  %h = attnres.aggregate %q, %g over %a, %b, %c {epsilon = 1.0e-05 : f32} : tensor<2x3x32xf16>
  return %h : tensor<2x3x32xf16>
}

// One token (rank 1) and a fully dynamic shape with a dynamic D.
// CHECK-LABEL: func @aggregate_rank1_and_dynamic
func.func @aggregate_rank1_and_dynamic(%q: tensor<16xf32>, %a: tensor<16xf32>,
                                       %qd: tensor<?xbf16>, %d: tensor<?x?x?xbf16>)
    -> (tensor<16xf32>, tensor<?x?x?xbf16>) {
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<16xf32>
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = 1.0e-06 : f32} : tensor<16xf32>
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<?x?x?xbf16>
  %k = attnres.aggregate %qd, %qd over %d, %d {epsilon = 1.0e-06 : f32} : tensor<?x?x?xbf16>
  return %h, %k : tensor<16xf32>, tensor<?x?x?xbf16>
}

// Discardable attributes survive next to epsilon.
// CHECK-LABEL: func @aggregate_extra_attr
func.func @aggregate_extra_attr(%q: tensor<8xf32>, %a: tensor<4x8xf32>)
    -> tensor<4x8xf32> {
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32, tag = "l3"} : tensor<4x8xf32>
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = 1.0e-06 : f32, tag = "l3"} : tensor<4x8xf32>
  return %h : tensor<4x8xf32>
}

// CHECK-LABEL: func @block_sum
// GENERIC-LABEL: sym_name = "block_sum"
func.func @block_sum(%a: tensor<16x64xbf16>, %b: tensor<16x64xbf16>,
                     %c: tensor<16x64xbf16>, %d: tensor<?x8x4xf16>,
                     %e: tensor<?x8x4xf16>, %f: tensor<4xf32>)
    -> (tensor<16x64xbf16>, tensor<?x8x4xf16>, tensor<4xf32>) {
  // CHECK: attnres.block_sum %{{.*}}, %{{.*}}, %{{.*}} : tensor<16x64xbf16>
  // GENERIC: "attnres.block_sum"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>) -> tensor<16x64xbf16>
  %s = attnres.block_sum %a, %b, %c : tensor<16x64xbf16>
  // CHECK: attnres.block_sum %{{.*}}, %{{.*}} : tensor<?x8x4xf16>
  %t = attnres.block_sum %d, %e : tensor<?x8x4xf16>
  // CHECK: attnres.block_sum %{{.*}} : tensor<4xf32>
  %u = attnres.block_sum %f : tensor<4xf32>
  return %s, %t, %u : tensor<16x64xbf16>, tensor<?x8x4xf16>, tensor<4xf32>
}

// CHECK-LABEL: func @inv_rms
// GENERIC-LABEL: sym_name = "inv_rms"
func.func @inv_rms(%a: tensor<16x64xbf16>, %b: tensor<?x3x8xf16>,
                   %c: tensor<8xf32>, %d: tensor<?x64xf32>)
    -> (tensor<16xf32>, tensor<?x3xf32>, tensor<f32>, tensor<4xf32>) {
  // CHECK: attnres.inv_rms %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<16x64xbf16> -> tensor<16xf32>
  // GENERIC: "attnres.inv_rms"(%{{.*}}) <{epsilon = 9.99999997E-7 : f32}> : (tensor<16x64xbf16>) -> tensor<16xf32>
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16> -> tensor<16xf32>
  // CHECK: attnres.inv_rms %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<?x3x8xf16> -> tensor<?x3xf32>
  %s = attnres.inv_rms %b {epsilon = 1.0e-06 : f32} : tensor<?x3x8xf16> -> tensor<?x3xf32>
  // One token: the result is a 0-d tensor.
  // CHECK: attnres.inv_rms %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<8xf32> -> tensor<f32>
  %t = attnres.inv_rms %c {epsilon = 1.0e-06 : f32} : tensor<8xf32> -> tensor<f32>
  // A static result may refine a dynamic input dimension (spec 0.4).
  // CHECK: attnres.inv_rms %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<?x64xf32> -> tensor<4xf32>
  %u = attnres.inv_rms %d {epsilon = 1.0e-06 : f32} : tensor<?x64xf32> -> tensor<4xf32>
  return %r, %s, %t, %u : tensor<16xf32>, tensor<?x3xf32>, tensor<f32>, tensor<4xf32>
}

// CHECK-LABEL: func @block_score
// GENERIC-LABEL: sym_name = "block_score"
func.func @block_score(%W: tensor<6x64xbf16>, %G: tensor<6x64xbf16>,
                       %b0: tensor<16x64xbf16>, %b1: tensor<16x64xbf16>,
                       %r0: tensor<16xf32>, %r1: tensor<16xf32>,
                       %o: tensor<6x16x64xbf16>, %l: tensor<6x16xf32>)
    -> (tensor<6x16x64xbf16>, tensor<6x16xf32>, tensor<6x16x64xbf16>, tensor<6x16xf32>) {
  // CHECK: = attnres.block_score %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} inv_rms %{{.*}}, %{{.*}} outs %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<16x64xbf16> -> tensor<6x16x64xbf16>
  // GENERIC: "attnres.block_score"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epsilon = 9.99999997E-7 : f32, operandSegmentSizes = array<i32: 1, 1, 2, 2, 1, 1>}> : (tensor<6x64xbf16>, tensor<6x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16xf32>, tensor<16xf32>, tensor<6x16x64xbf16>, tensor<6x16xf32>) -> (tensor<6x16x64xbf16>, tensor<6x16xf32>)
  %out, %lse = attnres.block_score %W, %G over %b0, %b1 inv_rms %r0, %r1
      outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16> -> tensor<6x16x64xbf16>
  // CHECK: = attnres.block_score %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} outs %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<16x64xbf16> -> tensor<6x16x64xbf16>
  // GENERIC: operandSegmentSizes = array<i32: 1, 1, 2, 0, 1, 1>
  %out2, %lse2 = attnres.block_score %W, %G over %b0, %b1
      outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16> -> tensor<6x16x64xbf16>
  return %out, %lse, %out2, %lse2
      : tensor<6x16x64xbf16>, tensor<6x16xf32>, tensor<6x16x64xbf16>, tensor<6x16xf32>
}

// One source, one query, 3-D f32 sources and dynamic S and token dimensions.
// CHECK-LABEL: func @block_score_dynamic
func.func @block_score_dynamic(%W: tensor<?x8xf32>, %b0: tensor<?x2x8xf32>,
                               %r0: tensor<?x2xf32>,
                               %o: tensor<?x?x2x8xf32>, %l: tensor<?x?x2xf32>,
                               %W1: tensor<1x8xf16>, %c0: tensor<3x8xf16>,
                               %o1: tensor<1x3x8xf16>, %l1: tensor<1x3xf32>)
    -> (tensor<?x?x2x8xf32>, tensor<?x?x2xf32>, tensor<1x3x8xf16>, tensor<1x3xf32>) {
  // CHECK: attnres.block_score %{{.*}}, %{{.*}} over %{{.*}} inv_rms %{{.*}} outs %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<?x2x8xf32> -> tensor<?x?x2x8xf32>
  %out, %lse = attnres.block_score %W, %W over %b0 inv_rms %r0
      outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x2x8xf32> -> tensor<?x?x2x8xf32>
  // CHECK: attnres.block_score %{{.*}}, %{{.*}} over %{{.*}} outs %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<3x8xf16> -> tensor<1x3x8xf16>
  %out1, %lse1 = attnres.block_score %W1, %W1 over %c0
      outs %o1, %l1 {epsilon = 1.0e-06 : f32} : tensor<3x8xf16> -> tensor<1x3x8xf16>
  return %out, %lse, %out1, %lse1
      : tensor<?x?x2x8xf32>, tensor<?x?x2xf32>, tensor<1x3x8xf16>, tensor<1x3xf32>
}

// CHECK-LABEL: func @merge
// GENERIC-LABEL: sym_name = "merge"
func.func @merge(%o: tensor<16x64xbf16>, %lse: tensor<16xf32>,
                 %w: tensor<64xbf16>, %g: tensor<64xbf16>,
                 %y: tensor<16x64xbf16>, %p: tensor<16x64xbf16>)
    -> (tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>) {
  // CHECK: = attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} partial %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<16x64xbf16>
  // GENERIC: "attnres.merge"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epsilon = 9.99999997E-7 : f32}> : (tensor<16x64xbf16>, tensor<16xf32>, tensor<64xbf16>, tensor<64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>) -> (tensor<16x64xbf16>, tensor<16x64xbf16>)
  %h, %p2 = attnres.merge %o, %lse, %w, %g update %y partial %p {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  // CHECK: = attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<16x64xbf16>
  // GENERIC: "attnres.merge"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epsilon = 9.99999997E-7 : f32}> : (tensor<16x64xbf16>, tensor<16xf32>, tensor<64xbf16>, tensor<64xbf16>, tensor<16x64xbf16>) -> (tensor<16x64xbf16>, tensor<16x64xbf16>)
  %h1, %p1 = attnres.merge %o, %lse, %w, %g update %y {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  return %h, %p2, %h1, %p1
      : tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>
}

// CHECK-LABEL: func @merge_norm
// GENERIC-LABEL: sym_name = "merge_norm"
func.func @merge_norm(%o: tensor<16x64xbf16>, %lse: tensor<16xf32>,
                      %w: tensor<64xbf16>, %g: tensor<64xbf16>,
                      %y: tensor<16x64xbf16>, %p: tensor<16x64xbf16>,
                      %gn: tensor<64xbf16>)
    -> (tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>) {
  // CHECK: %{{.*}}, %{{.*}}, %{{.*}} = attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} partial %{{.*}} norm %{{.*}} {epsilon = 9.99999997E-7 : f32, norm_epsilon = 9.99999974E-6 : f32} : tensor<16x64xbf16>
  // GENERIC: "attnres.merge"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epsilon = 9.99999997E-7 : f32, norm_epsilon = 9.99999974E-6 : f32}> : (tensor<16x64xbf16>, tensor<16xf32>, tensor<64xbf16>, tensor<64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<64xbf16>) -> (tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>)
  %h, %p2, %hn = attnres.merge %o, %lse, %w, %g update %y partial %p norm %gn {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<16x64xbf16>
  // CHECK: %{{.*}}, %{{.*}}, %{{.*}} = attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} norm %{{.*}} {epsilon = 9.99999997E-7 : f32, norm_epsilon = 0.000000e+00 : f32} : tensor<16x64xbf16>
  // GENERIC: "attnres.merge"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epsilon = 9.99999997E-7 : f32, norm_epsilon = 0.000000e+00 : f32}> : (tensor<16x64xbf16>, tensor<16xf32>, tensor<64xbf16>, tensor<64xbf16>, tensor<16x64xbf16>, tensor<64xbf16>) -> (tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>)
  %h1, %p1, %hn1 = attnres.merge %o, %lse, %w, %g update %y norm %gn {epsilon = 1.0e-06 : f32, norm_epsilon = 0.0 : f32} : tensor<16x64xbf16>
  return %hn, %p2, %hn1, %p1
      : tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>
}

// CHECK-LABEL: func @merge_3d_dynamic
func.func @merge_3d_dynamic(%o: tensor<?x4x32xf16>, %lse: tensor<?x4xf32>,
                            %w: tensor<32xf16>, %y: tensor<?x4x32xf16>,
                            %p: tensor<?x4x32xf16>, %of: tensor<32xf32>,
                            %lf: tensor<f32>)
    -> (tensor<?x4x32xf16>, tensor<?x4x32xf16>, tensor<32xf32>, tensor<32xf32>) {
  // CHECK: attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} partial %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<?x4x32xf16>
  %h, %p2 = attnres.merge %o, %lse, %w, %w update %y partial %p {epsilon = 1.0e-06 : f32} : tensor<?x4x32xf16>
  // CHECK: attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<32xf32>
  %h1, %p1 = attnres.merge %of, %lf, %of, %of update %of {epsilon = 1.0e-06 : f32} : tensor<32xf32>
  return %h, %p2, %h1, %p1
      : tensor<?x4x32xf16>, tensor<?x4x32xf16>, tensor<32xf32>, tensor<32xf32>
}
