// Shared input of the passes' tests that a module without AttnRes is left
// exactly as it is (not a test itself: lit skips Inputs/). Each pass's test
// runs the pass on it and diffs the output with the input as printed by
// attnres-opt.

// A plain residual chain with no norms (not scale-invariant: section 4 says
// it is not converted), a matmul and a declaration.
func.func private @mlp(tensor<4x16xf32>) -> tensor<4x16xf32>

func.func @plain(%x: tensor<4x16xf32>, %w: tensor<16x16xf32>) -> tensor<4x16xf32> {
  %y0 = func.call @mlp(%x) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %h1 = arith.addf %x, %y0 : tensor<4x16xf32>
  %y1 = func.call @mlp(%h1) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %h2 = arith.addf %h1, %y1 : tensor<4x16xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %m = linalg.matmul ins(%h2, %w : tensor<4x16xf32>, tensor<16x16xf32>) outs(%z : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %m : tensor<4x16xf32>
}

func.func @scalars(%a: f32, %b: f32) -> f32 {
  %c = arith.mulf %a, %b : f32
  %d = math.exp %c : f32
  return %d : f32
}
