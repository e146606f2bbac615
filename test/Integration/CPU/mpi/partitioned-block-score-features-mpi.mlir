// Phase 1 of Block AttnRes (attnres.block_score, S = 3 queries over 3
// sources) with the feature dimension D sharded over a grid, partitioned by
// upstream sharding-propagation + shard-partition, its two all-reduces (the
// sources' sums of squares [3, T] for their inverse RMS and partial logits
// [3, S, T], each stacked) lowered by upstream convert-shard-to-mpi, compiled by
// attnres-lower-to-llvm and run as real processes with MPICH's mpirun (2 and
// 4 ranks). Each process holds D / P of the 48 features (T = 12) of the
// sources (annotated), the queries and gains (propagated) and out, and all of
// lse; Inputs/mpi_driver.c (-DSCORE_FEATURES) calls the model and
// gathers the feature slices of out and every rank's lse (issue 13 item 4).
//
// 1. out and each rank's lse match a float64 block_score written in numpy in
//    Inputs/check_mpi.py (check-score-features, independent of
//    attnres.reference; relative error <= 1e-5 in f32) on 2 and 4 processes,
//    with sources of magnitudes 1e-2, 1 and 1e2;
// 2. control: the all-reduces turned from a sum into a maximum must fail.
//
// REQUIRES: mpich, numpy
// DEFINE: %{part} = attnres-opt --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition,canonicalize),convert-shard-to-mpi)'
// DEFINE: %{check} = %python %S/Inputs/check_mpi.py
// DEFINE: %{cc} = env MPICH_CC=clang mpicc.mpich -O1 -DSCORE_FEATURES %S/Inputs/mpi_driver.c
// RUN: %{check} gen-score-features %t.in
//
// RUN: %{part} %s | sed -e '/shard.grid/d' > %t.2.mlir
// RUN: FileCheck %s --check-prefix=COMM < %t.2.mlir
// RUN: attnres-opt %t.2.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.2.ll
// RUN: clang -c -O1 -Wno-override-module %t.2.ll -o %t.2.o
// RUN: %{cc} %t.2.o -o %t.2.exe -lm
// RUN: mpirun.mpich -np 2 %t.2.exe %t.in %t.2.out
// RUN: %{check} check-score-features %t.in %t.2.out 2 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/shape = 2/shape = 4/' %s | %{part} | sed -e '/shard.grid/d' > %t.4.mlir
// RUN: FileCheck %s --check-prefix=COMM4 < %t.4.mlir
// RUN: attnres-opt %t.4.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.4.ll
// RUN: clang -c -O1 -Wno-override-module %t.4.ll -o %t.4.o
// RUN: %{cc} %t.4.o -o %t.4.exe -lm
// RUN: mpirun.mpich -np 4 %t.4.exe %t.in %t.4.out
// RUN: %{check} check-score-features %t.in %t.4.out 4 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/MPI_SUM/MPI_MAX/' %t.2.mlir > %t.wrong.mlir
// RUN: not diff %t.2.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.wrong.ll
// RUN: clang -c -O1 -Wno-override-module %t.wrong.ll -o %t.wrong.o
// RUN: %{cc} %t.wrong.o -o %t.wrong.exe -lm
// RUN: mpirun.mpich -np 2 %t.wrong.exe %t.in %t.wrong.out
// RUN: not %{check} check-score-features %t.in %t.wrong.out 2

// The partitioned block_score holds 24 (12) features per process of the
// queries, the gains, every source and out (the sources annotated, the rest
// propagated), all of lse, and sums each source's sum of squares and partial
// logits across the processes, stacked: one all-reduce for each kind.
// COMM:      func.func @model({{.*}}: tensor<3x24xf32>, {{.*}}: tensor<3x24xf32>, {{.*}}: tensor<12x24xf32>, {{.*}}: tensor<12x24xf32>, {{.*}}: tensor<12x24xf32>)
// COMM-SAME: -> (tensor<3x12x24xf32>, tensor<3x12xf32>)
// COMM-NOT:  shard.
// COMM-COUNT-2: mpi.allreduce({{.*}}, MPI_SUM,
// COMM-NOT:  mpi.allreduce
// COMM-NOT:  shard.
// COMM4:     func.func @model({{.*}}: tensor<3x12xf32>, {{.*}}: tensor<3x12xf32>, {{.*}}: tensor<12x12xf32>, {{.*}}: tensor<12x12xf32>, {{.*}}: tensor<12x12xf32>)
// COMM4-SAME: -> (tensor<3x12x12xf32>, tensor<3x12xf32>)
// COMM4-NOT: shard.
// COMM4-COUNT-2: mpi.allreduce({{.*}}, MPI_SUM,
// COMM4-NOT: mpi.allreduce
// COMM4-NOT: shard.
// PASS:     PASS

module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "MPICH">} {
  shard.grid @grid(shape = 2)
  func.func @model(%q: tensor<3x48xf32>, %g: tensor<3x48xf32>, %b0: tensor<12x48xf32>,
                   %b1: tensor<12x48xf32>, %b2: tensor<12x48xf32>)
      -> (tensor<3x12x48xf32>, tensor<3x12xf32>) attributes {llvm.emit_c_interface} {
    %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
    %b0s = shard.shard %b0 to %sh annotate_for_users : tensor<12x48xf32>
    %b1s = shard.shard %b1 to %sh annotate_for_users : tensor<12x48xf32>
    %b2s = shard.shard %b2 to %sh annotate_for_users : tensor<12x48xf32>
    %oi = tensor.empty() : tensor<3x12x48xf32>
    %li = tensor.empty() : tensor<3x12xf32>
    %o, %l = attnres.block_score %q, %g over %b0s, %b1s, %b2s outs %oi, %li
        {epsilon = 1.0e-06 : f32} : tensor<12x48xf32> -> tensor<3x12x48xf32>
    return %o, %l : tensor<3x12x48xf32>, tensor<3x12xf32>
  }
}
