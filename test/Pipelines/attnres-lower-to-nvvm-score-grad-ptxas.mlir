// REQUIRES: ptxas
// RUN: attnres-opt %s --convert-attnres-to-gpu=grad-tensor-cores=0 | attnres-opt --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.ptx
// RUN: ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s
// RUN: attnres-opt %s --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.tc.ptx
// RUN: ptxas -arch=sm_90a -v %t.tc.ptx -o %t.tc.cubin 2>&1 | FileCheck %s --check-prefix=TC
// RUN: attnres-opt %s --convert-attnres-to-gpu=elements-per-thread=32 | attnres-opt --attnres-lower-to-nvvm="format=isa" | %python %attnres_src/test/Conversion/AttnResToGPU/Inputs/extract_ptx.py > %t.e32.ptx
// RUN: ptxas -arch=sm_90a -v %t.e32.ptx -o %t.e32.cubin 2>&1 | FileCheck %s --check-prefix=E32

// The three block_score_grad kernels (the CUDA-core per-token kernel, and by
// default the tensor-core one, TC) through the whole NVVM pipeline at the
// largest phase-1 benchmark shapes (S = 8 queries, n = 9 summaries, bf16;
// D = 4096 with accumulators, D = 7168 without) are accepted by ptxas with
// no stack frame and no spills (kernels are listed in reverse order). With
// the query loops unrolled, the first kernel spilled 72 and 392 bytes; with
// the sources held in registers through both passes, or two sources' sums
// accumulated in pass 1 (besides the next query's rows), 8-264 bytes.

// CHECK-LABEL: Compiling entry function 'param_grad_reduce_bf16_k57344'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_grad_params_bf16_d7168_s8_n9'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_grad_bf16_d7168_s8_n9'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'param_grad_reduce_bf16_k32768'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_grad_params_bf16_d4096_s8_n9'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-LABEL: Compiling entry function 'block_score_grad_bf16_d4096_s8_n9_acc'
// CHECK:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

// TC-LABEL: Compiling entry function 'block_score_grad_bf16_d7168_s8_n9_tc'
// TC:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// TC-LABEL: Compiling entry function 'block_score_grad_bf16_d4096_s8_n9_tc_acc'
// TC:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

// With elements-per-thread=32 the tensor-core kernel has D / 32 threads (224
// and 128; named _t<threads>), still without spills: at 123-160 registers
// three or four such CTAs fit an SM, against two of the default 256 threads.

// E32-LABEL: Compiling entry function 'block_score_grad_bf16_d7168_s8_n9_tc_t224'
// E32:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// E32-LABEL: Compiling entry function 'block_score_grad_bf16_d4096_s8_n9_tc_t128_acc'
// E32:       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

func.func @score_grad_4096(%W: tensor<8x4096xbf16>, %G: tensor<8x4096xbf16>, %b: tensor<?x4096xbf16>, %lse: tensor<8x?xf32>, %r: tensor<?xf32>, %dout: tensor<8x?x4096xbf16>, %dlse: tensor<8x?xf32>, %a: tensor<?x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<8x4096xf32>) {
  %db:9, %dW, %dG = attnres.block_score_grad %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b stats %lse, %r, %r, %r, %r, %r, %r, %r, %r, %r grad %dout, %dlse accumulate %a, %a, %a, %a, %a, %a, %a, %a, %a {epsilon = 1.0e-06 : f32} : tensor<?x4096xbf16> -> tensor<8x?x4096xbf16>
  return %db#8, %dW : tensor<?x4096xbf16>, tensor<8x4096xf32>
}

func.func @score_grad_7168(%W: tensor<8x7168xbf16>, %G: tensor<8x7168xbf16>, %b: tensor<?x7168xbf16>, %lse: tensor<8x?xf32>, %r: tensor<?xf32>, %dout: tensor<8x?x7168xbf16>, %dlse: tensor<8x?xf32>) -> (tensor<?x7168xbf16>, tensor<8x7168xf32>) {
  %db:9, %dW, %dG = attnres.block_score_grad %W, %G over %b, %b, %b, %b, %b, %b, %b, %b, %b stats %lse, %r, %r, %r, %r, %r, %r, %r, %r, %r grad %dout, %dlse {epsilon = 1.0e-06 : f32} : tensor<?x7168xbf16> -> tensor<8x?x7168xbf16>
  return %db#8, %dG : tensor<?x7168xbf16>, tensor<8x7168xf32>
}
