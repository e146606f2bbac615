// The backward of phase 1 of Block AttnRes (attnres.block_score_grad, S = 3
// queries over 3 sources) with the tokens sharded over a grid, partitioned by
// upstream sharding-propagation + shard-partition, its two all-reduces (the
// [S, D] query and gain gradients are sums over the tokens) lowered by
// upstream convert-shard-to-mpi, compiled by attnres-lower-to-llvm and run as
// real processes with MPICH's mpirun (2 and 4 ranks). Each process holds
// T / P of the 16 tokens (D = 37) of the sources and their inverse RMS (token
// dimension 0) and of lse, dout and dlse (token dimension 1, after S);
// Inputs/mpi_driver.c (-DBLOCK_SCORE_GRAD) calls the model and gathers
// the source gradients and every rank's dqueries and dgains (issue 13 item 4,
// backward ops).
//
// 1. the source gradients and each rank's dqueries and dgains match the
//    float64 reference (Inputs/check_mpi.py check-score-grad,
//    reference.block_score_grad, relative error <= 1e-5 in f32) on 2 and 4
//    processes;
// 2. control: the all-reduces turned from a sum into a maximum must fail.
//
// REQUIRES: mpich, numpy
// DEFINE: %{part} = attnres-opt --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition,canonicalize),convert-shard-to-mpi)'
// DEFINE: %{check} = %python %S/Inputs/check_mpi.py
// DEFINE: %{cc} = env MPICH_CC=clang mpicc.mpich -O1 -DBLOCK_SCORE_GRAD %S/Inputs/mpi_driver.c
// RUN: %{check} gen-score-grad %t.in
//
// RUN: %{part} %s | sed -e '/shard.grid/d' > %t.2.mlir
// RUN: FileCheck %s --check-prefix=COMM < %t.2.mlir
// RUN: attnres-opt %t.2.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.2.ll
// RUN: clang -c -O1 -Wno-override-module %t.2.ll -o %t.2.o
// RUN: %{cc} %t.2.o -o %t.2.exe -lm
// RUN: mpirun.mpich -np 2 %t.2.exe %t.in %t.2.out
// RUN: %{check} check-score-grad %t.in %t.2.out 2 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/shape = 2/shape = 4/' %s | %{part} | sed -e '/shard.grid/d' > %t.4.mlir
// RUN: FileCheck %s --check-prefix=COMM4 < %t.4.mlir
// RUN: attnres-opt %t.4.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.4.ll
// RUN: clang -c -O1 -Wno-override-module %t.4.ll -o %t.4.o
// RUN: %{cc} %t.4.o -o %t.4.exe -lm
// RUN: mpirun.mpich -np 4 %t.4.exe %t.in %t.4.out
// RUN: %{check} check-score-grad %t.in %t.4.out 4 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/MPI_SUM/MPI_MAX/' %t.2.mlir > %t.wrong.mlir
// RUN: not diff %t.2.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.wrong.ll
// RUN: clang -c -O1 -Wno-override-module %t.wrong.ll -o %t.wrong.o
// RUN: %{cc} %t.wrong.o -o %t.wrong.exe -lm
// RUN: mpirun.mpich -np 2 %t.wrong.exe %t.in %t.wrong.out
// RUN: not %{check} check-score-grad %t.in %t.wrong.out 2

// The partitioned backward holds 8 (4) tokens per process of every
// per-token operand (the sources annotated, lse, the inverse RMS, dout and
// dlse propagated along their token dimensions) and sums the [S, D] query
// and gain gradients across the processes.
// COMM:      func.func @model({{.*}}: tensor<3x37xf32>, {{.*}}: tensor<3x37xf32>, {{.*}}: tensor<8x37xf32>, {{.*}}: tensor<8x37xf32>, {{.*}}: tensor<8x37xf32>, {{.*}}: tensor<3x8xf32>, {{.*}}: tensor<8xf32>, {{.*}}: tensor<8xf32>, {{.*}}: tensor<8xf32>, {{.*}}: tensor<3x8x37xf32>, {{.*}}: tensor<3x8xf32>)
// COMM-NOT:  shard.
// COMM-COUNT-2: mpi.allreduce({{.*}}, MPI_SUM,
// COMM-NOT:  mpi.allreduce
// COMM-NOT:  shard.
// COMM4:     func.func @model({{.*}}: tensor<3x37xf32>, {{.*}}: tensor<3x37xf32>, {{.*}}: tensor<4x37xf32>, {{.*}}: tensor<4x37xf32>, {{.*}}: tensor<4x37xf32>, {{.*}}: tensor<3x4xf32>, {{.*}}: tensor<4xf32>, {{.*}}: tensor<4xf32>, {{.*}}: tensor<4xf32>, {{.*}}: tensor<3x4x37xf32>, {{.*}}: tensor<3x4xf32>)
// COMM4-NOT: shard.
// COMM4-COUNT-2: mpi.allreduce({{.*}}, MPI_SUM,
// COMM4-NOT: mpi.allreduce
// COMM4-NOT: shard.
// PASS:     PASS

module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "MPICH">} {
  shard.grid @grid(shape = 2)
  func.func @model(%W: tensor<3x37xf32>, %G: tensor<3x37xf32>, %a: tensor<16x37xf32>,
                   %b: tensor<16x37xf32>, %c: tensor<16x37xf32>, %lse: tensor<3x16xf32>,
                   %ra: tensor<16xf32>, %rb: tensor<16xf32>, %rc: tensor<16xf32>,
                   %dout: tensor<3x16x37xf32>, %dlse: tensor<3x16xf32>)
      -> (tensor<16x37xf32>, tensor<16x37xf32>, tensor<16x37xf32>, tensor<3x37xf32>,
          tensor<3x37xf32>) attributes {llvm.emit_c_interface} {
    %sh = shard.sharding @grid split_axes = [[0]] : !shard.sharding
    %as = shard.shard %a to %sh annotate_for_users : tensor<16x37xf32>
    %bs = shard.shard %b to %sh annotate_for_users : tensor<16x37xf32>
    %cs = shard.shard %c to %sh annotate_for_users : tensor<16x37xf32>
    %db:3, %dW, %dG = attnres.block_score_grad %W, %G over %as, %bs, %cs
        stats %lse, %ra, %rb, %rc grad %dout, %dlse {epsilon = 1.0e-06 : f32}
        : tensor<16x37xf32> -> tensor<3x16x37xf32>
    return %db#0, %db#1, %db#2, %dW, %dG
        : tensor<16x37xf32>, tensor<16x37xf32>, tensor<16x37xf32>, tensor<3x37xf32>,
          tensor<3x37xf32>
  }
}
