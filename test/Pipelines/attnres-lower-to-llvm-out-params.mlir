// RUN: attnres-opt %s --attnres-lower-to-llvm="out-params=1" | FileCheck %s
// RUN: attnres-opt %s --attnres-lower-to-llvm | FileCheck %s --check-prefix=DEFAULT

// attnres-lower-to-llvm{out-params=1}, the form attnres.aot_compile links
// into a CPU library: the result of the public function becomes a trailing
// memref out-parameter (its descriptor expanded: 5 words for rank 2), the
// function returns nothing, and _mlir_ciface_aggregate takes one pointer
// per memref. Without the option the result is returned.

// CHECK:       llvm.func @aggregate(
// CHECK-SAME:    %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-NOT:     -> !llvm.struct
// CHECK-SAME:    attributes {llvm.emit_c_interface}
// CHECK:       llvm.func @_mlir_ciface_aggregate(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// CHECK-SAME:    attributes {llvm.emit_c_interface}

// DEFAULT:     llvm.func @aggregate({{.*}}) -> !llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>
// DEFAULT-NOT: _mlir_ciface_aggregate

func.func @aggregate(%w: tensor<8xf32>, %g: tensor<8xf32>, %v0: tensor<?x8xf32>,
                     %v1: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %h = attnres.aggregate %w, %g over %v0, %v1 {epsilon = 1.0e-06 : f32} : tensor<?x8xf32>
  return %h : tensor<?x8xf32>
}
