/* Driver of a token-sharded attnres.aggregate_grad in a real multi-process
 * run (see ../partitioned-grad-tokens-mpi.mlir). Every rank reads the whole
 * inputs from argv[1] (float32, little endian: query[D], gain[D], N sources
 * [T][D], lse[T], N inverse RMS [T], dh[T][D]), takes its T / size
 * consecutive tokens of the per-token ones, and calls the partitioned model
 * (which all-reduces the query and gain gradients through MPI). Rank 0
 * gathers the source gradients of every rank's tokens and every rank's query
 * and gain gradients and writes them to argv[2]: dv[N][T][D], then size
 * copies of (dquery[D], dgain[D]). */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memref.h"

enum { T = 8, D = 48, N = 3 };

typedef struct {
  MemRef2D dv[N];
  MemRef1D dq, dg;
} Results;

void _mlir_ciface_model(Results *, MemRef1D *, MemRef1D *, MemRef2D *,
                        MemRef2D *, MemRef2D *, MemRef1D *, MemRef1D *,
                        MemRef1D *, MemRef1D *, MemRef2D *);

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 3 || T % size != 0) {
    if (rank == 0)
      fprintf(stderr, "usage: mpirun -np P %s IN OUT (P divides %d)\n", argv[0],
              T);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  size_t total = 2 * D + (size_t)N * T * D + T + (size_t)N * T + T * D;
  float *in = malloc(total * sizeof(float));
  FILE *f = fopen(argv[1], "rb");
  if (!f || fread(in, sizeof(float), total, f) != total) {
    fprintf(stderr, "rank %d: cannot read %s\n", rank, argv[1]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  fclose(f);
  int tl = T / size, t0 = rank * tl;
  float *w = in, *g = in + D, *v = in + 2 * D;
  float *lse = v + (size_t)N * T * D, *r = lse + T, *dh = r + (size_t)N * T;
  /* The slices of this rank's tokens are contiguous: rows t0 .. t0 + tl. */
  MemRef1D mw = vec(w, D), mg = vec(g, D);
  MemRef2D mv[N];
  MemRef1D mr[N];
  for (int i = 0; i < N; ++i) {
    mv[i] = mat(v + ((size_t)i * T + t0) * D, tl, D);
    mr[i] = vec(r + (size_t)i * T + t0, tl);
  }
  MemRef1D ml = vec(lse + t0, tl);
  MemRef2D mdh = mat(dh + (size_t)t0 * D, tl, D);
  Results res;
  _mlir_ciface_model(&res, &mw, &mg, &mv[0], &mv[1], &mv[2], &ml, &mr[0],
                     &mr[1], &mr[2], &mdh);

  /* This rank's dv rows and its dquery, dgain, contiguous. */
  int chunk = N * tl * D + 2 * D;
  float *mine = malloc((size_t)chunk * sizeof(float));
  for (int i = 0; i < N; ++i)
    for (int t = 0; t < tl; ++t)
      for (int d = 0; d < D; ++d)
        mine[(i * tl + t) * D + d] =
            res.dv[i].aligned[res.dv[i].offset + t * res.dv[i].strides[0] +
                              d * res.dv[i].strides[1]];
  for (int d = 0; d < D; ++d) {
    mine[N * tl * D + d] =
        res.dq.aligned[res.dq.offset + d * res.dq.strides[0]];
    mine[N * tl * D + D + d] =
        res.dg.aligned[res.dg.offset + d * res.dg.strides[0]];
  }
  float *all = rank == 0 ? malloc((size_t)chunk * size * sizeof(float)) : 0;
  MPI_Gather(mine, chunk, MPI_FLOAT, all, chunk, MPI_FLOAT, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    size_t outSize = (size_t)N * T * D + (size_t)size * 2 * D;
    float *out = malloc(outSize * sizeof(float));
    for (int p = 0; p < size; ++p) {
      float *src = all + (size_t)p * chunk;
      for (int i = 0; i < N; ++i)
        memcpy(out + ((size_t)i * T + p * tl) * D, src + (size_t)i * tl * D,
               (size_t)tl * D * sizeof(float));
      memcpy(out + (size_t)N * T * D + (size_t)p * 2 * D, src + N * tl * D,
             2 * D * sizeof(float));
    }
    FILE *o = fopen(argv[2], "wb");
    fwrite(out, sizeof(float), outSize, o);
    fclose(o);
    printf("ranks %d: wrote dv[%d][%d][%d] and %d copies of dquery, dgain\n",
           size, N, T, D, size);
  }
  MPI_Finalize();
  return 0;
}
