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
// ONE-LABEL: func.func @one_source_softmax(
// ONE-SAME: %[[V0:[a-z0-9]+]]: tensor<4x8xf32>
// ONE-NOT: attnres.aggregate
// ONE-NOT: math.exp
// ONE: return %[[V0]] : tensor<4x8xf32>
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

// Full AttnRes's first aggregation written out: a softmax over one source
// (the embedding). It is raised like the others and folds to its source
// (spec A.4); written by utils/gen_detect_models.py --agg-only --layers 1.
func.func @one_source_softmax(%v0: tensor<4x8xf32>, %q: tensor<8xf32>, %g: tensor<8xf32>) -> tensor<4x8xf32> {
  %v1_e = tensor.empty() : tensor<1x4x8xf32>
  %v2_st = tensor.insert_slice %v0 into %v1_e[0, 0, 0] [1, 4, 8] [1, 1, 1] : tensor<4x8xf32> into tensor<1x4x8xf32>
  %v3_e = tensor.empty() : tensor<1x4x8xf32>
  %v4_sq = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%v2_st : tensor<1x4x8xf32>) outs(%v3_e : tensor<1x4x8xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      %r = arith.mulf %a0, %a0 : f32
      linalg.yield %r : f32
  } -> tensor<1x4x8xf32>
  %v5_c = arith.constant 0.0 : f32
  %v7_e = tensor.empty() : tensor<1x4xf32>
  %v6_z = linalg.fill ins(%v5_c : f32) outs(%v7_e : tensor<1x4xf32>) -> tensor<1x4xf32>
  %v8_ss = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%v4_sq : tensor<1x4x8xf32>) outs(%v6_z : tensor<1x4xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      %r = arith.addf %a0, %acc : f32
      linalg.yield %r : f32
  } -> tensor<1x4xf32>
  %v9_e = tensor.empty() : tensor<1x4xf32>
  %v10_rs = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%v8_ss : tensor<1x4xf32>) outs(%v9_e : tensor<1x4xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      %dd = arith.constant 8.000000e+00 : f32
      %ep = arith.constant 1.000000e-06 : f32
      %m = arith.divf %a0, %dd : f32
      %s = arith.addf %m, %ep : f32
      %r = math.rsqrt %s : f32
      linalg.yield %r : f32
  } -> tensor<1x4xf32>
  %v11_e = tensor.empty() : tensor<1x4x8xf32>
  %v12_kn = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%v2_st, %v10_rs, %g : tensor<1x4x8xf32>, tensor<1x4xf32>, tensor<8xf32>) outs(%v11_e : tensor<1x4x8xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %acc: f32):
      %m = arith.mulf %a0, %a1 : f32
      %r = arith.mulf %m, %a2 : f32
      linalg.yield %r : f32
  } -> tensor<1x4x8xf32>
  %v13_c = arith.constant 0.0 : f32
  %v15_e = tensor.empty() : tensor<1x4xf32>
  %v14_z = linalg.fill ins(%v13_c : f32) outs(%v15_e : tensor<1x4xf32>) -> tensor<1x4xf32>
  %v16_z = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%q, %v12_kn : tensor<8xf32>, tensor<1x4x8xf32>) outs(%v14_z : tensor<1x4xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %m = arith.mulf %a0, %a1 : f32
      %r = arith.addf %m, %acc : f32
      linalg.yield %r : f32
  } -> tensor<1x4xf32>
  %v17_ninf = arith.constant -3.4e38 : f32
  %v19_e = tensor.empty() : tensor<4xf32>
  %v18_mx0 = linalg.fill ins(%v17_ninf : f32) outs(%v19_e : tensor<4xf32>) -> tensor<4xf32>
  %v20_mx = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>], iterator_types = ["reduction", "parallel"]}
      ins(%v16_z : tensor<1x4xf32>) outs(%v18_mx0 : tensor<4xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      %r = arith.maximumf %a0, %acc : f32
      linalg.yield %r : f32
  } -> tensor<4xf32>
  %v21_e = tensor.empty() : tensor<1x4xf32>
  %v22_ex = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%v16_z, %v20_mx : tensor<1x4xf32>, tensor<4xf32>) outs(%v21_e : tensor<1x4xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %d = arith.subf %a0, %a1 : f32
      %r = math.exp %d : f32
      linalg.yield %r : f32
  } -> tensor<1x4xf32>
  %v23_c = arith.constant 0.0 : f32
  %v25_e = tensor.empty() : tensor<4xf32>
  %v24_z = linalg.fill ins(%v23_c : f32) outs(%v25_e : tensor<4xf32>) -> tensor<4xf32>
  %v26_sm = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>], iterator_types = ["reduction", "parallel"]}
      ins(%v22_ex : tensor<1x4xf32>) outs(%v24_z : tensor<4xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      %r = arith.addf %a0, %acc : f32
      linalg.yield %r : f32
  } -> tensor<4xf32>
  %v27_e = tensor.empty() : tensor<1x4xf32>
  %v28_a = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%v22_ex, %v26_sm : tensor<1x4xf32>, tensor<4xf32>) outs(%v27_e : tensor<1x4xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %r = arith.divf %a0, %a1 : f32
      linalg.yield %r : f32
  } -> tensor<1x4xf32>
  %v29_c = arith.constant 0.0 : f32
  %v31_e = tensor.empty() : tensor<4x8xf32>
  %v30_z = linalg.fill ins(%v29_c : f32) outs(%v31_e : tensor<4x8xf32>) -> tensor<4x8xf32>
  // expected-remark @below {{raised an AttnRes aggregation over 1 source to attnres.aggregate, which folds to its source}}
  %v32_agg = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>], iterator_types = ["reduction", "parallel", "parallel"]}
      ins(%v28_a, %v2_st : tensor<1x4xf32>, tensor<1x4x8xf32>) outs(%v30_z : tensor<4x8xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %m = arith.mulf %a0, %a1 : f32
      %r = arith.addf %acc, %m : f32
      linalg.yield %r : f32
  } -> tensor<4x8xf32>
  return %v32_agg : tensor<4x8xf32>
}
