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
/// and the aggregations that read a contiguous run of it.
struct Sequence {
  SmallVector<Value> values;
  DenseMap<Value, unsigned> index;
  /// (aggregation, offset of its first source in `values`).
  SmallVector<std::pair<AggregateOp, unsigned>> users;
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

/// Materializes `seq` and replaces its aggregations. Returns failure (with a
/// diagnostic) if a decomposition fails.
static LogicalResult stack(Sequence &seq) {
  Value first = seq.values.front();
  auto type = cast<RankedTensorType>(first.getType());
  unsigned rank = type.getRank();
  int64_t count = seq.values.size();
  Location loc = first.getLoc();
  IRRewriter b(first.getContext());

  // The stacked tensor, right after the first value (its dynamic sizes are
  // read from it).
  setInsertionPointAfterDef(b, first);
  SmallVector<OpFoldResult> sizes;
  sizes.push_back(b.getIndexAttr(count));
  for (unsigned i = 0; i < rank; ++i) {
    if (type.isDynamicDim(i))
      sizes.push_back(tensor::DimOp::create(b, loc, first, i).getResult());
    else
      sizes.push_back(b.getIndexAttr(type.getDimSize(i)));
  }
  Value current = tensor::EmptyOp::create(b, loc, sizes, type.getElementType());
  SmallVector<OpFoldResult> unitStrides(rank + 1, b.getIndexAttr(1));
  SmallVector<OpFoldResult> oneSizes(sizes);
  oneSizes.front() = b.getIndexAttr(1);

  // After value j, the stack holding values 0..j: stackAfter[j + 1].
  SmallVector<Value> stackAfter{current};
  for (auto [j, v] : llvm::enumerate(seq.values)) {
    Operation *currentDef = current.getDefiningOp();
    if (isa<BlockArgument>(v) ||
        v.getDefiningOp()->isBeforeInBlock(currentDef) ||
        v.getDefiningOp() == currentDef)
      b.setInsertionPointAfter(currentDef);
    else
      setInsertionPointAfterDef(b, v);
    SmallVector<OpFoldResult> offsets(rank + 1, b.getIndexAttr(0));
    offsets.front() = b.getIndexAttr(static_cast<int64_t>(j));
    current = tensor::InsertSliceOp::create(b, v.getLoc(), v, current, offsets,
                                            oneSizes, unitStrides);
    stackAfter.push_back(current);
  }

  for (auto [op, offset] : seq.users) {
    unsigned n = op.getSources().size();
    Value stacked = stackAfter[offset + n];
    b.setInsertionPoint(op);
    if (offset != 0 || static_cast<int64_t>(n) != count) {
      SmallVector<OpFoldResult> offsets(rank + 1, b.getIndexAttr(0));
      offsets.front() = b.getIndexAttr(offset);
      SmallVector<OpFoldResult> runSizes(sizes);
      runSizes.front() = b.getIndexAttr(n);
      stacked = tensor::ExtractSliceOp::create(b, op.getLoc(), stacked, offsets,
                                               runSizes, unitStrides);
    }
    FailureOr<Value> result = decomposeAggregateOfStacked(b, op, stacked);
    if (failed(result))
      return failure();
    b.replaceOp(op, *result);
  }
  return success();
}

namespace {
struct StackAggregateSourcesPass
    : public attnres::impl::StackAggregateSourcesBase<StackAggregateSourcesPass> {
  void runOnOperation() override {
    // The aggregations of each block, in order.
    llvm::MapVector<Block *, SmallVector<AggregateOp>> byBlock;
    getOperation().walk([&](AggregateOp op) {
      if (op.getSources().size() >= 2)
        byBlock[op->getBlock()].push_back(op);
    });
    for (auto &[block, ops] : byBlock) {
      // Longest first: a shorter aggregation joins the sequence of a longer
      // one when its sources are a contiguous run of it.
      // (Ties keep program order.)
      DenseMap<Operation *, unsigned> position;
      for (auto [i, op] : llvm::enumerate(ops))
        position[op] = i;
      llvm::sort(ops, [&](AggregateOp a, AggregateOp b) {
        size_t na = a.getSources().size(), nb = b.getSources().size();
        return na != nb ? na > nb : position[a] < position[b];
      });
      std::vector<Sequence> sequences;
      for (AggregateOp op : ops) {
        ValueRange sources = op.getSources();
        bool placed = false;
        for (Sequence &seq : sequences) {
          auto it = seq.index.find(sources.front());
          if (it == seq.index.end())
            continue;
          unsigned offset = it->second;
          if (offset + sources.size() > seq.values.size() ||
              !llvm::equal(sources,
                           ArrayRef(seq.values).slice(offset, sources.size())))
            continue;
          seq.users.push_back({op, offset});
          placed = true;
          break;
        }
        if (placed || !isOrderedRun(sources, block))
          continue;
        Sequence seq;
        for (auto [i, v] : llvm::enumerate(sources)) {
          seq.values.push_back(v);
          seq.index[v] = i;
        }
        seq.users.push_back({op, 0});
        sequences.push_back(std::move(seq));
      }
      for (Sequence &seq : sequences) {
        // Program order of the users does not matter: each reads the stack
        // that holds its last source.
        if (failed(stack(seq)))
          return signalPassFailure();
      }
    }
  }
};
} // namespace
