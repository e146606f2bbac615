// RUN: attnres-opt %s --verify-roundtrip | FileCheck %s
// RUN: attnres-opt %s --mlir-print-op-generic | attnres-opt | FileCheck %s
// RUN: attnres-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// Round trip of the training ops (docs/spec.md section I) in custom and
// generic form. --verify-roundtrip also checks that the printed custom and
// generic forms parse back to the same IR (and the bytecode).

// CHECK-LABEL: func @stats
// GENERIC-LABEL: sym_name = "stats"
func.func @stats(%q: tensor<64xbf16>, %g: tensor<64xbf16>,
                 %a: tensor<?x64xbf16>, %b: tensor<?x64xbf16>, %c: tensor<?x64xbf16>)
    -> (tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>) {
  // CHECK: %{{.*}}, %{{.*}}, %{{.*}}:3 = attnres.aggregate_stats %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 9.99999974E-6 : f32} : tensor<?x64xbf16>
  // GENERIC: "attnres.aggregate_stats"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epsilon = 9.99999974E-6 : f32}> : (tensor<64xbf16>, tensor<64xbf16>, tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<?x64xbf16>) -> (tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>)
  %h, %lse, %r:3 = attnres.aggregate_stats %q, %g over %a, %b, %c {epsilon = 1.0e-05 : f32} : tensor<?x64xbf16>
  return %h, %lse, %r#0, %r#1, %r#2 : tensor<?x64xbf16>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
}

// One source, one token (rank 1: the statistics are 0-d), f32.
// CHECK-LABEL: func @stats_one_source_rank1
func.func @stats_one_source_rank1(%q: tensor<8xf32>, %a: tensor<8xf32>)
    -> (tensor<8xf32>, tensor<f32>, tensor<f32>) {
  // CHECK: attnres.aggregate_stats %{{.*}}, %{{.*}} over %{{.*}} {epsilon = 0.000000e+00 : f32} : tensor<8xf32>
  %h, %lse, %r = attnres.aggregate_stats %q, %q over %a {epsilon = 0.0 : f32} : tensor<8xf32>
  return %h, %lse, %r : tensor<8xf32>, tensor<f32>, tensor<f32>
}

// CHECK-LABEL: func @grad
// GENERIC-LABEL: sym_name = "grad"
func.func @grad(%q: tensor<64xbf16>, %g: tensor<64xbf16>,
                %a: tensor<4x64xbf16>, %b: tensor<4x64xbf16>,
                %lse: tensor<4xf32>, %ra: tensor<4xf32>, %rb: tensor<4xf32>,
                %dh: tensor<4x64xbf16>)
    -> (tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<64xf32>, tensor<64xf32>) {
  // CHECK: %{{.*}}:2, %{{.*}}, %{{.*}} = attnres.aggregate_grad %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} stats %{{.*}}, %{{.*}}, %{{.*}} grad %{{.*}} {epsilon = 9.99999974E-6 : f32} : tensor<4x64xbf16>
  // GENERIC: "attnres.aggregate_grad"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) <{epsilon = 9.99999974E-6 : f32, operandSegmentSizes = array<i32: 1, 1, 2, 1, 2, 1, 0>}> : (tensor<64xbf16>, tensor<64xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x64xbf16>) -> (tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<64xf32>, tensor<64xf32>)
  %dv:2, %dq, %dg = attnres.aggregate_grad %q, %g over %a, %b stats %lse, %ra, %rb grad %dh {epsilon = 1.0e-05 : f32} : tensor<4x64xbf16>
  return %dv#0, %dv#1, %dq, %dg : tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<64xf32>, tensor<64xf32>
}

// The accumulating form (spec I.2.2).
// CHECK-LABEL: func @grad_accumulate
// GENERIC-LABEL: sym_name = "grad_accumulate"
func.func @grad_accumulate(%q: tensor<?xf16>, %g: tensor<?xf16>,
                           %a: tensor<2x?x?xf16>, %b: tensor<2x?x?xf16>, %c: tensor<2x?x?xf16>,
                           %lse: tensor<2x?xf32>, %ra: tensor<2x?xf32>, %rb: tensor<2x?xf32>,
                           %rc: tensor<2x?xf32>, %dh: tensor<2x?x?xf16>,
                           %acc0: tensor<2x?x?xf16>, %acc1: tensor<2x?x?xf16>, %acc2: tensor<2x?x?xf16>)
    -> (tensor<2x?x?xf16>, tensor<?xf32>) {
  // CHECK: attnres.aggregate_grad %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}}, %{{.*}} stats %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} grad %{{.*}} accumulate %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 0.000000e+00 : f32} : tensor<2x?x?xf16>
  // GENERIC: operandSegmentSizes = array<i32: 1, 1, 3, 1, 3, 1, 3>
  %dv:3, %dq, %dg = attnres.aggregate_grad %q, %g over %a, %b, %c stats %lse, %ra, %rb, %rc grad %dh accumulate %acc0, %acc1, %acc2 {epsilon = 0.0 : f32} : tensor<2x?x?xf16>
  return %dv#2, %dg : tensor<2x?x?xf16>, tensor<?xf32>
}

// One source, one token, f32.
// CHECK-LABEL: func @grad_one_source
func.func @grad_one_source(%q: tensor<8xf32>, %a: tensor<8xf32>, %s: tensor<f32>)
    -> (tensor<8xf32>, tensor<8xf32>) {
  // CHECK: attnres.aggregate_grad %{{.*}}, %{{.*}} over %{{.*}} stats %{{.*}}, %{{.*}} grad %{{.*}} {epsilon = 1.000000e-01 : f32} : tensor<8xf32>
  %dv, %dq, %dg = attnres.aggregate_grad %q, %q over %a stats %s, %s grad %a {epsilon = 0.1 : f32} : tensor<8xf32>
  return %dv, %dq : tensor<8xf32>, tensor<8xf32>
}

// CHECK-LABEL: func @block_score_grad
// GENERIC-LABEL: sym_name = "block_score_grad"
func.func @block_score_grad(%W: tensor<3x64xbf16>, %G: tensor<3x64xbf16>,
                            %a: tensor<4x64xbf16>, %b: tensor<4x64xbf16>,
                            %lse: tensor<3x4xf32>, %ra: tensor<4xf32>, %rb: tensor<4xf32>,
                            %dout: tensor<3x4x64xbf16>, %dlse: tensor<3x4xf32>)
    -> (tensor<4x64xbf16>, tensor<3x64xf32>) {
  // CHECK: %{{.*}}:2, %{{.*}}, %{{.*}} = attnres.block_score_grad %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} stats %{{.*}}, %{{.*}}, %{{.*}} grad %{{.*}}, %{{.*}} {epsilon = 9.99999974E-6 : f32} : tensor<4x64xbf16> -> tensor<3x4x64xbf16>
  // GENERIC: "attnres.block_score_grad"({{.*}}) <{epsilon = 9.99999974E-6 : f32, operandSegmentSizes = array<i32: 1, 1, 2, 1, 2, 1, 1, 0>}> : (tensor<3x64xbf16>, tensor<3x64xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<3x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<3x4x64xbf16>, tensor<3x4xf32>) -> (tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<3x64xf32>, tensor<3x64xf32>)
  %db:2, %dW, %dG = attnres.block_score_grad %W, %G over %a, %b stats %lse, %ra, %rb grad %dout, %dlse {epsilon = 1.0e-05 : f32} : tensor<4x64xbf16> -> tensor<3x4x64xbf16>
  return %db#1, %dW : tensor<4x64xbf16>, tensor<3x64xf32>
}

// Dynamic S, tokens and D, one source, accumulate form.
// CHECK-LABEL: func @block_score_grad_dynamic_accumulate
// GENERIC-LABEL: sym_name = "block_score_grad_dynamic_accumulate"
func.func @block_score_grad_dynamic_accumulate(%W: tensor<?x?xf16>, %a: tensor<2x?x?xf16>,
                                               %lse: tensor<?x2x?xf32>, %r: tensor<2x?xf32>,
                                               %dout: tensor<?x2x?x?xf16>, %acc: tensor<2x?x?xf16>)
    -> (tensor<2x?x?xf16>, tensor<?x?xf32>) {
  // CHECK: attnres.block_score_grad %{{.*}}, %{{.*}} over %{{.*}} stats %{{.*}}, %{{.*}} grad %{{.*}}, %{{.*}} accumulate %{{.*}} {epsilon = 0.000000e+00 : f32} : tensor<2x?x?xf16> -> tensor<?x2x?x?xf16>
  // GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1, 1>
  %db, %dW, %dG = attnres.block_score_grad %W, %W over %a stats %lse, %r grad %dout, %lse accumulate %acc {epsilon = 0.0 : f32} : tensor<2x?x?xf16> -> tensor<?x2x?x?xf16>
  return %db, %dG : tensor<2x?x?xf16>, tensor<?x?xf32>
}

// CHECK-LABEL: func @merge_grad
// GENERIC-LABEL: sym_name = "merge_grad"
func.func @merge_grad(%o: tensor<4x64xbf16>, %lse: tensor<4xf32>, %w: tensor<64xbf16>,
                      %y: tensor<4x64xbf16>, %p: tensor<4x64xbf16>, %dh: tensor<4x64xbf16>)
    -> (tensor<4x64xbf16>, tensor<4xf32>, tensor<64xf32>) {
  // CHECK: %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} = attnres.merge_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} partial %{{.*}} grad %{{.*}}, %{{.*}} {epsilon = 9.99999974E-6 : f32} : tensor<4x64xbf16>
  // GENERIC: "attnres.merge_grad"({{.*}}) <{epsilon = 9.99999974E-6 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0, 1, 1, 0>}> : (tensor<4x64xbf16>, tensor<4xf32>, tensor<64xbf16>, tensor<64xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>) -> (tensor<4x64xbf16>, tensor<4xf32>, tensor<64xf32>, tensor<64xf32>, tensor<4x64xbf16>)
  %do, %dl, %dw, %dg, %dp = attnres.merge_grad %o, %lse, %w, %w update %y partial %p grad %dh, %dh {epsilon = 1.0e-05 : f32} : tensor<4x64xbf16>
  return %dp, %dl, %dg : tensor<4x64xbf16>, tensor<4xf32>, tensor<64xf32>
}

// No partial, fused norm, dynamic tokens and D.
// CHECK-LABEL: func @merge_grad_norm_dynamic
// GENERIC-LABEL: sym_name = "merge_grad_norm_dynamic"
func.func @merge_grad_norm_dynamic(%o: tensor<2x?x?xf16>, %lse: tensor<2x?xf32>, %w: tensor<?xf16>,
                                   %dh: tensor<2x?x?xf16>)
    -> (tensor<2x?x?xf16>, tensor<?xf32>) {
  // CHECK: attnres.merge_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} norm %{{.*}} grad %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 0.000000e+00 : f32, norm_epsilon = 9.99999974E-6 : f32} : tensor<2x?x?xf16>
  // GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 1, 1, 1, 1>
  // GENERIC-SAME: -> (tensor<2x?x?xf16>, tensor<2x?xf32>, tensor<?xf32>, tensor<?xf32>, tensor<2x?x?xf16>, tensor<?xf32>)
  %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %lse, %w, %w update %o norm %w grad %dh, %dh, %dh {epsilon = 0.0 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<2x?x?xf16>
  return %dp, %dgn : tensor<2x?x?xf16>, tensor<?xf32>
}
