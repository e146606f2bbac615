// The backward of a Full AttnRes aggregation (attnres.aggregate_grad) with
// the tokens sharded over a grid, partitioned by upstream
// sharding-propagation + shard-partition, its two all-reduces (the query and
// gain gradients are sums over the tokens) lowered by upstream
// convert-shard-to-mpi, compiled by attnres-lower-to-llvm and run as real
// processes with MPICH's mpirun (2 and 4 ranks). Each process holds T / P
// tokens of the sources, statistics and dh; Inputs/mpi_driver.c
// (-DAGGREGATE_GRAD) calls the model and gathers the source gradients and
// every rank's query and gain gradients (issue 13 item 4, backward ops).
//
// 1. the source gradients and each rank's query and gain gradients match the
//    float64 reference (Inputs/check_mpi.py check-grad, relative error
//    <= 1e-5) on 2 and 4 processes;
// 2. control: the all-reduces turned from a sum into a maximum must fail.
//
// REQUIRES: mpich, numpy
// DEFINE: %{part} = attnres-opt --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition,canonicalize),convert-shard-to-mpi)'
// DEFINE: %{check} = %python %S/Inputs/check_mpi.py
// RUN: %{check} gen-grad %t.in
//
// RUN: %{part} %s | sed -e '/shard.grid/d' > %t.2.mlir
// RUN: FileCheck %s --check-prefix=COMM < %t.2.mlir
// RUN: attnres-opt %t.2.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.2.ll
// RUN: clang -c -O1 -Wno-override-module %t.2.ll -o %t.2.o
// RUN: env MPICH_CC=clang mpicc.mpich -O1 -DAGGREGATE_GRAD %S/Inputs/mpi_driver.c %t.2.o -o %t.2.exe -lm
// RUN: mpirun.mpich -np 2 %t.2.exe %t.in %t.2.out
// RUN: %{check} check-grad %t.in %t.2.out 2 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/shape = 2/shape = 4/' %s | %{part} | sed -e '/shard.grid/d' > %t.4.mlir
// RUN: attnres-opt %t.4.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.4.ll
// RUN: clang -c -O1 -Wno-override-module %t.4.ll -o %t.4.o
// RUN: env MPICH_CC=clang mpicc.mpich -O1 -DAGGREGATE_GRAD %S/Inputs/mpi_driver.c %t.4.o -o %t.4.exe -lm
// RUN: mpirun.mpich -np 4 %t.4.exe %t.in %t.4.out
// RUN: %{check} check-grad %t.in %t.4.out 4 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/MPI_SUM/MPI_MAX/' %t.2.mlir > %t.wrong.mlir
// RUN: not diff %t.2.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.wrong.ll
// RUN: clang -c -O1 -Wno-override-module %t.wrong.ll -o %t.wrong.o
// RUN: env MPICH_CC=clang mpicc.mpich -O1 -DAGGREGATE_GRAD %S/Inputs/mpi_driver.c %t.wrong.o -o %t.wrong.exe -lm
// RUN: mpirun.mpich -np 2 %t.wrong.exe %t.in %t.wrong.out
// RUN: not %{check} check-grad %t.in %t.wrong.out 2

// The partitioned backward holds 4 tokens per process and sums the query
// and gain gradients across the processes.
// COMM:      func.func @model({{.*}}: tensor<48xf32>, {{.*}}: tensor<48xf32>, {{.*}}: tensor<4x48xf32>
// COMM-COUNT-2: mpi.allreduce({{.*}}, MPI_SUM,
// COMM-NOT:  shard.
// PASS:     PASS

module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "MPICH">} {
  shard.grid @grid(shape = 2)
  func.func @model(%w: tensor<48xf32>, %g: tensor<48xf32>, %v0: tensor<8x48xf32>,
                   %v1: tensor<8x48xf32>, %v2: tensor<8x48xf32>, %lse: tensor<8xf32>,
                   %r0: tensor<8xf32>, %r1: tensor<8xf32>, %r2: tensor<8xf32>,
                   %dh: tensor<8x48xf32>)
      -> (tensor<8x48xf32>, tensor<8x48xf32>, tensor<8x48xf32>, tensor<48xf32>,
          tensor<48xf32>) attributes {llvm.emit_c_interface} {
    %sh = shard.sharding @grid split_axes = [[0]] : !shard.sharding
    %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<8x48xf32>
    %v1s = shard.shard %v1 to %sh annotate_for_users : tensor<8x48xf32>
    %v2s = shard.shard %v2 to %sh annotate_for_users : tensor<8x48xf32>
    %dhs = shard.shard %dh to %sh annotate_for_users : tensor<8x48xf32>
    %dv:3, %dq, %dg = attnres.aggregate_grad %w, %g over %v0s, %v1s, %v2s
        stats %lse, %r0, %r1, %r2 grad %dhs {epsilon = 1.0e-06 : f32}
        : tensor<8x48xf32>
    return %dv#0, %dv#1, %dv#2, %dq, %dg
        : tensor<8x48xf32>, tensor<8x48xf32>, tensor<8x48xf32>, tensor<48xf32>,
          tensor<48xf32>
  }
}
