// RUN: attnres-opt %s --convert-attnres-to-gpu | FileCheck %s --check-prefix=HOST
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py | FileCheck %s --check-prefix=PTX --implicit-check-not=.local --implicit-check-not=ld.local --implicit-check-not=st.local
// RUN: attnres-opt %s --convert-attnres-to-gpu | attnres-opt --attnres-lower-to-nvvm="format=isa" | FileCheck %s --check-prefix=ONE

// attnres.merge with the fused RMSNorm (spec E.5) on the GPU: the merge
// kernel also loads the norm gain, reduces sum(h^2) over the token (one more
// butterfly and, with several warps per token, one more barrier on the other
// half of the scratch) and stores hn; without a use of h, h is not stored.

// A module converted by a separate convert-attnres-to-gpu run (as
// bench/merge_norm_check/gen.py does) keeps the target its kernels were made
// for: the pipeline adds no second one, the gpu.binary holds one object.
// ONE:         gpu.binary @attnres_kernels [#gpu.object<#nvvm.target<chip = "sm_90a", features = "+ptx80">
// ONE-NOT:     #gpu.object<
// ONE-NOT:     #nvvm.target<

// HOST-LABEL: func.func @merge_norm_bf16
// HOST:         gpu.launch_func @attnres_kernels::@merge_bf16_d4096_p_n blocks
// HOST-LABEL: func.func @merge_norm_h_unused
// HOST:         gpu.launch_func @attnres_kernels::@merge_bf16_d4096_n_nh blocks
// HOST-LABEL: func.func @merge_norm_dynamic_gain
// HOST:         memref.cast %{{.*}} : memref<?xf32> to memref<64xf32>
// HOST:         gpu.launch_func @attnres_kernels::@merge_f32_d64_n_nh blocks
// HOST:       gpu.func @merge_bf16_d4096_p_n(
// HOST-SAME:    %{{[^:]*}}: memref<?x4096xbf16>, %{{[^:]*}}: memref<?xf32>, %{{[^:]*}}: memref<4096xbf16>, %{{[^:]*}}: memref<4096xbf16>, %{{[^:]*}}: memref<?x4096xbf16>, %{{[^:]*}}: memref<?x4096xbf16>, %{{[^:]*}}: memref<4096xbf16>, %{{[^:]*}}: memref<?x4096xbf16>, %{{[^:]*}}: memref<?x4096xbf16>, %{{[^:]*}}: memref<?x4096xbf16>, %{{[^:]*}}: index, %{{[^:]*}}: f32, %{{[^:]*}}: f32)
// HOST:       gpu.func @merge_bf16_d4096_n_nh(
// HOST-SAME:    %{{[^:]*}}: memref<?x4096xbf16>, %{{[^:]*}}: memref<?xf32>, %{{[^:]*}}: memref<4096xbf16>, %{{[^:]*}}: memref<4096xbf16>, %{{[^:]*}}: memref<?x4096xbf16>, %{{[^:]*}}: memref<4096xbf16>, %{{[^:]*}}: memref<?x4096xbf16>, %{{[^:]*}}: index, %{{[^:]*}}: f32, %{{[^:]*}}: f32)

// With partial and h: 6 loads (update, partial, out, query, gain, norm gain),
// the merge's reduction, the stores of h and the new partial sum, the norm's
// reduction, the store of hn.
// PTX-LABEL: .entry merge_bf16_d4096_p_n(
// PTX-COUNT-6: ld.global.v4.b32
// PTX:         shfl.sync.bfly.b32
// PTX:         bar.sync
// PTX:         ex2.approx.ftz.f32
// PTX-COUNT-2: st.global.v4.b32
// PTX:         shfl.sync.bfly.b32
// PTX:         bar.sync
// PTX:         rsqrt.approx.ftz.f32
// PTX:         st.global.v4.b32
// PTX-NOT:     st.global
// PTX-LABEL: .entry merge_bf16_d4096_n_nh(
// PTX-COUNT-5: ld.global.v4.b32
// PTX:         rsqrt.approx.ftz.f32
// PTX-COUNT-1: st.global.v4.b32
// PTX-NOT:     st.global
// PTX-LABEL: .entry merge_f32_d64_n(
// PTX:         ld.global
// PTX:         shfl.sync.bfly.b32
// PTX:         rsqrt.approx.ftz.f32
// PTX:         st.global

func.func @merge_norm_bf16(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %u: tensor<?x4096xbf16>, %p: tensor<?x4096xbf16>, %gn: tensor<4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<?x4096xbf16>) {
  %h, %p2, %hn = attnres.merge %o, %lse, %w, %g update %u partial %p norm %gn {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %h, %p2, %hn : tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<?x4096xbf16>
}

func.func @merge_norm_h_unused(%o: tensor<?x4096xbf16>, %lse: tensor<?xf32>, %w: tensor<4096xbf16>, %g: tensor<4096xbf16>, %u: tensor<?x4096xbf16>, %gn: tensor<4096xbf16>) -> tensor<?x4096xbf16> {
  %h, %p2, %hn = attnres.merge %o, %lse, %w, %g update %u norm %gn {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<?x4096xbf16>
  return %hn : tensor<?x4096xbf16>
}

func.func @merge_norm_f32(%o: tensor<?x64xf32>, %lse: tensor<?xf32>, %w: tensor<64xf32>, %g: tensor<64xf32>, %u: tensor<?x64xf32>, %gn: tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %h, %p2, %hn = attnres.merge %o, %lse, %w, %g update %u norm %gn {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<?x64xf32>
  return %h, %hn : tensor<?x64xf32>, tensor<?x64xf32>
}

// A norm gain of dynamic D (the verifier allows it) is cast to the kernel's
// static memref.
func.func @merge_norm_dynamic_gain(%o: tensor<8x64xf32>, %lse: tensor<8xf32>, %w: tensor<64xf32>, %g: tensor<64xf32>, %u: tensor<8x64xf32>, %gn: tensor<?xf32>) -> tensor<8x64xf32> {
  %h, %p2, %hn = "attnres.merge"(%o, %lse, %w, %g, %u, %gn) <{epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32}> : (tensor<8x64xf32>, tensor<8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<?xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  return %hn : tensor<8x64xf32>
}
