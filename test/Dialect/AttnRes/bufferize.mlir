// RUN: attnres-opt %s --split-input-file --verify-roundtrip \
// RUN:   --pass-pipeline='builtin.module(one-shot-bufferize)' \
// RUN:   | FileCheck %s --implicit-check-not=attnres. --implicit-check-not='tensor<'
// RUN: attnres-opt %s --split-input-file \
// RUN:   --pass-pipeline='builtin.module(one-shot-bufferize{bufferize-function-boundaries})' \
// RUN:   | FileCheck %s --implicit-check-not=attnres. --implicit-check-not='tensor<'
// RUN: attnres-opt %s --dump-pass-pipeline \
// RUN:   --pass-pipeline='builtin.module(one-shot-bufferize{bufferize-function-boundaries})' \
// RUN:   -o /dev/null 2>&1 | FileCheck %s --check-prefix=PIPE --implicit-check-not=attnres

// Upstream one-shot-bufferize on every attnres op, through the
// BufferizableOpInterface external models
// (lib/Dialect/AttnRes/Transforms/BufferizableOpInterfaceImpl.cpp): the only
// pass that runs is upstream's (PIPE), and what comes out has no attnres op
// and no tensor left (implicit-check-not), with and without
// bufferize-function-boundaries. Each op becomes its linalg decomposition
// on memrefs. The functions take and give memrefs (to_tensor restrict,
// materialize_in_destination), so that both modes bufferize all of them;
// bufferize-function-boundaries.mlir has tensor signatures.

// PIPE: Pass Manager with 1 passes:
// PIPE-NEXT: builtin.module(
// PIPE-NEXT:   one-shot-bufferize{
// PIPE-NEXT: )

// CHECK-LABEL: func.func @aggregate
// CHECK-SAME:    %[[OUT:[a-z0-9]+]]: memref<8x64xf32>)
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK:         math.rsqrt
// CHECK:         math.exp
// CHECK:         memref.copy %{{.*}}, %[[OUT]]
func.func @aggregate(%mw: memref<64xf32>, %mg: memref<64xf32>, %m0: memref<8x64xf32>,
                     %m1: memref<8x64xf32>, %out: memref<8x64xf32>) {
  %w = bufferization.to_tensor %mw restrict : memref<64xf32> to tensor<64xf32>
  %g = bufferization.to_tensor %mg restrict : memref<64xf32> to tensor<64xf32>
  %v0 = bufferization.to_tensor %m0 restrict : memref<8x64xf32> to tensor<8x64xf32>
  %v1 = bufferization.to_tensor %m1 restrict : memref<8x64xf32> to tensor<8x64xf32>
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  bufferization.materialize_in_destination %h in restrict writable %out
      : (tensor<8x64xf32>, memref<8x64xf32>) -> ()
  return
}

// -----

// CHECK-LABEL: func.func @block_sum
// CHECK-SAME:    %[[A:[a-z0-9]+]]: memref<?x32xf16>, %[[B:[a-z0-9]+]]: memref<?x32xf16>, %[[OUT:[a-z0-9]+]]: memref<?x32xf16>)
// CHECK:         %[[BUF:.*]] = memref.alloc(%{{.*}}) {{.*}}: memref<?x32xf16>
// CHECK:         linalg.generic {{.*}} ins(%[[A]], %[[B]] : memref<?x32xf16>, memref<?x32xf16>) outs(%[[BUF]] : memref<?x32xf16>)
// CHECK:         memref.copy %{{.*}}, %[[OUT]]
func.func @block_sum(%ma: memref<?x32xf16>, %mb: memref<?x32xf16>, %out: memref<?x32xf16>) {
  %a = bufferization.to_tensor %ma restrict : memref<?x32xf16> to tensor<?x32xf16>
  %b = bufferization.to_tensor %mb restrict : memref<?x32xf16> to tensor<?x32xf16>
  %s = attnres.block_sum %a, %b : tensor<?x32xf16>
  bufferization.materialize_in_destination %s in restrict writable %out
      : (tensor<?x32xf16>, memref<?x32xf16>) -> ()
  return
}

// -----

// CHECK-LABEL: func.func @inv_rms
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK:         math.rsqrt
func.func @inv_rms(%mx: memref<4x6x32xbf16>, %out: memref<4x6xf32>) {
  %x = bufferization.to_tensor %mx restrict : memref<4x6x32xbf16> to tensor<4x6x32xbf16>
  %r = attnres.inv_rms %x {epsilon = 1.0e-06 : f32} : tensor<4x6x32xbf16> -> tensor<4x6xf32>
  bufferization.materialize_in_destination %r in restrict writable %out
      : (tensor<4x6xf32>, memref<4x6xf32>) -> ()
  return
}

// -----

// block_score is in destination style: its outs are the writable memrefs,
// so the decomposition writes the output and the lse into them directly
// (no allocation of that size, no copy into them).
// CHECK-LABEL: func.func @block_score
// CHECK-SAME:    %[[O:[a-z0-9]+]]: memref<3x8x64xf32>, %[[L:[a-z0-9]+]]: memref<3x8xf32>)
// CHECK-NOT:     memref.alloc() {{.*}} : memref<3x8x64xf32>
// CHECK:         linalg.generic {{.*}} outs({{.*}}%[[L]] : {{.*}}memref<3x8xf32>)
// CHECK:         math.log
// CHECK:         linalg.generic {{.*}} outs(%[[O]] : memref<3x8x64xf32>)
// CHECK-NOT:     memref.alloc() {{.*}} : memref<3x8x64xf32>
// The materialization into the same memref is a self-copy (folds away).
// CHECK:         memref.copy %[[O]], %[[O]]
// CHECK:         memref.copy %[[L]], %[[L]]
// CHECK-NEXT:    return
func.func @block_score(%mW: memref<3x64xf32>, %mG: memref<3x64xf32>, %m0: memref<8x64xf32>,
                       %m1: memref<8x64xf32>, %mr0: memref<8xf32>, %mr1: memref<8xf32>,
                       %mo: memref<3x8x64xf32>, %ml: memref<3x8xf32>) {
  %W = bufferization.to_tensor %mW restrict : memref<3x64xf32> to tensor<3x64xf32>
  %G = bufferization.to_tensor %mG restrict : memref<3x64xf32> to tensor<3x64xf32>
  %b0 = bufferization.to_tensor %m0 restrict : memref<8x64xf32> to tensor<8x64xf32>
  %b1 = bufferization.to_tensor %m1 restrict : memref<8x64xf32> to tensor<8x64xf32>
  %r0 = bufferization.to_tensor %mr0 restrict : memref<8xf32> to tensor<8xf32>
  %r1 = bufferization.to_tensor %mr1 restrict : memref<8xf32> to tensor<8xf32>
  %oi = bufferization.to_tensor %mo restrict writable : memref<3x8x64xf32> to tensor<3x8x64xf32>
  %li = bufferization.to_tensor %ml restrict writable : memref<3x8xf32> to tensor<3x8xf32>
  %o, %lse = attnres.block_score %W, %G over %b0, %b1 inv_rms %r0, %r1 outs %oi, %li
      {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<3x8x64xf32>
  bufferization.materialize_in_destination %o in restrict writable %mo
      : (tensor<3x8x64xf32>, memref<3x8x64xf32>) -> ()
  bufferization.materialize_in_destination %lse in restrict writable %ml
      : (tensor<3x8xf32>, memref<3x8xf32>) -> ()
  return
}

// -----

// merge with partial and the fused norm: three results, each a new buffer.
// CHECK-LABEL: func.func @merge
// CHECK-COUNT-3: memref.copy
// CHECK:         return
func.func @merge(%mo: memref<8x64xf32>, %ml: memref<8xf32>, %mw: memref<64xf32>,
                 %mg: memref<64xf32>, %my: memref<8x64xf32>, %mp: memref<8x64xf32>,
                 %mn: memref<64xf32>, %outh: memref<8x64xf32>, %outp: memref<8x64xf32>,
                 %outn: memref<8x64xf32>) {
  %o = bufferization.to_tensor %mo restrict : memref<8x64xf32> to tensor<8x64xf32>
  %lse = bufferization.to_tensor %ml restrict : memref<8xf32> to tensor<8xf32>
  %w = bufferization.to_tensor %mw restrict : memref<64xf32> to tensor<64xf32>
  %g = bufferization.to_tensor %mg restrict : memref<64xf32> to tensor<64xf32>
  %y = bufferization.to_tensor %my restrict : memref<8x64xf32> to tensor<8x64xf32>
  %p = bufferization.to_tensor %mp restrict : memref<8x64xf32> to tensor<8x64xf32>
  %gn = bufferization.to_tensor %mn restrict : memref<64xf32> to tensor<64xf32>
  %h, %p2, %hn = attnres.merge %o, %lse, %w, %g update %y partial %p norm %gn
      {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  bufferization.materialize_in_destination %h in restrict writable %outh
      : (tensor<8x64xf32>, memref<8x64xf32>) -> ()
  bufferization.materialize_in_destination %p2 in restrict writable %outp
      : (tensor<8x64xf32>, memref<8x64xf32>) -> ()
  bufferization.materialize_in_destination %hn in restrict writable %outn
      : (tensor<8x64xf32>, memref<8x64xf32>) -> ()
  return
}

// -----

// merge without partial: the new partial sum is `update` itself (spec E),
// which the decomposition passes through. The result is a new buffer, so
// the value is copied out of `update`'s (read-only) buffer.
// CHECK-LABEL: func.func @merge_no_partial
// CHECK-SAME:    %[[Y:[a-z0-9]+]]: memref<8x64xf32>, %[[OUTH:[a-z0-9]+]]: memref<8x64xf32>, %[[OUTP:[a-z0-9]+]]: memref<8x64xf32>)
// CHECK:         memref.copy %[[Y]], %[[P:.*]] :
// CHECK:         memref.copy %[[P]], %[[OUTP]]
func.func @merge_no_partial(%mo: memref<8x64xf32>, %ml: memref<8xf32>, %mw: memref<64xf32>,
                            %mg: memref<64xf32>, %my: memref<8x64xf32>,
                            %outh: memref<8x64xf32>, %outp: memref<8x64xf32>) {
  %o = bufferization.to_tensor %mo restrict : memref<8x64xf32> to tensor<8x64xf32>
  %lse = bufferization.to_tensor %ml restrict : memref<8xf32> to tensor<8xf32>
  %w = bufferization.to_tensor %mw restrict : memref<64xf32> to tensor<64xf32>
  %g = bufferization.to_tensor %mg restrict : memref<64xf32> to tensor<64xf32>
  %y = bufferization.to_tensor %my restrict : memref<8x64xf32> to tensor<8x64xf32>
  %h, %p2 = attnres.merge %o, %lse, %w, %g update %y {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  bufferization.materialize_in_destination %h in restrict writable %outh
      : (tensor<8x64xf32>, memref<8x64xf32>) -> ()
  bufferization.materialize_in_destination %p2 in restrict writable %outp
      : (tensor<8x64xf32>, memref<8x64xf32>) -> ()
  return
}

// -----

// CHECK-LABEL: func.func @aggregate_stats
// CHECK:         math.log
func.func @aggregate_stats(%mw: memref<64xbf16>, %mg: memref<64xbf16>, %m0: memref<?x64xbf16>,
                           %m1: memref<?x64xbf16>, %outh: memref<?x64xbf16>,
                           %outl: memref<?xf32>, %outr0: memref<?xf32>, %outr1: memref<?xf32>) {
  %w = bufferization.to_tensor %mw restrict : memref<64xbf16> to tensor<64xbf16>
  %g = bufferization.to_tensor %mg restrict : memref<64xbf16> to tensor<64xbf16>
  %v0 = bufferization.to_tensor %m0 restrict : memref<?x64xbf16> to tensor<?x64xbf16>
  %v1 = bufferization.to_tensor %m1 restrict : memref<?x64xbf16> to tensor<?x64xbf16>
  %h, %lse, %r:2 = attnres.aggregate_stats %w, %g over %v0, %v1 {epsilon = 1.0e-05 : f32}
      : tensor<?x64xbf16>
  bufferization.materialize_in_destination %h in restrict writable %outh
      : (tensor<?x64xbf16>, memref<?x64xbf16>) -> ()
  bufferization.materialize_in_destination %lse in restrict writable %outl
      : (tensor<?xf32>, memref<?xf32>) -> ()
  bufferization.materialize_in_destination %r#0 in restrict writable %outr0
      : (tensor<?xf32>, memref<?xf32>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %outr1
      : (tensor<?xf32>, memref<?xf32>) -> ()
  return
}

// -----

// aggregate_grad with accumulators: each dv_i is accumulated into the
// buffer of accumulator i (a writable memref here), read and written by one
// linalg.generic, with no copy (spec I).
// CHECK-LABEL: func.func @aggregate_grad_accumulate
// CHECK-SAME:    %[[A0:arg8]]: memref<8x64xf32>, %[[A1:arg9]]: memref<8x64xf32>,
// CHECK-NOT:     memref.alloc() {{.*}} : memref<8x64xf32>
// CHECK:         linalg.generic {{.*}} outs(%[[A0]], %[[A1]] : memref<8x64xf32>, memref<8x64xf32>)
// CHECK-NOT:     memref.alloc() {{.*}} : memref<8x64xf32>
// CHECK:         return
func.func @aggregate_grad_accumulate(
    %mw: memref<64xf32>, %mg: memref<64xf32>, %m0: memref<8x64xf32>, %m1: memref<8x64xf32>,
    %ml: memref<8xf32>, %mr0: memref<8xf32>, %mr1: memref<8xf32>, %mdh: memref<8x64xf32>,
    %ma0: memref<8x64xf32>, %ma1: memref<8x64xf32>, %outq: memref<64xf32>, %outg: memref<64xf32>) {
  %w = bufferization.to_tensor %mw restrict : memref<64xf32> to tensor<64xf32>
  %g = bufferization.to_tensor %mg restrict : memref<64xf32> to tensor<64xf32>
  %v0 = bufferization.to_tensor %m0 restrict : memref<8x64xf32> to tensor<8x64xf32>
  %v1 = bufferization.to_tensor %m1 restrict : memref<8x64xf32> to tensor<8x64xf32>
  %lse = bufferization.to_tensor %ml restrict : memref<8xf32> to tensor<8xf32>
  %r0 = bufferization.to_tensor %mr0 restrict : memref<8xf32> to tensor<8xf32>
  %r1 = bufferization.to_tensor %mr1 restrict : memref<8xf32> to tensor<8xf32>
  %dh = bufferization.to_tensor %mdh restrict : memref<8x64xf32> to tensor<8x64xf32>
  %a0 = bufferization.to_tensor %ma0 restrict writable : memref<8x64xf32> to tensor<8x64xf32>
  %a1 = bufferization.to_tensor %ma1 restrict writable : memref<8x64xf32> to tensor<8x64xf32>
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %g over %v0, %v1 stats %lse, %r0, %r1
      grad %dh accumulate %a0, %a1 {epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  bufferization.materialize_in_destination %dv#0 in restrict writable %ma0
      : (tensor<8x64xf32>, memref<8x64xf32>) -> ()
  bufferization.materialize_in_destination %dv#1 in restrict writable %ma1
      : (tensor<8x64xf32>, memref<8x64xf32>) -> ()
  bufferization.materialize_in_destination %dq in restrict writable %outq
      : (tensor<64xf32>, memref<64xf32>) -> ()
  bufferization.materialize_in_destination %dg in restrict writable %outg
      : (tensor<64xf32>, memref<64xf32>) -> ()
  return
}
