// A model with attnres.aggregate sharded along tokens on a 4-way grid,
// partitioned by upstream sharding-propagation + shard-partition, executed on
// the CPU with the grid simulated in one process: @sharded gives each of the
// 4 processes its 2-token slice, calls the partitioned model on it (no
// collectives: aggregate is token-local) and reassembles the result.
// Inputs and reference: aggregate_f32.mlir (4 sources of 8x64 f32), whose
// aggregate is replaced by a call to @sharded.
//
// 1. the reassembled partitioned result matches the float64 reference
//    (check_output.py, f32 tolerance 1e-5) and equals the unpartitioned run
//    bit for bit;
// 2. control: reassembling every shard at offset 0 must fail both checks.
//
// REQUIRES: numpy
// DEFINE: %{run} = mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils
// DEFINE: %{in} = %S/aggregate_f32.mlir
// DEFINE: %{check} = %python %attnres_src/utils/reference/check_output.py %{in}
// DEFINE: %{strip} = sed -e 's/base@ = 0x[0-9a-f]*//'
//
// RUN: attnres-opt %{in} --attnres-lower-to-llvm | %{run} | %{strip} > %t.whole
// RUN: sed -e 's/%h = attnres.aggregate %query, %gain over %v0, %v1, %v2, %v3 .*/%h = call @sharded(%query, %gain, %v0, %v1, %v2, %v3) : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>/' %{in} > %t.mlir
// RUN: sed -n '/^\/\/ MODEL-BEGIN/,/^\/\/ MODEL-END/p' %s > %t.model.mlir
// RUN: attnres-opt %t.model.mlir --pass-pipeline='builtin.module(func.func(sharding-propagation,shard-partition,canonicalize))' \
// RUN:   | sed -e '/^module {$/d' -e '/^}$/d' -e '/shard.grid/d' -e 's/func.func @model(/func.func @model_local(/' > %t.model-part.mlir
// RUN: sed -n '/^\/\/ DRIVER-BEGIN/,$p' %s | sed -e '/func.func private @model_local/,/-> tensor<.x64xf32>$/d' > %t.driver.mlir
// RUN: cat %t.mlir %t.model-part.mlir %t.driver.mlir > %t.part.mlir
// RUN: FileCheck %s < %t.part.mlir
// RUN: attnres-opt %t.part.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.part
// RUN: %{check} < %t.part
// RUN: diff %t.whole %t.part
//
// RUN: sed -E 's/(insert_slice %hl into %acc)\[%off, 0\]/\1[0, 0]/' %t.part.mlir > %t.wrong.mlir
// RUN: not diff %t.part.mlir %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir --attnres-lower-to-llvm | %{run} | %{strip} > %t.wrong
// RUN: not diff %t.whole %t.wrong > /dev/null
// RUN: not %{check} < %t.wrong

// The partitioned model works on 2 tokens and has no collectives.
// CHECK-LABEL: func.func @model_local
// CHECK-SAME:    tensor<2x64xf32>
// CHECK-NOT:     shard.
// CHECK:         attnres.aggregate {{.*}} : tensor<2x64xf32>
// CHECK-NOT:     shard.
// CHECK:         return

// MODEL-BEGIN
shard.grid @grid(shape = 4)

func.func @model(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                 %v1: tensor<8x64xf32>, %v2: tensor<8x64xf32>, %v3: tensor<8x64xf32>)
    -> tensor<8x64xf32> {
  %sh = shard.sharding @grid split_axes = [[0]] : !shard.sharding
  %a0 = shard.shard %v0 to %sh annotate_for_users : tensor<8x64xf32>
  %a1 = shard.shard %v1 to %sh annotate_for_users : tensor<8x64xf32>
  %a2 = shard.shard %v2 to %sh annotate_for_users : tensor<8x64xf32>
  %a3 = shard.shard %v3 to %sh annotate_for_users : tensor<8x64xf32>
  %h = attnres.aggregate %w, %g over %a0, %a1, %a2, %a3 {epsilon = 1.000000e-06 : f32} : tensor<8x64xf32>
  %hs = shard.shard %h to %sh : tensor<8x64xf32>
  return %hs : tensor<8x64xf32>
}

// MODEL-END

// DRIVER-BEGIN
// The partitioned @model, renamed (see the RUN lines; this declaration is
// dropped from the executed module).
func.func private @model_local(tensor<64xf32>, tensor<64xf32>, tensor<2x64xf32>,
    tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x64xf32>) -> tensor<2x64xf32>

// The grid simulated in one process: process r holds tokens [r*2, (r+1)*2).
func.func @sharded(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                   %v1: tensor<8x64xf32>, %v2: tensor<8x64xf32>, %v3: tensor<8x64xf32>)
    -> tensor<8x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cK = arith.constant 4 : index
  %cL = arith.constant 2 : index
  %init = tensor.empty() : tensor<8x64xf32>
  %res = scf.for %r = %c0 to %cK step %c1 iter_args(%acc = %init) -> (tensor<8x64xf32>) {
    %off = arith.muli %r, %cL : index
    %s0 = tensor.extract_slice %v0[%off, 0] [2, 64] [1, 1] : tensor<8x64xf32> to tensor<2x64xf32>
    %s1 = tensor.extract_slice %v1[%off, 0] [2, 64] [1, 1] : tensor<8x64xf32> to tensor<2x64xf32>
    %s2 = tensor.extract_slice %v2[%off, 0] [2, 64] [1, 1] : tensor<8x64xf32> to tensor<2x64xf32>
    %s3 = tensor.extract_slice %v3[%off, 0] [2, 64] [1, 1] : tensor<8x64xf32> to tensor<2x64xf32>
    %hl = func.call @model_local(%w, %g, %s0, %s1, %s2, %s3)
        : (tensor<64xf32>, tensor<64xf32>, tensor<2x64xf32>, tensor<2x64xf32>,
           tensor<2x64xf32>, tensor<2x64xf32>) -> tensor<2x64xf32>
    %next = tensor.insert_slice %hl into %acc[%off, 0] [2, 64] [1, 1] : tensor<2x64xf32> into tensor<8x64xf32>
    scf.yield %next : tensor<8x64xf32>
  }
  return %res : tensor<8x64xf32>
}
