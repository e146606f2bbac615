// RUN: attnres-opt %s --split-input-file --convert-attnres-to-linalg | FileCheck %s
// RUN: attnres-opt %s --split-input-file --convert-attnres-to-linalg \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:   | FileCheck %s --check-prefix=BUF

// The training ops (docs/spec.md section I) through the decomposition
// interface: convert-attnres-to-linalg lowers them with no pass of their
// own. Numerics: test/Integration/CPU/grad.

// aggregate_stats: the inverse RMS of each source is written straight into
// its result's destination, lse = m + log(s) into lse's, h as in aggregate.
// CHECK-LABEL: func @stats
// CHECK-SAME: (%[[Q:.*]]: tensor<13xf16>, %[[G:.*]]: tensor<13xf16>, %[[A:.*]]: tensor<?x13xf16>, %[[B:.*]]: tensor<?x13xf16>)
// CHECK-NOT: attnres.
// CHECK: %[[HI:.*]] = tensor.empty(%{{.*}}) : tensor<?x13xf16>
// CHECK: %[[LI:.*]] = tensor.empty(%{{.*}}) : tensor<?xf32>
// CHECK: %[[RI0:.*]] = tensor.empty(%{{.*}}) : tensor<?xf32>
// CHECK: %[[RI1:.*]] = tensor.empty(%{{.*}}) : tensor<?xf32>
// CHECK: %[[SS0:.*]] = linalg.generic {{.*}} ins(%[[A]] : tensor<?x13xf16>)
// CHECK: %[[R0:.*]] = linalg.generic {{.*}} ins(%[[SS0]] : tensor<?xf32>) outs(%[[RI0]] : tensor<?xf32>)
// CHECK:   math.rsqrt
// CHECK: linalg.generic {{.*}} ins(%[[A]], %[[Q]], %[[G]] :
// CHECK: %[[R1:.*]] = linalg.generic {{.*}} outs(%[[RI1]] : tensor<?xf32>)
// CHECK: %[[SM:.*]]:3 = linalg.generic {{.*}} outs(%{{.*}}, %{{.*}}, %[[LI]] :
// CHECK:   math.exp
// CHECK:   math.log
// CHECK: %[[H:.*]] = linalg.generic {{.*}} ins(%[[A]], %[[B]], %[[SM]]#0, %[[SM]]#1 : {{.*}} outs(%[[HI]] : tensor<?x13xf16>)
// CHECK: return %[[H]], %[[SM]]#2, %[[R0]], %[[R1]]
func.func @stats(%q: tensor<13xf16>, %g: tensor<13xf16>, %a: tensor<?x13xf16>, %b: tensor<?x13xf16>)
    -> (tensor<?x13xf16>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>) {
  %h, %lse, %r:2 = attnres.aggregate_stats %q, %g over %a, %b {epsilon = 1.0e-05 : f32} : tensor<?x13xf16>
  return %h, %lse, %r#0, %r#1 : tensor<?x13xf16>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// One source: h is the source itself; the statistics are still computed.
// CHECK-LABEL: func @stats_one_source
// CHECK-SAME: %[[A:[^:]*]]: tensor<4x8xf32>
// CHECK: %[[SM:.*]]:2 = linalg.generic
// CHECK: return %[[A]], %[[SM]]#1, %{{.*}} :
func.func @stats_one_source(%q: tensor<8xf32>, %a: tensor<4x8xf32>)
    -> (tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>) {
  %h, %lse, %r = attnres.aggregate_stats %q, %q over %a {epsilon = 1.0e-05 : f32} : tensor<4x8xf32>
  return %h, %lse, %r : tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// aggregate_grad, accumulate form: per source the dot with w*g and with dh
// (reductions over D), one map over the tokens for the coefficients (a_i,
// dz_i r_i, -dz_i r_i^2 z_i / D), one map writing both dv_i into their
// accumulators (outs), one reduction over the tokens (the outer loop, spec
// I.2.1) for dwg, one map for dquery and dgain. After bufferization the
// accumulators are written in place: no copy, they are the results.
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[FEAT:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[TOK:.*]] = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func @grad_accumulate
// CHECK-SAME: (%[[Q:.*]]: tensor<13xbf16>, %[[G:.*]]: tensor<13xbf16>, %[[A:.*]]: tensor<4x13xbf16>, %[[B:.*]]: tensor<4x13xbf16>, %[[LSE:.*]]: tensor<4xf32>, %[[RA:.*]]: tensor<4xf32>, %[[RB:.*]]: tensor<4xf32>, %[[DH:.*]]: tensor<4x13xbf16>, %[[ACC0:.*]]: tensor<4x13xbf16>, %[[ACC1:.*]]: tensor<4x13xbf16>)
// CHECK-NOT: attnres.
// CHECK: %[[DQI:.*]] = tensor.empty() : tensor<13xf32>
// CHECK: %[[DGI:.*]] = tensor.empty() : tensor<13xf32>
// CHECK: %[[DOTA:.*]] = linalg.generic {{.*}} ins(%[[A]], %[[Q]], %[[G]] :
// CHECK: %[[DAA:.*]] = linalg.generic {{.*}} ins(%[[A]], %[[DH]] :
// CHECK: %[[DOTB:.*]] = linalg.generic {{.*}} ins(%[[B]], %[[Q]], %[[G]] :
// CHECK: %[[DAB:.*]] = linalg.generic {{.*}} ins(%[[B]], %[[DH]] :
// CHECK: %[[C:.*]]:6 = linalg.generic {{.*}} iterator_types = ["parallel"]} ins(%[[DOTA]], %[[DOTB]], %[[DAA]], %[[DAB]], %[[RA]], %[[RB]], %[[LSE]] :
// CHECK:   math.exp
// CHECK:   math.exp
// CHECK:   arith.negf
// CHECK: %[[DV:.*]]:2 = linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]} ins(%[[A]], %[[B]], %[[DH]], %[[Q]], %[[G]], %[[C]]#0, %[[C]]#1, %[[C]]#2, %[[C]]#3, %[[C]]#4, %[[C]]#5 : {{.*}} outs(%[[ACC0]], %[[ACC1]] :
// CHECK:   ^bb0({{.*}}, %[[OUT0:.*]]: bf16, %[[OUT1:.*]]: bf16):
// CHECK:   arith.extf %[[OUT0]]
// CHECK:   arith.truncf
// CHECK:   arith.extf %[[OUT1]]
// CHECK:   arith.truncf
// CHECK: %[[DW:.*]] = linalg.generic {indexing_maps = [#[[ID]], #[[ID]], #[[TOK]], #[[TOK]], #[[FEAT]]], iterator_types = ["reduction", "parallel"]} ins(%[[A]], %[[B]], %[[C]]#2, %[[C]]#3 :
// CHECK: %[[P:.*]]:2 = linalg.generic {{.*}} ins(%[[DW]], %[[Q]], %[[G]] : {{.*}} outs(%[[DQI]], %[[DGI]] :
// CHECK: return %[[DV]]#0, %[[DV]]#1, %[[P]]#0, %[[P]]#1
// BUF-LABEL: func @grad_accumulate
// BUF-SAME: %[[ACC0:[^:]*]]: memref<4x13xbf16>, %[[ACC1:[^:]*]]: memref<4x13xbf16>)
// BUF-NOT: memref.copy
// BUF: outs(%[[ACC0]], %[[ACC1]] : memref<4x13xbf16>, memref<4x13xbf16>)
// BUF-NOT: memref.copy
// BUF: return %[[ACC0]], %[[ACC1]],
func.func @grad_accumulate(%q: tensor<13xbf16>, %g: tensor<13xbf16>, %a: tensor<4x13xbf16>, %b: tensor<4x13xbf16>,
                           %lse: tensor<4xf32>, %ra: tensor<4xf32>, %rb: tensor<4xf32>, %dh: tensor<4x13xbf16>,
                           %acc0: tensor<4x13xbf16>, %acc1: tensor<4x13xbf16>)
    -> (tensor<4x13xbf16>, tensor<4x13xbf16>, tensor<13xf32>, tensor<13xf32>) {
  %dv:2, %dq, %dg = attnres.aggregate_grad %q, %g over %a, %b stats %lse, %ra, %rb grad %dh accumulate %acc0, %acc1 {epsilon = 1.0e-05 : f32} : tensor<4x13xbf16>
  return %dv#0, %dv#1, %dq, %dg : tensor<4x13xbf16>, tensor<4x13xbf16>, tensor<13xf32>, tensor<13xf32>
}

// -----

// Without accumulators the source gradients get new tensors.
// CHECK-LABEL: func @grad_3d
// CHECK: %[[DV0:.*]] = tensor.empty() : tensor<2x3x5xf32>
// CHECK: %[[DV1:.*]] = tensor.empty() : tensor<2x3x5xf32>
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel"]} {{.*}} outs(%[[DV0]], %[[DV1]] :
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "reduction", "parallel"]}
func.func @grad_3d(%q: tensor<5xf32>, %a: tensor<2x3x5xf32>, %l: tensor<2x3xf32>)
    -> (tensor<2x3x5xf32>, tensor<5xf32>) {
  %dv:2, %dq, %dg = attnres.aggregate_grad %q, %q over %a, %a stats %l, %l, %l grad %a {epsilon = 1.0e-05 : f32} : tensor<2x3x5xf32>
  return %dv#1, %dg : tensor<2x3x5xf32>, tensor<5xf32>
}

// -----

// One source: dv = acc + dh (one map into the accumulator), exact zeros for
// dquery and dgain; the statistics are not read.
// CHECK-LABEL: func @grad_one_source
// CHECK-SAME: (%[[Q:.*]]: tensor<8xf16>, %[[A:.*]]: tensor<4x8xf16>, %[[L:.*]]: tensor<4xf32>, %[[DH:.*]]: tensor<4x8xf16>, %[[ACC:.*]]: tensor<4x8xf16>)
// CHECK-NOT: %[[L]]
// CHECK: %[[DV:.*]] = linalg.generic {{.*}} ins(%[[DH]] : tensor<4x8xf16>) outs(%[[ACC]] : tensor<4x8xf16>)
// CHECK: %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[DQ:.*]] = linalg.fill ins(%[[Z]] : f32)
// CHECK: %[[DG:.*]] = linalg.fill ins(%[[Z]] : f32)
// CHECK: return %[[DV]], %[[DQ]], %[[DG]]
func.func @grad_one_source(%q: tensor<8xf16>, %a: tensor<4x8xf16>, %l: tensor<4xf32>, %dh: tensor<4x8xf16>,
                           %acc: tensor<4x8xf16>) -> (tensor<4x8xf16>, tensor<8xf32>, tensor<8xf32>) {
  %dv, %dq, %dg = attnres.aggregate_grad %q, %q over %a stats %l, %l grad %dh accumulate %acc {epsilon = 1.0e-05 : f32} : tensor<4x8xf16>
  return %dv, %dq, %dg : tensor<4x8xf16>, tensor<8xf32>, tensor<8xf32>
}

// -----

// block_score_grad, accumulate form: stacked dots with W_l G_l and with
// dout_l (loops [S, T, D]), one map over [S, T] for the coefficients (dlse
// enters dz), one generic over [T, D, S] summing each summary's gradient over
// the queries (S last, reducing, in order) into an f32 temporary, one map
// adding the accumulators (its outs) and rounding once, one reduction over
// the tokens for dwg. After bufferization the accumulators are written in
// place.
// CHECK-LABEL: func @block_score_grad_accumulate
// CHECK-SAME: %[[ACC0:[^:]*]]: tensor<4x13xbf16>, %[[ACC1:[^:]*]]: tensor<4x13xbf16>)
// CHECK-NOT: attnres.
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK: %[[C:.*]]:6 = linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]}
// a = e / sum(e), e = exp(z - lse): the softmax normalised by its sum as on
// the GPU (spec I.5).
// CHECK:   %[[E0:.*]] = math.exp
// CHECK:   %[[E1:.*]] = math.exp
// CHECK:   %[[SE:.*]] = arith.addf %[[E0]], %[[E1]] : f32
// CHECK:   %[[INV:.*]] = arith.divf %{{.*}}, %[[SE]] : f32
// CHECK:   %[[A0:.*]] = arith.mulf %[[E0]], %[[INV]] : f32
// CHECK:   linalg.yield %[[A0]],
// CHECK: %[[G:.*]]:2 = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} {{.*}} outs({{.*}} : tensor<4x13xf32>, tensor<4x13xf32>)
// CHECK: %[[DV:.*]]:2 = linalg.generic {{.*}} ins(%[[G]]#0, %[[G]]#1 : {{.*}} outs(%[[ACC0]], %[[ACC1]] :
// CHECK:   arith.truncf
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]}
// CHECK: return %[[DV]]#0, %[[DV]]#1,
// BUF-LABEL: func @block_score_grad_accumulate
// BUF-SAME: %[[ACC0:[^:]*]]: memref<4x13xbf16>, %[[ACC1:[^:]*]]: memref<4x13xbf16>)
// BUF-NOT: memref.copy
// BUF: outs(%[[ACC0]], %[[ACC1]] : memref<4x13xbf16>, memref<4x13xbf16>)
// BUF-NOT: memref.copy
// BUF: return %[[ACC0]], %[[ACC1]],
func.func @block_score_grad_accumulate(%W: tensor<2x13xbf16>, %a: tensor<4x13xbf16>, %b: tensor<4x13xbf16>,
                                       %lse: tensor<2x4xf32>, %ra: tensor<4xf32>, %rb: tensor<4xf32>,
                                       %dout: tensor<2x4x13xbf16>,
                                       %acc0: tensor<4x13xbf16>, %acc1: tensor<4x13xbf16>)
    -> (tensor<4x13xbf16>, tensor<4x13xbf16>, tensor<2x13xf32>, tensor<2x13xf32>) {
  %db:2, %dW, %dG = attnres.block_score_grad %W, %W over %a, %b stats %lse, %ra, %rb grad %dout, %lse accumulate %acc0, %acc1 {epsilon = 1.0e-05 : f32} : tensor<4x13xbf16> -> tensor<2x4x13xbf16>
  return %db#0, %db#1, %dW, %dG : tensor<4x13xbf16>, tensor<4x13xbf16>, tensor<2x13xf32>, tensor<2x13xf32>
}

// -----

// merge_grad with partial and fused norm: p', r, the dot and the gate as in
// merge; the stored h (rounded), its inverse RMS and <h, gn dhn>; dH in f32;
// <dH, p' - out>; one map over the tokens writing dlse into its destination;
// one map writing dout and dp; sums over the tokens (outer loops, in order)
// for dwg and dgn.
// CHECK-LABEL: func @merge_grad_norm
// CHECK-SAME: (%[[O:.*]]: tensor<4x13xf16>, %[[LSE:.*]]: tensor<4xf32>, %[[W:.*]]: tensor<13xf16>, %[[Y:.*]]: tensor<4x13xf16>, %[[P:.*]]: tensor<4x13xf16>, %[[DHI:.*]]: tensor<4x13xf16>)
// CHECK-NOT: attnres.
// CHECK: %[[DLI:.*]] = tensor.empty() : tensor<4xf32>
// CHECK: %[[DQI:.*]] = tensor.empty() : tensor<13xf32>
// CHECK: %[[DGI:.*]] = tensor.empty() : tensor<13xf32>
// CHECK: %[[R:.*]] = linalg.generic {{.*}} iterator_types = ["parallel"]}
// CHECK:   math.rsqrt
// CHECK: %[[DOT:.*]] = linalg.generic {{.*}} ins(%[[Y]], %[[P]], %[[W]], %[[W]] :
// CHECK: %[[GATE:.*]] = linalg.generic {{.*}} ins(%[[R]], %[[DOT]], %[[LSE]] :
// CHECK:   math.exp
// CHECK: %[[H:.*]] = linalg.generic {{.*}} ins(%[[O]], %[[Y]], %[[P]], %[[GATE]] : {{.*}} outs(%{{.*}} : tensor<4x13xf16>)
// CHECK:   arith.truncf
// CHECK: %[[RN:.*]] = linalg.generic {{.*}} iterator_types = ["parallel"]}
// CHECK: %[[HGD:.*]] = linalg.generic {{.*}} ins(%[[H]], %[[W]], %[[DHI]] :
// CHECK: %[[DH:.*]] = linalg.generic {{.*}} ins(%[[DHI]], %[[H]], %[[W]], %[[DHI]], %[[RN]], %[[HGD]] : {{.*}} outs(%{{.*}} : tensor<4x13xf32>)
// CHECK: %[[DGATE:.*]] = linalg.generic {{.*}} ins(%[[DH]], %[[O]], %[[Y]], %[[P]] :
// CHECK: %[[C:.*]]:3 = linalg.generic {{.*}} ins(%[[DGATE]], %[[GATE]], %[[R]], %[[DOT]] : {{.*}} outs(%[[DLI]],
// CHECK: %[[G:.*]]:2 = linalg.generic {{.*}} ins(%[[DH]], %[[DHI]], %[[W]], %[[W]], %[[GATE]], %[[C]]#1, %[[C]]#2, %[[Y]], %[[P]] :
// CHECK: %[[DWG:.*]] = linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]} ins(%[[C]]#1, %[[Y]], %[[P]] :
// CHECK: %[[PAR:.*]]:2 = linalg.generic {{.*}} ins(%[[DWG]], %[[W]], %[[W]] : {{.*}} outs(%[[DQI]], %[[DGI]] :
// CHECK: %[[DGN:.*]] = linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]} ins(%[[H]], %[[RN]], %[[DHI]] :
// CHECK: return %[[G]]#0, %[[C]]#0, %[[PAR]]#0, %[[PAR]]#1, %[[G]]#1, %[[DGN]] :
func.func @merge_grad_norm(%o: tensor<4x13xf16>, %lse: tensor<4xf32>, %w: tensor<13xf16>, %y: tensor<4x13xf16>,
                           %p: tensor<4x13xf16>, %dh: tensor<4x13xf16>)
    -> (tensor<4x13xf16>, tensor<4xf32>, tensor<13xf32>, tensor<13xf32>, tensor<4x13xf16>, tensor<13xf32>) {
  %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %lse, %w, %w update %y partial %p norm %w grad %dh, %dh, %dh {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<4x13xf16>
  return %do, %dl, %dw, %dg, %dp, %dgn : tensor<4x13xf16>, tensor<4xf32>, tensor<13xf32>, tensor<13xf32>, tensor<4x13xf16>, tensor<13xf32>
}
