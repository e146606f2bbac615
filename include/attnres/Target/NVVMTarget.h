//===- NVVMTarget.h - The NVVM target of attnres ----------------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// The one default NVVM target of attnres (the chip and PTX features every
// entry point uses when the user names none: the attnres-lower-to-nvvm
// pipeline, the C API, the Python package) and the one description of a
// target, NVVMTargetInfo, parsed once from a chip/features pair (the
// `gpu.module`'s `#nvvm.target`) and asked by every GPU pass what the chip
// can do, as Triton's NVIDIA backend derives everything from its TargetInfo.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_TARGET_NVVMTARGET_H
#define ATTNRES_TARGET_NVVMTARGET_H

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir {
namespace attnres {

/// Default chip: Hopper with its architecture-specific features (wgmma,
/// bulk copies, clusters), the card the benchmarks run on.
inline constexpr const char *kDefaultChip = "sm_90a";
/// Default PTX features: PTX 8.0 is the first version that knows sm_90a.
inline constexpr const char *kDefaultFeatures = "+ptx80";

/// A CUDA 13 target known to LLVM 22 and the lowest PTX ISA version (x10)
/// it needs (LLVM's NVPTX.td). CUDA 13 dropped everything below sm_75.
struct NVVMChip {
  llvm::StringLiteral name;
  unsigned minPtx;
};
inline constexpr NVVMChip kNVVMChips[] = {
    {"sm_75", 63},   {"sm_80", 70},   {"sm_86", 71},   {"sm_87", 74},
    {"sm_88", 90},   {"sm_89", 78},   {"sm_90", 78},   {"sm_90a", 80},
    {"sm_100", 86},  {"sm_100a", 86}, {"sm_100f", 88}, {"sm_101", 86},
    {"sm_101a", 86}, {"sm_101f", 88}, {"sm_103", 88},  {"sm_103a", 88},
    {"sm_103f", 88}, {"sm_110", 90},  {"sm_110a", 90}, {"sm_110f", 90},
    {"sm_120", 87},  {"sm_120a", 87}, {"sm_120f", 88}, {"sm_121", 88},
    {"sm_121a", 88}, {"sm_121f", 88}};

/// PTX ISA versions (x10) LLVM 22 can emit that CUDA 13's ptxas accepts.
inline constexpr unsigned kNVVMPtxVersions[] = {63, 64, 65, 70, 71, 72, 73, 74,
                                                75, 76, 77, 78, 80, 81, 82, 83,
                                                84, 85, 86, 87, 88, 90};

/// What one NVVM target is and can do. Built only by parse(), which checks
/// the pair against the tables above; every capability the kernels use is a
/// method here, so that no pass compares chip names itself.
struct NVVMTargetInfo {
  std::string chip;
  std::string features;
  /// Compute capability x10 without suffix: 90 for sm_90a.
  unsigned sm = 0;
  /// Architecture-specific (`a`, e.g. sm_90a) or family-specific (`f`).
  bool archSpecific = false;
  bool familySpecific = false;
  /// PTX ISA version x10 of `features` (80 for +ptx80).
  unsigned ptxVersion = 0;

  /// bf16 mma.sync.m16n8k16 (the phase-1 tensor-core kernel): sm_80+.
  bool hasBF16MMA() const { return sm >= 80; }
  /// prefetch.global.L2 (llvm.nvvm.prefetch.global.L2): NVPTX selects it for
  /// sm_90+ only (it aborts on sm_8x).
  bool hasL2Prefetch() const { return sm >= 90; }
  /// cp.async.bulk global -> shared with mbarrier expect_tx completion (the
  /// TMA unit): sm_90+.
  bool hasBulkCopy() const { return sm >= 90; }
  /// Thread-block clusters and distributed shared memory (mapa,
  /// ld.shared::cluster, barrier.cluster): sm_90+.
  bool hasClusters() const { return sm >= 90; }
  /// Shared memory per SM and the most one CTA may use (opting into more
  /// than 48 KB of dynamic shared memory), in bytes: CUDA C++ Programming
  /// Guide, "Technical Specifications per Compute Capability".
  int64_t sharedBytesPerSM() const {
    if (sm >= 120 || sm == 86 || sm == 89)
      return 100 * 1024;
    if (sm >= 90)
      return 228 * 1024;
    if (sm >= 80)
      return 164 * 1024;
    return 64 * 1024;
  }
  int64_t maxSharedBytesPerCta() const {
    return sm >= 80 ? sharedBytesPerSM() - 1024 : sharedBytesPerSM();
  }
  /// The kernel parameter space ptxas allows: 4352 bytes, 32764 from PTX
  /// ISA 8.1 on sm_70+ (checked by ptxas of CUDA 13).
  int64_t maxKernelParamBytes() const {
    return ptxVersion >= 81 && sm >= 70 ? 32764 : 4352;
  }

  /// The target of `chip` and `features` (a comma-separated list holding
  /// exactly one `+ptxNN`), or std::nullopt with the reason in `error`.
  static std::optional<NVVMTargetInfo>
  parse(llvm::StringRef chip, llvm::StringRef features, std::string &error) {
    llvm::raw_string_ostream os(error);
    const NVVMChip *known = nullptr;
    for (const NVVMChip &c : kNVVMChips)
      if (c.name == chip)
        known = &c;
    if (!known) {
      os << "unsupported chip '" << chip
         << "'; expected a CUDA 13 target from sm_75 to sm_121f (for example "
         << kDefaultChip << ")";
      return std::nullopt;
    }
    llvm::SmallVector<llvm::StringRef> items;
    features.split(items, ',', -1, /*KeepEmpty=*/false);
    std::optional<unsigned> ptx;
    for (llvm::StringRef item : items) {
      item = item.trim();
      unsigned v = 0;
      if (!item.consume_front("+ptx") || item.getAsInteger(10, v) ||
          !llvm::is_contained(kNVVMPtxVersions, v) || ptx) {
        os << "unsupported features '" << features
           << "'; expected one '+ptxNN' with a PTX ISA version from 6.3 to "
              "9.0 (for example "
           << kDefaultFeatures << ")";
        return std::nullopt;
      }
      ptx = v;
    }
    if (!ptx) {
      os << "features '" << features
         << "' name no PTX version; expected '+ptxNN' (for example "
         << kDefaultFeatures << ")";
      return std::nullopt;
    }
    if (*ptx < known->minPtx) {
      os << "chip " << chip << " needs PTX ISA " << known->minPtx / 10 << "."
         << known->minPtx % 10 << " or newer (features +ptx" << known->minPtx
         << "), got '" << features << "'";
      return std::nullopt;
    }
    NVVMTargetInfo info;
    info.chip = chip.str();
    info.features = features.str();
    info.ptxVersion = *ptx;
    llvm::StringRef rest = chip.drop_front(3); // "sm_"
    llvm::StringRef digits =
        rest.take_while([](char c) { return llvm::isDigit(c); });
    digits.getAsInteger(10, info.sm);
    info.archSpecific = rest.ends_with("a");
    info.familySpecific = rest.ends_with("f");
    return info;
  }
};

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_TARGET_NVVMTARGET_H
