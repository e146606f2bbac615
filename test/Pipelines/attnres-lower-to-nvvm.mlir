// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | FileCheck %s --check-prefix=HOST
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py | FileCheck %s --check-prefix=PTX --implicit-check-not=.local --implicit-check-not=ld.local --implicit-check-not=st.local
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py | FileCheck %s --check-prefix=CLUSTER
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py | FileCheck %s --check-prefix=BULK
// RUN: attnres-opt %s --attnres-lower-to-nvvm="chip=sm_75 features=+ptx70 format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py | FileCheck %s --check-prefix=SM75
// RUN: attnres-opt %s --attnres-lower-to-nvvm="chip=sm_80 features=+ptx70 format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py | FileCheck %s --check-prefix=SM80

// Host: results become out-parameters, every public function gets a C
// interface, the kernels are one gpu.binary.
// HOST-LABEL: llvm.func @agg_bf16_4096
// HOST:         gpu.launch_func @attnres_kernels::@aggregate_bf16_d4096_n9
// HOST:       llvm.func @_mlir_ciface_agg_bf16_4096
// HOST-LABEL: llvm.func @merge_bf16
// HOST:       llvm.func @_mlir_ciface_merge_bf16
// HOST:       gpu.binary @attnres_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">

// The kernels: 16-byte loads of every source, butterfly shuffles, no local
// memory.
// PTX:       .target sm_90a
// PTX-LABEL: .entry aggregate_bf16_d4096_n9(
// PTX-COUNT-11: ld.global.v4.b32
// PTX:         shfl.sync.bfly.b32
// PTX:         bar.sync
// PTX:         ex2.approx.ftz.f32
// PTX:         st.global.v4.b32
// PTX-LABEL: .entry aggregate_bf16_d4096_n17(
// PTX-COUNT-19: ld.global.v4.b32
// PTX:         st.global.v4.b32
// PTX-LABEL: .entry aggregate_bf16_d2048_n9(
// PTX:         ld.global.v4.b32
// PTX-LABEL: .entry aggregate_bf16_d7168_n10(
// PTX:         ld.global.v4.b32
// PTX-LABEL: .entry aggregate_f16_d4096_n4(
// PTX:         ld.global.v4.b32
// PTX-LABEL: .entry aggregate_f32_d4096_n4(
// PTX:         ld.global.v4.b32
// PTX:         st.global.v4.b32
// PTX-LABEL: .entry aggregate_f32_d13_n3(
// PTX:         ld.global.b32
// PTX:         shfl.sync.bfly.b32
// sm_75 has no bf16 mma.sync: the pipeline keeps phase 1 on CUDA cores.
// SM75:       .target sm_75
// SM75-NOT:   mma.sync
// SM75:       .entry block_score_bf16_d2048_n5_s6_g3(
// SM75-NOT:   mma.sync

// sm_8x has bf16 mma.sync but NVPTX cannot select the L2 prefetch there
// (it aborted): phase 1 on tensor cores without the prefetch.
// SM80:       .target sm_80
// SM80-NOT:   prefetch.global.L2
// SM80:       .entry block_score_bf16_d2048_n5_s6_tc(
// SM80-NOT:   prefetch.global.L2
// SM80:         mma.sync.aligned.m16n8k16
// SM80-NOT:   prefetch.global.L2

// Phase 1 (bf16): tensor cores for the logits, 16-byte fragment loads,
// one reduction through shared memory, then the outputs.
// PTX-LABEL: .entry block_score_bf16_d2048_n5_s6_tc(
// PTX-NOT:     cp.async.bulk
// PTX:         ld.global.v4.b32
// PTX:         mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX:         bar.sync
// PTX:         lg2.approx.ftz.f32
// PTX:         ld.shared.v4.b32
// PTX:         st.global.v2.b32
// D = 4096 and 8192: fragment loads from global memory after an L2 prefetch
// of the token's rows (bulk copies measured slower there).
// PTX-LABEL: .entry block_score_bf16_d4096_n9_s8_tc_r(
// PTX-NOT:     cp.async.bulk
// PTX:         prefetch.global.L2
// PTX:         ld.global.v4.b32
// PTX:         mma.sync.aligned.m16n8k16
// PTX-LABEL: .entry block_score_bf16_d8192_n5_s8_tc(
// PTX:         ld.global.v4.b32
// PTX:         mma.sync.aligned.m16n8k16
// PTX-LABEL: .entry block_score_bf16_d8192_n17_s8_tc(
// PTX-NOT:     cp.async.bulk
// PTX:         prefetch.global.L2
// PTX:         ld.global.v4.b32
// PTX:         mma.sync.aligned.m16n8k16
// 4096 < D < 8192 (sm_90): the token's rows reach shared memory by bulk
// copies (one cp.async.bulk per row on an mbarrier) when they fit 100 KB;
// both sweeps read them there.
// BULK-LABEL: .entry block_score_bf16_d7168_n5_s8_tc_tma(
// BULK-NOT:     .reqnctapercluster
// BULK:         mbarrier.init.shared.b64 [%rd{{[0-9]+}}], %r{{[0-9]+}};
// BULK-NEXT:    fence.mbarrier_init.release.cluster;
// BULK:         mbarrier.arrive.expect_tx.shared.b64 %rd{{[0-9]+}}, [%[[BAR:rd[0-9]+]]], %r{{[0-9]+}};
// BULK-COUNT-5: cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%rd{{[0-9]+}}], [%rd{{[0-9]+}}], %r{{[0-9]+}}, [%[[BAR]]];
// The wait is a loop on mbarrier.try_wait.parity (phase 0), back to the
// label just before it.
// BULK:         mov.b32 %[[PHASE:r[0-9]+]], 0;
// BULK-NEXT:    mbarrier.try_wait.parity.shared.b64 %[[OK:p[0-9]+]], [%rd{{[0-9]+}}], %[[PHASE]];
// BULK-NEXT:    not.pred %[[NOK:p[0-9]+]], %[[OK]];
// BULK-NEXT:    @%[[NOK]] bra $L__BB{{[0-9_]+}};
// BULK:         ld.shared.v4.b32
// BULK:         mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// BULK:         st.global.v2.b32
// BULK:         ret;
// 9 x 7168 rows (135 KB) do not fit 100 KB of shared memory: a cluster of
// two CTAs per token, each with 3584 columns (224 threads), adding each
// other's partial logits and sums of squares through distributed shared
// memory between two cluster barriers.
// CLUSTER-LABEL: .entry block_score_bf16_d7168_n9_s8_tc_tma_x2(
// CLUSTER:       .explicitcluster
// CLUSTER:       .reqnctapercluster 2, 1, 1
// CLUSTER-COUNT-9: cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [{{%rd[0-9]+}}], [{{%rd[0-9]+}}], {{%r[0-9]+}}, [{{%rd[0-9]+}}];
// CLUSTER:       mma.sync.aligned.m16n8k16
// CLUSTER:       barrier.cluster.arrive.aligned;
// CLUSTER-NEXT:  barrier.cluster.wait.aligned;
// CLUSTER:       mapa.shared::cluster.u64 %[[REMOTE:rd[0-9]+]], %rd{{[0-9]+}}, %r{{[0-9]+}};
// CLUSTER-NEXT:  ld.shared::cluster.b32 %r{{[0-9]+}}, [%[[REMOTE]]];
// CLUSTER:       barrier.cluster.arrive.aligned;
// CLUSTER:       st.global.b32
// CLUSTER:       barrier.cluster.wait.aligned;
// CLUSTER-NEXT:  ret;
// PTX-LABEL: .entry block_score_f16_d4096_n9_s8_g4(
// PTX:         ld.global.v4.b32
// PTX:         shfl.sync.bfly.b32
// PTX-NOT:     mma.sync
// One source: a plain copy, no reduction (spec A.2).
// PTX-LABEL: .entry aggregate_bf16_d4096_n1(
// PTX-NOT:     shfl.sync
// PTX-NOT:     ex2.approx
// PTX:         ld.global.v4.b32
// PTX:         st.global.v4.b32
// PTX-NOT:     shfl.sync
// PTX-LABEL: .entry merge_bf16_d4096_p(
// PTX-COUNT-5: ld.global.v4.b32
// PTX:         shfl.sync.bfly.b32
// PTX-COUNT-2: st.global.v4.b32
// PTX-LABEL: .entry merge_f32_d4096(
// PTX:         ld.global.v4.b32

func.func @agg_bf16_4096(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v0: tensor<?x4096xbf16>, %v1: tensor<?x4096xbf16>, %v2: tensor<?x4096xbf16>, %v3: tensor<?x4096xbf16>, %v4: tensor<?x4096xbf16>, %v5: tensor<?x4096xbf16>, %v6: tensor<?x4096xbf16>, %v7: tensor<?x4096xbf16>, %v8: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v0, %v1, %v2, %v3, %v4, %v5, %v6, %v7, %v8 {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

func.func @agg_bf16_4096_17(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

func.func @agg_bf16_2048(%w: tensor<2048xbf16>, %g: tensor<2048xbf16>, %v: tensor<?x2048xbf16>) -> tensor<?x2048xbf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16>
  return %h : tensor<?x2048xbf16>
}

func.func @agg_bf16_7168(%w: tensor<7168xbf16>, %g: tensor<7168xbf16>, %v: tensor<?x7168xbf16>) -> tensor<?x7168xbf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v, %v, %v, %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16>
  return %h : tensor<?x7168xbf16>
}

func.func @agg_f16(%w: tensor<4096xf16>, %g: tensor<4096xf16>, %v: tensor<?x4096xf16>) -> tensor<?x4096xf16> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x4096xf16>
  return %h : tensor<?x4096xf16>
}

func.func @agg_f32(%w: tensor<4096xf32>, %g: tensor<4096xf32>, %v: tensor<?x4096xf32>) -> tensor<?x4096xf32> {
  %h = attnres.aggregate %w, %g over %v, %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x4096xf32>
  return %h : tensor<?x4096xf32>
}

func.func @agg_f32_13(%w: tensor<13xf32>, %g: tensor<13xf32>, %v: tensor<3x?x13xf32>) -> tensor<3x?x13xf32> {
  %h = attnres.aggregate %w, %g over %v, %v, %v {epsilon = 1.0e-06 : f32} : tensor<3x?x13xf32>
  return %h : tensor<3x?x13xf32>
}

func.func @score_s6(%W: tensor<6x2048xbf16>, %G: tensor<6x2048xbf16>, %b: tensor<?x2048xbf16>, %o: tensor<6x?x2048xbf16>, %l: tensor<6x?xf32>) -> (tensor<6x?x2048xbf16>, tensor<6x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16> -> tensor<6x?x2048xbf16>
  return %out, %lse : tensor<6x?x2048xbf16>, tensor<6x?xf32>
}

func.func @score_s8(%W: tensor<8x4096xbf16>, %G: tensor<8x4096xbf16>, %b: tensor<?x4096xbf16>, %r: tensor<?xf32>, %o: tensor<8x?x4096xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x4096xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b inv_rms %r, %r, %r, %r, %r, %r, %r, %r, %r outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16> -> tensor<8x?x4096xbf16>
  return %out, %lse : tensor<8x?x4096xbf16>, tensor<8x?xf32>
}

func.func @score_8192(%W: tensor<8x8192xbf16>, %G: tensor<8x8192xbf16>, %b: tensor<?x8192xbf16>, %o: tensor<8x?x8192xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x8192xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x8192xbf16> -> tensor<8x?x8192xbf16>
  return %out, %lse : tensor<8x?x8192xbf16>, tensor<8x?xf32>
}

func.func @score_7168_5(%W: tensor<8x7168xbf16>, %G: tensor<8x7168xbf16>, %b: tensor<?x7168xbf16>, %o: tensor<8x?x7168xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x7168xbf16>, tensor<8x?xf32>) {
  %a, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<8x?x7168xbf16>
  return %a, %lse : tensor<8x?x7168xbf16>, tensor<8x?xf32>
}

func.func @score_7168(%W: tensor<8x7168xbf16>, %G: tensor<8x7168xbf16>, %b: tensor<?x7168xbf16>, %o: tensor<8x?x7168xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x7168xbf16>, tensor<8x?xf32>) {
  %a, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<8x?x7168xbf16>
  return %a, %lse : tensor<8x?x7168xbf16>, tensor<8x?xf32>
}

func.func @score_8192_17(%W: tensor<8x8192xbf16>, %G: tensor<8x8192xbf16>, %b: tensor<?x8192xbf16>, %o: tensor<8x?x8192xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x8192xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x8192xbf16> -> tensor<8x?x8192xbf16>
  return %out, %lse : tensor<8x?x8192xbf16>, tensor<8x?xf32>
}

func.func @score_f16(%W: tensor<8x4096xf16>, %G: tensor<8x4096xf16>, %b: tensor<?x4096xf16>, %o: tensor<8x?x4096xf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x4096xf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x4096xf16> -> tensor<8x?x4096xf16>
  return %out, %lse : tensor<8x?x4096xf16>, tensor<8x?xf32>
}

func.func @agg_one(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

func.func @merge_bf16(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %u: tensor<?x4096xbf16>, %p: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>) {
  %h, %p2 = attnres.merge %o, %lse, %w, %g update %u partial %p {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h, %p2 : tensor<?x4096xbf16>, tensor<?x4096xbf16>
}

func.func @merge_f32(%o: tensor<?x4096xf32>, %lse: tensor<?xf32>, %w: tensor<4096xf32>, %g: tensor<4096xf32>, %u: tensor<?x4096xf32>) -> (tensor<?x4096xf32>, tensor<?x4096xf32>) {
  %h, %p2 = attnres.merge %o, %lse, %w, %g update %u {epsilon = 1.0e-06 : f32} : tensor<?x4096xf32>
  return %h, %p2 : tensor<?x4096xf32>, tensor<?x4096xf32>
}
