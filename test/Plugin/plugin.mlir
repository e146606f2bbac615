// Debian's mlir-opt loads the attnres dialect and passes from the plugin:
// the ops parse, the dialect's folds run under canonicalize, and attnres
// passes and pipelines are found by name inside --pass-pipeline.
// UNSUPPORTED: asan

// RUN: %mlir_opt %s --load-dialect-plugin=%attnres_plugin \
// RUN:   --load-pass-plugin=%attnres_plugin \
// RUN:   --pass-pipeline='builtin.module(canonicalize,attnres-blockify{block-size=1})' \
// RUN:   | FileCheck %s
// RUN: %mlir_opt %s --load-dialect-plugin=%attnres_plugin \
// RUN:   --load-pass-plugin=%attnres_plugin \
// RUN:   --pass-pipeline='builtin.module(func.func(convert-attnres-to-linalg))' \
// RUN:   | FileCheck %s --check-prefix=LINALG

// Without the plugin, the ops are not known.
// RUN: not %mlir_opt %s 2>&1 | FileCheck %s --check-prefix=NOPLUGIN
// NOPLUGIN: Dialect `attnres' not found for custom op 'attnres.aggregate'

// CHECK-LABEL: func @one_source
// CHECK-SAME: (%{{.*}}: tensor<8xf32>, %[[A:.*]]: tensor<4x8xf32>)
// CHECK: %[[H:.*]] = attnres.aggregate %{{.*}}, %{{.*}} over %[[A]], %[[A]]
// CHECK-NOT: attnres.aggregate
// CHECK: return %[[H]]
// LINALG-LABEL: func @one_source
// LINALG-NOT: attnres.
// LINALG: linalg.generic
// LINALG-NOT: attnres.
// LINALG: return
func.func @one_source(%q: tensor<8xf32>, %a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %h = attnres.aggregate %q, %q over %a, %a {epsilon = 1.0e-06 : f32} : tensor<4x8xf32>
  %s = attnres.aggregate %q, %q over %h {epsilon = 1.0e-06 : f32} : tensor<4x8xf32>
  return %s : tensor<4x8xf32>
}
