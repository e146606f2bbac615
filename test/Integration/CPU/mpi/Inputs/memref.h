/* The memref descriptors of MLIR's C interface (llvm.emit_c_interface) for
 * f32 tensors of rank 1 to 3 (row major), and the helpers that wrap a buffer
 * in them; shared by the drivers of the multi-process tests. */
#ifndef ATTNRES_TEST_MPI_MEMREF_H
#define ATTNRES_TEST_MPI_MEMREF_H

#include <stdint.h>

typedef struct {
  float *allocated, *aligned;
  int64_t offset, sizes[1], strides[1];
} MemRef1D;
typedef struct {
  float *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
} MemRef2D;
typedef struct {
  float *allocated, *aligned;
  int64_t offset, sizes[3], strides[3];
} MemRef3D;

static inline MemRef1D vec(float *p, int64_t n) {
  MemRef1D m = {p, p, 0, {n}, {1}};
  return m;
}
static inline MemRef2D mat(float *p, int64_t rows, int64_t cols) {
  MemRef2D m = {p, p, 0, {rows, cols}, {cols, 1}};
  return m;
}
static inline MemRef3D cube(float *p, int64_t n0, int64_t n1, int64_t n2) {
  MemRef3D m = {p, p, 0, {n0, n1, n2}, {n1 * n2, n2, 1}};
  return m;
}

#endif /* ATTNRES_TEST_MPI_MEMREF_H */
