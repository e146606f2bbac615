// Producer fusion of attnres ops with upstream's transform dialect: the
// consumer attnres.merge of two_phase_f32.mlir (phase 2, tensor<4x37xf32>) is
// tiled with tile_using_forall [3] (a full and a partial tile), then its
// producer attnres.block_score (phase 1) is fused into the loop with
// fuse_into_containing_op (after merging the row slice of `out` with the
// tile's slice). The fused block_score computes one token tile of the
// query's row; the `lse` use, a second slice of the same producer, is fused
// by cloning (upstream fuse_into_containing_op fuses one slice of a
// multi-result producer by tiling). Run on the CPU.
//
// 1. the untiled and the tiled form both match the float64 reference (the
//    merge of phase 1 equals one aggregation, check_output.py, f32 tolerance
//    1e-5) and print identical values;
// 2. control: every tile written at offset 0 must fail both comparisons.
//
// REQUIRES: numpy
// DEFINE: %{run} = mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils
// DEFINE: %{in} = %S/two_phase_f32.mlir
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

// CHECK: scf.forall
// CHECK: attnres.block_score {{.*}} -> tensor<1x?x37xf32>
// CHECK: attnres.merge {{.*}} : tensor<?x37xf32>
// CHECK: tensor.parallel_insert_slice

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(
      %root: !transform.any_op {transform.readonly}) {
    %merge = transform.structured.match ops{["attnres.merge"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %tiled, %forall = transform.structured.tile_using_forall %merge
        tile_sizes [3] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    %func = transform.structured.match ops{["func.func"]} in %root
        : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %func {
      transform.apply_patterns.tensor.merge_consecutive_insert_extract_slice
    } : !transform.any_op
    %score = transform.structured.match ops{["attnres.block_score"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %fused, %loop = transform.structured.fuse_into_containing_op %score
        into %forall : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}
