// Unknown or malformed options of passes and pipelines are reported as
// errors and attnres-opt exits with code 1 (not a crash, not an abort).

// RUN: %python %S/Inputs/expect-exit.py 1 attnres-opt %s \
// RUN:   --pass-pipeline='builtin.module(attnres-blockify{nosuch=1})' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=PASS
// PASS: no such option nosuch
// PASS-NOT: Stack dump

// RUN: %python %S/Inputs/expect-exit.py 1 attnres-opt %s \
// RUN:   --pass-pipeline='builtin.module(attnres-blockify{block-size=many})' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=VALUE
// VALUE: block-size
// VALUE-NOT: Stack dump

// RUN: %python %S/Inputs/expect-exit.py 1 attnres-opt %s \
// RUN:   --pass-pipeline='builtin.module(attnres-nosuch-pass)' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=NOPASS
// NOPASS: 'attnres-nosuch-pass' does not refer to a registered pass or pass pipeline
// NOPASS-NOT: Stack dump

func.func @f() {
  return
}
