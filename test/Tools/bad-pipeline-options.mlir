// Unknown or malformed options of the attnres pipelines, given on the
// command line or inside --pass-pipeline, are reported as errors and
// attnres-opt exits with code 1 (not a crash, not an abort).

// RUN: %python %S/Inputs/expect-exit.py 1 attnres-opt %s \
// RUN:   --attnres-lower-to-llvm="bogus=1" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=LLVM
// LLVM: no such option bogus
// LLVM-NOT: Stack dump

// RUN: %python %S/Inputs/expect-exit.py 1 attnres-opt %s \
// RUN:   --pass-pipeline='builtin.module(attnres-lower-to-llvm{bogus=1})' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=LLVM-PP
// LLVM-PP: no such option bogus
// LLVM-PP-NOT: Stack dump

// RUN: %python %S/Inputs/expect-exit.py 1 attnres-opt %s \
// RUN:   --pass-pipeline='builtin.module(attnres-lower-to-nvvm{bogus=1})' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=NVVM
// NVVM: no such option bogus
// NVVM-NOT: Stack dump

// RUN: %python %S/Inputs/expect-exit.py 1 attnres-opt %s \
// RUN:   --attnres-lower-to-nvvm="bogus=1" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=NVVM-CL
// NVVM-CL: no such option bogus
// NVVM-CL-NOT: Stack dump

// RUN: %python %S/Inputs/expect-exit.py 1 attnres-opt %s \
// RUN:   --pass-pipeline='builtin.module(attnres-lower-to-nvvm{opt-level=fast})' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=NVVM-VALUE
// NVVM-VALUE: opt-level
// NVVM-VALUE-NOT: Stack dump

func.func @f() {
  return
}
