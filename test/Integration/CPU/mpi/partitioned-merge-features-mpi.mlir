// A fused-norm merge (attnres.merge with a partial and the RMSNorm's gain,
// phase 2 of Block AttnRes) with the feature dimension D sharded over a grid,
// partitioned by upstream sharding-propagation + shard-partition, its three
// all-reduces (the sum of squares of p' = partial + update and its dot
// product with query * norm weight for the gate sigmoid(c - lse), then the
// sum of squares of h for hn) lowered by upstream convert-shard-to-mpi,
// compiled by attnres-lower-to-llvm and run as real processes with MPICH's
// mpirun (2 and 4 ranks). Each process holds D / P of the 48 features
// (T = 12) of out, query, norm weight, update, partial and norm gain, and all
// of lse; Inputs/mpi_driver.c (-DMERGE_FEATURES) calls the model and
// gathers the feature slices of h, p' and hn (issue 13 item 4).
//
// 1. h, p' and hn match the float64 reference (Inputs/check_mpi.py
//    check-merge-features, reference.merge and merge_norm, relative error
//    <= 1e-5 in f32) on 2 and 4 processes;
// 2. control: the all-reduces turned from a sum into a maximum must fail.
//
// REQUIRES: mpich, numpy
// DEFINE: %{part} = attnres-opt --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition,canonicalize),convert-shard-to-mpi)'
// DEFINE: %{check} = %python %S/Inputs/check_mpi.py
// DEFINE: %{cc} = env MPICH_CC=clang mpicc.mpich -O1 -DMERGE_FEATURES %S/Inputs/mpi_driver.c
// RUN: %{check} gen-merge-features %t.in
//
// RUN: %{part} %s | sed -e '/shard.grid/d' > %t.2.mlir
// RUN: FileCheck %s --check-prefix=COMM < %t.2.mlir
// RUN: attnres-opt %t.2.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.2.ll
// RUN: clang -c -O1 -Wno-override-module %t.2.ll -o %t.2.o
// RUN: %{cc} %t.2.o -o %t.2.exe -lm
// RUN: mpirun.mpich -np 2 %t.2.exe %t.in %t.2.out
// RUN: %{check} check-merge-features %t.in %t.2.out 2 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/shape = 2/shape = 4/' %s | %{part} | sed -e '/shard.grid/d' > %t.4.mlir
// RUN: FileCheck %s --check-prefix=COMM4 < %t.4.mlir
// RUN: attnres-opt %t.4.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.4.ll
// RUN: clang -c -O1 -Wno-override-module %t.4.ll -o %t.4.o
// RUN: %{cc} %t.4.o -o %t.4.exe -lm
// RUN: mpirun.mpich -np 4 %t.4.exe %t.in %t.4.out
// RUN: %{check} check-merge-features %t.in %t.4.out 4 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/MPI_SUM/MPI_MAX/' %t.2.mlir > %t.wrong.mlir
// RUN: not diff %t.2.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.wrong.ll
// RUN: clang -c -O1 -Wno-override-module %t.wrong.ll -o %t.wrong.o
// RUN: %{cc} %t.wrong.o -o %t.wrong.exe -lm
// RUN: mpirun.mpich -np 2 %t.wrong.exe %t.in %t.wrong.out
// RUN: not %{check} check-merge-features %t.in %t.wrong.out 2

// The partitioned merge holds 24 (12) features per process of every operand
// but lse (update annotated, the rest propagated) and sums the two sums of
// squares and the partial logits across the processes.
// COMM:      func.func @model({{.*}}: tensor<12x24xf32>, {{.*}}: tensor<12xf32>, {{.*}}: tensor<24xf32>, {{.*}}: tensor<24xf32>, {{.*}}: tensor<12x24xf32>, {{.*}}: tensor<12x24xf32>, {{.*}}: tensor<24xf32>)
// COMM-SAME: -> (tensor<12x24xf32>, tensor<12x24xf32>, tensor<12x24xf32>)
// COMM-NOT:  shard.
// COMM-COUNT-3: mpi.allreduce({{.*}}, MPI_SUM,
// COMM-NOT:  mpi.allreduce
// COMM-NOT:  shard.
// COMM4:     func.func @model({{.*}}: tensor<12x12xf32>, {{.*}}: tensor<12xf32>, {{.*}}: tensor<12xf32>, {{.*}}: tensor<12xf32>, {{.*}}: tensor<12x12xf32>, {{.*}}: tensor<12x12xf32>, {{.*}}: tensor<12xf32>)
// COMM4-SAME: -> (tensor<12x12xf32>, tensor<12x12xf32>, tensor<12x12xf32>)
// COMM4-NOT: shard.
// COMM4-COUNT-3: mpi.allreduce({{.*}}, MPI_SUM,
// COMM4-NOT: mpi.allreduce
// COMM4-NOT: shard.
// PASS:     PASS

module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "MPICH">} {
  shard.grid @grid(shape = 2)
  func.func @model(%o: tensor<12x48xf32>, %lse: tensor<12xf32>, %w: tensor<48xf32>,
                   %g: tensor<48xf32>, %u: tensor<12x48xf32>, %p: tensor<12x48xf32>,
                   %gn: tensor<48xf32>)
      -> (tensor<12x48xf32>, tensor<12x48xf32>, tensor<12x48xf32>)
      attributes {llvm.emit_c_interface} {
    %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
    %us = shard.shard %u to %sh annotate_for_users : tensor<12x48xf32>
    %h, %pn, %hn = attnres.merge %o, %lse, %w, %g update %us partial %p norm %gn
        {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<12x48xf32>
    return %h, %pn, %hn : tensor<12x48xf32>, tensor<12x48xf32>, tensor<12x48xf32>
  }
}
