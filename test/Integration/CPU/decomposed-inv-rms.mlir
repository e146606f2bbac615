// Decomposing attnres.inv_rms (inv_rms_f32.mlir: tensor<2x3x37xf32>, token
// magnitudes 1e-3..1e3) with transform.structured.decompose_interface into
// a linalg sum-of-squares reduction and an rsqrt map. Run on the CPU.
//
// 1. the untouched and the decomposed form both match the float64 reference
//    (check_output.py, f32 tolerance 1e-5) and print identical values;
// 2. control: the decomposed IR without the division by D (the mean) must
//    differ and fail the comparison.
//
// REQUIRES: numpy
// DEFINE: %{run} = mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils
// DEFINE: %{in} = %S/inv_rms_f32.mlir
// DEFINE: %{check} = %python %attnres_src/utils/reference/check_output.py %{in}
// DEFINE: %{strip} = sed -e 's/base@ = 0x[0-9a-f]*//'
//
// RUN: attnres-opt %{in} --attnres-lower-to-llvm | %{run} | %{strip} > %t.plain
// RUN: %{check} < %t.plain
// RUN: attnres-opt %{in} --transform-preload-library=transform-library-paths=%s \
// RUN:   --transform-interpreter --canonicalize > %t.dec.mlir
// RUN: FileCheck %s < %t.dec.mlir
// RUN: attnres-opt %t.dec.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.dec
// RUN: %{check} < %t.dec
// RUN: diff %t.plain %t.dec
//
// RUN: sed -E 's/arith.divf (%[a-z0-9_]+), %[a-z0-9_]+ : f32/arith.mulf \1, \1 : f32/' %t.dec.mlir > %t.wrong.mlir
// RUN: not diff %t.dec.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.wrong
// RUN: not diff %t.plain %t.wrong > /dev/null
// RUN: not %{check} < %t.wrong

// CHECK-NOT: attnres.inv_rms
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK: arith.divf
// CHECK: math.rsqrt
// CHECK-NOT: attnres.inv_rms

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(
      %root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.inv_rms"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %dec = transform.structured.decompose_interface %op
        : (!transform.any_op) -> !transform.any_op
    transform.yield
  }
}
