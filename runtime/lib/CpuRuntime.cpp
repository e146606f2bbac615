//===- CpuRuntime.cpp - host support of CPU AOT libraries -----------------===//
//
// Part of the attnres project.
//
// The two functions that code from `attnres-lower-to-llvm` calls outside
// libc, libm and libgcc (docs/runtime.md "CPU libraries"):
//
// - memrefCopy: memref.copy between memrefs whose layouts are not both the
//   identity (upstream's lowering calls it with unranked descriptors);
// - __truncsfbf2: f32 -> bf16 rounding, which GCC 12's libgcc lacks.
//
// Upstream MLIR provides both in libmlir_c_runner_utils and
// libmlir_float16_utils, which load libMLIR and libLLVM (hundreds of MB,
// and a second LLVM in processes such as PyTorch's, whose Triton carries its
// own). Linked statically into an AOT library instead, these make a CPU
// kernel pack depend on libc and libm only. Like the CUDA runtime it uses no
// C++ library.
//
//===----------------------------------------------------------------------===//

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

namespace {

/// The ranked memref descriptor behind an unranked one: allocated and
/// aligned pointers, then the offset, the sizes and the strides (elements).
struct Descriptor {
  char *allocated;
  char *aligned;
  int64_t offsetSizesStrides[1];
};

/// Copies dimension `dim` (and the inner ones) of `rank` dimensions.
void copyDim(unsigned dim, unsigned rank, int64_t elemSize,
             const int64_t *sizes, const int64_t *srcStrides,
             const int64_t *dstStrides, const char *src, char *dst) {
  int64_t n = sizes[dim];
  int64_t ss = srcStrides[dim] * elemSize, ds = dstStrides[dim] * elemSize;
  if (dim + 1 == rank) {
    if (srcStrides[dim] == 1 && dstStrides[dim] == 1) {
      std::memcpy(dst, src, size_t(n * elemSize));
      return;
    }
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(dst + i * ds, src + i * ss, size_t(elemSize));
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    copyDim(dim + 1, rank, elemSize, sizes, srcStrides, dstStrides,
            src + i * ss, dst + i * ds);
}

/// Round to nearest even; NaN stays a (quiet) NaN of the same sign.
uint16_t bf16Bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return uint16_t((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

} // namespace

/// The unranked memref (rank, descriptor) that upstream's memref.copy
/// lowering passes.
struct AttnresUnrankedMemRef {
  int64_t rank;
  void *descriptor;
};

extern "C" {

__attribute__((visibility("default"))) void
memrefCopy(int64_t elemSize, AttnresUnrankedMemRef *srcArg,
           AttnresUnrankedMemRef *dstArg) {
  auto *src = static_cast<Descriptor *>(srcArg->descriptor);
  auto *dst = static_cast<Descriptor *>(dstArg->descriptor);
  unsigned rank = unsigned(srcArg->rank);
  const int64_t *srcInts = src->offsetSizesStrides;
  const int64_t *dstInts = dst->offsetSizesStrides;
  const int64_t *sizes = srcInts + 1;
  const char *from = src->aligned + srcInts[0] * elemSize;
  char *to = dst->aligned + dstInts[0] * elemSize;
  if (rank == 0) {
    std::memcpy(to, from, size_t(elemSize));
    return;
  }
  for (unsigned d = 0; d < rank; ++d)
    if (sizes[d] == 0)
      return;
  copyDim(0, rank, elemSize, sizes, srcInts + 1 + rank, dstInts + 1 + rank,
          from, to);
}

// LLVM passes and returns bfloat like half: in the low bits of an SSE
// register on x86-64. GCC 12 has no __bf16 there, so the result is returned
// as a vector whose low 16 bits are the value (the same register).
#if defined(__x86_64__)
__attribute__((visibility("default"))) __m128i __truncsfbf2(float f) {
  return _mm_cvtsi32_si128(int(bf16Bits(f)));
}
#else
__attribute__((visibility("default"))) __bf16 __truncsfbf2(float f) {
  uint16_t bits = bf16Bits(f);
  __bf16 r;
  std::memcpy(&r, &bits, sizeof(r));
  return r;
}
#endif

} // extern "C"
