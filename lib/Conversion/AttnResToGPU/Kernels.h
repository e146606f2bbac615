//===- Kernels.h - GPU kernel generators for attnres ops --------*- C++ -*-===//
//
// Part of the attnres project.
//
// Generators of the gpu.func bodies behind convert-attnres-to-gpu. Every
// kernel works on rows of D features (one row per token) and shares one
// layout: a token is owned by `threadsPerToken` threads (one or more warps),
// each thread owns `vectorsPerThread` 16-byte (or narrower, when D forces it)
// vectors of the row, interleaved so that one vector load instruction of a
// warp reads 32 consecutive vectors. See docs/gpu.md.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_KERNELS_H
#define ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_KERNELS_H

#include "attnres/Target/NVVMTarget.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Builders.h"

#include <string>

namespace mlir {
namespace attnres {
namespace gpu_kernels {

/// How one token row of D elements of type E is spread over threads.
struct RowLayout {
  int64_t d = 0;
  /// Elements per vector access (16 bytes when D allows it).
  unsigned vectorWidth = 1;
  /// Vectors per row (D / vectorWidth).
  int64_t numVectors = 0;
  /// Threads that share one token (a multiple of 32).
  unsigned threadsPerToken = 32;
  /// Vectors owned by each thread.
  unsigned vectorsPerThread = 1;
  /// Tokens handled by one CTA (> 1 only when a token fits one warp).
  unsigned tokensPerCta = 1;
  /// Occupancy hint for ptxas (nvvm.minctasm); 0 or 1: none.
  unsigned minCtasPerSM = 0;

  unsigned warpsPerToken() const { return threadsPerToken / 32; }
  unsigned ctaThreads() const { return threadsPerToken * tokensPerCta; }
};

/// Picks the layout for rows of `d` elements of `elementType` so that each
/// thread owns about `targetElements` elements.
RowLayout computeRowLayout(Type elementType, int64_t d,
                           unsigned targetElements);

/// The one-query kernels' default elements per thread: 8 (one 16-byte
/// vector of bf16/f16, two of f32) up to 512 vectors per row, else 16.
unsigned defaultRowElements(Type elementType, int64_t d);

/// The occupancy hint (nvvm.minctasm) from the min-ctas-per-sm option: the
/// option above 1, none by default (measured on H100: capping registers for
/// occupancy made ptxas spill the prefetched rows).
inline unsigned pickMinCtas(int option) {
  return option > 1 ? unsigned(option) : 0;
}

/// Threads of a CTA that gives each thread about `elements` of `columns`
/// columns: whole warps, at least one, at most `maxThreads`.
unsigned ctaThreadsFor(int64_t columns, int64_t elements,
                       unsigned maxThreads = 1024);

/// One softmax-over-sources kernel: attnres.aggregate (numQueries == 1,
/// stacked == false) or attnres.block_score (stacked == true).
struct ScoreKernelSpec {
  Type elementType;
  int64_t d = 0;
  unsigned numSources = 0;
  /// S: rows of the queries/norm_weights operands.
  unsigned numQueries = 1;
  /// Queries handled by one CTA; numQueries / queriesPerCta CTAs share each
  /// token, adjacent in launch order so that their source reads hit in L2.
  unsigned queriesPerCta = 1;
  /// Phase 1: queries/gains are SxD, out is SxTxD, lse SxT is written.
  bool stacked = false;
  /// Phase 1 with precomputed inverse RMS operands.
  bool hasInvRms = false;
  /// Sources whose loads are issued ahead of the source being reduced.
  unsigned prefetchDepth = 2;
  /// Sources whose partial sums share one token-wide reduction (barrier).
  unsigned sourcesPerStep = 1;
  /// aggregate with one token per CTA: keep w*g (f32) in workgroup memory
  /// and re-read it for every source instead of holding it in registers.
  bool wgInShared = false;
  /// aggregate: the latency-oriented variant for small token counts (only
  /// changes the kernel's name; its layout and depths say the rest).
  bool smallTokens = false;
  /// aggregate_stats: aggregate that also writes the log-sum-exp of the
  /// logits and the inverse RMS of every source (spec I.1).
  bool withStats = false;
  RowLayout layout;

  std::string getName() const;
};

/// Kernel arguments, in order:
///   queries (memref<DxE> or memref<SxDxE>), norm_weights (same),
///   sources (numSources x memref<?xDxE>),
///   [inv_rms (numSources x memref<?xf32>)],
///   out (memref<?xDxE> or memref<Sx?xDxE>), [lse (memref<Sx?xf32>)],
///   [withStats: lse (memref<?xf32>), inv_rms (numSources x memref<?xf32>)],
///   T (index), epsilon (f32).
gpu::GPUFuncOp buildScoreKernel(OpBuilder &b, Location loc,
                                const ScoreKernelSpec &spec);

/// attnres.block_score (phase 1) on tensor cores, for bf16 rows with D a
/// multiple of 8: one CTA per token handles all S queries. Sweep 1: every
/// warp multiplies 32-element blocks of the n source rows (the rows of an
/// mma.m16n8k16 A operand) with w*g of all S queries, split exactly into
/// two bf16 halves (B operands), and with the rows themselves (the sums of
/// squares on the diagonal); one workgroup-memory reduction across warps
/// gives all S*n logits. Sweep 2: each thread re-reads its elements of the
/// n rows (L1/L2 hits) and writes the S outputs with f32 FMAs.
struct BlockScoreTCSpec {
  Type elementType;
  int64_t d = 0;
  unsigned numSources = 0;
  unsigned numQueries = 0;
  bool hasInvRms = false;
  /// CTA threads (a multiple of 32, <= 1024).
  unsigned threads = 256;
  /// 32-element blocks whose source loads are issued ahead (sweep 1).
  unsigned prefetchBlocks = 2;
  /// Elements per thread access in sweep 2 (2, 4 or 8; divides D).
  unsigned sweepWidth = 4;
  /// Occupancy hint for ptxas (nvvm.minctasm); 0 or 1: none.
  unsigned minCtasPerSM = 0;
  /// Request every line of the token's rows into L2 before sweep 1.
  bool prefetchL2 = true;
  /// Copy the token's n rows into dynamic shared memory with one bulk copy
  /// (cp.async.bulk, the TMA unit of sm_90+) per row, completed on an
  /// mbarrier; both sweeps then read shared memory (no L2 prefetch, no
  /// global loads of the rows).
  bool bulkCopy = false;
  /// With bulk copies: the CTAs (1 or 2) of a thread-block cluster (sm_90+)
  /// that share one token, each owning D / clusterSplit consecutive
  /// columns; they add each other's partial logits and sums of squares
  /// through distributed shared memory.
  unsigned clusterSplit = 1;
  /// The `queries` and `norm_weights` arguments hold w*g split into bf16
  /// hi and lo (buildQueryGainSplitKernel) instead of w and g: sweep 1 loads
  /// the mma B operands instead of computing them (option
  /// split-query-gains). The results are bit-identical.
  bool splitQueries = false;
  /// Sweep 2 on the tensor cores (score-mma-sweep): out (S x D) = A (S x n)
  /// . V (n x D), A the softmax weights split into bf16 hi + lo, the rows
  /// paired across sources in registers.
  bool mmaSweep = false;

  /// Columns of a token handled by one CTA.
  int64_t localColumns() const { return d / clusterSplit; }

  /// Elements between consecutive rows in shared memory: D plus 32 (64
  /// bytes), so that the eight rows of one fragment load fall in different
  /// banks.
  int64_t sharedRowStride() const { return localColumns() + 32; }
  /// Bytes of the n rows (of this CTA's columns) in shared memory.
  int64_t sharedRowsBytes() const {
    return int64_t(numSources) * sharedRowStride() *
           (elementType.getIntOrFloatBitWidth() / 8);
  }
  /// Dynamic shared memory of a launch (bytes): with bulkCopy all of the
  /// kernel's shared memory (the n rows, the per-warp partials, logits,
  /// weights and the mbarrier), else 0.
  int64_t dynamicSharedBytes() const;

  std::string getName() const;
};

/// Kernel arguments: as buildScoreKernel with stacked = true.
gpu::GPUFuncOp buildBlockScoreTCKernel(OpBuilder &b, Location loc,
                                       const BlockScoreTCSpec &spec);

/// w*g of S queries, split exactly into bf16 halves once per call, for the
/// tensor-core kernels of block_score and block_score_grad with
/// split-query-gains: hi = the upper 16 bits of the f32 product (its top 8
/// significant bits), lo = bf16(wg - hi) (exact: the product of two bf16
/// has at most 16 significant bits). hi + lo = w*g in f32, exactly. One
/// thread per 16-byte vector, kThreads per CTA, grid
/// ceil(S D / (8 kThreads)).
struct QueryGainSplitSpec {
  static constexpr unsigned kThreads = 256;
  Type elementType;
  int64_t numQueries = 0, d = 0;

  int64_t numCtas() const;
  std::string getName() const;
};

/// Kernel arguments: queries, norm_weights (memref<SxDxE>), hi, lo
/// (memref<SxDxbf16>).
gpu::GPUFuncOp buildQueryGainSplitKernel(OpBuilder &b, Location loc,
                                         const QueryGainSplitSpec &spec);

/// attnres.merge: p' = partial + update, c = inv_rms(p') (w*g).p',
/// h = out + sigmoid(c - lse) (p' - out); with `hasNorm` also the fused
/// RMSNorm hn = h_E rsqrt(mean(h_E^2) + eps_n) gain_n of the rounded h_E
/// (spec E.5), one more token reduction. Without `writeH` (h unused) h is
/// not stored.
struct MergeKernelSpec {
  Type elementType;
  int64_t d = 0;
  bool hasPartial = false;
  bool hasNorm = false;
  bool writeH = true;
  RowLayout layout;

  std::string getName() const;
};

/// Kernel arguments: out, lse (memref<?xf32>), query, norm_weight, update,
/// [partial], [norm gain], [h], [new_partial], [normed], T, epsilon,
/// [norm epsilon].
gpu::GPUFuncOp buildMergeKernel(OpBuilder &b, Location loc,
                                const MergeKernelSpec &spec);

/// attnres.block_sum (numInputs > 0, writes the f32 sum rounded once) or
/// attnres.inv_rms (numInputs == 0 means inv_rms of one input).
struct RowKernelSpec {
  enum Kind { BlockSum, InvRms } kind = BlockSum;
  Type elementType;
  int64_t d = 0;
  unsigned numInputs = 1;
  RowLayout layout;

  std::string getName() const;
};

/// Kernel arguments: block_sum: inputs..., out, T; inv_rms: input,
/// out (memref<?xf32>), T, epsilon.
gpu::GPUFuncOp buildRowKernel(OpBuilder &b, Location loc,
                              const RowKernelSpec &spec);

/// attnres.aggregate_grad (spec I.2): one CTA per chunk of consecutive
/// tokens (grid min(T, G), chunk ceil(T / grid)), one token at a time in the
/// row layout of the forward kernel. Per token: one reduction of the 2n dot
/// products (w*g . v_i, v_i . dh), the softmax derivative in f32, then
/// dv_i = [acc_i +] a_i dh + dz_i r_i (w g - z_i r_i v_i / D), rounded once.
/// Each CTA writes its f32 partial of dwg = sum_p sum_i dz_i r_i v_i (its
/// tokens in increasing order) to row `blockIdx` of a workspace;
/// buildParamReduceKernel sums the rows in order.
struct AggregateGradSpec {
  Type elementType;
  int64_t d = 0;
  unsigned numSources = 0;
  bool accumulate = false;
  /// Keep the n source rows of a token in registers between the two
  /// passes (else the second pass re-reads them).
  bool rowsInRegisters = true;
  /// Without rowsInRegisters: pass 1 also stores each thread's share of
  /// the first `sharedRows` rows into dynamic shared memory (sharedRows x D
  /// elements), which pass 2 reads back instead of re-reading them from
  /// L2 / DRAM (it re-reads the others). 0: every row is re-read.
  unsigned sharedRows = 0;
  RowLayout layout;

  std::string getName() const;
  /// Dynamic shared memory of the launch, bytes: with sharedRows all of
  /// the kernel's shared memory (the rows, the reduction scratch and the
  /// coefficients), else 0.
  int64_t dynamicSharedBytes() const;
};

/// The pass options that bear on aggregate_grad's layout
/// (convert-attnres-to-gpu's elements-per-thread, min-ctas-per-sm,
/// grad-rows-in-shared).
struct AggregateGradOptions {
  /// 0: the default.
  unsigned elementsPerThread = 0;
  /// 0 or 1: no occupancy hint unless the policy asks for one.
  int minCtasPerSM = 0;
  bool rowsInShared = true;
};

/// Fills spec.layout, spec.rowsInRegisters and spec.sharedRows from the
/// element type, D, the source count and whether the op accumulates (set
/// by the caller), the options and the target's shared memory: the
/// measured layout policy of aggregate_grad (docs/gpu.md, aggregate_grad).
void chooseAggregateGradLayout(AggregateGradSpec &spec,
                               const AggregateGradOptions &options,
                               const NVVMTargetInfo &target);

/// Kernel arguments: query, norm_weight (memref<DxE>), sources (n x
/// memref<?xDxE>), lse (memref<?xf32>), inv_rms (n x memref<?xf32>),
/// dh (memref<?xDxE>), [accumulators (n x memref<?xDxE>)], source grads (n x
/// memref<?xDxE>), workspace (memref<?xDxf32>, one row per CTA), T (index).
gpu::GPUFuncOp buildAggregateGradKernel(OpBuilder &b, Location loc,
                                        const AggregateGradSpec &spec);

/// attnres.block_score_grad (spec I.3), first of two kernels: one CTA per
/// token (the row layout of the one-query kernels). Pass 1, for each query l
/// in order: wg_l = W_l * G_l, the 2n dot products (wg_l . b_i, dout_l .
/// b_i) in one token reduction, then the token's first thread turns them
/// into a_li, k1_li = dz_li r_i and adds k2_li = k1_li r_i z_li / D to K2_i
/// (workgroup memory; k1 also to row `token` of the coefficient output for
/// the second kernel). Pass 2, kBlockScoreGradGroup sources at a time:
/// g_i = sum_l (a_li dout_l + k1_li wg_l) (f32, l in order), then
/// db_i = round_E([acc_i +] (g_i - K2_i b_i)).
struct BlockScoreGradSpec {
  Type elementType;
  int64_t d = 0;
  /// S and n.
  unsigned numQueries = 0, numSources = 0;
  bool accumulate = false;
  RowLayout layout;

  std::string getName() const;
};

/// Kernel arguments: queries, norm_weights (memref<SxDxE>), sources (n x
/// memref<?xDxE>), lse (memref<Sx?xf32>), inv_rms (n x memref<?xf32>), dout
/// (memref<Sx?xDxE>), dlse (memref<Sx?xf32>), [accumulators (n x
/// memref<?xDxE>)], source grads (n x memref<?xDxE>), coefficients
/// (memref<?x(S*n)xf32>: k1_li at l * n + i), T (index).
gpu::GPUFuncOp buildBlockScoreGradKernel(OpBuilder &b, Location loc,
                                         const BlockScoreGradSpec &spec);

/// attnres.block_score_grad's per-token kernel on the tensor cores (bf16
/// rows, D a multiple of 8; BlockScoreGradTCKernel.cpp): the arguments,
/// the outputs and the coefficients of buildBlockScoreGradKernel, one CTA
/// of `threads` per token; the 2 S n dot products of a token with
/// mma.sync, the source gradients on the CUDA cores.
struct BlockScoreGradTCSpec {
  Type elementType;
  int64_t d = 0;
  unsigned numQueries = 0, numSources = 0;
  bool accumulate = false;
  /// CTA threads (a multiple of 32, <= 1024).
  unsigned threads = 256;
  /// 32-element blocks whose loads are issued ahead in the mma sweep.
  unsigned prefetchBlocks = 2;
  /// Elements per thread access in the source-gradient sweep (4 or 8).
  unsigned sweepWidth = 4;
  /// Request the token's source and dout rows into L2 first (sm_90+).
  bool prefetchL2 = true;
  /// Occupancy hint for ptxas (nvvm.minctasm); 0 or 1: none.
  unsigned minCtasPerSM = 0;
  /// Rows of the token kept in dynamic shared memory by the mma sweep for
  /// the source-gradient sweep: the first `sharedRows` of the n source rows
  /// then the S dout rows (0: none; the second sweep re-reads every row).
  unsigned sharedRows = 0;
  /// Persistent CTAs (score-grad-persistent): a grid of min(T, P) CTAs, each
  /// a chunk of ceil(T / P) consecutive tokens in turn, the next token's
  /// rows requested into L2 while the current one is computed.
  bool persistent = false;
  /// As BlockScoreTCSpec::splitQueries: `queries` and `norm_weights` hold
  /// the bf16 hi and lo halves of w*g; the mma sweep loads them, the
  /// source-gradient sweep adds them (hi + lo = w*g exactly).
  bool splitQueries = false;
  /// The source-gradient sweep on the tensor cores too (score-grad-mma-sweep;
  /// needs splitQueries): g (n x D) = C (n x 3S) . [dout; hi; lo] (3S x D),
  /// C the coefficients a_li (for dout) and k1_li (for both halves of w*g)
  /// split into bf16 hi + lo; the rows are paired across queries in
  /// registers (no shared memory).
  bool mmaSweep = false;

  /// 16 elements per thread, at most 256 threads.
  static unsigned defaultThreads(int64_t d);
  /// Elements between consecutive rows of the shared-memory copy: D and 64
  /// bytes, so that the two rows of a quarter-warp's 16-byte stores fall in
  /// different banks.
  int64_t sharedRowStride() const { return d + 32; }
  /// The f32 workgroup regions besides the rows (partials, totals,
  /// coefficients), in the order of the kernel's views.
  SmallVector<SmallVector<int64_t>> regionShapes() const;
  /// Their bytes, each region 16-byte aligned, in all.
  int64_t regionBytes() const;
  /// The bytes of dynamic shared memory of the launch: 0 without shared
  /// rows (the regions are workgroup attributions), else the rows and then
  /// the regions, 16-byte aligned.
  int64_t dynamicSharedBytes() const;
  RowLayout layout() const;
  std::string getName() const;
};

gpu::GPUFuncOp buildBlockScoreGradTCKernel(OpBuilder &b, Location loc,
                                           const BlockScoreGradTCSpec &spec);

/// The shared rows of block_score_grad's tensor-core kernel for the option
/// score-grad-shared-rows (`option`): 0 none; k > 0 the first k rows
/// (at most n + S); -1 as many as fit the share of an SM's shared memory
/// that one CTA gets at the CTAs per SM its threads allow at 128 registers
/// each (or min-ctas-per-sm, if more). The caller checks
/// dynamicSharedBytes() against the target.
unsigned chooseBlockScoreGradSharedRows(const BlockScoreGradTCSpec &spec,
                                        int option,
                                        const NVVMTargetInfo &target);

/// attnres.block_score_grad, second kernel: the partials of the parameter
/// gradients dwg_l = sum_p sum_i k1_li b_i[p, :]. Grid P x column tiles:
/// CTA c * tiles + t owns kThreads vectors of columns of tile t and the
/// tokens of chunk c (ceil(T / P) consecutive tokens); each thread
/// accumulates k1_li b_i for its columns in order (token, then i) with one
/// FMA per term, and writes its S sums to row c of the workspace
/// (memref<Px(S*D)xf32>, column l * D + d); buildParamReduceKernel with K =
/// S * D sums the rows in order.
struct BlockScoreParamGradSpec {
  Type elementType;
  int64_t d = 0;
  unsigned numQueries = 0, numSources = 0;
  /// Elements per access (the row layout's vector width).
  unsigned vectorWidth = 1;
  static constexpr unsigned kThreads = 128;

  int64_t numTiles() const {
    return (d / vectorWidth + kThreads - 1) / kThreads;
  }
  std::string getName() const;
};

/// Kernel arguments: sources (n x memref<?xDxE>), coefficients
/// (memref<?x(S*n)xf32>), workspace (memref<?x(S*D)xf32>), T (index).
gpu::GPUFuncOp
buildBlockScoreParamGradKernel(OpBuilder &b, Location loc,
                               const BlockScoreParamGradSpec &spec);

/// The deterministic second step of the parameter gradients: for every
/// column k < K, dwg[k] = sum over the workspace rows b = 0 .. P-1 in
/// increasing order (P = number of partials, a run-time value); then
/// dquery[k] = dwg[k] * gain[k], dgain[k] = dwg[k] * query[k]. One thread
/// per column: the columns of a CTA are 32 consecutive k, its 32 warps sum
/// 32 consecutive slices of the rows, combined in slice order.
struct ParamReduceSpec {
  Type elementType;
  /// Columns (D, or S * D for block_score_grad).
  int64_t k = 0;
  /// Columns after the first k that are written unscaled (merge_grad's
  /// norm-gain gradient: D, else 0).
  int64_t plain = 0;

  std::string getName() const;
  static constexpr unsigned kColumns = 32, kSlices = 32;
};

/// Kernel arguments: workspace (memref<?x(K+plain)xf32>), P (index), query,
/// gain (memref<KxE>), dquery, dgain (memref<Kxf32>), [plain sums
/// (memref<plain x f32>)].
gpu::GPUFuncOp buildParamReduceKernel(OpBuilder &b, Location loc,
                                      const ParamReduceSpec &spec);

/// attnres.merge_grad (spec I.4), with or without the partial sum and the
/// fused RMSNorm: like aggregate_grad, a CTA handles a contiguous chunk of
/// tokens one at a time (the merge kernel's row layout), recomputes p', its
/// inverse RMS, the score c and the gate (and with the norm the stored h and
/// its inverse RMS), writes dout, dlse and dp, and its f32 partials of dwg
/// (and dgn) to its workspace row.
struct MergeGradSpec {
  Type elementType;
  int64_t d = 0;
  bool hasPartial = false;
  bool hasNorm = false;
  /// `grad` (dh) is known to be zero (a zero splat or a zero fill): the
  /// kernel has no dh argument and reads nothing for it. The fused-norm
  /// backward of a merge whose `h` has no other user (torch_ops.merge_norm)
  /// has this form.
  bool zeroGrad = false;
  /// Load the next token's rows one iteration ahead (loop-carried), so that
  /// they are in flight during this token's reductions. Set only where
  /// mergeGradCanPrefetch holds (pass option `grad-prefetch-tokens`).
  bool prefetchNext = false;
  RowLayout layout;

  std::string getName() const;
};

/// Whether a thread's share of one token's rows (update, [partial], out,
/// [dh], dp_new, [dhn]) takes at most 96 bytes (24 registers; bf16 or f16 at
/// 8 elements per thread), so that merge_grad can carry the next token's
/// rows across its loop.
bool mergeGradCanPrefetch(const MergeGradSpec &spec);

/// Kernel arguments: out, lse (memref<?xf32>), query, norm_weight, update,
/// [partial], [norm gain], dh (absent with zeroGrad), dp_new, [dhn], dout,
/// dlse (memref<?xf32>), dp, workspace (memref<? x D (2D with the norm) x
/// f32>), T, epsilon, [norm epsilon].
gpu::GPUFuncOp buildMergeGradKernel(OpBuilder &b, Location loc,
                                    const MergeGradSpec &spec);

} // namespace gpu_kernels
} // namespace attnres
} // namespace mlir

#endif // ATTNRES_LIB_CONVERSION_ATTNRESTOGPU_KERNELS_H
