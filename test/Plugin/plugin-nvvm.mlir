// Debian's mlir-opt with the plugin runs the whole GPU pipeline, down to a
// gpu.binary holding PTX (format=isa needs no CUDA toolkit), and reports an
// unsupported chip as a diagnostic.
// UNSUPPORTED: asan

// RUN: %mlir_opt %s --load-dialect-plugin=%attnres_plugin \
// RUN:   --load-pass-plugin=%attnres_plugin \
// RUN:   --pass-pipeline='builtin.module(attnres-lower-to-nvvm{format=isa})' \
// RUN:   | FileCheck %s
// RUN: not %mlir_opt %s --load-dialect-plugin=%attnres_plugin \
// RUN:   --load-pass-plugin=%attnres_plugin \
// RUN:   --pass-pipeline='builtin.module(attnres-lower-to-nvvm{chip=sm_20})' \
// RUN:   2>&1 | FileCheck %s --check-prefix=CHIP

// CHECK-NOT: attnres.
// CHECK: llvm.func @agg
// CHECK: gpu.launch_func
// CHECK: gpu.binary @{{.*}} [#gpu.object<#nvvm.target<{{.*}}chip = "sm_90a"
// CHECK-SAME: .entry aggregate_f32_d64_n2
// CHECK-SAME: ld.global.v4
// CHECK-SAME: shfl.sync.bfly
// CHIP: error: {{.*}}sm_20
func.func @agg(%q: tensor<64xf32>, %g: tensor<64xf32>, %a: tensor<?x64xf32>,
               %b: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %h = attnres.aggregate %q, %g over %a, %b {epsilon = 1.0e-06 : f32}
      : tensor<?x64xf32>
  return %h : tensor<?x64xf32>
}
