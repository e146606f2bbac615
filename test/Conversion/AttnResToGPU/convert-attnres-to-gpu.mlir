// RUN: attnres-opt %s --convert-attnres-to-gpu --split-input-file --verify-diagnostics | FileCheck %s
// RUN: attnres-opt %s --convert-attnres-to-gpu=bulk-copy=0 --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=L2PATH
// RUN: attnres-opt %s --convert-attnres-to-gpu=cluster-split=4 --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=X4
// RUN: not attnres-opt %s --convert-attnres-to-gpu=cluster-split=3 --split-input-file 2>&1 | FileCheck %s --check-prefix=BADOPT

// A cluster split other than 0, 1, 2 or 4 is an error at the module, not a
// silently ignored option.
// BADOPT: error: convert-attnres-to-gpu: cluster-split must be 0, 1, 2 or 4, got 3

// One aggregation with a dynamic token count: operands become read-only
// buffers, the output is allocated with the sources' dynamic size, and one
// CTA of 512 threads (one 16-byte vector each) handles one token.

// CHECK-LABEL: func.func @aggregate_bf16
// CHECK-SAME:    (%[[W:.*]]: tensor<4096xbf16>, %[[G:.*]]: tensor<4096xbf16>, %[[V0:.*]]: tensor<?x4096xbf16>, %[[V1:.*]]: tensor<?x4096xbf16>, %[[V2:.*]]: tensor<?x4096xbf16>)
// CHECK-DAG:     %[[BW:.*]] = bufferization.to_buffer %[[W]] read_only : tensor<4096xbf16> to memref<4096xbf16>
// CHECK-DAG:     %[[BG:.*]] = bufferization.to_buffer %[[G]] read_only
// CHECK-DAG:     %[[B0:.*]] = bufferization.to_buffer %[[V0]] read_only : tensor<?x4096xbf16> to memref<?x4096xbf16>
// CHECK-DAG:     %[[B1:.*]] = bufferization.to_buffer %[[V1]] read_only
// CHECK-DAG:     %[[B2:.*]] = bufferization.to_buffer %[[V2]] read_only
// CHECK:         %[[T:.*]] = memref.dim %[[B0]], %{{.*}} : memref<?x4096xbf16>
// CHECK:         %[[OUT:.*]] = memref.alloc(%{{.*}}) : memref<?x4096xbf16>
// CHECK:         %[[C512:.*]] = arith.constant 512 : index
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_bf16_d4096_n3 blocks in (%[[T]], %{{.*}}, %{{.*}}) threads in (%[[C512]], %{{.*}}, %{{.*}}) args(%[[BW]] : memref<4096xbf16>, %[[BG]] : memref<4096xbf16>, %[[B0]] : memref<?x4096xbf16>, %[[B1]] : memref<?x4096xbf16>, %[[B2]] : memref<?x4096xbf16>, %[[OUT]] : memref<?x4096xbf16>, %[[T]] : index, %{{.*}} : f32)
// CHECK:         %[[R:.*]] = bufferization.to_tensor %[[OUT]] restrict writable
// CHECK:         return %[[R]]
// CHECK:       gpu.module @attnres_kernels
// CHECK:         gpu.func @aggregate_bf16_d4096_n3(%{{.*}}: memref<4096xbf16>, %{{.*}}: memref<4096xbf16>, %{{.*}}: memref<?x4096xbf16>, %{{.*}}: memref<?x4096xbf16>, %{{.*}}: memref<?x4096xbf16>, %{{.*}}: memref<?x4096xbf16>, %{{.*}}: index, %{{.*}}: f32) workgroup(%{{.*}} : memref<2x2x16xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 512, 1, 1>}
// 16-byte loads of the query, the gain and every source.
// CHECK-COUNT-5: vector.load %{{.*}} {alignment = 16 : i64} : memref<{{.*}}xbf16>, vector<8xbf16>
// Warp reduction by xor shuffles, then across warps through workgroup memory.
// CHECK:         gpu.shuffle  xor
// CHECK:         gpu.barrier
// Online softmax: exp through ex2.approx.
// CHECK:         llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK:         vector.store %{{.*}} {alignment = 16 : i64} : memref<?x4096xbf16>, vector<8xbf16>
func.func @aggregate_bf16(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v0: tensor<?x4096xbf16>, %v1: tensor<?x4096xbf16>, %v2: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v0, %v1, %v2 {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

// -----

// Leading token dims are collapsed; D = 13 allows no vector wider than one
// element, so the kernel uses scalar vectors and a warp per token, 4 tokens
// per CTA (grid = ceil(T / 4)); two uses of one specialisation share it.

// CHECK-LABEL: func.func @aggregate_f32_odd
// CHECK:         memref.collapse_shape %{{.*}} {{\[}}[0, 1], [2]] : memref<2x?x13xf32> into memref<?x13xf32>
// CHECK:         arith.ceildivui %{{.*}}, %{{.*}} : index
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_f32_d13_n2
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_f32_d13_n2
// CHECK:       gpu.module @attnres_kernels
// CHECK-COUNT-1: gpu.func @aggregate_f32_d13_n2
// CHECK-SAME:    known_block_size = array<i32: 128, 1, 1>
// CHECK:         vector.load %{{.*}} {alignment = 4 : i64} : memref<?x13xf32>, vector<1xf32>
// CHECK-NOT:     gpu.barrier
// CHECK-NOT:     gpu.func
func.func @aggregate_f32_odd(%w: tensor<13xf32>, %g: tensor<13xf32>, %a: tensor<2x?x13xf32>, %b: tensor<2x?x13xf32>) -> (tensor<2x?x13xf32>, tensor<2x?x13xf32>) {
  %h = attnres.aggregate %w, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<2x?x13xf32>
  %k = attnres.aggregate %w, %g over %b, %a {epsilon = 1.0e-06 : f32} : tensor<2x?x13xf32>
  return %h, %k : tensor<2x?x13xf32>, tensor<2x?x13xf32>
}

// -----

// Phase 1 on tensor cores (bf16, D a multiple of 8): one CTA of D/16
// threads per token for all S queries (grid = T); mma.sync for the logits,
// one workgroup-memory reduction, softmax, then the S outputs. With inv_rms
// operands the kernel reads them instead of reducing squares.

// CHECK-LABEL: func.func @block_score
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x2048xbf16>
// CHECK:         %[[O:.*]] = memref.alloc(%{{.*}}) : memref<8x?x2048xbf16>
// CHECK:         %[[L:.*]] = memref.alloc(%{{.*}}) : memref<8x?xf32>
// CHECK:         %[[C128:.*]] = arith.constant 128 : index
// CHECK:         gpu.launch_func @attnres_kernels::@block_score_bf16_d2048_n2_s8_tc_r blocks in (%[[T]], %{{.*}}, %{{.*}}) threads in (%[[C128]], %{{.*}}, %{{.*}}) args(%{{.*}} : memref<8x2048xbf16>, %{{.*}} : memref<8x2048xbf16>, %{{.*}} : memref<?x2048xbf16>, %{{.*}} : memref<?x2048xbf16>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<?xf32>, %[[O]] : memref<8x?x2048xbf16>, %[[L]] : memref<8x?xf32>, %[[T]] : index, %{{.*}} : f32)
// CHECK:         bufferization.to_tensor %[[O]] restrict writable
// CHECK:         bufferization.to_tensor %[[L]] restrict writable
// CHECK:       gpu.func @block_score_bf16_d2048_n2_s8_tc_r
// CHECK-SAME:      workgroup(%{{.*}} : memref<4x2x8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<4x2xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<2x8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<2x8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME:      known_block_size = array<i32: 128, 1, 1>
// CHECK:         nvvm.mma.sync
// CHECK-SAME:      multiplicandAPtxType = #nvvm.mma_type<bf16>
// CHECK-SAME:      shape = #nvvm.shape<m = 16, n = 8, k = 16>
// CHECK:         gpu.barrier
// CHECK:         llvm.call_intrinsic "llvm.nvvm.lg2.approx.ftz.f"
// CHECK:         memref.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}] : memref<8x?xf32>
func.func @block_score(%W: tensor<8x2048xbf16>, %G: tensor<8x2048xbf16>, %b0: tensor<?x2048xbf16>, %b1: tensor<?x2048xbf16>, %r0: tensor<?xf32>, %r1: tensor<?xf32>, %o: tensor<8x?x2048xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x2048xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b0, %b1 inv_rms %r0, %r1 outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x2048xbf16> -> tensor<8x?x2048xbf16>
  return %out, %lse : tensor<8x?x2048xbf16>, tensor<8x?xf32>
}

// -----

// f16 (and f32, and bf16 with D not a multiple of 8) keep the CUDA-core
// kernel: S = 8 queries, 4 per CTA, 2 CTAs per token (grid = 2 T).

// CHECK-LABEL: func.func @block_score_f16
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x2048xf16>
// CHECK:         %[[GRID:.*]] = arith.muli %[[T]], %{{.*}} : index
// CHECK:         gpu.launch_func @attnres_kernels::@block_score_f16_d2048_n2_s8_g4_r blocks in (%[[GRID]], %{{.*}}, %{{.*}})
// CHECK:         gpu.launch_func @attnres_kernels::@block_score_bf16_d2044_n2_s8_g4 blocks
// CHECK:       gpu.func @block_score_f16_d2048_n2_s8_g4_r
// CHECK-NOT:     nvvm.mma.sync
// CHECK:       gpu.func @block_score_bf16_d2044_n2_s8_g4
// CHECK-NOT:     nvvm.mma.sync
func.func @block_score_f16(%W: tensor<8x2048xf16>, %G: tensor<8x2048xf16>, %b0: tensor<?x2048xf16>, %b1: tensor<?x2048xf16>, %r0: tensor<?xf32>, %r1: tensor<?xf32>, %o: tensor<8x?x2048xf16>, %l: tensor<8x?xf32>, %W2: tensor<8x2044xbf16>, %c0: tensor<?x2044xbf16>, %o2: tensor<8x?x2044xbf16>) -> (tensor<8x?x2048xf16>, tensor<8x?xf32>, tensor<8x?x2044xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b0, %b1 inv_rms %r0, %r1 outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x2048xf16> -> tensor<8x?x2048xf16>
  %out2, %lse2 = attnres.block_score %W2, %W2 over %c0, %c0 outs %o2, %l {epsilon = 1.0e-06 : f32} : tensor<?x2044xbf16> -> tensor<8x?x2044xbf16>
  return %out, %lse, %out2, %lse2 : tensor<8x?x2048xf16>, tensor<8x?xf32>, tensor<8x?x2044xbf16>, tensor<8x?xf32>
}

// -----

// One source: the aggregate is a copy (weight exactly 1 even for a NaN or
// infinite score, spec A.2): no reduction, no exponential.

// CHECK-LABEL: func.func @aggregate_one_source
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_bf16_d4096_n1
// CHECK:       gpu.func @aggregate_bf16_d4096_n1
// CHECK-NOT:     gpu.shuffle
// CHECK-NOT:     llvm.call_intrinsic
// CHECK-NOT:     gpu.barrier
// CHECK:         %[[V:.*]] = vector.load
// CHECK-NOT:     arith.{{.*}}f
// CHECK:         vector.store %[[V]]
// CHECK-NEXT:    gpu.return
func.func @aggregate_one_source(%w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %v0: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %h = attnres.aggregate %w, %g over %v0 {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}

// -----

// Phase 2 with a partial sum writes h and p'; without one, p' is the update.

// CHECK-LABEL: func.func @merge
// CHECK:         gpu.launch_func @attnres_kernels::@merge_f16_d1024_p
// CHECK:         gpu.launch_func @attnres_kernels::@merge_f16_d1024 blocks
// CHECK:         return %{{.*}}, %{{.*}}, %{{.*}}, %arg4
// CHECK:       gpu.func @merge_f16_d1024_p
// CHECK:       gpu.func @merge_f16_d1024(
func.func @merge(%o: tensor<16x1024xf16>, %lse: tensor<16xf32>, %w: tensor<1024xf16>, %g: tensor<1024xf16>, %u: tensor<16x1024xf16>, %p: tensor<16x1024xf16>) -> (tensor<16x1024xf16>, tensor<16x1024xf16>, tensor<16x1024xf16>, tensor<16x1024xf16>) {
  %h, %p2 = attnres.merge %o, %lse, %w, %g update %u partial %p {epsilon = 1.0e-06 : f32} : tensor<16x1024xf16>
  %h1, %p3 = attnres.merge %o, %lse, %w, %g update %u {epsilon = 1.0e-06 : f32} : tensor<16x1024xf16>
  return %h, %p2, %h1, %p3 : tensor<16x1024xf16>, tensor<16x1024xf16>, tensor<16x1024xf16>, tensor<16x1024xf16>
}

// -----

// CHECK-LABEL: func.func @sums
// CHECK:         gpu.launch_func @attnres_kernels::@block_sum_bf16_d256_n3
// CHECK:         gpu.launch_func @attnres_kernels::@inv_rms_bf16_d256
// CHECK:       gpu.func @block_sum_bf16_d256_n3
// CHECK:       gpu.func @inv_rms_bf16_d256
// CHECK:         gpu.shuffle  xor
func.func @sums(%a: tensor<?x256xbf16>, %b: tensor<?x256xbf16>, %c: tensor<?x256xbf16>) -> (tensor<?x256xbf16>, tensor<?xf32>) {
  %s = attnres.block_sum %a, %b, %c : tensor<?x256xbf16>
  %r = attnres.inv_rms %s {epsilon = 1.0e-06 : f32} : tensor<?x256xbf16> -> tensor<?xf32>
  return %s, %r : tensor<?x256xbf16>, tensor<?xf32>
}

// -----

func.func @dynamic_d(%w: tensor<?xbf16>, %g: tensor<?xbf16>, %v0: tensor<8x?xbf16>, %v1: tensor<8x?xbf16>) -> tensor<8x?xbf16> {
  // expected-error @+1 {{convert-attnres-to-gpu needs a static feature dimension D}}
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<8x?xbf16>
  return %h : tensor<8x?xbf16>
}

// -----

func.func @no_token_dim(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<64xf32>, %v1: tensor<64xf32>) -> tensor<64xf32> {
  // expected-error @+1 {{convert-attnres-to-gpu needs at least one token dimension before D (rank >= 2)}}
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<64xf32>
  return %h : tensor<64xf32>
}

// -----

// block_sum and inv_rms kernels are specialised on D too.
func.func @block_sum_dynamic_d(%a: tensor<?x?xbf16>, %b: tensor<?x?xbf16>) -> tensor<?x?xbf16> {
  // expected-error @+1 {{convert-attnres-to-gpu needs a static feature dimension D}}
  %s = attnres.block_sum %a, %b : tensor<?x?xbf16>
  return %s : tensor<?x?xbf16>
}

// -----

func.func @inv_rms_dynamic_d(%a: tensor<8x?xf16>) -> tensor<8xf32> {
  // expected-error @+1 {{convert-attnres-to-gpu needs a static feature dimension D}}
  %r = attnres.inv_rms %a {epsilon = 1.0e-06 : f32} : tensor<8x?xf16> -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

// Phase 1 whose rows do not fit 100 KB of shared memory (9 x (7168 + 32)
// bf16): two CTAs per token form a cluster (grid = 2 T), each copies and
// reads half of the columns and adds the other's partial logits through
// distributed shared memory.

// CHECK-LABEL: func.func @block_score_cluster
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x7168xbf16>
// CHECK:         %[[G:.*]] = arith.muli %[[T]], %{{.*}} : index
// CHECK:         %[[C224:.*]] = arith.constant 224 : index
// CHECK:         gpu.launch_func @attnres_kernels::@block_score_bf16_d7168_n9_s8_tc_tma_x2 blocks in (%[[G]], %{{.*}}, %{{.*}}) threads in (%[[C224]], %{{.*}}, %{{.*}}) dynamic_shared_memory_size
// CHECK:       gpu.func @block_score_bf16_d7168_n9_s8_tc_tma_x2
// CHECK-SAME:      known_block_size = array<i32: 224, 1, 1>
// CHECK-SAME:      known_cluster_size = array<i32: 2, 1, 1>
// CHECK:         memref.view %{{.*}}[%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<9x3616xbf16, #gpu.address_space<workgroup>>
// CHECK:         %[[BARX:.*]] = llvm.inttoptr %{{.*}} : i32 to !llvm.ptr<3>
// CHECK:         nvvm.mbarrier.arrive.expect_tx %[[BARX]], %c64512_i32 : !llvm.ptr<3>, i32
// CHECK-COUNT-9: nvvm.cp.async.bulk.shared.cluster.global %{{.*}}, %{{.*}}, %[[BARX]], %c7168_i32{{[_0-9]*}} : !llvm.ptr<7>, <1>
// CHECK:         nvvm.cluster.arrive {aligned}
// CHECK-NEXT:    nvvm.cluster.wait {aligned}
// CHECK:         %[[REMOTE:.*]] = nvvm.mapa %{{.*}}, %{{.*}} : !llvm.ptr<3> -> !llvm.ptr<7>
// CHECK-NEXT:    llvm.load %[[REMOTE]] {alignment = 4 : i64} : !llvm.ptr<7> -> f32
// CHECK:         nvvm.cluster.arrive {aligned}
// CHECK:         nvvm.cluster.wait {aligned}
// CHECK-NEXT:    gpu.return

// cluster-split=4: four CTAs per token (1792 columns, 128 threads each);
// every CTA adds the four partials in rank order through distributed shared
// memory, so that all four hold the same bits.
// X4-LABEL: func.func @block_score_cluster
// X4:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x7168xbf16>
// X4:         %[[C4:.*]] = arith.constant 4 : index
// X4:         %[[G:.*]] = arith.muli %[[T]], %[[C4]] : index
// X4:         gpu.launch_func @attnres_kernels::@block_score_bf16_d7168_n9_s8_tc_tma_x4 blocks in (%[[G]], %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) dynamic_shared_memory_size
// X4:       gpu.func @block_score_bf16_d7168_n9_s8_tc_tma_x4
// X4-SAME:      known_block_size = array<i32: 128, 1, 1>
// X4-SAME:      known_cluster_size = array<i32: 4, 1, 1>
// X4:         memref.view %{{.*}}[%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<9x1824xbf16, #gpu.address_space<workgroup>>
// X4-COUNT-9: nvvm.cp.async.bulk.shared.cluster.global %{{.*}}, %{{.*}}, %{{.*}}, %c3584_i32{{[_0-9]*}} : !llvm.ptr<7>, <1>
// X4:         nvvm.cluster.wait {aligned}
// X4:         nvvm.mapa %{{.*}}, %c0_i32{{[_0-9]*}} : !llvm.ptr<3> -> !llvm.ptr<7>
// X4:         nvvm.mapa %{{.*}}, %c1_i32{{[_0-9]*}} : !llvm.ptr<3> -> !llvm.ptr<7>
// X4:         nvvm.mapa %{{.*}}, %c2_i32{{[_0-9]*}} : !llvm.ptr<3> -> !llvm.ptr<7>
// X4:         nvvm.mapa %{{.*}}, %c3_i32{{[_0-9]*}} : !llvm.ptr<3> -> !llvm.ptr<7>

func.func @block_score_cluster(%W: tensor<8x7168xbf16>, %G: tensor<8x7168xbf16>, %b: tensor<?x7168xbf16>, %o: tensor<8x?x7168xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x7168xbf16>, tensor<8x?xf32>) {
  %a, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<8x?x7168xbf16>
  return %a, %lse : tensor<8x?x7168xbf16>, tensor<8x?xf32>
}

// -----

// Phase 1 at 4096 < D < 8192 (sm_90+): the rows (2 x (6144 + 32) bf16)
// reach shared memory by one bulk copy each on an mbarrier; all of the
// kernel's shared memory is dynamic (rows, per-warp partials, logits,
// weights, mbarrier: 24704 + 768 + 96 + 64 + 64 + 16 = 25712 bytes) and the
// sweeps do not load the rows from global memory.

// CHECK-LABEL: func.func @block_score_bulk
// CHECK:         %[[T:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x6144xbf16>
// CHECK:         %[[C384:.*]] = arith.constant 384 : index
// CHECK:         %[[SMEM:.*]] = arith.constant 25712 : i32
// CHECK:         gpu.launch_func @attnres_kernels::@block_score_bf16_d6144_n2_s8_tc_tma_r blocks in (%[[T]], %{{.*}}, %{{.*}}) threads in (%[[C384]], %{{.*}}, %{{.*}}) dynamic_shared_memory_size %[[SMEM]] args(
// CHECK:       gpu.func @block_score_bf16_d6144_n2_s8_tc_tma_r
// CHECK-NOT:       workgroup(
// CHECK-SAME:      known_block_size = array<i32: 384, 1, 1>
// CHECK:         %[[DYN:.*]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK:         memref.view %[[DYN]][%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<2x6176xbf16, #gpu.address_space<workgroup>>
// CHECK:         memref.view %[[DYN]][%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<1xi64, #gpu.address_space<workgroup>>
// CHECK:         %[[BARP:.*]] = llvm.inttoptr %{{.*}} : i32 to !llvm.ptr<3>
// CHECK:         %[[ONE:.*]] = arith.constant 1 : i32
// CHECK-NEXT:    nvvm.mbarrier.init %[[BARP]], %[[ONE]] : !llvm.ptr<3>, i32
// CHECK-NEXT:    nvvm.fence.mbarrier.init
// CHECK:         gpu.barrier
// CHECK:         nvvm.mbarrier.arrive.expect_tx %[[BARP]], %c24576_i32 : !llvm.ptr<3>, i32
// CHECK:         %[[DST:.*]] = llvm.inttoptr %{{.*}} : i32 to !llvm.ptr<7>
// CHECK-NEXT:    %[[SRC:.*]] = llvm.inttoptr %{{.*}} : i64 to !llvm.ptr<1>
// CHECK-NEXT:    nvvm.cp.async.bulk.shared.cluster.global %[[DST]], %[[SRC]], %[[BARP]], %c12288_i32 : !llvm.ptr<7>, <1>
// CHECK:         nvvm.cp.async.bulk.shared.cluster.global %{{.*}}, %{{.*}}, %[[BARP]], %c12288_i32{{[_0-9]*}} : !llvm.ptr<7>, <1>
// The wait retries mbarrier.try_wait.parity (phase 0) until it succeeds.
// CHECK:         %[[PHASE:.*]] = arith.constant 0 : i32
// CHECK-NEXT:    %[[TRUE:.*]] = arith.constant true
// CHECK-NEXT:    scf.while : () -> () {
// CHECK-NEXT:      %[[DONE:.*]] = nvvm.mbarrier.try_wait %[[BARP]], %[[PHASE]] : !llvm.ptr<3>, i32 -> i1
// CHECK-NEXT:      %[[PENDING:.*]] = arith.xori %[[DONE]], %[[TRUE]] : i1
// CHECK-NEXT:      scf.condition(%[[PENDING]])
// CHECK-NEXT:    } do {
// CHECK-NEXT:      scf.yield
// CHECK-NEXT:    }
// CHECK-NOT:     llvm.inline_asm
// CHECK-NOT:     vector.load %arg2
// CHECK-NOT:     vector.load %arg3
// CHECK:         nvvm.mma.sync
// CHECK:       gpu.return

// Without bulk copies (bulk-copy=0, and before sm_90): workgroup
// attributions, an L2 prefetch and fragment loads from global memory.
// L2PATH-LABEL: func.func @block_score_bulk
// L2PATH:         gpu.launch_func @attnres_kernels::@block_score_bf16_d6144_n2_s8_tc_r blocks in
// L2PATH-NOT:       dynamic_shared_memory_size
// L2PATH-SAME:      args(
// L2PATH:       gpu.func @block_score_bf16_d6144_n2_s8_tc_r
// L2PATH-SAME:      workgroup(
// L2PATH-NOT:     gpu.dynamic_shared_memory
// L2PATH:         nvvm.mma.sync
// L2PATH:         vector.load %arg2

func.func @block_score_bulk(%W: tensor<8x6144xbf16>, %G: tensor<8x6144xbf16>, %b0: tensor<?x6144xbf16>, %b1: tensor<?x6144xbf16>, %r0: tensor<?xf32>, %r1: tensor<?xf32>, %o: tensor<8x?x6144xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x6144xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b0, %b1 inv_rms %r0, %r1 outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x6144xbf16> -> tensor<8x?x6144xbf16>
  return %out, %lse : tensor<8x?x6144xbf16>, tensor<8x?xf32>
}

// -----

// Aggregation with two 16-byte vectors per thread (D = 7168, 448 threads):
// w*g is written once to workgroup memory and re-read for every source, so
// that the kernel fits 72 registers (two CTAs per SM).

// CHECK-LABEL: func.func @aggregate_wg_shared
// CHECK:         gpu.launch_func @attnres_kernels::@aggregate_bf16_d7168_n2 blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}})
// CHECK:       gpu.func @aggregate_bf16_d7168_n2
// CHECK-SAME:      workgroup(%{{.*}} : memref<2x2x14xf32, #gpu.address_space<workgroup>>, %[[WG:.*]] : memref<7168xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME:      known_block_size = array<i32: 448, 1, 1>
// CHECK:         vector.store %{{.*}}, %[[WG]][%{{.*}}] : memref<7168xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// CHECK:         gpu.barrier
// CHECK-COUNT-2: vector.load %[[WG]][%{{.*}}] : memref<7168xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// L2PATH-LABEL: func.func @aggregate_wg_shared

func.func @aggregate_wg_shared(%w: tensor<7168xbf16>, %g: tensor<7168xbf16>, %v0: tensor<?x7168xbf16>, %v1: tensor<?x7168xbf16>) -> tensor<?x7168xbf16> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16>
  return %h : tensor<?x7168xbf16>
}

// A malformed option value is an error, not a silently ignored option.
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(convert-attnres-to-gpu{elements-per-thread=banana})' 2>&1 | FileCheck %s --check-prefix=GPUOPT
// GPUOPT: failed to add `convert-attnres-to-gpu`

// Idempotence: the conversion run on its own output changes nothing (no
// attnres op is left), on the fused form and on the block form.
// RUN: attnres-opt %attnres_src/test/Inputs/full-chain.mlir --attnres-blockify=block-size=2 --attnres-fuse-summaries > %t.idem-f1
// RUN: attnres-opt %t.idem-f1 --convert-attnres-to-gpu > %t.idem-g1
// RUN: attnres-opt %t.idem-g1 --convert-attnres-to-gpu > %t.idem-g2
// RUN: diff %t.idem-g1 %t.idem-g2
// RUN: FileCheck %s --check-prefix=IDEM < %t.idem-g1
// IDEM: gpu.launch_func
// IDEM-NOT: attnres.
// RUN: attnres-opt %attnres_src/test/Inputs/full-chain.mlir --attnres-blockify=block-size=2 --convert-attnres-to-gpu > %t.idem-b1
// RUN: attnres-opt %t.idem-b1 --convert-attnres-to-gpu > %t.idem-b2
// RUN: diff %t.idem-b1 %t.idem-b2

// A module without AttnRes is left exactly as it is (no error, no change):
// the output equals the input as printed by attnres-opt.
// RUN: attnres-opt %attnres_src/test/Inputs/no-attnres.mlir > %t.none
// RUN: attnres-opt %attnres_src/test/Inputs/no-attnres.mlir --convert-attnres-to-gpu > %t.none0
// RUN: diff %t.none %t.none0
// An empty module too.
// RUN: echo "" | attnres-opt --convert-attnres-to-gpu | FileCheck %s --check-prefix=EMPTY
// EMPTY: module {
// EMPTY-NEXT: }
