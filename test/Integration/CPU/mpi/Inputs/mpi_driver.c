/* Driver of a D-sharded attnres model in a real multi-process run (see
 * partitioned-features-mpi.mlir). Every rank reads the whole inputs from
 * argv[1] (float32, little endian: query[D], gain[D], then N sources
 * [T][D]), takes its D / size consecutive features, calls the partitioned
 * model (which all-reduces its partial logits and sums of squares through
 * MPI), and rank 0 gathers the feature slices of h and the inverse RMS of
 * every rank and writes them to argv[2]: h[T][D], then size copies of r[T]. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memref.h"

enum { T = 8, D = 64, N = 3 };

typedef struct {
  MemRef2D h;
  MemRef1D r;
} Results;

void _mlir_ciface_model(Results *, MemRef1D *, MemRef1D *, MemRef2D *,
                        MemRef2D *, MemRef2D *);

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 3 || D % size != 0) {
    if (rank == 0)
      fprintf(stderr, "usage: mpirun -np P %s IN OUT (P divides %d)\n", argv[0],
              D);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  size_t total = 2 * D + (size_t)N * T * D;
  float *in = malloc(total * sizeof(float));
  FILE *f = fopen(argv[1], "rb");
  if (!f || fread(in, sizeof(float), total, f) != total) {
    fprintf(stderr, "rank %d: cannot read %s\n", rank, argv[1]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  fclose(f);
  int dl = D / size, d0 = rank * dl;
  float *loc = malloc((2 + (size_t)N * T) * dl * sizeof(float));
  memcpy(loc, in + d0, dl * sizeof(float));
  memcpy(loc + dl, in + D + d0, dl * sizeof(float));
  for (int i = 0; i < N; ++i)
    for (int t = 0; t < T; ++t)
      memcpy(loc + 2 * dl + ((size_t)i * T + t) * dl,
             in + 2 * D + ((size_t)i * T + t) * D + d0, dl * sizeof(float));
  MemRef1D w = vec(loc, dl), g = vec(loc + dl, dl);
  MemRef2D v[N];
  for (int i = 0; i < N; ++i)
    v[i] = mat(loc + 2 * dl + (size_t)i * T * dl, T, dl);
  Results res;
  _mlir_ciface_model(&res, &w, &g, &v[0], &v[1], &v[2]);

  /* This rank's h slice and r, contiguous, gathered on rank 0. */
  float *mine = malloc(((size_t)T * dl + T) * sizeof(float));
  for (int t = 0; t < T; ++t)
    for (int d = 0; d < dl; ++d)
      mine[t * dl + d] = res.h.aligned[res.h.offset + t * res.h.strides[0] +
                                       d * res.h.strides[1]];
  for (int t = 0; t < T; ++t)
    mine[T * dl + t] = res.r.aligned[res.r.offset + t * res.r.strides[0]];
  int chunk = T * dl + T;
  float *all = rank == 0 ? malloc((size_t)chunk * size * sizeof(float)) : 0;
  MPI_Gather(mine, chunk, MPI_FLOAT, all, chunk, MPI_FLOAT, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    float *out = malloc(((size_t)T * D + (size_t)size * T) * sizeof(float));
    for (int p = 0; p < size; ++p) {
      for (int t = 0; t < T; ++t)
        memcpy(out + t * D + p * dl, all + (size_t)p * chunk + t * dl,
               dl * sizeof(float));
      memcpy(out + T * D + p * T, all + (size_t)p * chunk + T * dl,
             T * sizeof(float));
    }
    FILE *o = fopen(argv[2], "wb");
    fwrite(out, sizeof(float), (size_t)T * D + (size_t)size * T, o);
    fclose(o);
    printf("ranks %d: wrote h[%d][%d] and %d copies of r[%d]\n", size, T, D,
           size, T);
  }
  free(res.h.allocated);
  free(res.r.allocated);
  MPI_Finalize();
  return 0;
}
