// Found by scripts/fuzz.sh (crash-1a0ae456f0767a2b3de6dd95c1a5d68977d6dae2,
// one mutation of the @layernorm case of
// test/Dialect/AttnRes/Transforms/detect-residual-chains.mlir), minimized.
// A `permutation` array of linalg.transpose that fails to parse makes Debian's MLIR 22.1 parser segfault (SEGV in
// mlir::Attribute::getContext from NamedAttrList::set, called by
// linalg::TransposeOp::parse): the error "expected ']'" is printed, then the
// null attribute is stored. linalg.broadcast's `dimensions` does the same.
// This is not attnres code (Debian's mlir-opt crashes the same way), so the
// test is expected to fail until the upstream parser is fixed; the fuzz
// target rejects such inputs (hitsKnownUpstreamParserCrash) so that fuzzing
// keeps exploring the project's code.
//
// XFAIL: *
// RUN: not attnres-opt %s 2>&1 | FileCheck %s
// CHECK: error: expected ']'
// A sanitizer build turns the crash into exit status 1: look for its report.
// CHECK-NOT: {{PLEASE submit|AddressSanitizer|Stack dump}}

func.func @t(%a: tensor<2x4xf32>, %b: tensor<4x2xf32>) -> tensor<4x2xf32> {
  %r = linalg.transpose ins(%a : tensor<2x4xf32>) outs(%b : tensor<4x2xf32>) permutation = [1, 0
  return %r : tensor<4x2xf32>
}
