//===- ChainAnalysis.h - AttnRes residual chains ----------------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// Finds chains of `attnres.aggregate` ops (Full or Block AttnRes) by their
// data-flow structure, and the measures the block-form passes report: the
// number of live depth sources (liveness) and the per-token I/O model of
// section 6 of the semantics. See docs/block-form.md.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_ANALYSIS_CHAINANALYSIS_H
#define ATTNRES_DIALECT_ATTNRES_ANALYSIS_CHAINANALYSIS_H

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/Dialect/AttnRes/IR/AttnResDefaults.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>

namespace mlir {
namespace attnres {

/// One sublayer `l` of a chain: `h_l = aggregate(sources)`, `y_l = f_l(h_l)`.
struct ChainSublayer {
  /// The aggregation producing `h_l`; null for a first sublayer whose
  /// one-source aggregation was folded away (then `h_0` is the embedding).
  AggregateOp aggregate;
  /// `h_l`: the result of `aggregate`, or the embedding when it is null.
  Value input;
  /// The sublayer's output `y_l` (the value the chain adds to its depth
  /// sources after this sublayer).
  Value output;
  /// 1-based block `n` and position `i` of the sublayer in it.
  unsigned block = 0, index = 0;
  /// The partial sum `b_n^i` the aggregation reads last (`i >= 1`), else null.
  Value partial;
};

/// A chain: sublayers `0 .. L-1` and the final aggregation over the block
/// representations `b_0 .. b_N` (Full AttnRes is the case of blocks of one
/// sublayer, with `b_l = y_{l-1}`).
struct Chain {
  llvm::SmallVector<ChainSublayer> sublayers;
  AggregateOp final;
  /// The final aggregation's sources: `b_0` (embedding) .. `b_N`.
  llvm::SmallVector<Value> summaries;
  /// Number of sublayers of blocks 1 .. N.
  llvm::SmallVector<unsigned> blockSizes;

  unsigned getNumSublayers() const { return sublayers.size(); }
  unsigned getNumBlocks() const { return blockSizes.size(); }
  /// The largest block size (S); every block but the last has it when the
  /// chain was produced by attnres-blockify.
  unsigned getBlockSize() const;
  /// True when every block holds one sublayer (Full AttnRes).
  bool isFull() const { return getBlockSize() == 1; }
  Value getEmbedding() const { return summaries.front(); }
  RankedTensorType getSourceType() const;
  /// The epsilon shared by every aggregation of the chain, if they agree.
  std::optional<float> getUniformEpsilon() const;
  /// Number of sources of each sublayer aggregation, then of the final one.
  llvm::SmallVector<unsigned> getSourceCounts() const;
};

//===----------------------------------------------------------------------===//
// Block size: the one place that turns `block-size` / `num-blocks` into S
//===----------------------------------------------------------------------===//

/// The `block-size` and `num-blocks` options of a pass, as given (0 or unset:
/// not asked for). Every pass that partitions or reports a blocking
/// (attnres-blockify, attnres-report) resolves it here.
struct BlockingRequest {
  int64_t blockSize = kDefaultBlockSize;
  int64_t numBlocks = kDefaultNumBlocks;
  /// Whether the options were written out (so `block-size=0` is an error
  /// and not the same as leaving it unset).
  bool blockSizeGiven = false, numBlocksGiven = false;

  bool isSet() const { return blockSize > 0 || numBlocks > 0; }
};

/// The block structure of one chain: S sublayers per block (the last block
/// shorter when S does not divide L) and N = ceil(L / S) blocks.
struct Blocking {
  unsigned blockSize = 1;
  unsigned numBlocks = 0;
};

/// Checks a request: a value written out must be at least 1, and with
/// `required` one of the two must be set. Emits one error, attributed to
/// `passName`, at `loc` (the function or op the options apply to), without
/// printing any IR.
LogicalResult verifyBlockingRequest(const BlockingRequest &request,
                                    StringRef passName, bool required,
                                    Location loc);

/// S and N for a chain of `numSublayers` (L >= 1) from a verified, set
/// request: `block-size` wins over `num-blocks`; with only `num-blocks = N`,
/// S = ceil(L / N). S is clamped to L; when the request asks for more than
/// the chain has (S > L, or N > L), a warning at `loc` names what was used.
Blocking resolveBlocking(const BlockingRequest &request, unsigned numSublayers,
                         StringRef passName, Location loc);

/// Where a diagnostic about a module pass's options belongs: the final
/// aggregation of the first chain it would apply to, else the first function
/// with a body, else `root` itself.
Location getOptionsLoc(Operation *root, llvm::ArrayRef<Chain> chains);

/// Callback for chains that look like chains but are refused, with the op to
/// attach a diagnostic to and the reason.
using ChainRefusalFn = llvm::function_ref<void(Operation *, const Twine &)>;

/// Finds every chain in the blocks nested under `root`, in program order.
/// Chains are identified by structure: the sources of consecutive
/// aggregations extend a common prefix, and each new source depends on the
/// previous aggregation's result. `onRefuse`, when given, hears about
/// structures that were not accepted as chains and why.
llvm::SmallVector<Chain> findChains(Operation *root,
                                    ChainRefusalFn onRefuse = nullptr);

/// Returns true when `value` is computed from `from` (transitively through
/// operands, including values captured by nested regions).
bool dependsOn(Value value, Value from);

/// The largest number of depth-source tensors (values that some later
/// aggregation reads as a source: aggregate and block_score sources, partial
/// sums, block sums) live at once between two ops of any block under `root`.
unsigned computeMaxLiveDepthSources(Operation *root);

/// Per-token, per-sublayer bytes moved, following section 6 of the semantics
/// (D features, `elementBytes` per element).
struct ChainIOModel {
  /// Full AttnRes: every aggregation over n sources reads n*D, writes D.
  double full = 0;
  /// Naive Block AttnRes: (S + N) D reads and one D write per sublayer.
  double block = 0;
  /// Two-phase Block AttnRes: about (N / S + 5) D per sublayer.
  double twoPhase = 0;
  /// Standard residual: 3 D per sublayer.
  double residual = 0;
};
ChainIOModel computeIOModel(unsigned numSublayers, unsigned blockSize,
                            unsigned numBlocks, int64_t dim,
                            unsigned elementBytes);

/// Bytes per element of a storage type (f32: 4, f16/bf16: 2).
unsigned getElementBytes(Type elementType);

/// Number of sources of each sublayer aggregation, then of the final one, of
/// a chain of `numSublayers` in blocks of `blockSize` (section 3).
llvm::SmallVector<unsigned> getBlockSourceCounts(unsigned numSublayers,
                                                 unsigned blockSize);

/// Formats source counts as `1 2 2 3, final 3`.
std::string formatSourceCounts(llvm::ArrayRef<unsigned> counts);

/// A one-line, readable description of a chain's shape and cost, used by the
/// remarks of attnres-blockify, attnres-fuse-summaries and attnres-report.
std::string describeChain(const Chain &chain, unsigned blockSize,
                          unsigned numBlocks);

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_ANALYSIS_CHAINANALYSIS_H
