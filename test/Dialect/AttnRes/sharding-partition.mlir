// RUN: attnres-opt %s --verify-roundtrip --split-input-file \
// RUN:   --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition,canonicalize))' \
// RUN:   | FileCheck %s

// Upstream shard-partition through attnres ops (docs/interfaces-tiling-sharding.md).

// Tokens sharded 2 ways: each process runs the same ops on its 4 tokens,
// with no communication.
shard.grid @grid(shape = 2)
// CHECK-LABEL: func.func @tokens
// CHECK-SAME:    %[[W:[a-z0-9]+]]: tensor<64xf32>, %[[G:[a-z0-9]+]]: tensor<64xf32>, %[[V0:[a-z0-9]+]]: tensor<4x64xf32>, %[[V1:[a-z0-9]+]]: tensor<4x64xf32>
// CHECK-SAME:    -> (tensor<4x64xf32>, tensor<4xf32>)
// CHECK-NEXT:    %[[S:.*]] = attnres.block_sum %[[V0]], %[[V1]] : tensor<4x64xf32>
// CHECK-NEXT:    %[[H:.*]] = attnres.aggregate %[[W]], %[[G]] over %[[V0]], %[[S]] {{.*}} : tensor<4x64xf32>
// CHECK-NEXT:    %[[R:.*]] = attnres.inv_rms %[[H]] {{.*}} : tensor<4x64xf32> -> tensor<4xf32>
// CHECK-NEXT:    return %[[H]], %[[R]]
// CHECK-NOT:     shard.all_
func.func @tokens(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                  %v1: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>) {
  %sh = shard.sharding @grid split_axes = [[0]] : !shard.sharding
  %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<8x64xf32>
  %v1s = shard.shard %v1 to %sh annotate_for_users : tensor<8x64xf32>
  %s = attnres.block_sum %v0s, %v1s : tensor<8x64xf32>
  %h = attnres.aggregate %w, %g over %v0s, %s {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  %r = attnres.inv_rms %h {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  return %h, %r : tensor<8x64xf32>, tensor<8xf32>
}

// -----

// Phase 1 and 2 sharded along tokens on a 4-way grid. (The row of phase 1
// that a merge reads is a function argument here: upstream tensor.extract_slice
// has no ShardingInterface in MLIR 22.)
shard.grid @grid4(shape = 4)
// CHECK-LABEL: func.func @two_phase
// CHECK-SAME:    tensor<2x32xbf16>
// CHECK:         attnres.block_score {{.*}} : tensor<2x32xbf16> -> tensor<3x2x32xbf16>
// CHECK:         attnres.merge {{.*}} : tensor<2x32xbf16>
// CHECK-NOT:     shard.all_
func.func @two_phase(%q: tensor<3x32xbf16>, %g: tensor<3x32xbf16>, %b0: tensor<8x32xbf16>,
                     %b1: tensor<8x32xbf16>, %o1: tensor<8x32xbf16>, %l1: tensor<8xf32>,
                     %w: tensor<32xbf16>, %gw: tensor<32xbf16>, %u: tensor<8x32xbf16>)
    -> (tensor<3x8x32xbf16>, tensor<8x32xbf16>) {
  %sh = shard.sharding @grid4 split_axes = [[0]] : !shard.sharding
  %b0s = shard.shard %b0 to %sh annotate_for_users : tensor<8x32xbf16>
  %b1s = shard.shard %b1 to %sh annotate_for_users : tensor<8x32xbf16>
  %us = shard.shard %u to %sh annotate_for_users : tensor<8x32xbf16>
  %oi = tensor.empty() : tensor<3x8x32xbf16>
  %li = tensor.empty() : tensor<3x8xf32>
  %o, %l = attnres.block_score %q, %g over %b0s, %b1s outs %oi, %li {epsilon = 1.0e-06 : f32}
      : tensor<8x32xbf16> -> tensor<3x8x32xbf16>
  %h, %p = attnres.merge %o1, %l1, %w, %gw update %us {epsilon = 1.0e-06 : f32} : tensor<8x32xbf16>
  return %o, %h : tensor<3x8x32xbf16>, tensor<8x32xbf16>
}

// -----

// D sharded 2 ways: aggregate computes local partial logits and sums of
// squares, all-reduces them over the grid, then the softmax and its own D
// slice of h; inv_rms of the D-sharded h all-reduces its sum of squares.
shard.grid @grid(shape = 2)
// CHECK-LABEL: func.func @features
// CHECK-SAME:    %[[W:[a-z0-9]+]]: tensor<32xf32>, %[[G:[a-z0-9]+]]: tensor<32xf32>, %[[V0:[a-z0-9]+]]: tensor<8x32xf32>, %[[V1:[a-z0-9]+]]: tensor<8x32xf32>
// CHECK-SAME:    -> (tensor<8x32xf32>, tensor<8xf32>)
// CHECK-NOT:     attnres.
// CHECK-DAG:     %[[INVD:.*]] = arith.constant 1.562500e-02 : f32
// CHECK:         %[[P0:.*]]:2 = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[V0]], %[[W]], %[[G]] : tensor<8x32xf32>, tensor<32xf32>, tensor<32xf32>)
// CHECK:         %[[P1:.*]]:2 = linalg.generic {{.*}} ins(%[[V1]], %[[W]], %[[G]]
// CHECK:         %[[SS:.*]] = shard.all_reduce %{{.*}} on @grid grid_axes = [0] : tensor<2x8xf32> -> tensor<2x8xf32>
// CHECK:         %[[DOT:.*]] = shard.all_reduce %{{.*}} on @grid grid_axes = [0] : tensor<2x8xf32> -> tensor<2x8xf32>
// CHECK:         linalg.generic {{.*}} ins(%[[SS]] : tensor<2x8xf32>)
// CHECK:           arith.mulf %{{.*}}, %[[INVD]]
// CHECK:           math.rsqrt
// CHECK:         %[[H:.*]] = linalg.generic {{.*}} ins({{.*}}, %[[V0]], %[[V1]] : {{.*}}) outs(%{{.*}} : tensor<8x32xf32>)
// CHECK:         %[[HSS:.*]] = linalg.generic {{.*}} ins(%[[H]] : tensor<8x32xf32>)
// CHECK:         %[[HSSALL:.*]] = shard.all_reduce %[[HSS]] on @grid grid_axes = [0] : tensor<8xf32> -> tensor<8xf32>
// CHECK:         %[[R:.*]] = linalg.generic {{.*}} ins(%[[HSSALL]] : tensor<8xf32>)
// CHECK:         return %[[H]], %[[R]] : tensor<8x32xf32>, tensor<8xf32>
func.func @features(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                    %v1: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8xf32>) {
  %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
  %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<8x64xf32>
  %v1s = shard.shard %v1 to %sh annotate_for_users : tensor<8x64xf32>
  %h = attnres.aggregate %w, %g over %v0s, %v1s {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  %r = attnres.inv_rms %h {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  return %h, %r : tensor<8x64xf32>, tensor<8xf32>
}

// -----

// block_score with D sharded 2 ways: its decomposition with the summaries'
// local sums of squares and S x T partial logits stacked and all-reduced
// (one all-reduce each) before the softmax; each process writes its D slice
// of the S outputs, lse is replicated.
shard.grid @grid(shape = 2)
// CHECK-LABEL: func.func @score_features
// CHECK-SAME:    %[[Q:[a-z0-9]+]]: tensor<2x16xf32>, %[[G:[a-z0-9]+]]: tensor<2x16xf32>, %[[B0:[a-z0-9]+]]: tensor<8x16xf32>, %[[B1:[a-z0-9]+]]: tensor<8x16xf32>
// CHECK-SAME:    -> (tensor<2x8x16xf32>, tensor<2x8xf32>)
// CHECK-NOT:     attnres.
// CHECK-DAG:     %[[D:.*]] = arith.constant 3.200000e+01 : f32
// CHECK:         %[[SS0:.*]] = linalg.generic {{.*}} ins(%[[B0]] : tensor<8x16xf32>)
// CHECK:         %[[SS1:.*]] = linalg.generic {{.*}} ins(%[[B1]] : tensor<8x16xf32>)
// CHECK:         %[[SSA:.*]] = tensor.insert_slice %[[SS0]] into %{{.*}}[0, 0] [1, 8] [1, 1] : tensor<8xf32> into tensor<2x8xf32>
// CHECK:         %[[SSB:.*]] = tensor.insert_slice %[[SS1]] into %[[SSA]][1, 0] [1, 8] [1, 1] : tensor<8xf32> into tensor<2x8xf32>
// CHECK:         %[[SSALL:.*]] = shard.all_reduce %[[SSB]] on @grid grid_axes = [0] : tensor<2x8xf32> -> tensor<2x8xf32>
// CHECK:         %[[SS0ALL:.*]] = tensor.extract_slice %[[SSALL]][0, 0] [1, 8] [1, 1] : tensor<2x8xf32> to tensor<8xf32>
// CHECK:         %[[R0:.*]] = linalg.generic {{.*}} ins(%[[SS0ALL]] : tensor<8xf32>)
// CHECK:           arith.divf %{{.*}}, %[[D]] : f32
// CHECK:           math.rsqrt
// CHECK:         %[[DOT0:.*]] = linalg.generic {{.*}} ins(%[[B0]], %[[Q]], %[[G]] : tensor<8x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>)
// CHECK:         %[[DOT1:.*]] = linalg.generic {{.*}} ins(%[[B1]], %[[Q]], %[[G]] : tensor<8x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>)
// CHECK:         %[[DOTALL:.*]] = shard.all_reduce %{{.*}} on @grid grid_axes = [0] : tensor<2x2x8xf32> -> tensor<2x2x8xf32>
// CHECK:         %[[DOT0ALL:.*]] = tensor.extract_slice %[[DOTALL]][0, 0, 0] [1, 2, 8] [1, 1, 1] : tensor<2x2x8xf32> to tensor<2x8xf32>
// CHECK:         %[[DOT1ALL:.*]] = tensor.extract_slice %[[DOTALL]][1, 0, 0] [1, 2, 8] [1, 1, 1] : tensor<2x2x8xf32> to tensor<2x8xf32>
// CHECK:         %[[SM:.*]]:3 = linalg.generic {{.*}} ins(%[[DOT0ALL]], %[[DOT1ALL]], %[[R0]], %{{.*}} : tensor<2x8xf32>, tensor<2x8xf32>, tensor<8xf32>, tensor<8xf32>)
// CHECK:           math.log
// CHECK:         %[[OUT:.*]] = linalg.generic {{.*}} ins(%[[B0]], %[[B1]], %[[SM]]#0, %[[SM]]#1 : {{.*}}) outs(%{{.*}} : tensor<2x8x16xf32>)
// CHECK-NOT:     shard.
// CHECK:         return %[[OUT]], %[[SM]]#2 : tensor<2x8x16xf32>, tensor<2x8xf32>
func.func @score_features(%q: tensor<2x32xf32>, %g: tensor<2x32xf32>, %b0: tensor<8x32xf32>,
                          %b1: tensor<8x32xf32>) -> (tensor<2x8x32xf32>, tensor<2x8xf32>) {
  %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
  %b0s = shard.shard %b0 to %sh annotate_for_users : tensor<8x32xf32>
  %b1s = shard.shard %b1 to %sh annotate_for_users : tensor<8x32xf32>
  %oi = tensor.empty() : tensor<2x8x32xf32>
  %li = tensor.empty() : tensor<2x8xf32>
  %o, %l = attnres.block_score %q, %g over %b0s, %b1s outs %oi, %li {epsilon = 1.0e-06 : f32}
      : tensor<8x32xf32> -> tensor<2x8x32xf32>
  return %o, %l : tensor<2x8x32xf32>, tensor<2x8xf32>
}

// -----

// block_score with D sharded and the inverse RMS given (inv_rms operands,
// per token, replicated): only the partial logits are all-reduced.
shard.grid @grid(shape = 2)
// CHECK-LABEL: func.func @score_features_inv_rms
// CHECK:         shard.all_reduce {{.*}} : tensor<2x2x8xf32> -> tensor<2x2x8xf32>
// CHECK-NOT:     shard.all_reduce
// CHECK:         return {{.*}} : tensor<2x8x16xf32>, tensor<2x8xf32>
func.func @score_features_inv_rms(%q: tensor<2x32xf32>, %g: tensor<2x32xf32>, %b0: tensor<8x32xf32>,
                                  %b1: tensor<8x32xf32>, %r0: tensor<8xf32>, %r1: tensor<8xf32>)
    -> (tensor<2x8x32xf32>, tensor<2x8xf32>) {
  %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
  %b0s = shard.shard %b0 to %sh annotate_for_users : tensor<8x32xf32>
  %b1s = shard.shard %b1 to %sh annotate_for_users : tensor<8x32xf32>
  %oi = tensor.empty() : tensor<2x8x32xf32>
  %li = tensor.empty() : tensor<2x8xf32>
  %o, %l = attnres.block_score %q, %g over %b0s, %b1s inv_rms %r0, %r1 outs %oi, %li
      {epsilon = 1.0e-06 : f32} : tensor<8x32xf32> -> tensor<2x8x32xf32>
  return %o, %l : tensor<2x8x32xf32>, tensor<2x8xf32>
}

// -----

// aggregate_stats (the training forward) sharded along tokens: every
// statistic (lse, one inverse RMS per source) is per token, so each process
// computes those of its own tokens, with no communication.
shard.grid @grid2s(shape = 2)
// CHECK-LABEL: func.func @stats_tokens
// CHECK-SAME:    tensor<3x16xbf16>
// CHECK-NEXT:    %{{.*}}, %{{.*}}, %{{.*}}:2 = attnres.aggregate_stats {{.*}} : tensor<3x16xbf16>
// CHECK-NEXT:    return {{.*}} : tensor<3x16xbf16>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
// CHECK-NOT:     shard.all_
func.func @stats_tokens(%w: tensor<16xbf16>, %g: tensor<16xbf16>, %v0: tensor<6x16xbf16>,
                        %v1: tensor<6x16xbf16>)
    -> (tensor<6x16xbf16>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>) {
  %sh = shard.sharding @grid2s split_axes = [[0]] : !shard.sharding
  %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<6x16xbf16>
  %v1s = shard.shard %v1 to %sh annotate_for_users : tensor<6x16xbf16>
  %h, %lse, %r:2 = attnres.aggregate_stats %w, %g over %v0s, %v1s {epsilon = 1.0e-06 : f32} : tensor<6x16xbf16>
  return %h, %lse, %r#0, %r#1 : tensor<6x16xbf16>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>
}

// -----

// aggregate_grad (the training backward) sharded along tokens: the source
// gradients are per token; the query and gain gradients are sums over the
// tokens, so each process's partial sums are all-reduced over the grid.
// The accumulators follow the tokens like the sources.
shard.grid @grid2g(shape = 2)
// CHECK-LABEL: func.func @grad_tokens
// CHECK-SAME:    %[[A0:[a-z0-9]+]]: tensor<3x16xbf16>, %[[A1:[a-z0-9]+]]: tensor<3x16xbf16>) -> (tensor<3x16xbf16>, tensor<3x16xbf16>, tensor<16xf32>, tensor<16xf32>)
// CHECK-NEXT:    %[[DV:.*]]:2, %[[DQ:.*]], %[[DG:.*]] = attnres.aggregate_grad {{.*}} accumulate %[[A0]], %[[A1]] {{.*}} : tensor<3x16xbf16>
// CHECK-NEXT:    %[[SQ:.*]] = shard.all_reduce %[[DQ]] on @grid2g grid_axes = [0] : tensor<16xf32> -> tensor<16xf32>
// CHECK-NEXT:    %[[SG:.*]] = shard.all_reduce %[[DG]] on @grid2g grid_axes = [0] : tensor<16xf32> -> tensor<16xf32>
// CHECK-NEXT:    return %[[DV]]#0, %[[DV]]#1, %[[SQ]], %[[SG]]
func.func @grad_tokens(%w: tensor<16xbf16>, %g: tensor<16xbf16>, %v0: tensor<6x16xbf16>,
                       %v1: tensor<6x16xbf16>, %lse: tensor<6xf32>, %r0: tensor<6xf32>,
                       %r1: tensor<6xf32>, %dh: tensor<6x16xbf16>, %a0: tensor<6x16xbf16>,
                       %a1: tensor<6x16xbf16>)
    -> (tensor<6x16xbf16>, tensor<6x16xbf16>, tensor<16xf32>, tensor<16xf32>) {
  %sh = shard.sharding @grid2g split_axes = [[0]] : !shard.sharding
  %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<6x16xbf16>
  %v1s = shard.shard %v1 to %sh annotate_for_users : tensor<6x16xbf16>
  %dhs = shard.shard %dh to %sh annotate_for_users : tensor<6x16xbf16>
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %g over %v0s, %v1s stats %lse, %r0, %r1
      grad %dhs accumulate %a0, %a1 {epsilon = 1.0e-06 : f32} : tensor<6x16xbf16>
  return %dv#0, %dv#1, %dq, %dg : tensor<6x16xbf16>, tensor<6x16xbf16>, tensor<16xf32>, tensor<16xf32>
}

// -----

// block_score_grad sharded along tokens: per-token source gradients, the
// queries' and gains' gradients ([S, D], sums over the tokens) all-reduced.
shard.grid @grid2b(shape = 2)
// CHECK-LABEL: func.func @block_score_grad_tokens
// CHECK-SAME:    tensor<2x16xf32>
// CHECK-NEXT:    %[[DB:.*]]:2, %[[DW:.*]], %[[DG:.*]] = attnres.block_score_grad {{.*}} : tensor<2x16xf32> -> tensor<3x2x16xf32>
// CHECK-NEXT:    %[[SW:.*]] = shard.all_reduce %[[DW]] on @grid2b grid_axes = [0] : tensor<3x16xf32> -> tensor<3x16xf32>
// CHECK-NEXT:    %[[SG:.*]] = shard.all_reduce %[[DG]] on @grid2b grid_axes = [0] : tensor<3x16xf32> -> tensor<3x16xf32>
// CHECK-NEXT:    return %[[DB]]#0, %[[DB]]#1, %[[SW]], %[[SG]]
func.func @block_score_grad_tokens(%W: tensor<3x16xf32>, %G: tensor<3x16xf32>,
    %a: tensor<4x16xf32>, %b: tensor<4x16xf32>, %lse: tensor<3x4xf32>, %ra: tensor<4xf32>,
    %rb: tensor<4xf32>, %dout: tensor<3x4x16xf32>, %dlse: tensor<3x4xf32>)
    -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<3x16xf32>, tensor<3x16xf32>) {
  %sh = shard.sharding @grid2b split_axes = [[0]] : !shard.sharding
  %as = shard.shard %a to %sh annotate_for_users : tensor<4x16xf32>
  %bs = shard.shard %b to %sh annotate_for_users : tensor<4x16xf32>
  %db:2, %dW, %dG = attnres.block_score_grad %W, %G over %as, %bs stats %lse, %ra, %rb
      grad %dout, %dlse {epsilon = 1.0e-05 : f32} : tensor<4x16xf32> -> tensor<3x4x16xf32>
  return %db#0, %db#1, %dW, %dG : tensor<4x16xf32>, tensor<4x16xf32>, tensor<3x16xf32>, tensor<3x16xf32>
}

// -----

// merge_grad (with its fused norm) sharded along tokens: the per-token
// gradients of out, lse and update are local; the query, gain and norm gain
// gradients are all-reduced.
shard.grid @grid2m(shape = 2)
// CHECK-LABEL: func.func @merge_grad_tokens
// CHECK-SAME:    tensor<3x8xf32>
// CHECK-NEXT:    %[[DO:[a-z_0-9]+]], %[[DL:[a-z_0-9]+]], %[[DQ:[a-z_0-9]+]], %[[DW:[a-z_0-9]+]], %[[DY:[a-z_0-9]+]], %[[DN:[a-z_0-9]+]] = attnres.merge_grad {{.*}} : tensor<3x8xf32>
// CHECK-NEXT:    %[[SQ:.*]] = shard.all_reduce %[[DQ]] on @grid2m grid_axes = [0] : tensor<8xf32> -> tensor<8xf32>
// CHECK-NEXT:    %[[SW:.*]] = shard.all_reduce %[[DW]] on @grid2m grid_axes = [0] : tensor<8xf32> -> tensor<8xf32>
// CHECK-NEXT:    %[[SN:.*]] = shard.all_reduce %[[DN]] on @grid2m grid_axes = [0] : tensor<8xf32> -> tensor<8xf32>
// CHECK-NEXT:    return %[[DO]], %[[DL]], %[[SQ]], %[[SW]], %[[DY]], %[[SN]]
func.func @merge_grad_tokens(%o: tensor<6x8xf32>, %lse: tensor<6xf32>, %w: tensor<8xf32>,
    %y: tensor<6x8xf32>, %p: tensor<6x8xf32>, %gn: tensor<8xf32>, %dh: tensor<6x8xf32>,
    %dpn: tensor<6x8xf32>, %dhn: tensor<6x8xf32>)
    -> (tensor<6x8xf32>, tensor<6xf32>, tensor<8xf32>, tensor<8xf32>, tensor<6x8xf32>, tensor<8xf32>) {
  %sh = shard.sharding @grid2m split_axes = [[0]] : !shard.sharding
  %os = shard.shard %o to %sh annotate_for_users : tensor<6x8xf32>
  %ys = shard.shard %y to %sh annotate_for_users : tensor<6x8xf32>
  %do, %dl, %dw, %dg, %dy, %dn = attnres.merge_grad %os, %lse, %w, %w update %ys partial %p
      norm %gn grad %dh, %dpn, %dhn {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32}
      : tensor<6x8xf32>
  return %do, %dl, %dw, %dg, %dy, %dn
      : tensor<6x8xf32>, tensor<6xf32>, tensor<8xf32>, tensor<8xf32>, tensor<6x8xf32>, tensor<8xf32>
}

// -----

// merge with D sharded 2 ways (with its partial and fused norm): p' on the
// local D slice, its sum of squares and dot product with w*g all-reduced,
// the gate from the whole-D score, h and p' on the local slice; the sum of
// squares of h all-reduced for hn.
shard.grid @gridmd(shape = 2)
// CHECK-LABEL: func.func @merge_features
// CHECK-SAME:    %[[O:[a-z0-9]+]]: tensor<8x32xf32>, %[[L:[a-z0-9]+]]: tensor<8xf32>, %[[W:[a-z0-9]+]]: tensor<32xf32>, %[[G:[a-z0-9]+]]: tensor<32xf32>, %[[U:[a-z0-9]+]]: tensor<8x32xf32>, %[[P:[a-z0-9]+]]: tensor<8x32xf32>, %[[GN:[a-z0-9]+]]: tensor<32xf32>
// CHECK-NOT:     attnres.
// CHECK:         %[[PF:.*]] = linalg.generic {{.*}} ins(%[[U]], %[[P]] : tensor<8x32xf32>, tensor<8x32xf32>)
// CHECK:         %[[PS:.*]]:2 = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[PF]], %[[W]], %[[G]] :
// CHECK:         %[[SS:.*]] = shard.all_reduce %[[PS]]#0 on @gridmd grid_axes = [0] : tensor<8xf32> -> tensor<8xf32>
// CHECK:         %[[DOT:.*]] = shard.all_reduce %[[PS]]#1 on @gridmd grid_axes = [0] : tensor<8xf32> -> tensor<8xf32>
// CHECK:         %[[GATE:.*]] = linalg.generic {{.*}} ins(%[[DOT]], %{{.*}}, %[[L]] : tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
// CHECK:         %[[H:.*]]:2 = linalg.generic {{.*}} ins(%[[O]], %[[PF]], %[[GATE]] :
// CHECK:         %[[HSS:.*]] = linalg.generic {{.*}} ins(%[[H]]#0 : tensor<8x32xf32>)
// CHECK:         shard.all_reduce %[[HSS]] on @gridmd grid_axes = [0] : tensor<8xf32> -> tensor<8xf32>
// CHECK:         %[[HN:.*]] = linalg.generic {{.*}} ins(%[[H]]#0, %{{.*}}, %[[GN]] :
// CHECK:         return %[[H]]#0, %[[H]]#1, %[[HN]] : tensor<8x32xf32>, tensor<8x32xf32>, tensor<8x32xf32>
func.func @merge_features(%o: tensor<8x64xf32>, %lse: tensor<8xf32>, %w: tensor<64xf32>,
    %g: tensor<64xf32>, %u: tensor<8x64xf32>, %p: tensor<8x64xf32>, %gn: tensor<64xf32>)
    -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) {
  %sh = shard.sharding @gridmd split_axes = [[], [0]] : !shard.sharding
  %us = shard.shard %u to %sh annotate_for_users : tensor<8x64xf32>
  %h, %p2, %hn = attnres.merge %o, %lse, %w, %g update %us partial %p norm %gn
      {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  return %h, %p2, %hn : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
}
