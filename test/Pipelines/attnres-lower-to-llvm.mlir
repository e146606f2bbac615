// RUN: attnres-opt %s --attnres-lower-to-llvm | FileCheck %s
// RUN: attnres-opt %s --attnres-lower-to-llvm --dump-pass-pipeline 2>&1 >/dev/null \
// RUN:   | FileCheck %s --check-prefix=PIPELINE

// The CPU pipeline takes attnres and func/arith/tensor/linalg on tensors all
// the way to the LLVM dialect (numerics: test/Integration/CPU).

// One attnres pass before bufferization, attnres-stack-aggregate-sources
// (aggregations of a chain decomposed over one stacked tensor,
// docs/depth.md); upstream one-shot-bufferize bufferizes the other attnres
// ops through their BufferizableOpInterface models.
// PIPELINE-NOT: attnres
// PIPELINE: convert-elementwise-to-linalg
// PIPELINE-NOT: attnres
// PIPELINE: func.func(
// PIPELINE-NEXT: attnres-stack-aggregate-sources
// PIPELINE-NEXT: ),
// PIPELINE-NOT: attnres
// PIPELINE: one-shot-bufferize{{.*}}bufferize-function-boundaries=true
// PIPELINE: function-boundary-type-conversion=identity-layout-map
// PIPELINE: ownership-based-buffer-deallocation
// PIPELINE: convert-linalg-to-loops
// PIPELINE: convert-to-llvm
// PIPELINE: reconcile-unrealized-casts

// CHECK-LABEL: llvm.func @aggregate
// CHECK-NOT: attnres.
// CHECK-NOT: linalg.
// CHECK-NOT: tensor.
// CHECK-NOT: memref.
// CHECK-NOT: scf.
// CHECK-NOT: arith.
// CHECK: llvm.intr.exp
// CHECK: llvm.fptrunc {{.*}} : f32 to bf16
// CHECK: llvm.return
func.func @aggregate(%q: tensor<13xbf16>, %g: tensor<13xbf16>,
                     %a: tensor<?x13xbf16>, %b: tensor<?x13xbf16>)
    -> tensor<?x13xbf16> {
  %h = attnres.aggregate %q, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<?x13xbf16>
  return %h : tensor<?x13xbf16>
}

// Elementwise arith on tensors outside attnres ops lowers too.
// CHECK-LABEL: llvm.func @two_phase_f16
// CHECK-NOT: attnres.
// CHECK-NOT: linalg.
// CHECK: llvm.fpext {{.*}} : f16 to f32
// CHECK: llvm.return
func.func @two_phase_f16(%w: tensor<2x13xf16>, %g: tensor<2x13xf16>,
                         %q: tensor<13xf16>, %gq: tensor<13xf16>,
                         %b0: tensor<4x13xf16>, %b1: tensor<4x13xf16>,
                         %y: tensor<4x13xf16>) -> tensor<4x13xf32> {
  %oi = tensor.empty() : tensor<2x4x13xf16>
  %li = tensor.empty() : tensor<2x4xf32>
  %o, %lse = attnres.block_score %w, %g over %b0, %b1 outs %oi, %li
      {epsilon = 1.0e-06 : f32} : tensor<4x13xf16> -> tensor<2x4x13xf16>
  %o0 = tensor.extract_slice %o[0, 0, 0] [1, 4, 13] [1, 1, 1] : tensor<2x4x13xf16> to tensor<4x13xf16>
  %l0 = tensor.extract_slice %lse[0, 0] [1, 4] [1, 1] : tensor<2x4xf32> to tensor<4xf32>
  %h, %p = attnres.merge %o0, %l0, %q, %gq update %y {epsilon = 1.0e-06 : f32} : tensor<4x13xf16>
  %s = attnres.block_sum %h, %p : tensor<4x13xf16>
  %f = arith.extf %s : tensor<4x13xf16> to tensor<4x13xf32>
  return %f : tensor<4x13xf32>
}
