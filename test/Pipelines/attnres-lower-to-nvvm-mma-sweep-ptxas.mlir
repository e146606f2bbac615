// REQUIRES: ptxas
// RUN: attnres-opt %s --convert-attnres-to-gpu="score-mma-sweep=1 score-small-tokens=0" | attnres-opt --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.ptx
// RUN: ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s

// Phase 1 with sweep 2 on the tensor cores (score-mma-sweep, off by default)
// at the two D = 7168 shapes below 85% of the floor: bulk copies into one CTA
// (n = 5, S = 6) and a cluster of two (n = 9, S = 8). Without an occupancy
// hint ptxas 13.0 kept the first at 56 registers and spilled 56 bytes, and
// with `.minnctapersm 1` took 214 registers for the second; the hint of
// convert-attnres-to-gpu (two CTAs of 224 threads per SM) gives both at most
// 128 registers and no spills.

// (ptxas reports the kernels in the reverse order of the module.)
// CHECK-LABEL: Compiling entry function 'block_score_bf16_d7168_n9_s8_tc_tma_x2_ms'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-NEXT:  Used {{([1-9]?[0-9]|1[01][0-9]|12[0-8])}} registers
// CHECK-LABEL: Compiling entry function 'block_score_bf16_d7168_n5_s6_tc_tma_ms'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-NEXT:  Used {{([1-9]?[0-9]|1[01][0-9]|12[0-8])}} registers

func.func @bulk(%W: tensor<6x7168xbf16>, %G: tensor<6x7168xbf16>, %b: tensor<?x7168xbf16>, %o: tensor<6x?x7168xbf16>, %l: tensor<6x?xf32>) -> (tensor<6x?x7168xbf16>, tensor<6x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<6x?x7168xbf16>
  return %out, %lse : tensor<6x?x7168xbf16>, tensor<6x?xf32>
}

func.func @cluster(%W: tensor<8x7168xbf16>, %G: tensor<8x7168xbf16>, %b: tensor<?x7168xbf16>, %o: tensor<8x?x7168xbf16>, %l: tensor<8x?xf32>) -> (tensor<8x?x7168xbf16>, tensor<8x?xf32>) {
  %out, %lse = attnres.block_score %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b outs %o, %l {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<8x?x7168xbf16>
  return %out, %lse : tensor<8x?x7168xbf16>, tensor<8x?xf32>
}
