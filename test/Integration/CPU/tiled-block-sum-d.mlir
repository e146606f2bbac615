// attnres.block_sum is elementwise, so all its loops tile, the feature
// dimension D included: transform.structured.tile_using_for [3, 5] on
// block_sum_f32.mlir (tensor<4x13xf32>, partial tiles on both loops). Run on
// the CPU.
//
// 1. the untiled and the tiled form both match the float64 reference
//    (check_output.py, f32 tolerance 1e-5) and print identical values;
// 2. control: every tile inserted at token offset 0 must fail both
//    comparisons.
//
// REQUIRES: numpy
// DEFINE: %{run} = mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils
// DEFINE: %{in} = %S/block_sum_f32.mlir
// DEFINE: %{check} = %python %attnres_src/utils/reference/check_output.py %{in}
// DEFINE: %{strip} = sed -e 's/base@ = 0x[0-9a-f]*//'
//
// RUN: attnres-opt %{in} --attnres-lower-to-llvm | %{run} | %{strip} > %t.untiled
// RUN: %{check} < %t.untiled
// RUN: attnres-opt %{in} --transform-preload-library=transform-library-paths=%s \
// RUN:   --transform-interpreter --canonicalize > %t.tiled.mlir
// RUN: FileCheck %s < %t.tiled.mlir
// RUN: attnres-opt %t.tiled.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.tiled
// RUN: %{check} < %t.tiled
// RUN: diff %t.untiled %t.tiled
//
// RUN: sed -E 's/(tensor.insert_slice %[a-z0-9_]+ into %[a-z0-9_]+)\[%[a-z0-9_]+,/\1[0,/' \
// RUN:   %t.tiled.mlir > %t.wrong.mlir
// RUN: not diff %t.tiled.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.wrong
// RUN: not diff %t.untiled %t.wrong > /dev/null
// RUN: not %{check} < %t.wrong

// CHECK: scf.for
// CHECK: scf.for
// CHECK: attnres.block_sum {{.*}} : tensor<?x?xf32>
// CHECK: tensor.insert_slice

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(
      %root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.block_sum"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %tiled, %loops:2 = transform.structured.tile_using_for %op
        tile_sizes [3, 5] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}
