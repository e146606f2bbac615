// Pipelines and passes given bad options or chips fail with a message that
// names the accepted values (the NVVM target is checked before LLVM sees it:
// LLVM aborts on a chip/PTX pair it cannot use).
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-lower-to-nvvm{chip=sm_20})' 2>&1 | FileCheck %s --check-prefix=SM20
// SM20: error: attnres-lower-to-nvvm: unsupported chip 'sm_20'; expected a CUDA 13 target from sm_75 to sm_121f (for example sm_90a)
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-lower-to-nvvm{chip=foo})' 2>&1 | FileCheck %s --check-prefix=FOO
// FOO: error: attnres-lower-to-nvvm: unsupported chip 'foo'
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-lower-to-nvvm{features=+ptx10})' 2>&1 | FileCheck %s --check-prefix=PTX10
// PTX10: error: attnres-lower-to-nvvm: unsupported features '+ptx10'; expected one '+ptxNN' with a PTX ISA version from 6.3 to 9.0 (for example +ptx80)
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-lower-to-nvvm{features=+sm_90})' 2>&1 | FileCheck %s --check-prefix=NOPTX
// NOPTX: error: attnres-lower-to-nvvm: unsupported features '+sm_90'
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-lower-to-nvvm{chip=sm_100a features=+ptx80})' 2>&1 | FileCheck %s --check-prefix=OLDPTX
// OLDPTX: error: attnres-lower-to-nvvm: chip sm_100a needs PTX ISA {{[0-9]+\.[0-9]}} or newer (features +ptx{{[0-9]+}}), got '+ptx80'
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-lower-to-nvvm{bogus=1})' 2>&1 | FileCheck %s --check-prefix=UNKNOWN-NVVM
// UNKNOWN-NVVM: no such option bogus
// UNKNOWN-NVVM: error: failed to add `attnres-lower-to-nvvm` with options `bogus=1`
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-lower-to-llvm{bogus=1})' 2>&1 | FileCheck %s --check-prefix=UNKNOWN-LLVM
// UNKNOWN-LLVM: no such option bogus
// UNKNOWN-LLVM: error: failed to add `attnres-lower-to-llvm` with options `bogus=1`
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-blockify{block-size=x})' 2>&1 | FileCheck %s --check-prefix=NOTINT
// NOTINT: 'x' value invalid
// NOTINT: failed to add `attnres-blockify` with options `block-size=x`
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-blockify)' 2>&1 | FileCheck %s --check-prefix=NOSIZE
// NOSIZE: error: attnres-blockify needs block-size=S or num-blocks=N
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(convert-attnres-to-gpu{elements-per-thread=banana})' 2>&1 | FileCheck %s --check-prefix=GPUOPT
// GPUOPT: failed to add `convert-attnres-to-gpu`
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-no-such-pass)' 2>&1 | FileCheck %s --check-prefix=NOPASS
// NOPASS: 'attnres-no-such-pass' does not refer to a registered pass or pass pipeline

func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  return %x : tensor<4x8xf32>
}
