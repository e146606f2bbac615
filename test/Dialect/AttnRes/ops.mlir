// RUN: attnres-opt %s | attnres-opt | FileCheck %s
// RUN: attnres-opt %s --mlir-print-op-generic | attnres-opt | FileCheck %s

// Round trip of every op in custom and generic form.

// CHECK-LABEL: func @aggregate
func.func @aggregate(%q: tensor<64xbf16>, %g: tensor<64xbf16>,
                     %a: tensor<?x64xbf16>, %b: tensor<?x64xbf16>)
    -> tensor<?x64xbf16> {
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<?x64xbf16>
  %h = attnres.aggregate %q, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<?x64xbf16>
  return %h : tensor<?x64xbf16>
}
