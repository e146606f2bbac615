module {
  func.func @invalid(%a: memref<4xf32>) {
    %0 = arith.addf %a, %a : f32
    return
  }
}
