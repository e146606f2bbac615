// Tiling then decomposing attnres.aggregate, as an integrator does
// (aggregate_bf16_3d.mlir: 6 sources of tensor<2x3x37xbf16>):
// transform.structured.tile_using_for [1, 2, 0], then
// transform.structured.decompose_interface on the tiled op, so that every
// tile is computed by the linalg decomposition (no attnres op is left for
// convert-attnres-to-linalg). Run on the CPU.
//
// 1. the untouched and the tiled+decomposed form both match the float64
//    reference (check_output.py, bf16 tolerance 1e-2) and print identical
//    values;
// 2. control: the decomposed IR with its inverse RMS computed as sqrt instead
//    of rsqrt must differ and fail the comparison.
//
// REQUIRES: numpy
// DEFINE: %{run} = mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils
// DEFINE: %{in} = %S/aggregate_bf16_3d.mlir
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
// RUN: sed -e 's/math.rsqrt/math.sqrt/' %t.dec.mlir > %t.wrong.mlir
// RUN: not diff %t.dec.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.wrong
// RUN: not diff %t.plain %t.wrong > /dev/null
// RUN: not %{check} < %t.wrong

// CHECK-NOT: attnres.
// CHECK: scf.for
// CHECK: scf.for
// CHECK: tensor.extract_slice {{.*}} : tensor<2x3x37xbf16> to tensor<1x?x37xbf16>
// CHECK-NOT: attnres.
// CHECK: math.rsqrt
// CHECK: math.exp
// CHECK: linalg.generic
// CHECK: tensor.insert_slice {{.*}} : tensor<1x?x37xbf16> into tensor<2x3x37xbf16>
// CHECK-NOT: attnres.

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(
      %root: !transform.any_op {transform.readonly}) {
    %agg = transform.structured.match ops{["attnres.aggregate"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %tiled, %i, %j = transform.structured.tile_using_for %agg
        tile_sizes [1, 2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    %dec = transform.structured.decompose_interface %tiled
        : (!transform.any_op) -> !transform.any_op
    transform.yield
  }
}
