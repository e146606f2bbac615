// Tiling attnres.aggregate_stats (the forward of a training step, which also
// returns the log-sum-exp and each source's inverse RMS per token) with
// dynamic token dimensions (grad/aggregate_grad_f32_accumulate_dynamic.mlir:
// 5 sources of tensor<?x?x13xf32>, whose statistics feed
// attnres.aggregate_grad) by transform.structured.tile_using_for [1, 2, 0]
// (two scf.for loops, partial tiles), run on the CPU.
//
// 1. the untiled and the tiled form both match the float64 reference
//    (check_output.py: h, lse, every inverse RMS and every gradient computed
//    from them) and print identical values;
// 2. control: every tile inserted at offset 0 of the first token dimension
//    must fail both comparisons.
//
// REQUIRES: numpy
// DEFINE: %{run} = mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils
// DEFINE: %{in} = %S/grad/aggregate_grad_f32_accumulate_dynamic.mlir
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
// RUN: sed -E 's/(tensor.insert_slice %[a-z0-9_#]+ into %[a-z0-9_]+)\[%[a-z0-9_]+,/\1[0,/' \
// RUN:   %t.tiled.mlir > %t.wrong.mlir
// RUN: not diff %t.tiled.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.wrong
// RUN: not diff %t.untiled %t.wrong > /dev/null
// RUN: not %{check} < %t.wrong

// CHECK: scf.for
// CHECK: scf.for
// CHECK: attnres.aggregate_stats {{.*}} : tensor<1x?x13xf32>
// CHECK-COUNT-7: tensor.insert_slice
// CHECK: attnres.aggregate_grad

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(
      %root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate_stats"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %tiled, %loops:2 = transform.structured.tile_using_for %op
        tile_sizes [1, 2, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}
