module {
  func.func private @helper(%a: memref<4xf32>) {
    return
  }
}
