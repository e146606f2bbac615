//===- StackAggregateSources.cpp - Full AttnRes sources in one tensor -----===//
//
// Part of the attnres project.
//
// attnres-stack-aggregate-sources: keeps the sources of the aggregations of
// a block that are runs of one ordered sequence of values in one stacked
// tensor, and decomposes those aggregations over slices of it
// (decomposeAggregateOfStacked), so that a Full AttnRes chain of L sublayers
// needs O(L) linalg ops and buffers instead of O(L^2) (docs/depth.md).
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/DecompositionInterfaceImpl.h"
#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/MapVector.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_STACKAGGREGATESOURCES
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

namespace {
/// One ordered sequence of values of one type, defined in order in a block,
/// and after materialization the stack holding its first k values.
struct Sequence {
  SmallVector<Value> values;
  DenseMap<Value, unsigned> index;
  Value stack;
  SmallVector<Operation *> written;
  SmallVector<OpFoldResult> sizes;
};

/// A run of a sequence: `count` values from `offset`.
struct Run {
  unsigned sequence = 0, offset = 0, count = 0;
};
} // namespace

/// Whether `a`'s definition comes strictly before `b`'s in `block` (block
/// arguments first, in order). Both are arguments of `block` or results of
/// ops in it.
static bool definedBefore(Value a, Value b) {
  auto argA = dyn_cast<BlockArgument>(a);
  auto argB = dyn_cast<BlockArgument>(b);
  if (argA && argB)
    return argA.getArgNumber() < argB.getArgNumber();
  if (argA || argB)
    return static_cast<bool>(argA);
  Operation *opA = a.getDefiningOp();
  Operation *opB = b.getDefiningOp();
  if (opA == opB)
    return cast<OpResult>(a).getResultNumber() <
           cast<OpResult>(b).getResultNumber();
  return opA->isBeforeInBlock(opB);
}

static bool isDefinedIn(Value v, Block *block) {
  if (auto arg = dyn_cast<BlockArgument>(v))
    return arg.getOwner() == block;
  return v.getDefiningOp()->getBlock() == block;
}

/// Whether `sources` can start a new sequence: two or more distinct ranked
/// tensors of one type, defined in this order in `block`.
static bool isOrderedRun(ValueRange sources, Block *block) {
  if (sources.size() < 2 || !isa<RankedTensorType>(sources.front().getType()))
    return false;
  for (auto [i, v] : llvm::enumerate(sources)) {
    if (v.getType() != sources.front().getType() || !isDefinedIn(v, block))
      return false;
    if (i > 0 && !definedBefore(sources[i - 1], v))
      return false;
  }
  return true;
}

/// Sets `b`'s insertion point right after the definition of `v` (at the
/// block's start for a block argument).
static void setInsertionPointAfterDef(OpBuilder &b, Value v) {
  if (auto arg = dyn_cast<BlockArgument>(v))
    b.setInsertionPointToStart(arg.getOwner());
  else
    b.setInsertionPointAfter(v.getDefiningOp());
}

/// Materializes `seq`: one buffer (memref.alloc after its first value)
/// and, after each value j, its copy into slot j
/// (bufferization.materialize_in_destination into a memref.subview). The
/// stack is a buffer rather than a chain of tensor.insert_slice ops because
/// One-Shot Analysis would compare every read of that chain with every
/// write into it (time cubic in depth); here each run is a read-only
/// tensor of its own (`stackedRun`), and the slots written after it are
/// disjoint from it.
static void materialize(Sequence &seq) {
  Value first = seq.values.front();
  auto type = cast<RankedTensorType>(first.getType());
  unsigned rank = type.getRank();
  int64_t count = seq.values.size();
  Location loc = first.getLoc();
  OpBuilder b(first.getContext());

  // The stack, right after the first value (its dynamic sizes are read from
  // it).
  setInsertionPointAfterDef(b, first);
  SmallVector<OpFoldResult> &sizes = seq.sizes;
  SmallVector<Value> dynamicSizes;
  sizes.push_back(b.getIndexAttr(count));
  for (unsigned i = 0; i < rank; ++i) {
    if (type.isDynamicDim(i)) {
      Value dim = tensor::DimOp::create(b, loc, first, i);
      dynamicSizes.push_back(dim);
      sizes.push_back(dim);
    } else {
      sizes.push_back(b.getIndexAttr(type.getDimSize(i)));
    }
  }
  SmallVector<int64_t> shape{count};
  llvm::append_range(shape, type.getShape());
  auto stackType = MemRefType::get(shape, type.getElementType());
  seq.stack = memref::AllocOp::create(b, loc, stackType, dynamicSizes);
  SmallVector<OpFoldResult> unitStrides(rank + 1, b.getIndexAttr(1));
  SmallVector<OpFoldResult> oneSizes(sizes);
  oneSizes.front() = b.getIndexAttr(1);

  Operation *last = seq.stack.getDefiningOp();
  for (auto [j, v] : llvm::enumerate(seq.values)) {
    if (isa<BlockArgument>(v) || v.getDefiningOp()->isBeforeInBlock(last) ||
        v.getDefiningOp() == last)
      b.setInsertionPointAfter(last);
    else
      setInsertionPointAfterDef(b, v);
    SmallVector<OpFoldResult> offsets(rank + 1, b.getIndexAttr(0));
    offsets.front() = b.getIndexAttr(static_cast<int64_t>(j));
    auto slotType = memref::SubViewOp::inferRankReducedResultType(
        type.getShape(), stackType, offsets, oneSizes, unitStrides);
    Value slot = memref::SubViewOp::create(b, v.getLoc(), slotType, seq.stack,
                                           offsets, oneSizes, unitStrides);
    last = bufferization::MaterializeInDestinationOp::create(
        b, v.getLoc(), Type(), v, slot, /*restrict=*/true, /*writable=*/true);
    seq.written.push_back(last);
  }
}

/// The stacked tensor of `run`, built at `b`'s insertion point (after the
/// copy of its last value): a read-only tensor of the stack's slots
/// [offset, offset + count).
static Value stackedRun(OpBuilder &b, Location loc, Sequence &seq, Run run) {
  unsigned rank = seq.sizes.size();
  SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0));
  offsets.front() = b.getIndexAttr(run.offset);
  SmallVector<OpFoldResult> sizes(seq.sizes);
  sizes.front() = b.getIndexAttr(run.count);
  SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));
  Value view = seq.stack;
  if (run.offset != 0 || run.count != seq.values.size())
    view =
        memref::SubViewOp::create(b, loc, seq.stack, offsets, sizes, strides);
  auto viewType = cast<MemRefType>(view.getType());
  auto tensorType =
      RankedTensorType::get(viewType.getShape(), viewType.getElementType());
  return bufferization::ToTensorOp::create(b, loc, tensorType, view,
                                           /*restrict=*/true,
                                           /*writable=*/false);
}

/// Finds `values` as a run of a sequence of `sequences`, or starts a new
/// sequence with them when they are an ordered run of `block`.
static std::optional<Run> findOrAddRun(std::vector<Sequence> &sequences,
                                       ValueRange values, Block *block) {
  for (auto [i, seq] : llvm::enumerate(sequences)) {
    auto it = seq.index.find(values.front());
    if (it == seq.index.end())
      continue;
    unsigned offset = it->second;
    if (offset + values.size() <= seq.values.size() &&
        llvm::equal(values, ArrayRef(seq.values).slice(offset, values.size())))
      return Run{static_cast<unsigned>(i), offset,
                 static_cast<unsigned>(values.size())};
  }
  if (!isOrderedRun(values, block))
    return std::nullopt;
  Sequence seq;
  for (auto [i, v] : llvm::enumerate(values)) {
    seq.values.push_back(v);
    seq.index[v] = i;
  }
  sequences.push_back(std::move(seq));
  return Run{static_cast<unsigned>(sequences.size() - 1), 0,
             static_cast<unsigned>(values.size())};
}

static ValueRange sourcesOf(Operation *op) {
  if (auto agg = dyn_cast<AggregateOp>(op))
    return agg.getSources();
  return cast<BlockScoreOp>(op).getSources();
}

namespace {
struct StackAggregateSourcesPass
    : public attnres::impl::StackAggregateSourcesBase<
          StackAggregateSourcesPass> {
  void runOnOperation() override {
    // The aggregations of each block, in order.
    llvm::MapVector<Block *, SmallVector<Operation *>> byBlock;
    getOperation().walk([&](Operation *op) {
      if (isa<AggregateOp, BlockScoreOp>(op) && sourcesOf(op).size() >= 2)
        byBlock[op->getBlock()].push_back(op);
    });
    for (auto &[block, ops] : byBlock) {
      // Longest first: a shorter aggregation joins the sequence of a longer
      // one when its sources are a contiguous run of it. (Ties keep program
      // order.)
      DenseMap<Operation *, unsigned> position;
      for (auto [i, op] : llvm::enumerate(ops))
        position[op] = i;
      llvm::sort(ops, [&](Operation *a, Operation *b) {
        size_t na = sourcesOf(a).size(), nb = sourcesOf(b).size();
        return na != nb ? na > nb : position[a] < position[b];
      });
      std::vector<Sequence> sequences;
      // (op, run of its sources, run of its inverse RMS if any).
      SmallVector<std::tuple<Operation *, Run, std::optional<Run>>> users;
      for (Operation *op : ops) {
        std::optional<Run> sources =
            findOrAddRun(sequences, sourcesOf(op), block);
        if (!sources)
          continue;
        std::optional<Run> invRms;
        auto score = dyn_cast<BlockScoreOp>(op);
        if (score && !score.getInvRms().empty()) {
          invRms = findOrAddRun(sequences, score.getInvRms(), block);
          if (!invRms)
            continue;
        }
        users.push_back({op, *sources, invRms});
      }
      for (Sequence &seq : sequences)
        materialize(seq);
      IRRewriter b(&getContext());
      for (auto [op, sources, invRms] : users) {
        b.setInsertionPoint(op);
        Value stacked =
            stackedRun(b, op->getLoc(), sequences[sources.sequence], sources);
        Value stackedInvRms =
            invRms ? stackedRun(b, op->getLoc(), sequences[invRms->sequence],
                                *invRms)
                   : Value();
        FailureOr<SmallVector<Value>> results =
            decomposeOverStacked(b, op, stacked, stackedInvRms);
        if (failed(results))
          return signalPassFailure();
        b.replaceOp(op, *results);
      }
    }
  }
};
} // namespace
