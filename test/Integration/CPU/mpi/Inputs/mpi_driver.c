/* Driver of partitioned ops in real multi-process runs: the D-sharded
 * aggregate + inv_rms, merge and block_score
 * (../partitioned-features-mpi.mlir, ../partitioned-merge-features-mpi.mlir,
 * ../partitioned-block-score-features-mpi.mlir) and the token-sharded
 * backward ops (../partitioned-*-tokens-mpi.mlir), compiled with one of
 * -DAGGREGATE_FEATURES, -DMERGE_FEATURES, -DSCORE_FEATURES, -DAGGREGATE_GRAD,
 * -DMERGE_GRAD or -DBLOCK_SCORE_GRAD, which picks the model's operands and
 * results below, each split along one dimension (the tokens or the features)
 * or replicated. Every rank reads the whole operands from argv[1] (float32,
 * little endian, in the model's order, each row major), takes its part of each
 * split one (1 / size of the split dimension, consecutive indices; all of a
 * replicated one) and calls the partitioned model, which all-reduces its
 * partial sums through MPI. Rank 0 gathers the split results of every rank's
 * part and every rank's replicated (all-reduced) results and writes them to
 * argv[2]: the split results whole, in order, then size copies of the
 * replicated ones, in order. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memref.h"

/* An operand or result of the model: rank, dimensions (whole) and which of
 * them is split over the processes (-1: replicated, not sharded). */
typedef struct {
  int rank;
  int64_t dims[3];
  int split;
} Tensor;

typedef union {
  MemRef1D m1;
  MemRef2D m2;
  MemRef3D m3;
} MemRef;

/* The shapes: [n], [s, n] (replicated); [T], [T, D], [s, T], [s, T, D]
 * (tokens split); [D], [T, D], [s, D], [s, T, D] (features split). */
/* clang-format off */
#define PARAM(n) {1, {n}, -1}
#define PARAMS(s, n) {2, {s, n}, -1}
#define TOKENS {1, {T}, 0}
#define ROWS {2, {T, D}, 0}
#define TOKENS_S(s) {2, {s, T}, 1}
#define ROWS_S(s) {3, {s, T, D}, 1}
#define FEATURES {1, {D}, 0}
#define COLUMNS {2, {T, D}, 1}
#define FEATURES_S(s) {2, {s, D}, 1}
#define COLUMNS_S(s) {3, {s, T, D}, 2}
/* clang-format on */

#if defined(AGGREGATE_FEATURES)
/* Full AttnRes aggregation and the inverse RMS of its output, D split: query,
 * gain, 3 sources -> h, r [T] (replicated). */
enum { T = 8, D = 64 };
static const Tensor operands[] = {FEATURES, FEATURES, COLUMNS, COLUMNS,
                                  COLUMNS};
static const Tensor results[] = {COLUMNS, PARAM(T)};
void _mlir_ciface_model(void *, void *, void *, void *, void *, void *);
static void callModel(void *res, MemRef *a) {
  _mlir_ciface_model(res, &a[0], &a[1], &a[2], &a[3], &a[4]);
}
#elif defined(AGGREGATE_GRAD)
/* query, gain, 3 sources, lse, 3 inverse RMS, dh -> 3 source gradients,
 * dquery, dgain. */
enum { T = 8, D = 48 };
static const Tensor operands[] = {PARAM(D), PARAM(D), ROWS,   ROWS,   ROWS,
                                  TOKENS,   TOKENS,   TOKENS, TOKENS, ROWS};
static const Tensor results[] = {ROWS, ROWS, ROWS, PARAM(D), PARAM(D)};
void _mlir_ciface_model(void *, void *, void *, void *, void *, void *, void *,
                        void *, void *, void *, void *);
static void callModel(void *res, MemRef *a) {
  _mlir_ciface_model(res, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6],
                     &a[7], &a[8], &a[9]);
}
#elif defined(MERGE_GRAD)
/* Fused-norm merge_grad: out, lse, query, norm weight, update, partial, norm
 * gain, dh, dp_new, dhn -> dout, dlse, dquery, dnorm_weight, dupdate,
 * dnorm_gain. */
enum { T = 12, D = 37 };
static const Tensor operands[] = {ROWS, TOKENS,   PARAM(D), PARAM(D), ROWS,
                                  ROWS, PARAM(D), ROWS,     ROWS,     ROWS};
static const Tensor results[] = {ROWS,     TOKENS, PARAM(D),
                                 PARAM(D), ROWS,   PARAM(D)};
void _mlir_ciface_model(void *, void *, void *, void *, void *, void *, void *,
                        void *, void *, void *, void *);
static void callModel(void *res, MemRef *a) {
  _mlir_ciface_model(res, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6],
                     &a[7], &a[8], &a[9]);
}
#elif defined(BLOCK_SCORE_GRAD)
/* S = 3 queries over 3 sources: queries, gains, 3 sources, lse [S, T],
 * 3 inverse RMS, dout [S, T, D], dlse [S, T] -> 3 source gradients,
 * dqueries, dgains ([S, D]). */
enum { T = 16, D = 37, S = 3 };
static const Tensor operands[] = {
    PARAMS(S, D), PARAMS(S, D), ROWS,   ROWS,      ROWS,       TOKENS_S(S),
    TOKENS,       TOKENS,       TOKENS, ROWS_S(S), TOKENS_S(S)};
static const Tensor results[] = {ROWS, ROWS, ROWS, PARAMS(S, D), PARAMS(S, D)};
void _mlir_ciface_model(void *, void *, void *, void *, void *, void *, void *,
                        void *, void *, void *, void *, void *);
static void callModel(void *res, MemRef *a) {
  _mlir_ciface_model(res, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6],
                     &a[7], &a[8], &a[9], &a[10]);
}
#elif defined(MERGE_FEATURES)
/* Fused-norm merge, D split: out, lse, query, norm weight, update, partial,
 * norm gain -> h, p', hn. */
enum { T = 12, D = 48 };
static const Tensor operands[] = {COLUMNS, PARAM(T), FEATURES, FEATURES,
                                  COLUMNS, COLUMNS,  FEATURES};
static const Tensor results[] = {COLUMNS, COLUMNS, COLUMNS};
void _mlir_ciface_model(void *, void *, void *, void *, void *, void *, void *,
                        void *);
static void callModel(void *res, MemRef *a) {
  _mlir_ciface_model(res, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6]);
}
#elif defined(SCORE_FEATURES)
/* block_score, D split: S = 3 queries, gains ([S, D]) over 3 sources
 * -> out [S, T, D], lse [S, T] (replicated). */
enum { T = 12, D = 48, S = 3 };
static const Tensor operands[] = {FEATURES_S(S), FEATURES_S(S), COLUMNS,
                                  COLUMNS, COLUMNS};
static const Tensor results[] = {COLUMNS_S(S), PARAMS(S, T)};
void _mlir_ciface_model(void *, void *, void *, void *, void *, void *);
static void callModel(void *res, MemRef *a) {
  _mlir_ciface_model(res, &a[0], &a[1], &a[2], &a[3], &a[4]);
}
#else
#error "define AGGREGATE_FEATURES, MERGE_FEATURES, SCORE_FEATURES, \
AGGREGATE_GRAD, MERGE_GRAD or BLOCK_SCORE_GRAD"
#endif

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The number of elements of one of `parts` parts of x (all of a replicated
 * x; parts = 1: the whole x). */
static size_t numel(const Tensor *x, int parts) {
  size_t n = 1;
  for (int i = 0; i < x->rank; ++i)
    n *= i == x->split ? x->dims[i] / parts : x->dims[i];
  return n;
}

/* Copies part `index` of `parts` of the whole split x (indices index * n ..
 * (index + 1) * n - 1 of its split dimension of n * parts) to part, where
 * they are contiguous and row major, or back (toWhole). */
static void copyPart(float *whole, float *part, const Tensor *x, int index,
                     int parts, int toWhole) {
  size_t outer = 1, inner = 1;
  for (int i = 0; i < x->split; ++i)
    outer *= x->dims[i];
  for (int i = x->split + 1; i < x->rank; ++i)
    inner *= x->dims[i];
  int64_t n = x->dims[x->split] / parts;
  size_t bytes = n * inner * sizeof(float);
  for (size_t o = 0; o < outer; ++o) {
    float *w = whole + (o * x->dims[x->split] + index * n) * inner;
    float *p = part + o * n * inner;
    memcpy(toWhole ? w : p, toWhole ? p : w, bytes);
  }
}

/* Whether `parts` divides the split dimension of each of xs. */
static int divides(const Tensor *xs, int count, int parts) {
  for (int i = 0; i < count; ++i)
    if (xs[i].split >= 0 && xs[i].dims[xs[i].split] % parts != 0)
      return 0;
  return 1;
}

static MemRef describe(float *p, int rank, const int64_t *n) {
  MemRef m;
  if (rank == 1)
    m.m1 = vec(p, n[0]);
  else if (rank == 2)
    m.m2 = mat(p, n[0], n[1]);
  else
    m.m3 = cube(p, n[0], n[1], n[2]);
  return m;
}

/* The model's results come as one struct of descriptors laid out as those
 * of memref.h, one after the other: two pointers, the offset, `rank` sizes
 * and `rank` strides, all 8-byte words. Copies the one at desc to dst, row
 * major, and returns its length in words. */
_Static_assert(sizeof(float *) == sizeof(int64_t), "64-bit descriptors");
static int packResult(const int64_t *desc, int rank, float *dst) {
  float *base;
  memcpy(&base, &desc[1], sizeof base);
  int64_t n[3] = {1, 1, 1}, s[3] = {0, 0, 0};
  for (int i = 0; i < rank; ++i) {
    n[3 - rank + i] = desc[3 + i];
    s[3 - rank + i] = desc[3 + rank + i];
  }
  for (int64_t i = 0; i < n[0]; ++i)
    for (int64_t j = 0; j < n[1]; ++j)
      for (int64_t k = 0; k < n[2]; ++k)
        *dst++ = base[desc[2] + i * s[0] + j * s[1] + k * s[2]];
  return 3 + 2 * rank;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 3 || !divides(operands, COUNT(operands), size) ||
      !divides(results, COUNT(results), size)) {
    if (rank == 0)
      fprintf(
          stderr,
          "usage: mpirun -np P %s IN OUT (P divides the split dimensions)\n",
          argv[0]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  size_t total = 0;
  for (int i = 0; i < COUNT(operands); ++i)
    total += numel(&operands[i], 1);
  float *in = malloc(total * sizeof(float));
  FILE *f = fopen(argv[1], "rb");
  if (!f || fread(in, sizeof(float), total, f) != total) {
    fprintf(stderr, "rank %d: cannot read %s\n", rank, argv[1]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  fclose(f);

  /* This rank's part of each split operand, copied contiguous. */
  MemRef args[COUNT(operands)];
  float *at = in;
  for (int i = 0; i < COUNT(operands); ++i) {
    const Tensor *x = &operands[i];
    float *mine = at;
    int64_t dims[3];
    memcpy(dims, x->dims, sizeof dims);
    if (x->split >= 0) {
      mine = malloc(numel(x, size) * sizeof(float));
      copyPart(at, mine, x, rank, size, 0);
      dims[x->split] /= size;
    }
    args[i] = describe(mine, x->rank, dims);
    at += numel(x, 1);
  }
  int64_t res[9 * COUNT(results)];
  callModel(res, args);

  /* This rank's split results, then its replicated ones. */
  size_t splitPart = 0, repPart = 0, splitWhole = 0;
  for (int j = 0; j < COUNT(results); ++j) {
    const Tensor *x = &results[j];
    *(x->split >= 0 ? &splitPart : &repPart) += numel(x, size);
    splitWhole += x->split >= 0 ? numel(x, 1) : 0;
  }
  int chunk = (int)(splitPart + repPart);
  float *mine = malloc((size_t)chunk * sizeof(float));
  float *splitAt = mine, *repAt = mine + splitPart;
  for (int j = 0, w = 0; j < COUNT(results); ++j) {
    const Tensor *x = &results[j];
    float **dst = x->split >= 0 ? &splitAt : &repAt;
    w += packResult(res + w, x->rank, *dst);
    *dst += numel(x, size);
  }
  float *all = rank == 0 ? malloc((size_t)chunk * size * sizeof(float)) : 0;
  MPI_Gather(mine, chunk, MPI_FLOAT, all, chunk, MPI_FLOAT, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    size_t outSize = splitWhole + (size_t)size * repPart;
    float *out = malloc(outSize * sizeof(float));
    for (int p = 0; p < size; ++p) {
      float *src = all + (size_t)p * chunk, *dst = out;
      for (int j = 0; j < COUNT(results); ++j) {
        const Tensor *x = &results[j];
        if (x->split < 0)
          continue;
        copyPart(dst, src, x, p, size, 1);
        dst += numel(x, 1);
        src += numel(x, size);
      }
      memcpy(out + splitWhole + (size_t)p * repPart, src,
             repPart * sizeof(float));
    }
    FILE *o = fopen(argv[2], "wb");
    fwrite(out, sizeof(float), outSize, o);
    fclose(o);
    printf("ranks %d: wrote %zu split floats and %d copies of %zu replicated "
           "ones\n",
           size, splitWhole, size, repPart);
  }
  MPI_Finalize();
  return 0;
}
