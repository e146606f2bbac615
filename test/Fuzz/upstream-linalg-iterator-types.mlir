// Found by the fuzz smoke run of .ci/run (session 13, crash-8f4eeb6e, one
// mutation of a test/Dialect/AttnRes/Transforms/detect-residual-chains case
// that put `tensor<f32>` into `iterator_types`), minimized.
// An `iterator_types` entry that is not a string makes Debian's MLIR 22.1
// linalg.generic parser build its error message from a null string: "LLVM
// ERROR: out of memory" (ASan: allocation-size-too-big in operator new[] from
// mlir::Diagnostic::operator<< in linalg::GenericOp::parse). Stock mlir-opt
// crashes the same way, so the test is expected to fail until the upstream
// parser is fixed; the fuzz target rejects such inputs
// (hitsKnownUpstreamParserCrash) so that fuzzing keeps exploring the
// project's code.
//
// XFAIL: *
// RUN: not attnres-opt %s 2>&1 | FileCheck %s
// CHECK: error:
// CHECK-NOT: {{PLEASE submit|AddressSanitizer|LLVM ERROR}}

func.func @t(%a: tensor<2x4xf32>, %b: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", tensor<f32>]}
      ins(%a : tensor<2x4xf32>) outs(%b : tensor<2x4xf32>) {
    ^bb0(%x: f32, %y: f32):
      linalg.yield %x : f32
  } -> tensor<2x4xf32>
  return %r : tensor<2x4xf32>
}
