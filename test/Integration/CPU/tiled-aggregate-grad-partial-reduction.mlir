// Tiling attnres.aggregate_grad along its token loops with upstream's
// partial-reduction transforms (PartialReductionOpInterface,
// TilingInterfaceImpl.cpp): the source gradients are written tile by tile,
// the query and gain gradients (sums over the tokens) are kept as one partial
// sum per tile and added up after the loops by a linalg.reduce. The input is
// grad/aggregate_grad_f32_accumulate_dynamic.mlir (5 sources of
// tensor<?x?x13xf32>, 2x3 tokens, accumulate form), run on the CPU:
//
// 1. tile_reduction_using_for, tile sizes [1, 2, 0] (two scf.for loops, a
//    partial last tile; every tile adds its sums into row 0 of the
//    partial tensors) and tile_reduction_using_forall, num_threads [2, 2, 0]
//    (one scf.forall, tile (i, j) writes row (i, j)); both match the float64
//    reference (check_output.py: the source, query and gain gradients);
// 2. controls, each must fail the comparison: the source-gradient tiles
//    inserted at token offset 0; the tiles' query and gain gradients
//    subtracted instead of added (for); the partial sums merged by max
//    instead of sum (forall).
//
// REQUIRES: numpy
// DEFINE: %{run} = mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils
// DEFINE: %{in} = %S/grad/aggregate_grad_f32_accumulate_dynamic.mlir
// DEFINE: %{check} = %python %attnres_src/utils/reference/check_output.py %{in}
// DEFINE: %{strip} = sed -e 's/base@ = 0x[0-9a-f]*//'
// DEFINE: %{tile} = attnres-opt %{in} --transform-preload-library=transform-library-paths=%s --canonicalize
//
// RUN: %{tile} --transform-interpreter=entry-point=tile_for --canonicalize > %t.for.mlir
// RUN: FileCheck %s --check-prefix=FOR < %t.for.mlir
// RUN: attnres-opt %t.for.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.for
// RUN: %{check} < %t.for
//
// RUN: %{tile} --transform-interpreter=entry-point=tile_forall --canonicalize > %t.forall.mlir
// RUN: FileCheck %s --check-prefix=FORALL < %t.forall.mlir
// RUN: attnres-opt %t.forall.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.forall
// RUN: %{check} < %t.forall
//
// RUN: sed -E 's/(tensor.insert_slice %[a-z0-9_#]+ into %[a-z0-9_]+)\[%[a-z0-9_]+,/\1[0,/' \
// RUN:   %t.for.mlir > %t.wrong-offset.mlir
// RUN: not diff %t.for.mlir %t.wrong-offset.mlir > /dev/null
// RUN: attnres-opt %t.wrong-offset.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.wrong-offset
// RUN: not %{check} < %t.wrong-offset
// RUN: sed -e 's/linalg.add/linalg.sub/' %t.for.mlir > %t.wrong-sum.mlir
// RUN: not diff %t.for.mlir %t.wrong-sum.mlir > /dev/null
// RUN: attnres-opt %t.wrong-sum.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.wrong-sum
// RUN: not %{check} < %t.wrong-sum
// RUN: sed -E 's/arith.addf (%in[_0-9]*), (%init[_0-9]*)/arith.maximumf \1, \2/' %t.forall.mlir > %t.wrong-merge.mlir
// RUN: not diff %t.forall.mlir %t.wrong-merge.mlir > /dev/null
// RUN: attnres-opt %t.wrong-merge.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.wrong-merge
// RUN: not %{check} < %t.wrong-merge

// FOR: scf.for
// FOR: scf.for
// FOR: attnres.aggregate_grad {{.*}} : tensor<1x?x13xf32>
// FOR-COUNT-2: linalg.add
// FOR-COUNT-7: tensor.insert_slice
// FOR: linalg.reduce
// FOR-SAME: dimensions = [0, 1]

// FORALL: scf.forall ({{.*}}) in (2, 2)
// FORALL: attnres.aggregate_grad {{.*}} : tensor<1x?x13xf32>
// FORALL-NOT: linalg.add
// FORALL-COUNT-7: tensor.parallel_insert_slice
// FORALL: linalg.reduce
// FORALL-SAME: dimensions = [0, 1]

module attributes {transform.with_named_sequence} {
  transform.named_sequence @tile_for(
      %root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate_grad"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %fill:7, %split, %merge, %loop = transform.structured.tile_reduction_using_for %op
        by tile_sizes = [1, 2, 0]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op,
            !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op,
            !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
  transform.named_sequence @tile_forall(
      %root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["attnres.aggregate_grad"]} in %root
        : (!transform.any_op) -> !transform.any_op
    %fill:7, %split, %merge, %loop = transform.structured.tile_reduction_using_forall %op
        by num_threads = [2, 2, 0]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op,
            !transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op,
            !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}
