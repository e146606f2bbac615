/*===- cpu_probe.c - call into the attnres CPU runtime --------------------===*\
|*                                                                            *|
|* Part of the attnres project.                                               *|
|*                                                                            *|
|*===----------------------------------------------------------------------===*|
|*                                                                            *|
|* Usage:                                                                     *|
|*   attnres-cpu-runtime-probe bf16      reads f32 bit patterns (hex, one per *|
|*                                       line), prints __truncsfbf2's bf16    *|
|*                                       bit patterns (hex)                   *|
|*   attnres-cpu-runtime-probe copy E R SIZES SOFF SSTRIDES DOFF DSTRIDES     *|
|*                                       memrefCopy of R-d memrefs of E-byte  *|
|*                                       elements (offsets, strides in        *|
|*                                       elements, >= 0): the source buffer   *|
|*                                       holds byte i = i % 251, the          *|
|*                                       destination 0xaa; prints the         *|
|*                                       destination buffer's bytes (hex)     *|
|* Used by test/Runtime/cpu-runtime.test against an independent Python        *|
|* model of both functions.                                                   *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <emmintrin.h>
typedef __m128i bf16_return_t;
static uint16_t bf16_bits(bf16_return_t r) {
  return (uint16_t)_mm_cvtsi128_si32(r);
}
#else
typedef __bf16 bf16_return_t;
static uint16_t bf16_bits(bf16_return_t r) {
  uint16_t b;
  memcpy(&b, &r, sizeof(b));
  return b;
}
#endif

typedef struct {
  int64_t rank;
  void *descriptor;
} unranked_t;

bf16_return_t __truncsfbf2(float f);
void memrefCopy(int64_t elemSize, unranked_t *src, unranked_t *dst);

/* An R-d descriptor: two pointers, then offset, sizes, strides. */
static void *make_descriptor(char *data, int64_t rank, int64_t offset,
                             const int64_t *sizes, const int64_t *strides) {
  char **d = malloc(2 * sizeof(char *) + (1 + 2 * rank) * sizeof(int64_t));
  int64_t *ints = (int64_t *)(d + 2);
  d[0] = d[1] = data;
  ints[0] = offset;
  for (int64_t i = 0; i < rank; ++i) {
    ints[1 + i] = sizes[i];
    ints[1 + rank + i] = strides[i];
  }
  return d;
}

/* Elements a memref reaches: offset + sum (size - 1) stride + 1. */
static int64_t extent(int64_t rank, int64_t offset, const int64_t *sizes,
                      const int64_t *strides) {
  int64_t e = offset + 1;
  for (int64_t i = 0; i < rank; ++i)
    e += (sizes[i] - 1) * strides[i];
  return e;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "bf16") == 0) {
    char line[64];
    while (fgets(line, sizeof(line), stdin)) {
      uint32_t bits = (uint32_t)strtoul(line, NULL, 16);
      float f;
      memcpy(&f, &bits, sizeof(f));
      printf("%04x\n", bf16_bits(__truncsfbf2(f)));
    }
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "copy") == 0) {
    int64_t elem = atoll(argv[2]), rank = atoll(argv[3]);
    if (argc != 4 + 3 * rank + 2) {
      fprintf(stderr, "copy: expected %lld arguments after the rank\n",
              (long long)(3 * rank + 2));
      return 2;
    }
    int64_t sizes[16], ss[16], ds[16];
    if (rank > 16)
      return 2;
    char **a = argv + 4;
    for (int64_t i = 0; i < rank; ++i)
      sizes[i] = atoll(a[i]);
    int64_t soff = atoll(a[rank]);
    for (int64_t i = 0; i < rank; ++i)
      ss[i] = atoll(a[rank + 1 + i]);
    int64_t doff = atoll(a[2 * rank + 1]);
    for (int64_t i = 0; i < rank; ++i)
      ds[i] = atoll(a[2 * rank + 2 + i]);
    int64_t sn = extent(rank, soff, sizes, ss) * elem;
    int64_t dn = extent(rank, doff, sizes, ds) * elem;
    char *src = malloc(sn), *dst = malloc(dn);
    for (int64_t i = 0; i < sn; ++i)
      src[i] = (char)(i % 251);
    memset(dst, 0xaa, dn);
    unranked_t s = {rank, make_descriptor(src, rank, soff, sizes, ss)};
    unranked_t d = {rank, make_descriptor(dst, rank, doff, sizes, ds)};
    memrefCopy(elem, &s, &d);
    for (int64_t i = 0; i < dn; ++i)
      printf("%02x", (unsigned char)dst[i]);
    printf("\n");
    free(s.descriptor);
    free(d.descriptor);
    free(src);
    free(dst);
    return 0;
  }
  fprintf(stderr,
          "usage: %s bf16 | copy E R SIZES.. SOFF SSTRIDES.. DOFF "
          "DSTRIDES..\n",
          argv[0]);
  return 2;
}
