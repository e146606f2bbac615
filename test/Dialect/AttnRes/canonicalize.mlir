// RUN: attnres-opt %s --verify-roundtrip -canonicalize -split-input-file | FileCheck %s

// Folds and canonicalization patterns of the attnres ops, each with the
// cases where it must NOT apply (docs/spec.md, subsections A.4-E.4).

// A-F1: the softmax over one source is exactly 1.
// CHECK-LABEL: func @aggregate_one_source
// CHECK-SAME: (%{{.*}}: tensor<64xbf16>, %{{.*}}: tensor<64xbf16>, %[[A:.*]]: tensor<8x64xbf16>)
// CHECK-NOT: attnres.aggregate
// CHECK: return %[[A]]
func.func @aggregate_one_source(%q: tensor<64xbf16>, %g: tensor<64xbf16>,
                                %a: tensor<8x64xbf16>) -> tensor<8x64xbf16> {
  %h = attnres.aggregate %q, %g over %a {epsilon = 1.0e-06 : f32} : tensor<8x64xbf16>
  return %h : tensor<8x64xbf16>
}

// -----

// Two sources, even equal ones, are not folded (the weights are 1/2 only for
// finite scores and 0.5 * v is not v for subnormal v).
// CHECK-LABEL: func @aggregate_two_sources
// CHECK: %[[H:.*]] = attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}}
// CHECK: return %[[H]]
func.func @aggregate_two_sources(%q: tensor<64xf32>, %g: tensor<64xf32>,
                                 %a: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %h = attnres.aggregate %q, %g over %a, %a {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

// A zero query is not rewritten to a mean (spec A.4: not exact).
// CHECK-LABEL: func @aggregate_zero_query
// CHECK: %[[H:.*]] = attnres.aggregate
// CHECK: return %[[H]]
func.func @aggregate_zero_query(%g: tensor<64xf32>, %a: tensor<8x64xf32>,
                                %b: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %z = arith.constant dense<0.0> : tensor<64xf32>
  %h = attnres.aggregate %z, %g over %a, %b {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return %h : tensor<8x64xf32>
}

// -----

// Pure: an unused aggregate is erased.
// CHECK-LABEL: func @aggregate_dead
// CHECK-NOT: attnres.aggregate
// CHECK: return
func.func @aggregate_dead(%q: tensor<64xf32>, %a: tensor<8x64xf32>) {
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return
}

// -----

// B-F1: the sum of one input is that input.
// CHECK-LABEL: func @block_sum_one_input
// CHECK-SAME: (%[[A:.*]]: tensor<8x64xbf16>)
// CHECK-NOT: attnres.block_sum
// CHECK: return %[[A]]
func.func @block_sum_one_input(%a: tensor<8x64xbf16>) -> tensor<8x64xbf16> {
  %s = attnres.block_sum %a : tensor<8x64xbf16>
  return %s : tensor<8x64xbf16>
}

// -----

// CHECK-LABEL: func @block_sum_two_inputs
// CHECK-SAME: (%[[A:.*]]: tensor<8x64xbf16>, %[[B:.*]]: tensor<8x64xbf16>)
// CHECK: %[[S:.*]] = attnres.block_sum %[[A]], %[[B]] : tensor<8x64xbf16>
// CHECK: return %[[S]]
func.func @block_sum_two_inputs(%a: tensor<8x64xbf16>, %b: tensor<8x64xbf16>) -> tensor<8x64xbf16> {
  %s = attnres.block_sum %a, %b : tensor<8x64xbf16>
  return %s : tensor<8x64xbf16>
}

// -----

// B-C1: splat-zero inputs (either sign) are dropped, order kept.
// CHECK-LABEL: func @block_sum_drop_zero
// CHECK-SAME: (%[[A:.*]]: tensor<8x64xbf16>, %[[B:.*]]: tensor<8x64xbf16>)
// CHECK: %[[S:.*]] = attnres.block_sum %[[A]], %[[B]] : tensor<8x64xbf16>
// CHECK: return %[[S]]
func.func @block_sum_drop_zero(%a: tensor<8x64xbf16>, %b: tensor<8x64xbf16>) -> tensor<8x64xbf16> {
  %z = arith.constant dense<0.0> : tensor<8x64xbf16>
  %m = arith.constant dense<-0.0> : tensor<8x64xbf16>
  %s = attnres.block_sum %z, %a, %m, %b : tensor<8x64xbf16>
  return %s : tensor<8x64xbf16>
}

// -----

// A zero partial sum plus one output is that output.
// CHECK-LABEL: func @block_sum_zero_plus_one
// CHECK-SAME: (%[[A:.*]]: tensor<8x64xf16>)
// CHECK-NOT: attnres.block_sum
// CHECK: return %[[A]]
func.func @block_sum_zero_plus_one(%a: tensor<8x64xf16>) -> tensor<8x64xf16> {
  %z = arith.constant dense<0.0> : tensor<8x64xf16>
  %s = attnres.block_sum %z, %a : tensor<8x64xf16>
  return %s : tensor<8x64xf16>
}

// -----

// All inputs zero: the first one is kept, and the sum folds to it.
// CHECK-LABEL: func @block_sum_all_zero
// CHECK: %[[Z:.*]] = arith.constant dense<0.000000e+00> : tensor<8x64xf32>
// CHECK-NOT: attnres.block_sum
// CHECK: return %[[Z]]
func.func @block_sum_all_zero() -> tensor<8x64xf32> {
  %z = arith.constant dense<0.0> : tensor<8x64xf32>
  %s = attnres.block_sum %z, %z, %z : tensor<8x64xf32>
  return %s : tensor<8x64xf32>
}

// -----

// Negative: non-zero splats and non-splat constants are kept, in order.
// CHECK-LABEL: func @block_sum_keep_nonzero_constants
// CHECK-DAG: %[[ONE:.*]] = arith.constant dense<1.000000e+00> : tensor<1x2xf32>
// CHECK-DAG: %[[MIX:.*]] = arith.constant dense<{{\[\[}}0.000000e+00, 1.000000e+00]]> : tensor<1x2xf32>
// CHECK: attnres.block_sum %[[ONE]], %{{.*}}, %[[MIX]] : tensor<1x2xf32>
func.func @block_sum_keep_nonzero_constants(%a: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %one = arith.constant dense<1.0> : tensor<1x2xf32>
  %mix = arith.constant dense<[[0.0, 1.0]]> : tensor<1x2xf32>
  %s = attnres.block_sum %one, %a, %mix : tensor<1x2xf32>
  return %s : tensor<1x2xf32>
}

// -----

// B-C2: f32 sums nest in the first position without a second rounding.
// CHECK-LABEL: func @block_sum_flatten_f32
// CHECK-SAME: (%[[A:.*]]: tensor<8x64xf32>, %[[B:.*]]: tensor<8x64xf32>, %[[C:.*]]: tensor<8x64xf32>, %[[D:.*]]: tensor<8x64xf32>)
// CHECK: %[[S:.*]] = attnres.block_sum %[[A]], %[[B]], %[[C]], %[[D]] : tensor<8x64xf32>
// CHECK-NOT: attnres.block_sum
// CHECK: return %[[S]]
func.func @block_sum_flatten_f32(%a: tensor<8x64xf32>, %b: tensor<8x64xf32>,
                                 %c: tensor<8x64xf32>, %d: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %s0 = attnres.block_sum %a, %b : tensor<8x64xf32>
  %s1 = attnres.block_sum %s0, %c : tensor<8x64xf32>
  %s2 = attnres.block_sum %s1, %d : tensor<8x64xf32>
  return %s2 : tensor<8x64xf32>
}

// -----

// Negative: with bf16 storage the inner sum is rounded to bf16; keep it.
// CHECK-LABEL: func @block_sum_no_flatten_bf16
// CHECK: %[[S0:.*]] = attnres.block_sum %{{.*}}, %{{.*}} : tensor<8x64xbf16>
// CHECK: attnres.block_sum %[[S0]], %{{.*}} : tensor<8x64xbf16>
func.func @block_sum_no_flatten_bf16(%a: tensor<8x64xbf16>, %b: tensor<8x64xbf16>,
                                     %c: tensor<8x64xbf16>) -> tensor<8x64xbf16> {
  %s0 = attnres.block_sum %a, %b : tensor<8x64xbf16>
  %s1 = attnres.block_sum %s0, %c : tensor<8x64xbf16>
  return %s1 : tensor<8x64xbf16>
}

// -----

// Negative: a + (b + c) is not (a + b) + c in f32.
// CHECK-LABEL: func @block_sum_no_flatten_second
// CHECK: %[[S0:.*]] = attnres.block_sum %{{.*}}, %{{.*}} : tensor<8x64xf32>
// CHECK: attnres.block_sum %{{.*}}, %[[S0]] : tensor<8x64xf32>
func.func @block_sum_no_flatten_second(%a: tensor<8x64xf32>, %b: tensor<8x64xf32>,
                                       %c: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %s0 = attnres.block_sum %b, %c : tensor<8x64xf32>
  %s1 = attnres.block_sum %a, %s0 : tensor<8x64xf32>
  return %s1 : tensor<8x64xf32>
}

// -----

// Negative: an inner sum with another use (a partial sum read by a merge)
// stays, so the sum is not computed twice.
// CHECK-LABEL: func @block_sum_no_flatten_shared
// CHECK: %[[S0:.*]] = attnres.block_sum %{{.*}}, %{{.*}} : tensor<8x64xf32>
// CHECK: %[[S1:.*]] = attnres.block_sum %[[S0]], %{{.*}} : tensor<8x64xf32>
// CHECK: return %[[S0]], %[[S1]]
func.func @block_sum_no_flatten_shared(%a: tensor<8x64xf32>, %b: tensor<8x64xf32>,
                                       %c: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>) {
  %s0 = attnres.block_sum %a, %b : tensor<8x64xf32>
  %s1 = attnres.block_sum %s0, %c : tensor<8x64xf32>
  return %s0, %s1 : tensor<8x64xf32>, tensor<8x64xf32>
}

// -----

// Pure: unused inv_rms and block_score are erased.
// CHECK-LABEL: func @dead_phase1
// CHECK-NOT: attnres.
// CHECK: return
func.func @dead_phase1(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                       %o: tensor<2x8x64xf32>, %l: tensor<2x8xf32>) {
  %r = attnres.inv_rms %b {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  %out, %lse = attnres.block_score %W, %W over %b inv_rms %r outs %o, %l
      {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<2x8x64xf32>
  return
}

// -----

// Negative: one used result keeps the op (and its inv_rms operand).
// D-C1: inits that are not tensor.empty become tensor.empty.
// CHECK-LABEL: func @block_score_lse_used
// CHECK-DAG: %[[R:.*]] = attnres.inv_rms
// CHECK-DAG: %[[EO:.*]] = tensor.empty() : tensor<2x8x64xf32>
// CHECK-DAG: %[[EL:.*]] = tensor.empty() : tensor<2x8xf32>
// CHECK: %{{.*}}, %[[LSE:.*]] = attnres.block_score %{{.*}}, %{{.*}} over %{{.*}} inv_rms %[[R]] outs %[[EO]], %[[EL]]
// CHECK: return %[[LSE]]
func.func @block_score_lse_used(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>,
                                %o: tensor<2x8x64xf32>, %l: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %r = attnres.inv_rms %b {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<8xf32>
  %out, %lse = attnres.block_score %W, %W over %b inv_rms %r outs %o, %l
      {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<2x8x64xf32>
  return %lse : tensor<2x8xf32>
}

// -----

// D-C1 with dynamic dimensions: the sizes come from the old inits.
// CHECK-LABEL: func @block_score_inits_dynamic
// CHECK-SAME: %[[O:[a-z0-9]+]]: tensor<?x?x64xbf16>, %[[L:[a-z0-9]+]]: tensor<?x?xf32>
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG: %[[D0:.*]] = tensor.dim %[[O]], %[[C0]]
// CHECK-DAG: %[[D1:.*]] = tensor.dim %[[O]], %[[C1]]
// CHECK-DAG: %[[E0:.*]] = tensor.empty(%[[D0]], %[[D1]]) : tensor<?x?x64xbf16>
// CHECK-DAG: %[[L0:.*]] = tensor.dim %[[L]], %[[C0]]
// CHECK-DAG: %[[L1:.*]] = tensor.dim %[[L]], %[[C1]]
// CHECK-DAG: %[[E1:.*]] = tensor.empty(%[[L0]], %[[L1]]) : tensor<?x?xf32>
// CHECK: attnres.block_score %{{.*}}, %{{.*}} over %{{.*}} outs %[[E0]], %[[E1]]
func.func @block_score_inits_dynamic(%W: tensor<?x64xbf16>, %b: tensor<?x64xbf16>,
                                     %o: tensor<?x?x64xbf16>, %l: tensor<?x?xf32>)
    -> (tensor<?x?x64xbf16>, tensor<?x?xf32>) {
  %out, %lse = attnres.block_score %W, %W over %b outs %o, %l
      {epsilon = 1.0e-06 : f32} : tensor<?x64xbf16> -> tensor<?x?x64xbf16>
  return %out, %lse : tensor<?x?x64xbf16>, tensor<?x?xf32>
}

// -----

// Negative: inits that already are tensor.empty are left alone.
// CHECK-LABEL: func @block_score_inits_empty
// CHECK: %[[EO:.*]] = tensor.empty() : tensor<2x8x64xf32>
// CHECK: %[[EL:.*]] = tensor.empty() : tensor<2x8xf32>
// CHECK-NOT: tensor.empty
// CHECK: attnres.block_score %{{.*}}, %{{.*}} over %{{.*}} outs %[[EO]], %[[EL]]
func.func @block_score_inits_empty(%W: tensor<2x64xf32>, %b: tensor<8x64xf32>)
    -> (tensor<2x8x64xf32>, tensor<2x8xf32>) {
  %o = tensor.empty() : tensor<2x8x64xf32>
  %l = tensor.empty() : tensor<2x8xf32>
  %out, %lse = attnres.block_score %W, %W over %b outs %o, %l
      {epsilon = 1.0e-06 : f32} : tensor<8x64xf32> -> tensor<2x8x64xf32>
  return %out, %lse : tensor<2x8x64xf32>, tensor<2x8xf32>
}

// -----

// E-C1: a splat-zero partial sum is dropped.
// CHECK-LABEL: func @merge_zero_partial
// CHECK: %[[H:[^ ]*]], %[[P:[^ ]*]] = attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<8x64xbf16>
// CHECK: return %[[H]], %[[P]]
func.func @merge_zero_partial(%o: tensor<8x64xbf16>, %l: tensor<8xf32>, %q: tensor<64xbf16>,
                              %y: tensor<8x64xbf16>) -> (tensor<8x64xbf16>, tensor<8x64xbf16>) {
  %z = arith.constant dense<0.0> : tensor<8x64xbf16>
  %h, %p = attnres.merge %o, %l, %q, %q update %y partial %z {epsilon = 1.0e-06 : f32} : tensor<8x64xbf16>
  return %h, %p : tensor<8x64xbf16>, tensor<8x64xbf16>
}

// -----

// Negative: a non-zero partial sum stays.
// CHECK-LABEL: func @merge_partial_kept
// CHECK: attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} partial %{{.*}} {epsilon
func.func @merge_partial_kept(%o: tensor<8x64xbf16>, %l: tensor<8xf32>, %q: tensor<64xbf16>,
                              %y: tensor<8x64xbf16>) -> (tensor<8x64xbf16>, tensor<8x64xbf16>) {
  %c = arith.constant dense<2.0> : tensor<8x64xbf16>
  %h, %p = attnres.merge %o, %l, %q, %q update %y partial %c {epsilon = 1.0e-06 : f32} : tensor<8x64xbf16>
  return %h, %p : tensor<8x64xbf16>, tensor<8x64xbf16>
}

// -----

// Pure: a merge whose results are unused is erased.
// CHECK-LABEL: func @merge_dead
// CHECK-NOT: attnres.merge
func.func @merge_dead(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>) {
  %h, %p = attnres.merge %o, %l, %q, %q update %o {epsilon = 1.0e-06 : f32} : tensor<8x64xf32>
  return
}

// -----

// E-C1 keeps a fused norm.
// CHECK-LABEL: func @merge_zero_partial_norm
// CHECK: %{{[^ ]*}}, %[[P:[^ ]*]], %[[N:[^ ]*]] = attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} norm %{{.*}} {epsilon = 9.99999997E-7 : f32, norm_epsilon = 9.99999974E-6 : f32} : tensor<8x64xbf16>
// CHECK: return %[[N]], %[[P]]
func.func @merge_zero_partial_norm(%o: tensor<8x64xbf16>, %l: tensor<8xf32>, %q: tensor<64xbf16>,
                                   %y: tensor<8x64xbf16>) -> (tensor<8x64xbf16>, tensor<8x64xbf16>) {
  %z = arith.constant dense<0.0> : tensor<8x64xbf16>
  %h, %p, %hn = attnres.merge %o, %l, %q, %q update %y partial %z norm %q {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<8x64xbf16>
  return %hn, %p : tensor<8x64xbf16>, tensor<8x64xbf16>
}

// -----

// E-C2: a fused norm whose result is unused is dropped.
// CHECK-LABEL: func @merge_unused_norm
// CHECK: %[[H:[^ ]*]], %[[P:[^ ]*]] = attnres.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} update %{{.*}} partial %{{.*}} {epsilon = 9.99999997E-7 : f32} : tensor<8x64xf32>
// CHECK: return %[[H]], %[[P]]
func.func @merge_unused_norm(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>,
                             %y: tensor<8x64xf32>, %p0: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>) {
  %h, %p, %hn = attnres.merge %o, %l, %q, %q update %y partial %p0 norm %q {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  return %h, %p : tensor<8x64xf32>, tensor<8x64xf32>
}

// -----

// Negative: a used fused norm stays, also when h is unused.
// CHECK-LABEL: func @merge_used_norm
// CHECK: %{{[^ ]*}}, %{{[^ ]*}}, %[[N:[^ ]*]] = attnres.merge {{.*}} norm
// CHECK: return %[[N]]
func.func @merge_used_norm(%o: tensor<8x64xf32>, %l: tensor<8xf32>, %q: tensor<64xf32>,
                           %y: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %h, %p, %hn = attnres.merge %o, %l, %q, %q update %y norm %q {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32} : tensor<8x64xf32>
  return %hn : tensor<8x64xf32>
}
