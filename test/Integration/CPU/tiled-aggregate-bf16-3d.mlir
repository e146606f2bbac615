// Tiling attnres.aggregate with upstream's transform dialect
// (tile_using_forall over both token dimensions, D untiled) and running the
// tiled form on the CPU. Input: aggregate_bf16_3d.mlir (6 sources of
// tensor<2x3x37xbf16>); tile sizes [1, 2] leave a partial tile on the second
// token dimension.
//
// 1. the untiled and the tiled form both match the float64 reference
//    (check_output.py, bf16 tolerance 1e-2) and print identical values;
// 2. control: the tiled IR with every tile written at offset 0 of the first
//    token dimension must fail both comparisons.
//
// REQUIRES: numpy
// DEFINE: %{run} = mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils
// DEFINE: %{in} = %S/aggregate_bf16_3d.mlir
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
// RUN: sed -E 's/(parallel_insert_slice %[a-z0-9_]+ into %[a-z0-9_]+)\[%[a-z0-9_]+,/\1[0,/' \
// RUN:   %t.tiled.mlir > %t.wrong.mlir
// RUN: not diff %t.tiled.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.wrong
// RUN: not diff %t.untiled %t.wrong > /dev/null
// RUN: not %{check} < %t.wrong

// CHECK: scf.forall (%{{.*}}, %{{.*}}) in (2, 2)
// CHECK: attnres.aggregate {{.*}} : tensor<1x?x37xbf16>
// CHECK: tensor.parallel_insert_slice

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(
      %root: !transform.any_op {transform.readonly}) {
    %agg = transform.structured.match ops{["attnres.aggregate"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %tiled, %forall = transform.structured.tile_using_forall %agg
        tile_sizes [1, 2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}
