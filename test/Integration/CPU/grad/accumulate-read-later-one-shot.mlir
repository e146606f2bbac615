// Executes aggregate_grad bufferized by upstream one-shot-bufferize through
// the BufferizableOpInterface models, where an accumulator is read after it
// is accumulated into: two backward steps start from the same accumulators
// (writable buffers made from a0, a1), each adding its own gradient (dh,
// dh2). One-Shot Analysis must give the first op copies of the
// accumulators (the second reads their old values) and lets the second
// write in place (ANALYSIS; bufferize-analysis.mlir has the static cases).
// Every printed dv_i is checked against the float64 reference (REF lines,
// utils/reference/check_output.py, f32 tolerance 1e-5): dv_i = a_i plus
// the gradient of h with respect to v_i.
//
// Control: the IR that a wrong in-place decision amounts to (the second op
// accumulating into the first op's results) must fail the same check.
//
// REQUIRES: numpy
// DEFINE: %{run} = mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils
// DEFINE: %{check} = %python %attnres_src/utils/reference/check_output.py %s
// DEFINE: %{lower} = --pass-pipeline='builtin.module(one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},buffer-deallocation-pipeline,convert-linalg-to-loops,expand-strided-metadata,lower-affine,convert-scf-to-cf,convert-to-llvm,reconcile-unrealized-casts)'
//
// RUN: attnres-opt %s --one-shot-bufferize="bufferize-function-boundaries test-analysis-only" \
// RUN:   | FileCheck %s --check-prefix=ANALYSIS
// RUN: attnres-opt %s %{lower} | %{run} | %{check}
//
// The same upstream lowering on a generated test (aggregate_stats: h, lse,
// inv_rms; aggregate_grad: dv into constant accumulators, which are not
// writable and are therefore copied; dquery, dgain; dynamic tokens):
// RUN: attnres-opt %S/aggregate_grad_f32_accumulate_dynamic.mlir %{lower} | %{run} \
// RUN:   | %python %attnres_src/utils/reference/check_output.py %S/aggregate_grad_f32_accumulate_dynamic.mlir
//
// RUN: sed -e 's/grad %dh2 accumulate %acc0, %acc1/grad %dh2 accumulate %dv#0, %dv#1/' %s > %t.wrong.mlir
// RUN: not diff %s %t.wrong.mlir > /dev/null
// RUN: attnres-opt %t.wrong.mlir %{lower} | %{run} | not %{check}
//
// ANALYSIS: attnres.aggregate_grad {{.*}}grad %{{.*}} accumulate {{.*}}__inplace_operands_attr__ = [{{("true", )+}}"false", "false"]
// ANALYSIS: attnres.aggregate_grad {{.*}}grad %{{.*}} accumulate {{.*}}__inplace_operands_attr__ = [{{("true", )+}}"true", "true"]
//
// REF: {"query": "w", "gain": "g", "sources": ["v0", "v1"], "eps": 9.999999747378752e-06, "op": "aggregate_grad", "acc": ["a0", "a1"], "dtype": "f32", "dh": "dh", "name": "dh_dv0", "result": 0, "index": 0}
// REF: {"query": "w", "gain": "g", "sources": ["v0", "v1"], "eps": 9.999999747378752e-06, "op": "aggregate_grad", "acc": ["a0", "a1"], "dtype": "f32", "dh": "dh", "name": "dh_dv1", "result": 0, "index": 1}
// REF: {"query": "w", "gain": "g", "sources": ["v0", "v1"], "eps": 9.999999747378752e-06, "op": "aggregate_grad", "acc": ["a0", "a1"], "dtype": "f32", "dh": "dh2", "name": "dh2_dv0", "result": 0, "index": 0}
// REF: {"query": "w", "gain": "g", "sources": ["v0", "v1"], "eps": 9.999999747378752e-06, "op": "aggregate_grad", "acc": ["a0", "a1"], "dtype": "f32", "dh": "dh2", "name": "dh2_dv1", "result": 0, "index": 1}

func.func private @printMemrefF32(tensor<*xf32>)

func.func @print(%t: tensor<4x8xf32>) {
  %u = tensor.cast %t : tensor<4x8xf32> to tensor<*xf32>
  call @printMemrefF32(%u) : (tensor<*xf32>) -> ()
  return
}

func.func @main() {
  %w = arith.constant dense<[4.326153e-01, 1.031887e+00, -8.074489e-01, -6.816507e-01, -6.613925e-01, 1.227674e+00, 1.376687e+00, 4.305591e-01]> : tensor<8xf32>
  %g = arith.constant dense<[1.026632e+00, 1.178552e+00, -8.696998e-01, -1.273664e+00, -7.828947e-01, 6.404562e-01, 5.612690e-01, -4.942330e-01]> : tensor<8xf32>
  %v0 = arith.constant dense<[[7.820125e-01, 6.747350e-01, 4.540169e-01, -9.733256e-01, 7.659071e-01, -5.899890e-01, -4.722410e-01, 1.337011e+00],
      [1.236701e+00, 9.887226e-01, 6.486308e-01, -1.430866e+00, 9.323906e-01, -7.625916e-01, -1.370584e+00, -6.151443e-01],
      [-1.104793e+00, 6.079664e-01, -5.400190e-01, 1.111093e+00, -4.962596e-01, -8.410434e-01, -9.540370e-01, -4.455783e-01],
      [1.150613e+00, 9.130280e-01, 1.007954e+00, -6.837876e-01, -7.462512e-01, 8.432786e-01, 8.109622e-01, -1.078331e+00]]> : tensor<4x8xf32>
  %v1 = arith.constant dense<[[-1.206476e+00, 1.446004e+00, -1.354914e+00, -1.007216e+00, -4.083566e-01, 1.431181e+00, 2.307222e-01, 5.870223e-01],
      [-5.660975e-01, 1.073374e+00, 8.335720e-01, -3.207551e-01, -2.167153e-01, 9.856105e-01, 8.389283e-01, -9.817968e-01],
      [9.332310e-01, 1.357597e+00, 1.393916e+00, -4.447343e-01, -1.424757e+00, -1.224045e+00, -1.030734e+00, -1.057489e+00],
      [-9.098783e-01, -1.392442e+00, 5.032422e-01, 9.791108e-01, -1.258516e+00, -3.751899e-01, 1.000161e+00, 7.236835e-01]]> : tensor<4x8xf32>
  %dh = arith.constant dense<[[-1.057440e+00, 1.345542e+00, -6.615793e-01, -6.142827e-01, 6.077668e-01, 3.532045e-01, -1.062138e+00, -1.265551e+00],
      [-8.149063e-01, 9.257866e-01, -1.446024e+00, -1.108590e+00, -1.168545e+00, -1.356348e+00, 4.805277e-01, 1.045216e+00],
      [1.132613e+00, 1.294896e+00, -6.469212e-01, -1.095433e+00, -9.857208e-01, -7.321693e-01, -3.321915e-01, 6.589630e-01],
      [-1.452530e+00, -4.814806e-01, -3.477294e-01, -6.779833e-01, 3.312750e-01, 5.473586e-01, 1.388793e+00, -6.144167e-01]]> : tensor<4x8xf32>
  %a0 = arith.constant dense<[[3.566098e-01, 8.055563e-01, 4.702114e-01, 6.356755e-01, -9.378348e-01, -1.445195e+00, 1.417206e+00, 2.960648e-01],
      [-1.309308e+00, 4.181708e-01, 1.254863e+00, 5.852514e-01, 1.133185e+00, -1.134431e+00, -1.305717e+00, -1.473514e+00],
      [5.581251e-01, 1.016801e+00, -1.161039e+00, 3.035181e-01, -1.061850e+00, -6.179702e-01, -4.099098e-01, 9.143130e-01],
      [-8.004487e-01, -9.502038e-01, 1.034493e+00, -8.482695e-01, 1.376696e+00, -4.312885e-01, -5.754291e-01, -6.630881e-01]]> : tensor<4x8xf32>
  %a1 = arith.constant dense<[[5.518852e-01, -1.394870e+00, -9.643613e-01, -4.307714e-01, 7.558339e-01, 8.408170e-01, -1.028568e+00, -8.921822e-01],
      [-7.472905e-01, -6.040309e-01, -9.474994e-01, 1.468582e+00, -9.188831e-01, 1.353116e+00, 2.198542e-01, 4.640266e-01],
      [-1.324198e+00, -9.403148e-01, -8.338255e-01, 6.794456e-01, -5.838454e-01, 1.082479e+00, -6.754556e-01, 7.658051e-01],
      [-1.209903e+00, 1.430038e+00, 1.491754e+00, 8.303898e-01, -3.796198e-01, -2.324007e-01, -8.430537e-01, 2.992615e-01]]> : tensor<4x8xf32>
  %dh2 = arith.constant dense<[[1.221712e+00, 9.165235e-01, -5.170547e-01, -6.347892e-01, -6.142973e-01, 7.072002e-01, 1.241691e+00, -3.180421e-01],
      [-6.857117e-01, 1.228720e+00, -1.186273e+00, -9.851676e-01, 3.699722e-01, 6.677981e-01, 1.332046e+00, 1.471573e+00],
      [1.119335e+00, -4.091349e-01, 1.342080e+00, 4.104641e-01, -6.412031e-01, -6.591893e-01, 7.045982e-01, -3.507666e-01],
      [4.411605e-01, -1.181375e+00, 2.986055e-01, 7.105537e-01, -2.036929e-01, -8.001077e-01, -3.129044e-01, -2.444890e-01]]> : tensor<4x8xf32>
  %h, %lse, %r:2 = attnres.aggregate_stats %w, %g over %v0, %v1 {epsilon = 1.0e-05 : f32}
      : tensor<4x8xf32>
  // Writable accumulators holding a0 and a1.
  %e0 = tensor.empty() : tensor<4x8xf32>
  %acc0 = linalg.copy ins(%a0 : tensor<4x8xf32>) outs(%e0 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %e1 = tensor.empty() : tensor<4x8xf32>
  %acc1 = linalg.copy ins(%a1 : tensor<4x8xf32>) outs(%e1 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %dv:2, %dq, %dg = attnres.aggregate_grad %w, %g over %v0, %v1 stats %lse, %r#0, %r#1
      grad %dh accumulate %acc0, %acc1 {epsilon = 1.0e-05 : f32} : tensor<4x8xf32>
  %dw:2, %dq2, %dg2 = attnres.aggregate_grad %w, %g over %v0, %v1 stats %lse, %r#0, %r#1
      grad %dh2 accumulate %acc0, %acc1 {epsilon = 1.0e-05 : f32} : tensor<4x8xf32>
  call @print(%dv#0) : (tensor<4x8xf32>) -> ()
  call @print(%dv#1) : (tensor<4x8xf32>) -> ()
  call @print(%dw#0) : (tensor<4x8xf32>) -> ()
  call @print(%dw#1) : (tensor<4x8xf32>) -> ()
  return
}
