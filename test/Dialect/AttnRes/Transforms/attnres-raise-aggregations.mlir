// attnres-raise-aggregations alone: on the generated raising cases it gives
// exactly what attnres-detect-residual-chains gives with conversion off
// (raising is the first half of that pipeline), and it converts no chain.
// RUN: attnres-opt %S/detect-residual-chains-raise.mlir --split-input-file -attnres-raise-aggregations > %t.raise
// RUN: attnres-opt %S/detect-residual-chains-raise.mlir --split-input-file -attnres-detect-residual-chains=convert-standard=false > %t.pipe
// RUN: diff %t.raise %t.pipe
// RUN: FileCheck %s --input-file=%t.raise
// RUN: attnres-opt %S/detect-residual-chains.mlir --split-input-file -attnres-raise-aggregations | FileCheck %s --check-prefix=NOCONV
// CHECK: attnres.aggregate
// NOCONV-NOT: ml_program.global
// NOCONV-NOT: attnres.aggregate

// The remark of a raised aggregation.
// RUN: attnres-opt %s -attnres-raise-aggregations=report=true -verify-diagnostics | FileCheck %s --check-prefix=ONE
// ONE: attnres.aggregate %{{.*}}, %{{.*}} over %arg0, %arg1
// ONE-NOT: math.exp
func.func @concat_softmax(%v0: tensor<4x8xf32>, %v1: tensor<4x8xf32>,
                          %q: tensor<8xf32>) -> tensor<4x8xf32> {
  %e0 = tensor.expand_shape %v0 [[0, 1], [2]] output_shape [1, 4, 8]
      : tensor<4x8xf32> into tensor<1x4x8xf32>
  %e1 = tensor.expand_shape %v1 [[0, 1], [2]] output_shape [1, 4, 8]
      : tensor<4x8xf32> into tensor<1x4x8xf32>
  %s = tensor.concat dim(0) %e0, %e1
      : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<2x4x8xf32>
  %cst0 = arith.constant 0.0 : f32
  %eps = arith.constant 1.0e-6 : f32
  %d = arith.constant 8.0 : f32
  %e2 = tensor.empty() : tensor<2x4xf32>
  %z2 = linalg.fill ins(%cst0 : f32) outs(%e2 : tensor<2x4xf32>) -> tensor<2x4xf32>
  // sum of squares and dot with q over the feature dim
  %ss = linalg.generic {indexing_maps = [affine_map<(n, t, k) -> (n, t, k)>, affine_map<(n, t, k) -> (n, t)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%s : tensor<2x4x8xf32>) outs(%z2 : tensor<2x4xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %m = arith.mulf %x, %x : f32
    %a = arith.addf %acc, %m : f32
    linalg.yield %a : f32
  } -> tensor<2x4xf32>
  %dot = linalg.generic {indexing_maps = [affine_map<(n, t, k) -> (n, t, k)>, affine_map<(n, t, k) -> (k)>, affine_map<(n, t, k) -> (n, t)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%s, %q : tensor<2x4x8xf32>, tensor<8xf32>) outs(%z2 : tensor<2x4xf32>) {
  ^bb0(%x: f32, %w: f32, %acc: f32):
    %m = arith.mulf %x, %w : f32
    %a = arith.addf %acc, %m : f32
    linalg.yield %a : f32
  } -> tensor<2x4xf32>
  // logits z = dot / sqrt(ss / D + eps); weights exp(z) (no max subtraction)
  %w = linalg.generic {indexing_maps = [affine_map<(n, t) -> (n, t)>, affine_map<(n, t) -> (n, t)>, affine_map<(n, t) -> (n, t)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%ss, %dot : tensor<2x4xf32>, tensor<2x4xf32>) outs(%e2 : tensor<2x4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.divf %a, %d : f32
    %p = arith.addf %m, %eps : f32
    %r = math.rsqrt %p : f32
    %z = arith.mulf %b, %r : f32
    %x = math.exp %z : f32
    linalg.yield %x : f32
  } -> tensor<2x4xf32>
  %e1d = tensor.empty() : tensor<4xf32>
  %z1 = linalg.fill ins(%cst0 : f32) outs(%e1d : tensor<4xf32>) -> tensor<4xf32>
  %den = linalg.generic {indexing_maps = [affine_map<(t, n) -> (n, t)>, affine_map<(t, n) -> (t)>],
      iterator_types = ["parallel", "reduction"]}
      ins(%w : tensor<2x4xf32>) outs(%z1 : tensor<4xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %a = arith.addf %acc, %x : f32
    linalg.yield %a : f32
  } -> tensor<4xf32>
  %eo = tensor.empty() : tensor<4x8xf32>
  %zo = linalg.fill ins(%cst0 : f32) outs(%eo : tensor<4x8xf32>) -> tensor<4x8xf32>
  // expected-remark @below {{raised an AttnRes aggregation over 2 sources to attnres.aggregate}}
  %h = linalg.generic {indexing_maps = [affine_map<(t, k, n) -> (n, t, k)>, affine_map<(t, k, n) -> (n, t)>, affine_map<(t, k, n) -> (t)>, affine_map<(t, k, n) -> (t, k)>],
      iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%s, %w, %den : tensor<2x4x8xf32>, tensor<2x4xf32>, tensor<4xf32>) outs(%zo : tensor<4x8xf32>) {
  ^bb0(%x: f32, %a: f32, %sum: f32, %acc: f32):
    %p = arith.divf %a, %sum : f32
    %m = arith.mulf %p, %x : f32
    %r = arith.addf %acc, %m : f32
    linalg.yield %r : f32
  } -> tensor<4x8xf32>
  return %h : tensor<4x8xf32>
}
