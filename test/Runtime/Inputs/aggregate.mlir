module {
  func.func @agg(%w: tensor<100xf32>, %g: tensor<100xf32>, %v0: tensor<?x100xf32>, %v1: tensor<?x100xf32>, %v2: tensor<?x100xf32>) -> tensor<?x100xf32> {
    %h = attnres.aggregate %w, %g over %v0, %v1, %v2 {epsilon = 1.0e-06 : f32} : tensor<?x100xf32>
    return %h : tensor<?x100xf32>
  }
  func.func @score(%wq: tensor<2x64xbf16>, %gq: tensor<2x64xbf16>, %b0: tensor<?x64xbf16>, %b1: tensor<?x64xbf16>) -> (tensor<2x?x64xbf16>, tensor<2x?xf32>) {
    %c0 = arith.constant 0 : index
    %t = tensor.dim %b0, %c0 : tensor<?x64xbf16>
    %o0 = tensor.empty(%t) : tensor<2x?x64xbf16>
    %l0 = tensor.empty(%t) : tensor<2x?xf32>
    %o, %lse = attnres.block_score %wq, %gq over %b0, %b1 outs %o0, %l0 {epsilon = 1.0e-06 : f32} : tensor<?x64xbf16> -> tensor<2x?x64xbf16>
    return %o, %lse : tensor<2x?x64xbf16>, tensor<2x?xf32>
  }
}
