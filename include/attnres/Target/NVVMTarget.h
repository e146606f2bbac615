//===- NVVMTarget.h - The one default NVVM target of attnres ----*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// The chip and PTX features that every attnres entry point (the
// attnres-lower-to-nvvm pipeline, the C API, the Python package) uses when the
// user names none. Defined here once; everything else refers to these.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_TARGET_NVVMTARGET_H
#define ATTNRES_TARGET_NVVMTARGET_H

namespace mlir {
namespace attnres {

/// Default chip: Hopper with its architecture-specific features (wgmma,
/// bulk copies, clusters), the card the benchmarks run on.
inline constexpr const char *kDefaultChip = "sm_90a";
/// Default PTX features: PTX 8.0 is the first version that knows sm_90a.
inline constexpr const char *kDefaultFeatures = "+ptx80";

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_TARGET_NVVMTARGET_H
