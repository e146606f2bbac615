// Bad targets of convert-attnres-to-gpu are diagnostics (issue 16 item 1).
// RUN: attnres-opt %s --convert-attnres-to-gpu --split-input-file --verify-diagnostics
// RUN: not attnres-opt %s --convert-attnres-to-gpu="chip=sm_20" --split-input-file 2>&1 | FileCheck %s --check-prefix=CHIP
// RUN: not attnres-opt %s --convert-attnres-to-gpu="chip=sm_90a features=+ptx78" --split-input-file 2>&1 | FileCheck %s --check-prefix=PTX

// CHIP: error: convert-attnres-to-gpu: unsupported chip 'sm_20'
// PTX: error: convert-attnres-to-gpu: chip sm_90a needs PTX ISA 8.0 or newer

// A kernel module that targets something other than NVVM.
// expected-error @+1 {{convert-attnres-to-gpu emits NVVM kernels, but the kernel module has no #nvvm.target}}
gpu.module @attnres_kernels [#rocdl.target<chip = "gfx90a">] {
}

func.func @agg(%w: tensor<64xf32>, %g: tensor<64xf32>, %v: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %h = attnres.aggregate %w, %g over %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x64xf32>
  return %h : tensor<?x64xf32>
}

// -----

// An #nvvm.target with a chip CUDA 13 cannot compile for.
// expected-error @+1 {{convert-attnres-to-gpu: unsupported chip 'sm_70'}}
gpu.module @attnres_kernels [#nvvm.target<chip = "sm_70", features = "+ptx60">] {
}

func.func @agg(%w: tensor<64xf32>, %g: tensor<64xf32>, %v: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %h = attnres.aggregate %w, %g over %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x64xf32>
  return %h : tensor<?x64xf32>
}

// -----

// No kernel module: the target comes from the options (the CHIP and PTX runs
// above give bad ones; the default is fine).
func.func @agg(%w: tensor<64xf32>, %g: tensor<64xf32>, %v: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %h = attnres.aggregate %w, %g over %v, %v {epsilon = 1.0e-06 : f32} : tensor<?x64xf32>
  return %h : tensor<?x64xf32>
}
