// RUN: attnres-opt %s --attnres-emit-c-interface | FileCheck %s

// Every public function with a body gets llvm.emit_c_interface; private
// functions and declarations do not.

// CHECK-LABEL: func.func @public
// CHECK-SAME:    attributes {llvm.emit_c_interface}
func.func @public(%a: memref<?xf32>) {
  return
}

// CHECK-LABEL: func.func private @helper
// CHECK-NOT:     llvm.emit_c_interface
// CHECK-SAME:    {
func.func private @helper(%a: memref<?xf32>) {
  return
}

// CHECK:       func.func private @external(memref<?xf32>)
// CHECK-NOT:   llvm.emit_c_interface
func.func private @external(memref<?xf32>)
