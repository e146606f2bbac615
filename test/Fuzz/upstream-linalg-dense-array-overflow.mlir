// The fuzz smoke run of .ci/run for session 14's stop (145,881 executions,
// mutations ChangeASCIIInt-CrossOver-InsertByte-ChangeByte) crashed in
// linalg::TransposeOp::parse again. The crash input was not kept; this is the
// class a ChangeASCIIInt mutation of `permutation = [1, 0]` reaches, which the
// filter of the time let through: an element too large for int64 makes the
// dense array fail to parse, and Debian's MLIR 22.1 stores the null attribute
// (SEGV in NamedAttrList::set), as in upstream-linalg-dense-array.mlir. Stock
// mlir-opt crashes the same way, so the test is expected to fail until the
// upstream parser is fixed. The fuzz target's filter
// (tools/attnres-fuzz/UpstreamParserBugs.cpp) now reads such lists as MLIR's
// lexer does and accepts at most 18 digits per element; unittests/Fuzz lists
// the other spellings that crash (`[1,, 0]`, `[1 0]`, `[-]`, a comment or a
// NUL between `permutation` and `=`, ...).
//
// XFAIL: *
// RUN: not attnres-opt %s 2>&1 | FileCheck %s
// CHECK: error: integer value too large
// CHECK-NOT: {{PLEASE submit|AddressSanitizer|Stack dump}}

func.func @t(%a: tensor<2x4xf32>, %b: tensor<4x2xf32>) -> tensor<4x2xf32> {
  %r = linalg.transpose ins(%a : tensor<2x4xf32>) outs(%b : tensor<4x2xf32>) permutation = [1, 99999999999999999999]
  return %r : tensor<4x2xf32>
}
