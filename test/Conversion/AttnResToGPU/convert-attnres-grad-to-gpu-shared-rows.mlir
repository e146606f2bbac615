// block_score_grad's tensor-core kernel with score-grad-shared-rows: the
// rows it keeps in dynamic shared memory, and the diagnostic when the count
// given does not fit. bf16 D = 8192, 8 sources and 8 queries: a row takes
// 8224 x 2 = 16448 bytes (64 bytes of padding), the regions after the rows
// 5152. -1 keeps what fits the share of one of the two 256-thread CTAs per
// SM: 6 rows on sm_90a (113 KB each), 2 on sm_86 (49 KB); 14 rows (235424
// bytes) is more than a CTA may have on sm_90a (232448), 13 fit.
// RUN: attnres-opt %s --split-input-file --convert-attnres-to-gpu=score-grad-shared-rows=-1 | FileCheck %s --check-prefix=AUTO
// RUN: attnres-opt %s --split-input-file --convert-attnres-to-gpu="score-grad-shared-rows=-1 chip=sm_86" | FileCheck %s --check-prefix=SM86
// RUN: attnres-opt %s --split-input-file --convert-attnres-to-gpu=score-grad-shared-rows=13 | FileCheck %s --check-prefix=FIT
// RUN: attnres-opt %s --split-input-file --convert-attnres-to-gpu=score-grad-shared-rows=14 --verify-diagnostics
// RUN: not attnres-opt %s --convert-attnres-to-gpu=score-grad-shared-rows=-2 2>&1 | FileCheck %s --check-prefix=BADOPT

// A count below -1 is an error at the module, not taken as -1.
// BADOPT: error: convert-attnres-to-gpu: score-grad-shared-rows must be -1 or a row count >= 0, got -2

// AUTO: %[[SM:.*]] = arith.constant 103840 : i32
// AUTO: gpu.launch_func  @attnres_kernels::@block_score_grad_bf16_d8192_s8_n8_tc_shared6 blocks in ({{.*}}) threads in ({{.*}})  dynamic_shared_memory_size %[[SM]]
// AUTO: memref.view %{{.*}}[%{{.*}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<6x8224xbf16, #gpu.address_space<workgroup>>
// SM86: gpu.launch_func  @attnres_kernels::@block_score_grad_bf16_d8192_s8_n8_tc_shared2 blocks
// FIT:  gpu.launch_func  @attnres_kernels::@block_score_grad_bf16_d8192_s8_n8_tc_shared13 blocks
func.func @rows(%W: tensor<8x8192xbf16>, %G: tensor<8x8192xbf16>, %b0: tensor<?x8192xbf16>, %b1: tensor<?x8192xbf16>, %b2: tensor<?x8192xbf16>, %b3: tensor<?x8192xbf16>, %b4: tensor<?x8192xbf16>, %b5: tensor<?x8192xbf16>, %b6: tensor<?x8192xbf16>, %b7: tensor<?x8192xbf16>, %lse: tensor<8x?xf32>, %r: tensor<?xf32>, %dout: tensor<8x?x8192xbf16>, %dlse: tensor<8x?xf32>) -> (tensor<?x8192xbf16>, tensor<8x8192xf32>, tensor<8x8192xf32>) {
  // expected-error @below {{score-grad-shared-rows=14 needs 235424 bytes of shared memory per CTA; the target allows 232448}}
  %db:8, %dW, %dG = attnres.block_score_grad %W, %G over %b0, %b1, %b2, %b3, %b4, %b5, %b6, %b7 stats %lse, %r, %r, %r, %r, %r, %r, %r, %r grad %dout, %dlse {epsilon = 1.0e-06 : f32} : tensor<?x8192xbf16> -> tensor<8x?x8192xbf16>
  return %db#7, %dW, %dG : tensor<?x8192xbf16>, tensor<8x8192xf32>, tensor<8x8192xf32>
}
