// A Full AttnRes aggregation and the inverse RMS of its output, with the
// feature dimension D sharded over a grid, partitioned by upstream
// sharding-propagation + shard-partition, its collectives lowered by upstream
// convert-shard-to-mpi, compiled by attnres-lower-to-llvm and run as real
// processes with MPICH's mpirun (2 and 4 ranks). Each process holds D / P
// features of every input; the partial logits and sums of squares are summed
// by MPI_Allreduce (issue 13 item 4). Inputs/mpi_driver.c
// (-DAGGREGATE_FEATURES) reads the inputs, slices them, calls the model and
// gathers h and every rank's inverse RMS.
//
// 1. h and each rank's inverse RMS match the float64 reference
//    (Inputs/check_mpi.py, relative error <= 1e-5) on 2 and 4 processes;
// 2. control: the all-reduces turned from a sum into a maximum must fail.
//
// REQUIRES: mpich, numpy
// DEFINE: %{part} = attnres-opt --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition,canonicalize),convert-shard-to-mpi)'
// DEFINE: %{check} = %python %S/Inputs/check_mpi.py
// RUN: %{check} gen %t.in
//
// RUN: %{part} %s | sed -e '/shard.grid/d' > %t.2.mlir
// RUN: FileCheck %s --check-prefix=COMM < %t.2.mlir
// RUN: attnres-opt %t.2.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.2.ll
// RUN: clang -c -O1 -Wno-override-module %t.2.ll -o %t.2.o
// RUN: env MPICH_CC=clang mpicc.mpich -O1 -DAGGREGATE_FEATURES %S/Inputs/mpi_driver.c %t.2.o -o %t.2.exe -lm
// RUN: mpirun.mpich -np 2 %t.2.exe %t.in %t.2.out
// RUN: %{check} check %t.in %t.2.out 2 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/shape = 2/shape = 4/' %s | %{part} | sed -e '/shard.grid/d' > %t.4.mlir
// RUN: attnres-opt %t.4.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.4.ll
// RUN: clang -c -O1 -Wno-override-module %t.4.ll -o %t.4.o
// RUN: env MPICH_CC=clang mpicc.mpich -O1 -DAGGREGATE_FEATURES %S/Inputs/mpi_driver.c %t.4.o -o %t.4.exe -lm
// RUN: mpirun.mpich -np 4 %t.4.exe %t.in %t.4.out
// RUN: %{check} check %t.in %t.4.out 4 | FileCheck %s --check-prefix=PASS
//
// RUN: sed -e 's/MPI_SUM/MPI_MAX/' %t.2.mlir > %t.wrong.mlir
// RUN: not diff %t.2.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | mlir-translate --mlir-to-llvmir > %t.wrong.ll
// RUN: clang -c -O1 -Wno-override-module %t.wrong.ll -o %t.wrong.o
// RUN: env MPICH_CC=clang mpicc.mpich -O1 -DAGGREGATE_FEATURES %S/Inputs/mpi_driver.c %t.wrong.o -o %t.wrong.exe -lm
// RUN: mpirun.mpich -np 2 %t.wrong.exe %t.in %t.wrong.out
// RUN: not %{check} check %t.in %t.wrong.out 2

// The partitioned model holds 32 features per process and sums the partial
// logits, the sums of squares and h's sums of squares across the processes.
// COMM:      func.func @model({{.*}}: tensor<32xf32>, {{.*}}: tensor<32xf32>, {{.*}}: tensor<8x32xf32>
// COMM-COUNT-3: mpi.allreduce({{.*}}, MPI_SUM,
// COMM-NOT:  shard.
// PASS:     PASS

module attributes {dlti.map = #dlti.map<"MPI:Implementation" = "MPICH">} {
  shard.grid @grid(shape = 2)
  func.func @model(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                   %v1: tensor<8x64xf32>, %v2: tensor<8x64xf32>)
      -> (tensor<8x64xf32>, tensor<8xf32>) attributes {llvm.emit_c_interface} {
    %sh = shard.sharding @grid split_axes = [[], [0]] : !shard.sharding
    %v0s = shard.shard %v0 to %sh annotate_for_users : tensor<8x64xf32>
    %v1s = shard.shard %v1 to %sh annotate_for_users : tensor<8x64xf32>
    %v2s = shard.shard %v2 to %sh annotate_for_users : tensor<8x64xf32>
    %h = attnres.aggregate %w, %g over %v0s, %v1s, %v2s {epsilon = 1.0e-06 : f32}
        : tensor<8x64xf32>
    %r = attnres.inv_rms %h {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
    return %h, %r : tensor<8x64xf32>, tensor<8xf32>
  }
}
