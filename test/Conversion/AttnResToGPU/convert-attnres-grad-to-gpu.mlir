// RUN: attnres-opt %s --convert-attnres-to-gpu="grad-tensor-cores=0 grad-prefetch-tokens=0" --split-input-file --verify-diagnostics | FileCheck %s
// RUN: attnres-opt %s --convert-attnres-to-gpu=grad-ctas=37 --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=C37
// RUN: attnres-opt %s --convert-attnres-to-gpu --split-input-file --verify-diagnostics | FileCheck %s --check-prefixes=PF,TC
// RUN: attnres-opt %s --convert-attnres-to-gpu --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=SHARED
// RUN: attnres-opt %s --convert-attnres-to-gpu=grad-rows-in-shared=0 --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=REREAD
// RUN: attnres-opt %s --convert-attnres-to-gpu=score-grad-shared-rows=-1 --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=SGSH
// RUN: attnres-opt %s --convert-attnres-to-gpu=score-grad-shared-rows=3 --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=SGSH3
// RUN: attnres-opt %s --convert-attnres-to-gpu=score-grad-persistent=1 --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=PERS
// RUN: attnres-opt %s --convert-attnres-to-gpu="chip=sm_86 grad-rows-in-shared=1" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=SM86
// RUN: attnres-opt %s --convert-attnres-to-gpu="chip=sm_80 grad-rows-in-shared=1" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=SM80

// The training ops on the GPU (docs/gpu.md "Backward kernels").
// aggregate_stats: the aggregate kernel (same layout) that also stores the
// log-sum-exp and the inverse RMS of every source, by the token's first
// thread.

// CHECK-LABEL: func.func @stats
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x4096xbf16>
// CHECK:         %[[H:.*]] = memref.alloc(%{{.*}}) : memref<?x4096xbf16>
// CHECK:         %[[L:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK:         %[[R0:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK:         %[[R1:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK:         %[[R2:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_stats_bf16_d4096_n3 blocks in (%[[T]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args({{.*}}, %[[H]] : memref<?x4096xbf16>, %[[L]] : memref<?xf32>, %[[R0]] : memref<?xf32>, %[[R1]] : memref<?xf32>, %[[R2]] : memref<?xf32>, %[[T]] : index, %{{.*}} : f32)
// CHECK:       gpu.func @aggregate_stats_bf16_d4096_n3({{.*}}known_block_size = array<i32: 512, 1, 1>
// CHECK-COUNT-3: memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<?xf32>
// CHECK:         llvm.call_intrinsic "llvm.nvvm.lg2.approx.ftz.f"
// CHECK:         memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<?xf32>
func.func @stats(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v0: tensor<?x4096xbf16>, %v1: tensor<?x4096xbf16>, %v2: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>) {
  %h, %lse, %r:3 = attnres.aggregate_stats %w, %g over %v0, %v1, %v2 {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %h, %lse, %r#0, %r#1, %r#2 : tensor<?x4096xbf16>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
}

// -----

// One source with statistics: the score is computed (lse = z_0, no log),
// h is the source times 1.

// CHECK-LABEL: func.func @stats_one
// CHECK:       gpu.func @aggregate_stats_f32_d37_n1(
// CHECK-NOT:     llvm.nvvm.lg2
// CHECK:         gpu.return
func.func @stats_one(%w: tensor<37xf32>, %v0: tensor<5x?x37xf32>) -> (tensor<5x?x37xf32>, tensor<5x?xf32>, tensor<5x?xf32>) {
  %h, %lse, %r = attnres.aggregate_stats %w, %w over %v0 {epsilon = 1.0e-05 : f32} : tensor<5x?x37xf32>
  return %h, %lse, %r : tensor<5x?x37xf32>, tensor<5x?xf32>, tensor<5x?xf32>
}

// -----

// aggregate_grad: min(T, grad-ctas) CTAs (default 528) each take a chunk of
// tokens in a loop and write one f32 partial row of dwg to a workspace;
// a second kernel (32 columns x 32 slices per CTA) sums the rows in a
// fixed order and scales by the gain / query. No atomics anywhere.

// CHECK-LABEL: func.func @grad
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x4096xbf16>
// CHECK:         %[[DV0:.*]] = memref.alloc(%{{.*}}) : memref<?x4096xbf16>
// CHECK:         %[[DV1:.*]] = memref.alloc(%{{.*}}) : memref<?x4096xbf16>
// CHECK:         %[[G:.*]] = arith.constant 528 : index
// CHECK:         %[[P:.*]] = arith.minui %[[T]], %[[G]] : index
// CHECK:         %[[WS:.*]] = memref.alloc(%[[P]]) : memref<?x4096xf32>
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_grad_bf16_d4096_n2 blocks in (%[[P]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args(%{{.*}} : memref<4096xbf16>, %{{.*}} : memref<4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<?x4096xbf16>, %[[DV0]] : memref<?x4096xbf16>, %[[DV1]] : memref<?x4096xbf16>, %[[WS]] : memref<?x4096xf32>, %[[T]] : index)
// CHECK:         %[[DQ:.*]] = memref.alloc() : memref<4096xf32>
// CHECK:         %[[DG:.*]] = memref.alloc() : memref<4096xf32>
// CHECK:         %[[C128:.*]] = arith.constant 128 : index
// CHECK:         %[[C1024:.*]] = arith.constant 1024 : index
// CHECK:         gpu.launch_func @attnres_kernels::@param_grad_reduce_bf16_k4096 blocks in (%[[C128]], %{{.*}}, %{{.*}}) threads in (%[[C1024]], %{{.*}}, %{{.*}}) args(%[[WS]] : memref<?x4096xf32>, %[[P]] : index, %{{.*}} : memref<4096xbf16>, %{{.*}} : memref<4096xbf16>, %[[DQ]] : memref<4096xf32>, %[[DG]] : memref<4096xf32>)
// CHECK:         bufferization.to_tensor %[[DQ]] restrict writable : memref<4096xf32> to tensor<4096xf32>
// C37-LABEL:   func.func @grad
// C37:           %[[G:.*]] = arith.constant 37 : index
// C37:           arith.minui %{{.*}}, %[[G]] : index
// CHECK:       gpu.func @aggregate_grad_bf16_d4096_n2({{.*}}workgroup(%{{.*}} : memref<2x4x16xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 512, 1, 1>}
// CHECK:         gpu.grid_dim  x
// CHECK:         arith.ceildivui
// CHECK:         scf.for %[[TOK:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (vector<8xf32>)
// CHECK:           gpu.shuffle  xor
// CHECK:           gpu.barrier
// CHECK:           llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK-COUNT-2:   vector.store %{{.*}}, %{{.*}}[%[[TOK]], %{{.*}}] {alignment = 16 : i64} : memref<?x4096xbf16>, vector<8xbf16>
// CHECK:           scf.yield %{{.*}} : vector<8xf32>
// CHECK:         vector.store %{{.*}} : memref<?x4096xf32>, vector<8xf32>
// CHECK:       gpu.func @param_grad_reduce_bf16_k4096(%{{.*}}: memref<?x4096xf32>, %{{.*}}: index, %{{.*}}: memref<4096xbf16>, %{{.*}}: memref<4096xbf16>, %{{.*}}: memref<4096xf32>, %{{.*}}: memref<4096xf32>) workgroup(%{{.*}} : memref<32x32xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 1024, 1, 1>}
// CHECK:         scf.for
// CHECK:         gpu.barrier
// CHECK-NOT:   atomic
func.func @grad(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v0: tensor<?x4096xbf16>, %v1: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %r0: tensor<?xf32>, %r1: tensor<?xf32>, %dh: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<4096xf32>, tensor<4096xf32>) {
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %g over %v0, %v1 stats %lse, %r0, %r1 grad %dh {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %dv#0, %dv#1, %dq, %dg : tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<4096xf32>, tensor<4096xf32>
}

// -----

// Accumulating form: the accumulators are extra inputs of the kernel
// (`_acc`); with 9 sources (x2 for the accumulators) the rows do not stay
// in registers between the two passes: the first pass also stores them in
// shared memory, where the second pass reads them (`_shared`;
// @grad_rows_in_shared below).

// CHECK-LABEL: func.func @grad_acc
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_grad_f32_d37_n2_acc
// CHECK:         gpu.launch_func @attnres_kernels::@param_grad_reduce_f32_k37 blocks in (%[[C2:.*]], %{{.*}}, %{{.*}})
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_grad_bf16_d4096_n9_acc_shared
// CHECK:       gpu.func @aggregate_grad_f32_d37_n2_acc(
// CHECK-SAME:    known_block_size = array<i32: 32, 1, 1>
// CHECK:       gpu.func @param_grad_reduce_f32_k37(
// CHECK:       gpu.func @aggregate_grad_bf16_d4096_n9_acc_shared(
func.func @grad_acc(%w: tensor<37xf32>, %v0: tensor<?x37xf32>, %v1: tensor<?x37xf32>, %lse: tensor<?xf32>, %r: tensor<?xf32>, %dh: tensor<?x37xf32>,
                    %wb: tensor<4096xbf16>, %b: tensor<?x4096xbf16>, %dhb: tensor<?x4096xbf16>) -> (tensor<?x37xf32>, tensor<37xf32>, tensor<?x4096xbf16>, tensor<4096xf32>) {
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %w over %v0, %v1 stats %lse, %r, %r grad %dh accumulate %v1, %v0 {epsilon = 1.0e-05 : f32} : tensor<?x37xf32>
  %db:9, %dqb, %dgb = attnres.aggregate_grad %wb, %wb over %b, %b, %b, %b, %b, %b, %b, %b, %b stats %lse, %r, %r, %r, %r, %r, %r, %r, %r, %r grad %dhb accumulate %b, %b, %b, %b, %b, %b, %b, %b, %b {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %dv#0, %dq, %db#8, %dgb : tensor<?x37xf32>, tensor<37xf32>, tensor<?x4096xbf16>, tensor<4096xf32>
}

// -----

// merge_grad with the partial sum and the fused norm: dout, dlse, dp and a
// workspace of 2 D columns per CTA (dwg, then dgn); the reduction scales
// the first D columns and writes the next D unscaled (dgn).

// CHECK-LABEL: func.func @merge_grad_norm
// CHECK:         %[[P:.*]] = arith.minui %{{.*}}, %{{.*}} : index
// CHECK:         %[[WS:.*]] = memref.alloc(%[[P]]) : memref<?x8192xf32>
// CHECK:         gpu.launch_func @attnres_kernels::@merge_grad_bf16_d4096_p_n blocks in (%[[P]], %{{.*}}, %{{.*}})
// CHECK:         memref.alloc() : memref<4096xf32>
// CHECK:         memref.alloc() : memref<4096xf32>
// CHECK:         %[[DGN:.*]] = memref.alloc() : memref<4096xf32>
// CHECK:         %[[C256:.*]] = arith.constant 256 : index
// CHECK:         gpu.launch_func @attnres_kernels::@param_grad_reduce_bf16_k4096_p4096 blocks in (%[[C256]], %{{.*}}, %{{.*}}) {{.*}}args(%[[WS]] : memref<?x8192xf32>, %[[P]] : index, {{.*}}, %[[DGN]] : memref<4096xf32>)
// CHECK:       gpu.func @merge_grad_bf16_d4096_p_n(
// Three token reductions per token (p' and score, h and <h, gn dhn>, dc).
// CHECK-COUNT-3: gpu.barrier
// CHECK:         scf.yield
// CHECK:       gpu.func @param_grad_reduce_bf16_k4096_p4096(
func.func @merge_grad_norm(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %y: tensor<?x4096xbf16>, %p: tensor<?x4096xbf16>, %gn: tensor<4096xbf16>, %dh: tensor<?x4096xbf16>, %dpn: tensor<?x4096xbf16>, %dhn: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<?x4096xbf16>, tensor<4096xf32>) {
  %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %lse, %w, %g update %y partial %p norm %gn grad %dh, %dpn, %dhn {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %do, %dl, %dw, %dg, %dp, %dgn : tensor<?x4096xbf16>, tensor<?xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<?x4096xbf16>, tensor<4096xf32>
}

// -----

// A known-zero `grad` (a zero fill, here of -0.0, or a zero splat) is not an
// operand of the kernel and is not read: the `_z` kernel loads five rows per
// token (update, partial, out, dp_new, dhn) instead of six. Control: a fill
// of another value is read like any other dh.

// CHECK-LABEL: func.func @merge_grad_norm_zero_dh
// CHECK:         gpu.launch_func @attnres_kernels::@merge_grad_bf16_d4096_p_n_z
// CHECK-SAME:      args(%{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<4096xbf16>, %{{.*}} : memref<4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?xf32>,
// CHECK:       gpu.func @merge_grad_bf16_d4096_p_n_z(
// CHECK-COUNT-5: vector.load %arg{{[0-9]+}}[%arg{{[0-9]+}}, %{{.*}}] {{.*}} : memref<?x4096xbf16>
// CHECK-NOT:     vector.load %arg{{[0-9]+}}[%arg{{[0-9]+}}, %{{.*}}] {{.*}} : memref<?x4096xbf16>
// CHECK-COUNT-3: gpu.barrier
// By default (grad-prefetch-tokens; 5 rows x 16 bytes per thread fit 96 bytes): the
// first token's rows (clamped to T - 1) before the loop, carried by it, and
// the next token's (clamped to the CTA's last) loaded at the top of each
// iteration, before the three reductions.
// PF-LABEL: func.func @merge_grad_norm_zero_dh
// PF:         gpu.launch_func @attnres_kernels::@merge_grad_bf16_d4096_p_n_z_pf
// PF:       gpu.func @merge_grad_bf16_d4096_p_n_z_pf(
// PF:         %[[LAST:.*]] = arith.subi %{{.*}}, %{{.*}} : index
// PF-NEXT:    %[[FIRST:.*]] = arith.minui %{{.*}}, %[[LAST]] : index
// PF-COUNT-5: vector.load %arg{{[0-9]+}}[%[[FIRST]], %{{.*}}] {{.*}} : memref<?x4096xbf16>
// PF:         memref.load %arg1[%[[FIRST]]] : memref<?xf32>
// PF:         scf.for %{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>, f32)
// PF:           %[[SUCC:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// PF:           %[[OWN:.*]] = arith.subi %{{.*}}, %{{.*}} : index
// PF-NEXT:      %[[NEXT:.*]] = arith.minui %[[SUCC]], %[[OWN]] : index
// PF-COUNT-5:   vector.load %arg{{[0-9]+}}[%[[NEXT]], %{{.*}}] {{.*}} : memref<?x4096xbf16>
// PF:           memref.load %arg1[%[[NEXT]]] : memref<?xf32>
// PF-NOT:       vector.load %arg{{[0-9]+}}[%{{.*}}, %{{.*}}] {{.*}} : memref<?x4096xbf16>
// PF-COUNT-3:   gpu.barrier
func.func @merge_grad_norm_zero_dh(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %y: tensor<?x4096xbf16>, %p: tensor<?x4096xbf16>, %gn: tensor<4096xbf16>, %dpn: tensor<?x4096xbf16>, %dhn: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<?x4096xbf16>, tensor<4096xf32>) {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %y, %c0 : tensor<?x4096xbf16>
  %e = tensor.empty(%t) : tensor<?x4096xbf16>
  %zero = arith.constant -0.0 : bf16
  %dh = linalg.fill ins(%zero : bf16) outs(%e : tensor<?x4096xbf16>) -> tensor<?x4096xbf16>
  %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %lse, %w, %g update %y partial %p norm %gn grad %dh, %dpn, %dhn {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %do, %dl, %dw, %dg, %dp, %dgn : tensor<?x4096xbf16>, tensor<?xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<?x4096xbf16>, tensor<4096xf32>
}

// -----

// CHECK-LABEL: func.func @merge_grad_zero_splat
// CHECK:         gpu.launch_func @attnres_kernels::@merge_grad_f32_d64_z
// CHECK:       gpu.func @merge_grad_f32_d64_z(
func.func @merge_grad_zero_splat(%o: tensor<16x64xf32>, %lse: tensor<16xf32>, %w: tensor<64xf32>, %g: tensor<64xf32>, %y: tensor<16x64xf32>, %dpn: tensor<16x64xf32>) -> (tensor<16x64xf32>, tensor<16xf32>, tensor<64xf32>, tensor<64xf32>, tensor<16x64xf32>) {
  %dh = arith.constant dense<0.0> : tensor<16x64xf32>
  %do, %dl, %dw, %dg, %dp = attnres.merge_grad %o, %lse, %w, %g update %y grad %dh, %dpn {epsilon = 1.0e-05 : f32} : tensor<16x64xf32>
  return %do, %dl, %dw, %dg, %dp : tensor<16x64xf32>, tensor<16xf32>, tensor<64xf32>, tensor<64xf32>, tensor<16x64xf32>
}

// -----

// CHECK-LABEL: func.func @merge_grad_nonzero_fill
// CHECK:         gpu.launch_func @attnres_kernels::@merge_grad_bf16_d4096_p_n blocks
// CHECK:       gpu.func @merge_grad_bf16_d4096_p_n(
// CHECK-COUNT-6: vector.load %arg{{[0-9]+}}[%arg{{[0-9]+}}, %{{.*}}] {{.*}} : memref<?x4096xbf16>
func.func @merge_grad_nonzero_fill(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %y: tensor<?x4096xbf16>, %p: tensor<?x4096xbf16>, %gn: tensor<4096xbf16>, %dpn: tensor<?x4096xbf16>, %dhn: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<?x4096xbf16>, tensor<4096xf32>) {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %y, %c0 : tensor<?x4096xbf16>
  %e = tensor.empty(%t) : tensor<?x4096xbf16>
  %one = arith.constant 1.0 : bf16
  %dh = linalg.fill ins(%one : bf16) outs(%e : tensor<?x4096xbf16>) -> tensor<?x4096xbf16>
  %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %lse, %w, %g update %y partial %p norm %gn grad %dh, %dpn, %dhn {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %do, %dl, %dw, %dg, %dp, %dgn : tensor<?x4096xbf16>, tensor<?xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<?x4096xbf16>, tensor<4096xf32>
}

// -----

// merge_grad without partial and norm: two reductions per token.

// CHECK-LABEL: func.func @merge_grad_plain
// CHECK:         gpu.launch_func @attnres_kernels::@merge_grad_f16_d7168
// CHECK:         gpu.launch_func @attnres_kernels::@param_grad_reduce_f16_k7168 blocks
// CHECK:       gpu.func @merge_grad_f16_d7168(
// 16 elements per thread: the rows do not fit, grad-prefetch-tokens has no
// effect.
// PF-LABEL: func.func @merge_grad_plain
// PF:         gpu.launch_func @attnres_kernels::@merge_grad_f16_d7168 blocks
// PF:       gpu.func @merge_grad_f16_d7168(
// CHECK-COUNT-2: gpu.barrier
// CHECK-NOT:     gpu.barrier
// CHECK:         scf.yield
func.func @merge_grad_plain(%o: tensor<?x7168xf16>, %lse: tensor<?xf32>, %w: tensor<7168xf16>, %g: tensor<7168xf16>, %y: tensor<?x7168xf16>, %dh: tensor<?x7168xf16>, %dpn: tensor<?x7168xf16>) -> (tensor<?x7168xf16>, tensor<?xf32>, tensor<7168xf32>, tensor<7168xf32>, tensor<?x7168xf16>) {
  %do, %dl, %dw, %dg, %dp = attnres.merge_grad %o, %lse, %w, %g update %y grad %dh, %dpn {epsilon = 1.0e-05 : f32} : tensor<?x7168xf16>
  return %do, %dl, %dw, %dg, %dp : tensor<?x7168xf16>, tensor<?xf32>, tensor<7168xf32>, tensor<7168xf32>, tensor<?x7168xf16>
}

// -----

// At 16-bit D = 4096 with the rows in shared memory (3 to 12 sources here),
// 16 elements per thread (256 threads) and two CTAs per SM without
// accumulators; 8 (512 threads) with 2 sources (rows in registers) or with
// accumulators and fewer than 12 rows per token.

// CHECK-LABEL: func.func @grad_d4096_layout
// CHECK-DAG:   gpu.func @aggregate_grad_bf16_d4096_n3_shared({{.*}}known_block_size = array<i32: 256, 1, 1>, nvvm.minctasm = 2 : i32}
// CHECK-DAG:   gpu.func @aggregate_grad_bf16_d4096_n3_acc_shared({{.*}}known_block_size = array<i32: 512, 1, 1>}
// CHECK-DAG:   gpu.func @aggregate_grad_bf16_d4096_n2({{.*}}known_block_size = array<i32: 512, 1, 1>}
// CHECK-DAG:   gpu.func @aggregate_grad_bf16_d4096_n12_shared({{.*}}known_block_size = array<i32: 256, 1, 1>, nvvm.minctasm = 2 : i32}
func.func @grad_d4096_layout(%w: tensor<4096xbf16>, %v: tensor<?x4096xbf16>, %s: tensor<?xf32>, %dh: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<?x4096xbf16>) {
  %a:3, %aq, %ag = attnres.aggregate_grad %w, %w over %v, %v, %v stats %s, %s, %s, %s grad %dh {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  %b:3, %bq, %bg = attnres.aggregate_grad %w, %w over %v, %v, %v stats %s, %s, %s, %s grad %dh accumulate %v, %v, %v {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  %c:2, %cq, %cg = attnres.aggregate_grad %w, %w over %v, %v stats %s, %s, %s grad %dh {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  %d:12, %dq, %dg = attnres.aggregate_grad %w, %w over %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v, %v stats %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s grad %dh {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %a#0, %b#0, %c#0, %d#0 : tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<?x4096xbf16>
}

// -----

// The layout of aggregate_grad past 4096 16-bit elements: 16 elements per
// thread (448 threads at D = 7168) without accumulators, 32 (224 threads)
// with them (run 34: 448-thread CTAs spill); 2 sources keep their rows in
// registers. CTAs of more than 256 threads get no min-ctas hint.

// CHECK-LABEL: func.func @grad_wide
// CHECK-DAG:   gpu.func @aggregate_grad_bf16_d7168_n3_shared({{.*}}known_block_size = array<i32: 448, 1, 1>}
// CHECK-DAG:   gpu.func @aggregate_grad_bf16_d7168_n3_acc_shared({{.*}}known_block_size = array<i32: 224, 1, 1>}
// CHECK-DAG:   gpu.func @aggregate_grad_bf16_d7168_n2({{.*}}known_block_size = array<i32: 448, 1, 1>}
func.func @grad_wide(%w: tensor<7168xbf16>, %v: tensor<?x7168xbf16>, %s: tensor<?xf32>, %dh: tensor<?x7168xbf16>) -> (tensor<?x7168xbf16>, tensor<?x7168xbf16>, tensor<?x7168xbf16>) {
  %a:3, %aq, %ag = attnres.aggregate_grad %w, %w over %v, %v, %v stats %s, %s, %s, %s grad %dh {epsilon = 1.0e-05 : f32} : tensor<?x7168xbf16>
  %b:3, %bq, %bg = attnres.aggregate_grad %w, %w over %v, %v, %v stats %s, %s, %s, %s grad %dh accumulate %v, %v, %v {epsilon = 1.0e-05 : f32} : tensor<?x7168xbf16>
  %c:2, %cq, %cg = attnres.aggregate_grad %w, %w over %v, %v stats %s, %s, %s grad %dh {epsilon = 1.0e-05 : f32} : tensor<?x7168xbf16>
  return %a#0, %b#0, %c#0 : tensor<?x7168xbf16>, tensor<?x7168xbf16>, tensor<?x7168xbf16>
}

// -----

// A single token (rank 1) has no token dimension for the kernels.

func.func @grad_rank1(%w: tensor<64xf32>, %v0: tensor<64xf32>, %v1: tensor<64xf32>, %s: tensor<f32>, %dh: tensor<64xf32>) -> tensor<64xf32> {
  // expected-error @+1 {{convert-attnres-to-gpu needs at least one token dimension before D (rank >= 2)}}
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %w over %v0, %v1 stats %s, %s, %s grad %dh {epsilon = 1.0e-05 : f32} : tensor<64xf32>
  return %dv#0 : tensor<64xf32>
}

// -----

// block_score_grad with grad-tensor-cores=0 (the CUDA-core kernel, for f32,
// f16 and targets without bf16 mma): one CTA per token writes db and the coefficients
// k1_li = dz_li r_i (T x S*n f32); a column-tiled kernel (P chunks x 4 tiles
// of 128 threads x 8 bf16 columns) writes P f32 partials of the S x D
// parameter gradients; the ordered reduction with K = S * D scales them by
// the flattened gains / queries.

// CHECK-LABEL: func.func @score_grad
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x4096xbf16>
// CHECK:         %[[DB0:.*]] = memref.alloc(%{{.*}}) : memref<?x4096xbf16>
// CHECK:         %[[DB1:.*]] = memref.alloc(%{{.*}}) : memref<?x4096xbf16>
// CHECK:         %[[K1:.*]] = memref.alloc(%[[T]]) : memref<?x6xf32>
// CHECK:         gpu.launch_func @attnres_kernels::@block_score_grad_bf16_d4096_s3_n2 blocks in (%[[T]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args(%{{.*}} : memref<3x4096xbf16>, %{{.*}} : memref<3x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<3x?xf32>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<3x?x4096xbf16>, %{{.*}} : memref<3x?xf32>, %[[DB0]] : memref<?x4096xbf16>, %[[DB1]] : memref<?x4096xbf16>, %[[K1]] : memref<?x6xf32>, %[[T]] : index)
// CHECK:         %[[P:.*]] = arith.minui %[[T]], %{{.*}} : index
// CHECK:         %[[WS:.*]] = memref.alloc(%[[P]]) : memref<?x12288xf32>
// CHECK:         %[[C4:.*]] = arith.constant 4 : index
// CHECK:         %[[GRID:.*]] = arith.muli %[[P]], %[[C4]] : index
// CHECK:         gpu.launch_func @attnres_kernels::@block_score_grad_params_bf16_d4096_s3_n2 blocks in (%[[GRID]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args(%{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %[[K1]] : memref<?x6xf32>, %[[WS]] : memref<?x12288xf32>, %[[T]] : index)
// CHECK:         %[[DQ:.*]] = memref.alloc() : memref<12288xf32>
// CHECK:         %[[DG:.*]] = memref.alloc() : memref<12288xf32>
// CHECK:         %[[WF:.*]] = memref.collapse_shape %{{.*}} {{\[\[}}0, 1]] : memref<3x4096xbf16> into memref<12288xbf16>
// CHECK:         %[[GF:.*]] = memref.collapse_shape %{{.*}} {{\[\[}}0, 1]] : memref<3x4096xbf16> into memref<12288xbf16>
// CHECK:         gpu.launch_func @attnres_kernels::@param_grad_reduce_bf16_k12288 {{.*}} args(%[[WS]] : memref<?x12288xf32>, %[[P]] : index, %[[WF]] : memref<12288xbf16>, %[[GF]] : memref<12288xbf16>, %[[DQ]] : memref<12288xf32>, %[[DG]] : memref<12288xf32>)
// CHECK:         memref.expand_shape %[[DQ]] {{\[\[}}0, 1]] output_shape [3, 4096] : memref<12288xf32> into memref<3x4096xf32>
// CHECK:       gpu.func @block_score_grad_bf16_d4096_s3_n2({{.*}}workgroup(%{{.*}} : memref<2x6xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<2x4x16xf32, #gpu.address_space<workgroup>>){{.*}}known_block_size = array<i32: 512, 1, 1>
// Pass 1: a loop over the 3 queries carrying K2 of both sources, the
// gradient sum of source 0 and the next query's rows (W, G, dout), loaded
// at the top of the iteration; one reduction of the 4 dot products, then
// every thread computes the coefficients (one exp per source, normalised by
// their sum); the first thread stores a and k1.
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args({{.*}}) -> (f32, f32, vector<8xf32>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>) {
// CHECK-COUNT-3:   vector.load %{{.*}} : memref<{{.*}}xbf16>, vector<8xbf16>
// CHECK-COUNT-20:  gpu.shuffle xor
// CHECK:           gpu.barrier
// CHECK:           scf.yield %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : f32, f32, f32, f32
// CHECK-NOT:       scf.if
// CHECK-COUNT-2:   llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK:           arith.divf
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] : memref<2x6xf32, #gpu.address_space<workgroup>>
// CHECK:             memref.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] : memref<?x6xf32>
// CHECK:           scf.yield {{.*}} : f32, f32, vector<8xf32>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>
// Source 0's gradient is complete after pass 1.
// CHECK:         vector.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {{{.*}}} : memref<?x4096xbf16>, vector<8xbf16>
// CHECK:         gpu.barrier
// Pass 2: source 1, the queries' terms carried by a loop with the next
// query's rows.
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xbf16>, vector<8xbf16>, vector<8xbf16>) {
// CHECK-COUNT-2:   vector.fma
// CHECK:         vector.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {{{.*}}} : memref<?x4096xbf16>, vector<8xbf16>
// CHECK:       gpu.func @block_score_grad_params_bf16_d4096_s3_n2({{.*}}known_block_size = array<i32: 128, 1, 1>
// CHECK:         scf.for %{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>) {
// CHECK-COUNT-6:   vector.fma
// CHECK:         vector.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {{{.*}}} : memref<?x12288xf32>, vector<8xf32>

// By default (grad-tensor-cores; bf16, D a multiple of 8): the per-token kernel
// `_tc`, same arguments, 256 threads (16 columns each). It requests the
// token's 2 source and 3 dout rows into L2; each warp's mma sweep covers 16
// blocks of 32 columns, 2 k-steps x 3 mma each (w*g hi, w*g lo, dout):
// 96 mma.sync; the per-warp partials (8 warps x n x S) are summed in warp
// order after one barrier; one thread per query computes a, k1 (one exp
// per source, normalised by their sum; k1 also to the coefficient buffer);
// one thread per source sums K2 over the queries; then each thread's 4 chunks
// of 4 columns: both sources' rows requested first, then a loop over the
// queries carrying their sums (two fma per source and query) and the next
// query's W, G and dout (loaded one iteration ahead); db_i = g_i - K2_i b_i
// rounded once.
// TC-LABEL:    func.func @score_grad
// TC:            gpu.launch_func @attnres_kernels::@block_score_grad_bf16_d4096_s3_n2_tc blocks in (%[[T:.*]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args(%{{.*}} : memref<3x4096xbf16>, %{{.*}} : memref<3x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<3x?xf32>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<3x?x4096xbf16>, %{{.*}} : memref<3x?xf32>, %{{.*}} : memref<?x4096xbf16>, %{{.*}} : memref<?x4096xbf16>, %[[K1:.*]] : memref<?x6xf32>, %[[T]] : index)
// TC:            gpu.launch_func @attnres_kernels::@block_score_grad_params_bf16_d4096_s3_n2 blocks in {{.*}} args({{.*}}%[[K1]] : memref<?x6xf32>
// TC:          gpu.func @block_score_grad_bf16_d4096_s3_n2_tc({{.*}}workgroup(%[[ZP:.*]] : memref<8x2x3xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[DP:.*]] : memref<8x2x3xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[ZT:.*]] : memref<6xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[DT:.*]] : memref<6xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[CO:.*]] : memref<3x2x4xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[K2:.*]] : memref<4xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel attributes {known_block_size = array<i32: 256, 1, 1>}
// TC-COUNT-5:    llvm.call_intrinsic "llvm.nvvm.prefetch.global.L2"
// TC-COUNT-96:   nvvm.mma.sync
// TC-NOT:        nvvm.mma.sync
// TC:            memref.store %{{.*}}, %[[ZP]]
// TC:            memref.store %{{.*}}, %[[DP]]
// TC:            gpu.barrier
// TC:            scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// TC-COUNT-8:      memref.load %[[ZP]]
// TC:              memref.store %{{.*}}, %[[ZT]]
// TC:            gpu.barrier
// TC:            scf.if
// TC-COUNT-2:      llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// TC:              arith.divf
// TC:              memref.store %{{.*}}, %[[CO]]
// TC:              memref.store %{{.*}}, %[[CO]]
// TC:              memref.store %{{.*}}, %{{.*}} : memref<?x6xf32>
// TC:            gpu.barrier
// TC:            scf.if
// TC-COUNT-3:      memref.load %[[ZT]]
// TC:              memref.store %{{.*}}, %[[K2]]
// TC:            gpu.barrier
// TC-COUNT-2:    vector.load %{{.*}} : memref<?x4096xbf16>, vector<4xbf16>
// TC:            scf.for %{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xbf16>, vector<4xbf16>, vector<4xbf16>) {
// TC-COUNT-3:      vector.load
// TC-COUNT-2:      vector.load %[[CO]]
// TC-COUNT-4:      vector.fma
// TC-NOT:          vector.load
// TC:              scf.yield
// TC:            memref.load %[[K2]]
// TC:            vector.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {alignment = 8 : i64} : memref<?x4096xbf16>, vector<4xbf16>
// TC:            memref.load %[[K2]]
// TC:            vector.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {alignment = 8 : i64} : memref<?x4096xbf16>, vector<4xbf16>

// With score-grad-shared-rows the mma sweep also stores each lane's 16-byte
// fragments of the first k rows (the 2 sources, then dout of the 3 queries)
// into dynamic shared memory, rows 64 bytes apart (4128 elements), and the
// source-gradient sweep reads them from there. -1: all 5 rows fit (41280
// bytes, then the regions: 41840). Each warp's 16 blocks store one source
// fragment (rows 0-1 of the A tile) and one dout fragment (queries 0-2):
// 32 stores; the second sweep loads no row of dout from global memory.
// SGSH-LABEL:  func.func @score_grad
// SGSH:          %[[SM:.*]] = arith.constant 41840 : i32
// SGSH:          gpu.launch_func  @attnres_kernels::@block_score_grad_bf16_d4096_s3_n2_tc_shared blocks in ({{.*}}) threads in ({{.*}})  dynamic_shared_memory_size %[[SM]] args(
// SGSH:        gpu.func @block_score_grad_bf16_d4096_s3_n2_tc_shared({{[^)]*}}) kernel attributes
// SGSH:          %[[DYN:.*]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// SGSH:          %[[ROWS:.*]] = memref.view %[[DYN]][%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<5x4128xbf16, #gpu.address_space<workgroup>>
// SGSH-COUNT-6:  memref.view %[[DYN]]
// SGSH-COUNT-32: vector.store %{{.*}}, %[[ROWS]][%{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<5x4128xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// SGSH-NOT:      vector.store %{{.*}}, %[[ROWS]]
// SGSH:          gpu.barrier
// SGSH:          vector.load %[[ROWS]][%{{.*}}, %{{.*}}] {alignment = 8 : i64} : memref<5x4128xbf16, #gpu.address_space<workgroup>>, vector<4xbf16>
// SGSH:          scf.for %{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xbf16>, vector<4xbf16>, vector<4xbf16>) {
// SGSH-COUNT-2:    vector.load %{{.*}} : memref<3x4096xbf16>, vector<4xbf16>
// SGSH-NOT:        memref<3x?x4096xbf16>
// SGSH:            vector.load %[[ROWS]]
// SGSH-NOT:        memref<3x?x4096xbf16>
// SGSH:            scf.yield {{.*}} : vector<4xf32>, vector<4xf32>, vector<4xbf16>
// SGSH:          vector.load %[[ROWS]][%c0{{.*}}, %{{.*}}]
// SGSH:          vector.store %{{.*}} : memref<?x4096xbf16>, vector<4xbf16>
// SGSH:          vector.load %[[ROWS]][%c1{{.*}}, %{{.*}}]
// SGSH-NOT:      memref<3x?x4096xbf16>, vector<4xbf16>
// SGSH-NOT:      memref<?x4096xbf16>, vector<4xbf16>
// SGSH:          vector.store %{{.*}} : memref<?x4096xbf16>, vector<4xbf16>
// SGSH:        gpu.func @block_score_grad_params_bf16_d4096_s3_n2

// score-grad-shared-rows=3: both sources and the dout row of query 0 (the
// dout fragments are stored by the lanes with grp < 1); the second sweep
// takes dout_l from shared memory for l < 1, else from global memory.
// SGSH3-LABEL: func.func @score_grad
// SGSH3:         gpu.launch_func  @attnres_kernels::@block_score_grad_bf16_d4096_s3_n2_tc_shared3 blocks
// SGSH3:       gpu.func @block_score_grad_bf16_d4096_s3_n2_tc_shared3(
// SGSH3:         %[[ROWS:.*]] = memref.view %{{.*}}[%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<3x4128xbf16, #gpu.address_space<workgroup>>
// SGSH3-COUNT-32: vector.store %{{.*}}, %[[ROWS]]
// SGSH3:         gpu.barrier
// SGSH3:         scf.for %{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xbf16>, vector<4xbf16>, vector<4xbf16>) {
// SGSH3:           scf.if %{{.*}} -> (vector<4xbf16>) {
// SGSH3:             vector.load %[[ROWS]]
// SGSH3:           } else {
// SGSH3:             vector.load %{{.*}} : memref<3x?x4096xbf16>, vector<4xbf16>
// SGSH3:           scf.yield

// score-grad-persistent: min(T, 528 / 2) CTAs, each a chunk of tokens: the
// first token's 2 + 3 rows requested into L2 before the loop, then per token
// the next one's (if in the chunk), the phases above, and a barrier.
// PERS-LABEL:  func.func @score_grad
// PERS:          %[[C264:.*]] = arith.constant 264 : index
// PERS:          %[[CTAS:.*]] = arith.minui %{{.*}}, %[[C264]] : index
// PERS:          gpu.launch_func  @attnres_kernels::@block_score_grad_bf16_d4096_s3_n2_tc_p blocks in (%[[CTAS]], %{{.*}}, %{{.*}})
// PERS:        gpu.func @block_score_grad_bf16_d4096_s3_n2_tc_p(
// PERS:          gpu.grid_dim x
// PERS:          scf.if
// PERS-COUNT-5:    llvm.call_intrinsic "llvm.nvvm.prefetch.global.L2"
// PERS:          scf.for %[[TOK:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// PERS:            %[[NEXT:.*]] = arith.addi %[[TOK]], %{{.*}} : index
// PERS:            scf.if
// PERS-COUNT-5:      llvm.call_intrinsic "llvm.nvvm.prefetch.global.L2"
// PERS-COUNT-96:   nvvm.mma.sync
// PERS-NOT:        llvm.nvvm.prefetch.global.L2
// PERS:            vector.store %{{.*}} : memref<?x4096xbf16>, vector<4xbf16>
// PERS:            gpu.barrier
// PERS-NEXT:     }
// PERS-NEXT:     gpu.return

// C37-LABEL:   func.func @score_grad
// C37:           %[[C37:.*]] = arith.constant 37 : index
// C37:           arith.minui %{{.*}}, %[[C37]] : index
func.func @score_grad(%W: tensor<3x4096xbf16>, %G: tensor<3x4096xbf16>, %b0: tensor<?x4096xbf16>, %b1: tensor<?x4096xbf16>, %lse: tensor<3x?xf32>, %r0: tensor<?xf32>, %r1: tensor<?xf32>, %dout: tensor<3x?x4096xbf16>, %dlse: tensor<3x?xf32>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<3x4096xf32>, tensor<3x4096xf32>) {
  %db:2, %dW, %dG = attnres.block_score_grad %W, %G over %b0, %b1 stats %lse, %r0, %r1 grad %dout, %dlse {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16> -> tensor<3x?x4096xbf16>
  return %db#0, %db#1, %dW, %dG : tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<3x4096xf32>, tensor<3x4096xf32>
}

// -----

// With accumulators, f32 and an odd D (scalar accesses: 13 columns, one
// tile), rank-3 sources: the token dims are collapsed.

// The option applies to bf16 only: f32 keeps the CUDA-core kernel.
// TC-LABEL:    func.func @score_grad_acc
// TC:            gpu.launch_func @attnres_kernels::@block_score_grad_f32_d13_s2_n1_acc blocks
// CHECK-LABEL: func.func @score_grad_acc
// CHECK:         gpu.launch_func @attnres_kernels::@block_score_grad_f32_d13_s2_n1_acc blocks in (%[[T:.*]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args(%{{.*}} : memref<2x13xf32>, %{{.*}} : memref<2x13xf32>, %{{.*}} : memref<?x13xf32>, %{{.*}} : memref<2x?xf32>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<2x?x13xf32>, %{{.*}} : memref<2x?xf32>, %{{.*}} : memref<?x13xf32>, %{{.*}} : memref<?x13xf32>, %{{.*}} : memref<?x2xf32>, %[[T]] : index)
// CHECK:         gpu.launch_func @attnres_kernels::@block_score_grad_params_f32_d13_s2_n1 blocks in
// CHECK:         gpu.launch_func @attnres_kernels::@param_grad_reduce_f32_k26
// CHECK:       gpu.func @block_score_grad_f32_d13_s2_n1_acc({{.*}}known_block_size = array<i32: 32, 1, 1>
// CHECK:         arith.addf %{{.*}}, %{{.*}} : vector<1xf32>
// CHECK:         vector.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] {{{.*}}} : memref<?x13xf32>, vector<1xf32>
func.func @score_grad_acc(%W: tensor<2x13xf32>, %G: tensor<2x13xf32>, %b0: tensor<4x?x13xf32>, %lse: tensor<2x4x?xf32>, %r0: tensor<4x?xf32>, %dout: tensor<2x4x?x13xf32>, %dlse: tensor<2x4x?xf32>, %a0: tensor<4x?x13xf32>) -> (tensor<4x?x13xf32>, tensor<2x13xf32>, tensor<2x13xf32>) {
  %db, %dW, %dG = attnres.block_score_grad %W, %G over %b0 stats %lse, %r0 grad %dout, %dlse accumulate %a0 {epsilon = 1.0e-05 : f32} : tensor<4x?x13xf32> -> tensor<2x4x?x13xf32>
  return %db, %dW, %dG : tensor<4x?x13xf32>, tensor<2x13xf32>, tensor<2x13xf32>
}

// -----

// More queries than the CTA's threads (S = 40, D = 64: 32 threads): the
// per-query coefficients run in a strided loop (a thread takes queries
// t and t + 32) instead of one `scf.if`; 2 blocks x 2 k-steps x 5 B tiles x 3.

// TC-LABEL:    func.func @score_grad_many_queries
// TC:          gpu.func @block_score_grad_bf16_d64_s40_n1_tc({{.*}}known_block_size = array<i32: 32, 1, 1>
// TC-COUNT-60:   nvvm.mma.sync
// TC-NOT:        nvvm.mma.sync
// TC:            gpu.barrier
// TC:            scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// TC:            gpu.barrier
// TC:            %[[C40:.*]] = arith.constant 40 : index
// TC:            %[[C32:.*]] = arith.constant 32 : index
// TC:            scf.for %{{.*}} = %thread_id_x to %[[C40]] step %[[C32]] {
// TC:              llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// TC:            gpu.barrier
func.func @score_grad_many_queries(%W: tensor<40x64xbf16>, %G: tensor<40x64xbf16>, %b0: tensor<?x64xbf16>, %lse: tensor<40x?xf32>, %r0: tensor<?xf32>, %dout: tensor<40x?x64xbf16>, %dlse: tensor<40x?xf32>) -> (tensor<?x64xbf16>, tensor<40x64xf32>, tensor<40x64xf32>) {
  %db, %dW, %dG = attnres.block_score_grad %W, %G over %b0 stats %lse, %r0 grad %dout, %dlse {epsilon = 1.0e-05 : f32} : tensor<?x64xbf16> -> tensor<40x?x64xbf16>
  return %db, %dW, %dG : tensor<?x64xbf16>, tensor<40x64xf32>, tensor<40x64xf32>
}

// -----

// aggregate_grad whose rows do not stay in registers between the two passes
// (grad-rows-in-shared, the default since run 33): pass 1 stores each
// thread's share of the 9 rows into dynamic shared memory, pass 2 reads them
// back from there, and only the rows of the accumulators, if any, come from
// global memory. All of the kernel's shared memory is one dynamic
// allocation: the rows (9 x 4096 x 2 = 73728 bytes), the reduction scratch
// and the coefficients (74432 bytes, requested by the launch). Twenty f32
// rows (320 KB) do not fit an SM's shared memory: that kernel keeps the 13
// that fit (`_shared13`, 13 x 16 KB plus the regions: 213904 bytes) and
// re-reads the other 7 in pass 2. With grad-rows-in-shared=0 every kernel
// re-reads its rows (`_reread`).

// SHARED-LABEL: func.func @grad_rows_in_shared
// SHARED:         %[[SM:.*]] = arith.constant 74432 : i32
// SHARED:         gpu.launch_func  @attnres_kernels::@aggregate_grad_bf16_d4096_n9_shared blocks in ({{.*}}) threads in ({{.*}})  dynamic_shared_memory_size %[[SM]] args(
// SHARED:         %[[SM13:.*]] = arith.constant 213904 : i32
// SHARED:         gpu.launch_func  @attnres_kernels::@aggregate_grad_f32_d4096_n20_shared13 blocks in ({{.*}}) threads in ({{.*}})  dynamic_shared_memory_size %[[SM13]] args(
// SHARED:       gpu.func @aggregate_grad_bf16_d4096_n9_shared({{[^)]*}}) kernel attributes
// SHARED:         %[[DYN:.*]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// SHARED:         %[[ROWS:.*]] = memref.view %[[DYN]][%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<9x4096xbf16, #gpu.address_space<workgroup>>
// SHARED:         memref.view %[[DYN]][%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<2x8x8xf32, #gpu.address_space<workgroup>>
// SHARED:         memref.view %[[DYN]][%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<5x9xf32, #gpu.address_space<workgroup>>
// Pass 1: the rows from global memory, each stored to its row of the view.
// SHARED-COUNT-2: vector.load %{{.*}}[%{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<?x4096xbf16>, vector<8xbf16>
// SHARED:         vector.store %{{.*}}, %[[ROWS]][%{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<9x4096xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// SHARED:         gpu.barrier
// Pass 2: the rows from the view, no global load of a source row.
// SHARED:         vector.load %[[ROWS]][%{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<9x4096xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// SHARED-NOT:     vector.load %{{.*}} : memref<?x4096xbf16>, vector<8xbf16>
// SHARED:         scf.yield
// SHARED:       gpu.func @aggregate_grad_f32_d4096_n20_shared13(
// SHARED:         %[[DYN13:.*]] = gpu.dynamic_shared_memory
// SHARED:         %[[ROWS13:.*]] = memref.view %[[DYN13]][%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<13x4096xf32, #gpu.address_space<workgroup>>
// Pass 1 stores rows 0-12 (four vectors each) and not the others.
// SHARED-COUNT-52: vector.store %{{.*}}, %[[ROWS13]]
// SHARED-NOT:     vector.store %{{.*}}, %[[ROWS13]]
// SHARED:         gpu.barrier
// Pass 2: rows 0-12 from the view, then rows 13-19 (sources 13-19 are
// arguments 15-21) from global memory.
// SHARED-COUNT-4: vector.load %[[ROWS13]][%{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<13x4096xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// SHARED:         vector.load %[[ROWS13]][%c12{{.*}}, %{{.*}}]
// SHARED:         vector.load %arg15[%{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<?x4096xf32>, vector<4xf32>
// SHARED-NOT:     vector.load %[[ROWS13]]
// SHARED:         vector.load %arg21[%{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<?x4096xf32>, vector<4xf32>
// SHARED:         scf.yield
// SHARED:       gpu.func @param_grad_reduce_f32_k4096(

// The shared memory of the target's SM decides: 100 KB on sm_86 holds 5 of
// the 9 rows of each of two CTAs (the registers allow two 128-thread CTAs),
// 164 KB on sm_80 holds all of them.
// SM86-LABEL: func.func @grad_rows_in_shared
// SM86:         gpu.launch_func  @attnres_kernels::@aggregate_grad_bf16_d4096_n9_shared5 blocks
// SM80-LABEL: func.func @grad_rows_in_shared
// SM80:         gpu.launch_func  @attnres_kernels::@aggregate_grad_bf16_d4096_n9_shared blocks

// With grad-rows-in-shared=0 the rows are re-read.
// REREAD-LABEL: func.func @grad_rows_in_shared
// REREAD-NOT:     dynamic_shared_memory_size
// REREAD:         gpu.launch_func  @attnres_kernels::@aggregate_grad_bf16_d4096_n9_reread blocks
// REREAD-NOT:     dynamic_shared_memory_size
// REREAD:         gpu.launch_func  @attnres_kernels::@aggregate_grad_f32_d4096_n20_reread blocks
// REREAD-NOT:   gpu.dynamic_shared_memory
func.func @grad_rows_in_shared(%w: tensor<4096xbf16>, %v: tensor<?x4096xbf16>, %s: tensor<?xf32>, %dh: tensor<?x4096xbf16>,
                               %wf: tensor<4096xf32>, %vf: tensor<?x4096xf32>, %dhf: tensor<?x4096xf32>) -> (tensor<?x4096xbf16>, tensor<?x4096xf32>) {
  %a:9, %aq, %ag = attnres.aggregate_grad %w, %w over %v, %v, %v, %v, %v, %v, %v, %v, %v stats %s, %s, %s, %s, %s, %s, %s, %s, %s, %s grad %dh {epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  %b:20, %bq, %bg = attnres.aggregate_grad %wf, %wf over %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf, %vf stats %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s grad %dhf {epsilon = 1.0e-05 : f32} : tensor<?x4096xf32>
  return %a#0, %b#0 : tensor<?x4096xbf16>, tensor<?x4096xf32>
}
