// Shared input of the passes' idempotence tests (not a test itself: lit
// skips Inputs/): a Full AttnRes chain of four sublayers and its final
// aggregation, D = 64, two tokens. Run a pass on it, then again on its own
// output: the second run must change nothing.

func.func private @f(tensor<2x64xf32>) -> tensor<2x64xf32>

func.func @chain(%v0: tensor<2x64xf32>, %w: tensor<5x64xf32>) -> tensor<2x64xf32> {
  %w0 = tensor.extract_slice %w[0, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %w1 = tensor.extract_slice %w[1, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %w2 = tensor.extract_slice %w[2, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %w3 = tensor.extract_slice %w[3, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %w4 = tensor.extract_slice %w[4, 0] [1, 64] [1, 1] : tensor<5x64xf32> to tensor<64xf32>
  %h0 = attnres.aggregate %w0, %w0 over %v0 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y0 = func.call @f(%h0) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %h1 = attnres.aggregate %w1, %w1 over %v0, %y0 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y1 = func.call @f(%h1) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %h2 = attnres.aggregate %w2, %w2 over %v0, %y0, %y1 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y2 = func.call @f(%h2) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %h3 = attnres.aggregate %w3, %w3 over %v0, %y0, %y1, %y2 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  %y3 = func.call @f(%h3) : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %out = attnres.aggregate %w4, %w4 over %v0, %y0, %y1, %y2, %y3 {epsilon = 1.0e-06 : f32} : tensor<2x64xf32>
  return %out : tensor<2x64xf32>
}
