// REQUIRES: ptxas
// RUN: attnres-opt %s --convert-attnres-to-gpu=score-grad-shared-rows=-1 | attnres-opt --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.shared.ptx
// RUN: ptxas -arch=sm_90a -v %t.shared.ptx -o %t.shared.cubin 2>&1 | FileCheck %s --check-prefix=SHARED
// RUN: attnres-opt %s --convert-attnres-to-gpu=split-query-gains=1 | attnres-opt --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.qs.ptx
// RUN: ptxas -arch=sm_90a -v %t.qs.ptx -o %t.qs.cubin 2>&1 | FileCheck %s --check-prefix=QS
// RUN: attnres-opt %s --convert-attnres-to-gpu="score-grad-mma-sweep=1 min-ctas-per-sm=0" | attnres-opt --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.ms.ptx
// RUN: ptxas -arch=sm_90a -v %t.ms.ptx -o %t.ms.cubin 2>&1 | FileCheck %s --check-prefix=MS

// block_score_grad with score-grad-shared-rows=-1 (off by default; run 35:
// faster only with accumulators) through the whole NVVM pipeline at the
// phase-1 benchmark shape n = 9 S = 8 D = 4096 (bf16): ptxas accepts the
// kernel with no stack frame and no spills. With 13 of the 17 rows in shared
// memory (`_shared13`) it takes fewer registers than without (ptxas 13.0:
// 106 against 122).

// SHARED-LABEL: Compiling entry function 'block_score_grad_bf16_d4096_s8_n9_tc_shared13'
// SHARED:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

// With split-query-gains (`_qs`, off by default) the kernel would take 140
// registers (ptxas 13.0), one CTA of 256 threads per SM; its occupancy hint
// (two CTAs) holds it to at most 128, without spills. (ptxas reports
// the split kernel, built last, first.)

// QS-LABEL: Compiling entry function 'query_gain_split_bf16_s8_d4096'
// QS:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// QS-LABEL: Compiling entry function 'block_score_grad_bf16_d4096_s8_n9_tc_qs'
// QS:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// QS-NEXT:  Used {{([1-9]?[0-9]|1[01][0-9]|12[0-8])}} registers

// With score-grad-mma-sweep (`_qs_ms`) the source-gradient sweep holds the
// paired rows of a 64-column block and 8 n-tiles of accumulators instead of
// n sums per column: 108 registers without the hint (ptxas 13.0), two CTAs
// of 256 threads per SM, no spills.

// MS-LABEL: Compiling entry function 'block_score_grad_bf16_d4096_s8_n9_tc_qs_ms'
// MS:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// MS-NEXT:  Used {{([1-9]?[0-9]|1[01][0-9]|12[0-8])}} registers

func.func @score_grad(%W: tensor<8x4096xbf16>, %G: tensor<8x4096xbf16>, %b: tensor<?x4096xbf16>, %lse: tensor<8x?xf32>, %r: tensor<?xf32>, %dout: tensor<8x?x4096xbf16>, %dlse: tensor<8x?xf32>) -> (tensor<?x4096xbf16>, tensor<8x4096xf32>, tensor<8x4096xf32>) {
  %db:9, %dW, %dG = attnres.block_score_grad %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b stats %lse, %r, %r, %r, %r, %r, %r, %r, %r, %r grad %dout, %dlse {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16> -> tensor<8x?x4096xbf16>
  return %db#0, %dW, %dG : tensor<?x4096xbf16>, tensor<8x4096xf32>, tensor<8x4096xf32>
}
