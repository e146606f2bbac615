// RUN: not attnres-opt %s --attnres-lower-to-nvvm="chip=sm_20" 2>&1 | FileCheck %s --check-prefix=SM20
// RUN: not attnres-opt %s --attnres-lower-to-nvvm="chip=foo" 2>&1 | FileCheck %s --check-prefix=FOO
// RUN: not attnres-opt %s --attnres-lower-to-nvvm="features=+ptx10" 2>&1 | FileCheck %s --check-prefix=PTX10
// RUN: not attnres-opt %s --attnres-lower-to-nvvm="features=+ptx78" 2>&1 | FileCheck %s --check-prefix=OLD
// RUN: not attnres-opt %s --attnres-lower-to-nvvm="features=+sm90" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not attnres-opt %s --attnres-lower-to-nvvm="features=" 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: not attnres-opt %s --attnres-lower-to-nvvm="format=xyz" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not attnres-opt %s --attnres-lower-to-nvvm="format=" 2>&1 | FileCheck %s --check-prefix=NOFORMAT
// RUN: attnres-opt %s --attnres-lower-to-nvvm="chip=sm_80 features=+ptx70 format=isa" | FileCheck %s --check-prefix=SM80
// The same checks in a textual pass pipeline, and the PTX minimum of a chip
// other than the default.
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-lower-to-nvvm{chip=sm_20})' 2>&1 | FileCheck %s --check-prefix=SM20
// RUN: not attnres-opt %s --attnres-lower-to-nvvm="chip=sm_100a features=+ptx80" 2>&1 | FileCheck %s --check-prefix=OLDPTX

// SM20: error: attnres-lower-to-nvvm: unsupported chip 'sm_20'; expected a CUDA 13 target from sm_75 to sm_121f (for example sm_90a)
// FOO: error: attnres-lower-to-nvvm: unsupported chip 'foo'
// PTX10: error: attnres-lower-to-nvvm: unsupported features '+ptx10'; expected one '+ptxNN' with a PTX ISA version from 6.3 to 9.0 (for example +ptx80)
// OLD: error: attnres-lower-to-nvvm: chip sm_90a needs PTX ISA 8.0 or newer (features +ptx80), got '+ptx78'
// BAD: error: attnres-lower-to-nvvm: unsupported features '+sm90'
// NONE: error: attnres-lower-to-nvvm: features '' name no PTX version
// FORMAT: attnres-lower-to-nvvm-invalid.mlir:{{[0-9]+}}:{{[0-9]+}}: error: attnres-lower-to-nvvm: unknown format 'xyz' (expected isa, bin or fatbin)
// FORMAT-NOT: gpu.binary
// NOFORMAT: error: attnres-lower-to-nvvm: unknown format '' (expected isa, bin or fatbin)
// OLDPTX: error: attnres-lower-to-nvvm: chip sm_100a needs PTX ISA {{[0-9]+\.[0-9]}} or newer (features +ptx{{[0-9]+}}), got '+ptx80'
// SM80: #nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">

func.func @agg(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<?x64xf32>, %v1: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<?x64xf32>
  return %h : tensor<?x64xf32>
}
