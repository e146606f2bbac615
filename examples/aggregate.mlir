// One AttnRes aggregation over three depth sources of 16 tokens x 64
// features in bf16, the smallest thing the compiler works on. README's
// examples compile it with attnres-opt and with the plugin in mlir-opt.
func.func @aggregate(%query: tensor<64xbf16>, %gain: tensor<64xbf16>,
                     %embedding: tensor<16x64xbf16>, %y0: tensor<16x64xbf16>,
                     %y1: tensor<16x64xbf16>) -> tensor<16x64xbf16> {
  %h = attnres.aggregate %query, %gain over %embedding, %y0, %y1
      {epsilon = 1.0e-06 : f32} : tensor<16x64xbf16>
  return %h : tensor<16x64xbf16>
}
