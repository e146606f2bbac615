//===- GradKernelHelpers.h - backward kernels' shared pieces --------------===//
//
// Part of the attnres project.
//
// What the backward kernels (AggregateGradKernel.cpp, MergeGradKernel.cpp,
// BlockScoreGradKernel.cpp, BlockScoreGradTCKernel.cpp) share beyond RowEmitter
// (docs/gpu.md "Backward kernels"):
//
// - a CTA handles a contiguous chunk of tokens, one token at a time, so that
//   its partial of the parameter gradients (sums over tokens) stays in
//   registers; it writes that partial (f32) to its row of a workspace;
// - a second small kernel (ParamReduceKernel.cpp) sums the workspace rows in
//   a fixed order (no float atomics): the parameter gradients are
//   deterministic.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_GRADKERNELHELPERS_H
#define ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_GRADKERNELHELPERS_H

#include "KernelEmitter.h"

#include <utility>

namespace mlir::attnres::gpu_kernels::grad {

/// Sources whose loads are in flight ahead of the one being used, when the
/// rows are not kept in registers between the passes.
constexpr unsigned kGradPrefetchDepth = 3;

/// The chunk of tokens of this CTA: [begin, end) with chunk = ceil(T /
/// gridDim.x) (empty for the last CTAs when the chunks do not need them).
std::pair<Value, Value> ctaTokenRange(OpBuilder &b, Location loc,
                                      Value numTokens);

/// Stores this thread's f32 vectors `vals` of a row of the f32 workspace
/// `ws` (memref<?xKxf32>) at row `row`, column offset `base`.
void storeF32Row(RowEmitter &em, ArrayRef<Value> vals, Value ws, Value row,
                 Value base);

/// The vector splat of -scalar.
Value splatNeg(RowEmitter &em, Value scalar);

/// Appends to `partials` the inputs of a token reduction for sources
/// [lo, hi): for each source i, this thread's sums of wg * b_i and of
/// b_i * other (in that order). rowsIn[i] holds source i's row: with
/// `depth` > 0 the row of source i + depth is requested before source i is
/// used (a window of loads in flight; the caller loads the first `depth`),
/// and a used row is released unless `keep`. With `stash` (memref<k x D x
/// E> in workgroup memory, k <= n) each thread also stores its share of row
/// i < k at stash[i], where only that thread reads it back (no barrier
/// needed).
void sourceDots(RowEmitter &em, ArrayRef<Value> sources, ValueRange tk,
                unsigned lo, unsigned hi, unsigned depth, bool keep,
                MutableArrayRef<SmallVector<Value>> rowsIn, ArrayRef<Value> wg,
                ArrayRef<Value> other, SmallVectorImpl<Value> &partials,
                Value stash = Value());

/// Views of a kernel's one dynamic shared allocation (the shared-rows modes
/// of aggregate_grad and block_score_grad): the rows, memref<k x stride x
/// E> at offset 0, then each f32 region of `regionTypes` 16-byte aligned,
/// appended to `regions`. Returns the rows' view.
Value viewSharedRows(OpBuilder &b, Location loc, Type e, int64_t k,
                     int64_t stride, ArrayRef<Type> regionTypes,
                     SmallVectorImpl<Value> &regions);

/// The argument types of block_score_grad's per-token kernels (the
/// CUDA-core and the tensor-core one), in the order documented at
/// buildBlockScoreGradKernel.
SmallVector<Type> blockScoreGradArgTypes(OpBuilder &b, Type e, int64_t d,
                                         unsigned s, unsigned n,
                                         bool accumulate);

/// Those arguments of a kernel's entry block.
struct BlockScoreGradArgs {
  BlockScoreGradArgs(Block &entry, unsigned n, bool accumulate);

  Value queries, gains, lse, dout, dlse, coefOut, numTokens;
  SmallVector<Value> sources, invRms, accs, grads;
};

} // namespace mlir::attnres::gpu_kernels::grad

#endif // ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_GRADKERNELHELPERS_H
