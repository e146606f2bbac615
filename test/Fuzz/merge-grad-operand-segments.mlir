// Found by the fuzz smoke run of `.ci/run` (session 17, fresh clone of
// c24a288, seed 1, 59,743 executions; crash-83d0539ebb21978848f06c464f13741d856d2391),
// one mutation of @mg_query in test/Dialect/AttnRes/grad-invalid.mlir: the
// generic form's operandSegmentSizes gives the required group
// new_partial_grad no operand (and the optional norm gain one). ODS verifies
// only the sizes of Optional and Variadic groups and their sum, so
// MergeGradOp::verify() called getNewPartialGrad(), whose group is empty, and
// read past the operand array (ASan: heap-buffer-overflow in
// MergeGradOp::verify). Every op with AttrSizedOperandSegments (block_score,
// aggregate_grad, block_score_grad, merge_grad) now checks its required groups
// first (verifyRequiredOperandGroups); test/Dialect/AttnRes/invalid.mlir and
// grad-invalid.mlir have a case for each.
// RUN: not attnres-opt %s 2>&1 | FileCheck %s

// CHECK: error: 'attnres.merge_grad' op needs exactly one 'new_partial_grad' operand (operand group 8 of operandSegmentSizes), got 0
func.func @mg_query(%o: tensor<4x8xf32>, %l: tensor<4xf32>, %w: tensor<8xf32>, %q: tensor<7xf32>) {
  %r:5 = "attnres.merge_grad"(%o, %l, %q, %w, %o, %o, %o)
      <{epsilon = 1.0e-05 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 1,1,  0, 0>}>
      : (tensor<4x8xf32>, tensor<4xf32>, tensor<7xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
      -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>)
  return
}
