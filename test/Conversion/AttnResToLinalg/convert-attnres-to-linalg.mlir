// RUN: attnres-opt %s --split-input-file --convert-attnres-to-linalg | FileCheck %s

// Each attnres op becomes linalg.generic on tensors: f32 accumulation (extf
// on reads of f16/bf16, one truncf on the write), max-subtracted softmax.
// Numerics: test/Integration/CPU.

// CHECK-DAG: #[[ID3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[TOK3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[FEAT3:.*]] = affine_map<(d0, d1, d2) -> (d2)>
// CHECK-LABEL: func @aggregate_bf16
// CHECK-SAME: (%[[Q:.*]]: tensor<13xbf16>, %[[G:.*]]: tensor<13xbf16>, %[[A:.*]]: tensor<2x3x13xbf16>, %[[B:.*]]: tensor<2x3x13xbf16>)
// CHECK-NOT: attnres.
// Sum of squares of a source (f32 accumulator), then rsqrt(mean + eps).
// CHECK: %[[D:.*]] = arith.constant 1.300000e+01 : f32
// CHECK: %[[Z:.*]] = linalg.fill {{.*}} -> tensor<2x3xf32>
// CHECK: %[[SS:.*]] = linalg.generic {indexing_maps = [#[[ID3]], #[[TOK3]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[A]] : tensor<2x3x13xbf16>) outs(%[[Z]] : tensor<2x3xf32>)
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK:   arith.mulf
// CHECK:   arith.addf
// CHECK: %[[EPS:.*]] = arith.constant 9.99999997E-7 : f32
// CHECK: linalg.generic
// CHECK:   %[[MEAN:.*]] = arith.divf %{{.*}}, %[[D]] : f32
// CHECK:   %[[MS:.*]] = arith.addf %[[MEAN]], %[[EPS]] : f32
// CHECK:   math.rsqrt %[[MS]] : f32
// Score: (q * g) . v, reduced over D.
// CHECK: linalg.generic {indexing_maps = [#[[ID3]], #[[FEAT3]], #[[FEAT3]], #[[TOK3]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[A]], %[[Q]], %[[G]] :
// CHECK: linalg.generic {{.*}} ins(%[[B]] :
// CHECK: linalg.generic {{.*}} ins(%[[B]], %[[Q]], %[[G]] :
// Softmax over the two sources: z = r * dot, subtract the max, exp, divide.
// CHECK: %[[W:.*]]:2 = linalg.generic
// CHECK:   %[[Z0:.*]] = arith.mulf
// CHECK:   %[[Z1:.*]] = arith.mulf
// CHECK:   %[[M:.*]] = arith.maximumf %[[Z0]], %[[Z1]] : f32
// CHECK:   %[[S0:.*]] = arith.subf %[[Z0]], %[[M]] : f32
// CHECK:   %[[E0:.*]] = math.exp %[[S0]] : f32
// CHECK:   %[[S1:.*]] = arith.subf %[[Z1]], %[[M]] : f32
// CHECK:   %[[E1:.*]] = math.exp %[[S1]] : f32
// CHECK:   %[[SUM:.*]] = arith.addf %[[E0]], %[[E1]] : f32
// CHECK:   arith.divf %[[E0]], %[[SUM]]
// CHECK:   arith.divf %[[E1]], %[[SUM]]
// Weighted sum of the raw sources in f32, rounded once.
// CHECK: %[[H:.*]] = linalg.generic {indexing_maps = [#[[ID3]], #[[ID3]], #[[TOK3]], #[[TOK3]], #[[ID3]]], iterator_types = ["parallel", "parallel", "parallel"]} ins(%[[A]], %[[B]], %[[W]]#0, %[[W]]#1 :
// CHECK:   arith.extf
// CHECK:   arith.mulf
// CHECK:   arith.extf
// CHECK:   arith.mulf
// CHECK:   arith.addf
// CHECK:   %[[T:.*]] = arith.truncf %{{.*}} : f32 to bf16
// CHECK-NOT: arith.truncf
// CHECK:   linalg.yield %[[T]] : bf16
// CHECK: return %[[H]]
func.func @aggregate_bf16(%q: tensor<13xbf16>, %g: tensor<13xbf16>,
                          %a: tensor<2x3x13xbf16>, %b: tensor<2x3x13xbf16>)
    -> tensor<2x3x13xbf16> {
  %h = attnres.aggregate %q, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<2x3x13xbf16>
  return %h : tensor<2x3x13xbf16>
}

// -----

// One source: weight exactly 1, the result is the source (as the folder).
// CHECK-LABEL: func @aggregate_one_source
// CHECK-SAME: %[[V:[a-z0-9]+]]: tensor<?x13xf32>)
// CHECK-NOT: linalg.generic
// CHECK: return %[[V]]
func.func @aggregate_one_source(%q: tensor<13xf32>, %g: tensor<13xf32>,
                                %v: tensor<?x13xf32>) -> tensor<?x13xf32> {
  %h = attnres.aggregate %q, %g over %v {epsilon = 1.0e-06 : f32} : tensor<?x13xf32>
  return %h : tensor<?x13xf32>
}

// -----

// f32 storage: no extf/truncf; dynamic D enters the mean as index -> f32.
// CHECK-LABEL: func @aggregate_f32_dynamic
// CHECK-SAME: %[[A:[a-z0-9]+]]: tensor<?x?xf32>, %{{.*}}: tensor<?x?xf32>)
// CHECK-NOT: arith.extf
// CHECK-NOT: arith.truncf
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG: %[[DIMD:.*]] = tensor.dim %[[A]], %[[C1]] : tensor<?x?xf32>
// CHECK: %[[DI:.*]] = arith.index_cast %[[DIMD]] : index to i64
// CHECK: arith.uitofp %[[DI]] : i64 to f32
// CHECK: arith.maximumf
// CHECK: tensor.empty(%{{.*}}, %{{.*}}) : tensor<?x?xf32>
// CHECK-NOT: arith.extf
// CHECK-NOT: arith.truncf
// CHECK: return
func.func @aggregate_f32_dynamic(%q: tensor<?xf32>, %g: tensor<?xf32>,
                                 %a: tensor<?x?xf32>, %b: tensor<?x?xf32>)
    -> tensor<?x?xf32> {
  %h = attnres.aggregate %q, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<?x?xf32>
  return %h : tensor<?x?xf32>
}

// -----

// CHECK-LABEL: func @block_sum_f16
// CHECK-SAME: (%[[A:.*]]: tensor<?x13xf16>, %[[B:.*]]: tensor<?x13xf16>, %[[C:.*]]: tensor<?x13xf16>)
// CHECK: %[[N:.*]] = tensor.dim %[[A]], %{{.*}} : tensor<?x13xf16>
// CHECK: %[[E:.*]] = tensor.empty(%[[N]]) : tensor<?x13xf16>
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]} ins(%[[A]], %[[B]], %[[C]] : {{.*}}) outs(%[[E]] : tensor<?x13xf16>)
// CHECK:   arith.extf %{{.*}} : f16 to f32
// CHECK:   arith.extf %{{.*}} : f16 to f32
// CHECK:   arith.addf
// CHECK:   arith.extf %{{.*}} : f16 to f32
// CHECK:   arith.addf
// CHECK:   arith.truncf %{{.*}} : f32 to f16
func.func @block_sum_f16(%a: tensor<?x13xf16>, %b: tensor<?x13xf16>, %c: tensor<?x13xf16>) -> tensor<?x13xf16> {
  %s = attnres.block_sum %a, %b, %c : tensor<?x13xf16>
  return %s : tensor<?x13xf16>
}

// -----

// CHECK-LABEL: func @inv_rms
// CHECK-SAME: (%[[X:.*]]: tensor<?x?xbf16>)
// CHECK: %[[SS:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[X]] : tensor<?x?xbf16>) outs(%{{.*}} : tensor<?xf32>)
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK:   arith.mulf
// CHECK:   arith.addf
// CHECK: %[[D:.*]] = tensor.dim %[[X]], %{{.*}} : tensor<?x?xbf16>
// CHECK: %[[DI:.*]] = arith.index_cast %[[D]] : index to i64
// CHECK: %[[DF:.*]] = arith.uitofp %[[DI]] : i64 to f32
// CHECK: %[[R:.*]] = linalg.generic {{.*}} ins(%[[SS]] : tensor<?xf32>)
// CHECK:   arith.divf %{{.*}}, %[[DF]] : f32
// CHECK:   arith.addf
// CHECK:   math.rsqrt
// CHECK: return %[[R]]
func.func @inv_rms(%x: tensor<?x?xbf16>) -> tensor<?xf32> {
  %r = attnres.inv_rms %x {epsilon = 1.0e-06 : f32} : tensor<?x?xbf16> -> tensor<?xf32>
  return %r : tensor<?xf32>
}

// -----

// Phase 1 with given inverse RMS: no sum of squares, results written into
// the DPS inits.
// CHECK-DAG: #[[SRC:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[QRY:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[SL:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[ID2:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[RT:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[ID3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func @block_score
// CHECK-SAME: (%[[W:.*]]: tensor<3x13xbf16>, %[[G:.*]]: tensor<3x13xbf16>, %[[B0:.*]]: tensor<4x13xbf16>, %[[B1:.*]]: tensor<4x13xbf16>, %[[R0:.*]]: tensor<4xf32>, %[[R1:.*]]: tensor<4xf32>, %[[O:.*]]: tensor<3x4x13xbf16>, %[[L:.*]]: tensor<3x4xf32>)
// CHECK-NOT: math.rsqrt
// CHECK: %[[D0:.*]] = linalg.generic {indexing_maps = [#[[SRC]], #[[QRY]], #[[QRY]], #[[SL]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[B0]], %[[W]], %[[G]] : {{.*}}) outs(%{{.*}} : tensor<3x4xf32>)
// CHECK: %[[D1:.*]] = linalg.generic {{.*}} ins(%[[B1]], %[[W]], %[[G]] :
// CHECK: %[[SM:.*]]:3 = linalg.generic {indexing_maps = [#[[ID2]], #[[ID2]], #[[RT]], #[[RT]], #[[ID2]], #[[ID2]], #[[ID2]]], iterator_types = ["parallel", "parallel"]} ins(%[[D0]], %[[D1]], %[[R0]], %[[R1]] : {{.*}}) outs(%{{.*}}, %{{.*}}, %[[L]] :
// CHECK:   arith.maximumf
// CHECK:   arith.subf
// CHECK:   math.exp
// CHECK:   arith.subf
// CHECK:   math.exp
// CHECK:   %[[LOG:.*]] = math.log
// CHECK:   arith.addf %{{.*}}, %[[LOG]] : f32
// CHECK: %[[OUT:.*]] = linalg.generic {indexing_maps = [#[[SRC]], #[[SRC]], #[[SL]], #[[SL]], #[[ID3]]], iterator_types = ["parallel", "parallel", "parallel"]} ins(%[[B0]], %[[B1]], %[[SM]]#0, %[[SM]]#1 : {{.*}}) outs(%[[O]] : tensor<3x4x13xbf16>)
// CHECK:   arith.truncf %{{.*}} : f32 to bf16
// CHECK: return %[[OUT]], %[[SM]]#2
func.func @block_score(%w: tensor<3x13xbf16>, %g: tensor<3x13xbf16>,
                       %b0: tensor<4x13xbf16>, %b1: tensor<4x13xbf16>,
                       %r0: tensor<4xf32>, %r1: tensor<4xf32>,
                       %o: tensor<3x4x13xbf16>, %l: tensor<3x4xf32>)
    -> (tensor<3x4x13xbf16>, tensor<3x4xf32>) {
  %out, %lse = attnres.block_score %w, %g over %b0, %b1 inv_rms %r0, %r1 outs %o, %l
      {epsilon = 1.0e-06 : f32} : tensor<4x13xbf16> -> tensor<3x4x13xbf16>
  return %out, %lse : tensor<3x4x13xbf16>, tensor<3x4xf32>
}

// -----

// Phase 1 without inverse RMS operands computes them (one per source).
// CHECK-LABEL: func @block_score_no_inv_rms
// CHECK-COUNT-2: math.rsqrt
// CHECK: math.log
// CHECK-NOT: arith.truncf
// CHECK: return
func.func @block_score_no_inv_rms(%w: tensor<1x13xf32>, %g: tensor<1x13xf32>,
                                  %b0: tensor<?x13xf32>, %b1: tensor<?x13xf32>,
                                  %o: tensor<1x?x13xf32>, %l: tensor<1x?xf32>)
    -> (tensor<1x?x13xf32>, tensor<1x?xf32>) {
  %out, %lse = attnres.block_score %w, %g over %b0, %b1 outs %o, %l
      {epsilon = 1.0e-06 : f32} : tensor<?x13xf32> -> tensor<1x?x13xf32>
  return %out, %lse : tensor<1x?x13xf32>, tensor<1x?xf32>
}

// -----

// Phase 2: p' = partial + update in f32, gate = 1 / (1 + exp(lse - c)),
// h = out + gate * (p' - out); h and p' each rounded once.
// CHECK-LABEL: func @merge
// CHECK-SAME: (%[[O:.*]]: tensor<4x13xbf16>, %[[LSE:.*]]: tensor<4xf32>, %[[Q:.*]]: tensor<13xbf16>, %[[G:.*]]: tensor<13xbf16>, %[[Y:.*]]: tensor<4x13xbf16>, %[[P:.*]]: tensor<4x13xbf16>)
// CHECK: linalg.generic {{.*}} ins(%[[Y]], %[[P]] :
// CHECK: math.rsqrt
// CHECK: linalg.generic {{.*}} ins(%[[Y]], %[[P]], %[[Q]], %[[G]] :
// CHECK: %[[GATE:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %[[LSE]] :
// CHECK:   %[[C:.*]] = arith.mulf
// CHECK:   %[[X:.*]] = arith.subf %{{.*}}, %[[C]] : f32
// CHECK:   %[[E:.*]] = math.exp %[[X]] : f32
// CHECK:   %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK:   %[[DEN:.*]] = arith.addf %[[ONE]], %[[E]] : f32
// CHECK:   arith.divf %[[ONE]], %[[DEN]] : f32
// CHECK: %[[R:.*]]:2 = linalg.generic {{.*}} ins(%[[O]], %[[Y]], %[[P]], %[[GATE]] :
// CHECK:   %[[OF:.*]] = arith.extf
// CHECK:   %[[YF:.*]] = arith.extf
// CHECK:   %[[PF:.*]] = arith.extf
// CHECK:   %[[PN:.*]] = arith.addf %[[YF]], %[[PF]] : f32
// CHECK:   %[[DL:.*]] = arith.subf %[[PN]], %[[OF]] : f32
// CHECK:   %[[SC:.*]] = arith.mulf %{{.*}}, %[[DL]] : f32
// CHECK:   %[[H:.*]] = arith.addf %[[OF]], %[[SC]] : f32
// CHECK:   %[[HT:.*]] = arith.truncf %[[H]] : f32 to bf16
// CHECK:   %[[PT:.*]] = arith.truncf %[[PN]] : f32 to bf16
// CHECK:   linalg.yield %[[HT]], %[[PT]]
// CHECK: return %[[R]]#0, %[[R]]#1
func.func @merge(%o: tensor<4x13xbf16>, %lse: tensor<4xf32>, %q: tensor<13xbf16>,
                 %g: tensor<13xbf16>, %y: tensor<4x13xbf16>, %p: tensor<4x13xbf16>)
    -> (tensor<4x13xbf16>, tensor<4x13xbf16>) {
  %h, %p2 = attnres.merge %o, %lse, %q, %g update %y partial %p {epsilon = 1.0e-06 : f32} : tensor<4x13xbf16>
  return %h, %p2 : tensor<4x13xbf16>, tensor<4x13xbf16>
}

// -----

// The fused RMSNorm (spec E.5): after h is rounded, sum of the squares of the
// stored h, rsqrt(ss / D + norm_epsilon), and hn = h * r * gain_n rounded once.
// CHECK-LABEL: func @merge_norm
// CHECK-SAME: %[[GN:[a-z0-9]+]]: tensor<13xbf16>)
// CHECK: %[[R:.*]]:2 = linalg.generic
// CHECK:   linalg.yield
// CHECK: %[[SS:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[R]]#0 : tensor<4x13xbf16>)
// CHECK:   arith.extf
// CHECK:   arith.mulf
// CHECK:   arith.addf
// CHECK: %[[EPS:.*]] = arith.constant 9.99999974E-6 : f32
// CHECK: %[[RN:.*]] = linalg.generic {{.*}} ins(%[[SS]] : tensor<4xf32>)
// CHECK:   arith.divf
// CHECK:   arith.addf %{{.*}}, %[[EPS]] : f32
// CHECK:   math.rsqrt
// CHECK: %[[HN:.*]] = linalg.generic {{.*}} ins(%[[R]]#0, %[[RN]], %[[GN]] : tensor<4x13xbf16>, tensor<4xf32>, tensor<13xbf16>)
// CHECK:   %[[X:.*]] = arith.extf
// CHECK:   %[[XR:.*]] = arith.mulf %[[X]], %{{.*}} : f32
// CHECK:   %[[GF:.*]] = arith.extf
// CHECK:   %[[V:.*]] = arith.mulf %[[XR]], %[[GF]] : f32
// CHECK:   %[[T:.*]] = arith.truncf %[[V]] : f32 to bf16
// CHECK:   linalg.yield %[[T]]
// CHECK: return %[[R]]#1, %[[HN]]
func.func @merge_norm(%o: tensor<4x13xbf16>, %lse: tensor<4xf32>, %q: tensor<13xbf16>,
                      %g: tensor<13xbf16>, %y: tensor<4x13xbf16>, %p: tensor<4x13xbf16>,
                      %gn: tensor<13xbf16>)
    -> (tensor<4x13xbf16>, tensor<4x13xbf16>) {
  %h, %p2, %hn = attnres.merge %o, %lse, %q, %g update %y partial %p norm %gn {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<4x13xbf16>
  return %p2, %hn : tensor<4x13xbf16>, tensor<4x13xbf16>
}

// -----

// Without a partial sum the new partial is the update itself.
// CHECK-LABEL: func @merge_no_partial
// CHECK-SAME: %[[Y:[a-z0-9]+]]: tensor<?x13xf16>)
// CHECK: %[[H:.*]] = linalg.generic {{.*}} outs(%{{[^,]*}} : tensor<?x13xf16>)
// CHECK:   arith.truncf
// CHECK-NOT: arith.truncf
// CHECK: return %[[H]], %[[Y]]
func.func @merge_no_partial(%o: tensor<?x13xf16>, %lse: tensor<?xf32>, %q: tensor<13xf16>,
                            %g: tensor<13xf16>, %y: tensor<?x13xf16>)
    -> (tensor<?x13xf16>, tensor<?x13xf16>) {
  %h, %p2 = attnres.merge %o, %lse, %q, %g update %y {epsilon = 1.0e-06 : f32} : tensor<?x13xf16>
  return %h, %p2 : tensor<?x13xf16>, tensor<?x13xf16>
}

// Idempotence: the conversion run on its own output changes nothing (no
// attnres op is left).
// RUN: attnres-opt %attnres_src/test/Inputs/full-chain.mlir --attnres-blockify=block-size=2 --attnres-fuse-summaries --convert-attnres-to-linalg > %t.idem-l1
// RUN: attnres-opt %t.idem-l1 --convert-attnres-to-linalg > %t.idem-l2
// RUN: diff %t.idem-l1 %t.idem-l2
// RUN: FileCheck %s --check-prefix=IDEM < %t.idem-l1
// IDEM: linalg.generic
// IDEM-NOT: attnres.

// A module without AttnRes is left exactly as it is (no error, no change):
// the output equals the input as printed by attnres-opt.
// RUN: attnres-opt %attnres_src/test/Inputs/no-attnres.mlir > %t.none
// RUN: attnres-opt %attnres_src/test/Inputs/no-attnres.mlir --convert-attnres-to-linalg > %t.none0
// RUN: diff %t.none %t.none0
// An empty module too.
// RUN: echo "" | attnres-opt --convert-attnres-to-linalg | FileCheck %s --check-prefix=EMPTY
// EMPTY: module {
// EMPTY-NEXT: }
