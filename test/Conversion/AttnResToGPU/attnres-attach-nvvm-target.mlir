// RUN: attnres-opt %s --attnres-attach-nvvm-target --split-input-file | FileCheck %s
// RUN: attnres-opt %s --attnres-attach-nvvm-target="chip=sm_80 features=+ptx70 opt-level=3" --split-input-file | FileCheck %s --check-prefix=SM80

// A gpu.module without targets gets the pass's target.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK:       gpu.module @bare [#nvvm.target<chip = "sm_90a", features = "+ptx80">]
// SM80-LABEL:  module attributes {gpu.container_module}
// SM80:        gpu.module @bare [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
module attributes {gpu.container_module} {
  gpu.module @bare {
  }
}

// -----

// A gpu.module with a target keeps exactly that one (no second target, so
// gpu-module-to-binary makes one object).
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK:       gpu.module @targeted [#nvvm.target<chip = "sm_89", features = "+ptx78">] {
// SM80-LABEL:  module attributes {gpu.container_module}
// SM80:        gpu.module @targeted [#nvvm.target<chip = "sm_89", features = "+ptx78">] {
module attributes {gpu.container_module} {
  gpu.module @targeted [#nvvm.target<chip = "sm_89", features = "+ptx78">] {
  }
}

// -----

// Only the modules without targets change.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK:       gpu.module @a [#nvvm.target<chip = "sm_90a", features = "+ptx80">]
// CHECK:       gpu.module @b [#nvvm.target<O = 1, chip = "sm_75", features = "+ptx70">]
module attributes {gpu.container_module} {
  gpu.module @a {
  }
  gpu.module @b [#nvvm.target<O = 1, chip = "sm_75", features = "+ptx70">] {
  }
}
