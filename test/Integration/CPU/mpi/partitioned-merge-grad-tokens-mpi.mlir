// The backward of a fused-norm merge (attnres.merge_grad with a partial and
// the RMSNorm's gain, phase 2 of Block AttnRes) with the tokens sharded over
// a grid, partitioned by upstream sharding-propagation + shard-partition, its
// three all-reduces (the query, norm weight and norm gain gradients are sums
// over the tokens) lowered by upstream convert-shard-to-mpi, compiled by
// attnres-lower-to-llvm and run as real processes with MPICH's mpirun (2 and
// 4 ranks). Each process holds T / P of the 12 tokens (D = 37) of out, lse,
// update, partial, dh, dp_new and dhn; Inputs/mpi_driver.c
// (-DMERGE_GRAD) calls the model and gathers dout, dlse and dupdate and every
// rank's dquery, dnorm_weight and dnorm_gain (issue 13 item 4, backward ops).
//
// 1. dout, dlse, dupdate and each rank's dquery, dnorm_weight and dnorm_gain
//    match the float64 reference (Inputs/check_mpi.py check-merge-grad,
//    reference.merge_norm_grad, relative error <= 1e-5 in f32) on 2 and 4
//    processes;
// 2. control: the all-reduces turned from a sum into a maximum must fail.
//
// REQUIRES: mpich, numpy
// DEFINE: %{part} = attnres-opt --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition,canonicalize),convert-shard-to-mpi)'
// DEFINE: %{check} = %python %S/Inputs/check_mpi.py
// DEFINE: %{cc} = env MPICH_CC=clang mpicc.mpich -O1 -DMERGE_GRAD %S/Inputs/mpi_driver.c
// RUN: %{check} gen-merge-grad %t.in
//
// RUN: %{part} %s | sed -e '/shard.grid/d' > %t.2.mlir
// RUN: FileCheck %s --check-prefix=COMM < %t.2.mlir
// RUN: attnres-opt %t.2.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.2.ll
// RUN: clang -c -O1 -Wno-override-module %t.2.ll -o %t.2.o
// RUN: %{cc} %t.2.o -o %t.2.exe -lm
// RUN: mpirun.mpich -np 2 %t.2.exe %t.in %t.2.out
// RUN: %{check} check-merge-grad %t.in %t.2.out 2 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/shape = 2/shape = 4/' %s | %{part} | sed -e '/shard.grid/d' > %t.4.mlir
// RUN: FileCheck %s --check-prefix=COMM4 < %t.4.mlir
// RUN: attnres-opt %t.4.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.4.ll
// RUN: clang -c -O1 -Wno-override-module %t.4.ll -o %t.4.o
// RUN: %{cc} %t.4.o -o %t.4.exe -lm
// RUN: mpirun.mpich -np 4 %t.4.exe %t.in %t.4.out
// RUN: %{check} check-merge-grad %t.in %t.4.out 4 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/MPI_SUM/MPI_MAX/' %t.2.mlir > %t.wrong.mlir
// RUN: not diff %t.2.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.wrong.ll
// RUN: clang -c -O1 -Wno-override-module %t.wrong.ll -o %t.wrong.o
// RUN: %{cc} %t.wrong.o -o %t.wrong.exe -lm
// RUN: mpirun.mpich -np 2 %t.wrong.exe %t.in %t.wrong.out
// RUN: not %{check} check-merge-grad %t.in %t.wrong.out 2

// The partitioned backward holds 6 (3) tokens per process, every per-token
// operand sharded (out and update annotated, the rest propagated), and sums
// the three parameter gradients across the processes.
// COMM:      func.func @model({{.*}}: tensor<6x37xf32>, {{.*}}: tensor<6xf32>, {{.*}}: tensor<37xf32>, {{.*}}: tensor<37xf32>, {{.*}}: tensor<6x37xf32>, {{.*}}: tensor<6x37xf32>, {{.*}}: tensor<37xf32>, {{.*}}: tensor<6x37xf32>, {{.*}}: tensor<6x37xf32>, {{.*}}: tensor<6x37xf32>)
// COMM-NOT:  shard.
// COMM-COUNT-3: mpi.allreduce({{.*}}, MPI_SUM,
// COMM-NOT:  mpi.allreduce
// COMM-NOT:  shard.
// COMM4:     func.func @model({{.*}}: tensor<3x37xf32>, {{.*}}: tensor<3xf32>, {{.*}}: tensor<37xf32>, {{.*}}: tensor<37xf32>, {{.*}}: tensor<3x37xf32>, {{.*}}: tensor<3x37xf32>, {{.*}}: tensor<37xf32>, {{.*}}: tensor<3x37xf32>, {{.*}}: tensor<3x37xf32>, {{.*}}: tensor<3x37xf32>)
// COMM4-NOT: shard.
// COMM4-COUNT-3: mpi.allreduce({{.*}}, MPI_SUM,
// COMM4-NOT: mpi.allreduce
// COMM4-NOT: shard.
// PASS:     PASS

module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "MPICH">} {
  shard.grid @grid(shape = 2)
  func.func @model(%o: tensor<12x37xf32>, %lse: tensor<12xf32>, %w: tensor<37xf32>,
                   %g: tensor<37xf32>, %y: tensor<12x37xf32>, %p: tensor<12x37xf32>,
                   %gn: tensor<37xf32>, %dh: tensor<12x37xf32>, %dpn: tensor<12x37xf32>,
                   %dhn: tensor<12x37xf32>)
      -> (tensor<12x37xf32>, tensor<12xf32>, tensor<37xf32>, tensor<37xf32>,
          tensor<12x37xf32>, tensor<37xf32>) attributes {llvm.emit_c_interface} {
    %sh = shard.sharding @grid split_axes = [[0]] : !shard.sharding
    %os = shard.shard %o to %sh annotate_for_users : tensor<12x37xf32>
    %ys = shard.shard %y to %sh annotate_for_users : tensor<12x37xf32>
    %do, %dl, %dq, %dw, %dy, %dn = attnres.merge_grad %os, %lse, %w, %g update %ys
        partial %p norm %gn grad %dh, %dpn, %dhn
        {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<12x37xf32>
    return %do, %dl, %dq, %dw, %dy, %dn
        : tensor<12x37xf32>, tensor<12xf32>, tensor<37xf32>, tensor<37xf32>,
          tensor<12x37xf32>, tensor<37xf32>
  }
}
