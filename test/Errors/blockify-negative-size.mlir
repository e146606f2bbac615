// A negative block size is refused with a message that quotes the values it
// was given (the message must print the numbers, not bytes of the option).
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-blockify{block-size=-1})' 2>&1 | FileCheck %s --check-prefix=NEG
// NEG: error: attnres-blockify: block-size and num-blocks must be positive, got block-size=-1 num-blocks=0
//
// RUN: not attnres-opt %s --pass-pipeline='builtin.module(attnres-blockify{num-blocks=-3})' 2>&1 | FileCheck %s --check-prefix=NEGN
// NEGN: error: attnres-blockify: block-size and num-blocks must be positive, got block-size=0 num-blocks=-3

func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  return %x : tensor<4x8xf32>
}
