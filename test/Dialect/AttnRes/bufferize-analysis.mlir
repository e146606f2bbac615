// RUN: attnres-opt %s --split-input-file \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries test-analysis-only print-conflicts" \
// RUN:   | FileCheck %s
// RUN: attnres-opt %s --split-input-file \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:   | FileCheck %s --check-prefix=BUF --implicit-check-not=attnres.

// One-Shot Analysis of attnres ops through their BufferizableOpInterface
// models: the written operands (aggregate_grad's accumulators, block_score's
// outs) bufferize in place where that is legal and out of place (a copy)
// where the old value is read after the op; the results of the value forms
// are new buffers that a consumer may overwrite in place. Each in-place
// case has a control that differs only by the later read.

// The accumulators are not read after the op: dv_i is accumulated into the
// caller's buffers (the function returns them as equivalent arguments).
// CHECK-LABEL: func.func @accumulate_in_place
// CHECK:         attnres.aggregate_grad
// CHECK-SAME:      __inplace_operands_attr__ = ["true", "true", "true", "true", "true", "true", "true", "true", "true", "true"]
// CHECK:         return {__equivalent_func_args__ = [8, 9]
// BUF-LABEL: func.func @accumulate_in_place
// BUF-SAME:    %[[A0:arg8]]: memref<8x64xf32{{.*}}>, %[[A1:arg9]]: memref<8x64xf32{{.*}}>)
// BUF-NOT:     memref.alloc() {{.*}} : memref<8x64xf32>
// BUF-NOT:     memref.copy
// BUF:         linalg.generic {{.*}} outs(%[[A0]], %[[A1]] :
// BUF-NOT:     memref.alloc() {{.*}} : memref<8x64xf32>
// BUF-NOT:     memref.copy
// BUF:         return
func.func @accumulate_in_place(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
    %v1: tensor<8x64xf32>, %lse: tensor<8xf32>, %r0: tensor<8xf32>, %r1: tensor<8xf32>,
    %dh: tensor<8x64xf32>, %a0: tensor<8x64xf32>, %a1: tensor<8x64xf32>)
    -> (tensor<8x64xf32>, tensor<8x64xf32>) {
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %g over %v0, %v1 stats %lse, %r0, %r1
      grad %dh accumulate %a0, %a1 {epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  return %dv#0, %dv#1 : tensor<8x64xf32>, tensor<8x64xf32>
}

// -----

// Control: the old value of the first accumulator is read after the op
// (block_sum), so its write is a conflict and that operand alone is
// bufferized out of place: a copy of %a0 receives dv_0, %a1 is still
// written in place.
// CHECK-LABEL: func.func @accumulate_read_later
// CHECK:         attnres.aggregate_grad
// CHECK-SAME:      "C_0[CONFL-WRITE: 8]"
// CHECK-SAME:      __inplace_operands_attr__ = ["true", "true", "true", "true", "true", "true", "true", "true", "false", "true"]
// CHECK:         attnres.block_sum {{.*}}"C_0[READ: 0]"
// CHECK:         return {__equivalent_func_args__ = [-1, 9, -1]
// BUF-LABEL: func.func @accumulate_read_later
// BUF-SAME:    %[[A0:arg8]]: memref<8x64xf32{{.*}}>, %[[A1:arg9]]: memref<8x64xf32{{.*}}>)
// BUF:         %[[C:.*]] = memref.alloc() {{.*}} : memref<8x64xf32>
// BUF:         memref.copy %[[A0]], %[[C]]
// BUF:         linalg.generic {{.*}} outs(%[[C]], %[[A1]] :
// BUF:         linalg.generic {{.*}} ins(%[[A0]], %[[C]] :
func.func @accumulate_read_later(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
    %v1: tensor<8x64xf32>, %lse: tensor<8xf32>, %r0: tensor<8xf32>, %r1: tensor<8xf32>,
    %dh: tensor<8x64xf32>, %a0: tensor<8x64xf32>, %a1: tensor<8x64xf32>)
    -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) {
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %g over %v0, %v1 stats %lse, %r0, %r1
      grad %dh accumulate %a0, %a1 {epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  %s = attnres.block_sum %a0, %dv#0 : tensor<8x64xf32>
  return %dv#0, %dv#1, %s : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
}

// -----

// block_score's outs are written, never read: a function argument as outs
// is written in place.
// CHECK-LABEL: func.func @outs_in_place
// CHECK:         attnres.block_score
// CHECK-SAME:      __inplace_operands_attr__ = ["true", "true", "true", "true", "true", "true"]
// CHECK:         return {__equivalent_func_args__ = [4, 5]
// BUF-LABEL: func.func @outs_in_place
// BUF-NOT:     memref.copy
// BUF:         return
func.func @outs_in_place(%W: tensor<3x64xf32>, %G: tensor<3x64xf32>, %b0: tensor<8x64xf32>,
                         %b1: tensor<8x64xf32>, %oi: tensor<3x8x64xf32>, %li: tensor<3x8xf32>)
    -> (tensor<3x8x64xf32>, tensor<3x8xf32>) {
  %o, %lse = attnres.block_score %W, %G over %b0, %b1 outs %oi, %li {epsilon = 1.0e-06 : f32}
      : tensor<8x64xf32> -> tensor<3x8x64xf32>
  return %o, %lse : tensor<3x8x64xf32>, tensor<3x8xf32>
}

// -----

// Control: the old contents of the output argument are returned too, so
// the op writes into a new buffer (not a copy: outs are never read).
// CHECK-LABEL: func.func @outs_read_later
// CHECK:         attnres.block_score
// CHECK-SAME:      __inplace_operands_attr__ = ["true", "true", "true", "true", "false", "true"]
// CHECK:         return {{{.*}}__equivalent_func_args__ = [-1, 5, 4]
// BUF-LABEL: func.func @outs_read_later
// BUF-SAME:    %[[OI:arg4]]: memref<3x8x64xf32{{.*}}>
// BUF:         %[[N:.*]] = memref.alloc() {{.*}} : memref<3x8x64xf32>
// BUF-NOT:     memref.copy %[[OI]]
// BUF:         linalg.generic {{.*}} outs(%[[N]] : memref<3x8x64xf32>)
func.func @outs_read_later(%W: tensor<3x64xf32>, %G: tensor<3x64xf32>, %b0: tensor<8x64xf32>,
                           %b1: tensor<8x64xf32>, %oi: tensor<3x8x64xf32>, %li: tensor<3x8xf32>)
    -> (tensor<3x8x64xf32>, tensor<3x8xf32>, tensor<3x8x64xf32>) {
  %o, %lse = attnres.block_score %W, %G over %b0, %b1 outs %oi, %li {epsilon = 1.0e-06 : f32}
      : tensor<8x64xf32> -> tensor<3x8x64xf32>
  return %o, %lse, %oi : tensor<3x8x64xf32>, tensor<3x8xf32>, tensor<3x8x64xf32>
}

// -----

// The result of a value form is a new buffer: an upstream op that reads
// and overwrites it (h *= x) does so in place.
// CHECK-LABEL: func.func @result_in_place
// CHECK:         linalg.generic {{.*}}__inplace_operands_attr__ = ["true"]
// BUF-LABEL: func.func @result_in_place
// BUF:         %[[H:.*]] = memref.alloc() {{.*}} : memref<8x64xf32>
// BUF:         linalg.generic {{.*}} outs(%[[H]] : memref<8x64xf32>)
// BUF-NOT:     memref.alloc() {{.*}} : memref<8x64xf32>
// BUF-NOT:     memref.copy
// BUF:         linalg.generic {{.*}} outs(%{{.*}} : memref<8x64xf32{{.*}}>)
// BUF-NOT:     memref.copy
// BUF:         return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @result_in_place(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                           %v1: tensor<8x64xf32>, %x: f32) -> tensor<8x64xf32> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  %f = linalg.generic {indexing_maps = [#id], iterator_types = ["parallel", "parallel"]}
      outs(%h : tensor<8x64xf32>) {
  ^bb0(%o: f32):
    %m = arith.mulf %o, %x : f32
    linalg.yield %m : f32
  } -> tensor<8x64xf32>
  return %f : tensor<8x64xf32>
}

// -----

// Control: the aggregate is also returned, so h *= x works on a copy.
// CHECK-LABEL: func.func @result_read_later
// CHECK:         linalg.generic {{.*}}__inplace_operands_attr__ = ["false"]
// BUF-LABEL: func.func @result_read_later
// BUF:         %[[H:.*]] = memref.alloc() {{.*}} : memref<8x64xf32>
// BUF:         linalg.generic {{.*}} outs(%[[H]] : memref<8x64xf32>)
// BUF:         %[[C:.*]] = memref.alloc() {{.*}} : memref<8x64xf32>
// BUF:         memref.copy %{{.*}}, %[[C]]
// BUF:         linalg.generic {{.*}} outs(%[[C]] : memref<8x64xf32>)
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @result_read_later(%w: tensor<64xf32>, %g: tensor<64xf32>, %v0: tensor<8x64xf32>,
                             %v1: tensor<8x64xf32>, %x: f32)
    -> (tensor<8x64xf32>, tensor<8x64xf32>) {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  %f = linalg.generic {indexing_maps = [#id], iterator_types = ["parallel", "parallel"]}
      outs(%h : tensor<8x64xf32>) {
  ^bb0(%o: f32):
    %m = arith.mulf %o, %x : f32
    linalg.yield %m : f32
  } -> tensor<8x64xf32>
  return %f, %h : tensor<8x64xf32>, tensor<8x64xf32>
}
