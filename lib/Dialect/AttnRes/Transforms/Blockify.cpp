//===- Blockify.cpp - Full AttnRes to Block AttnRes -----------------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// Rewrites every Full AttnRes chain into Block AttnRes (section 3 of the
// semantics, docs/block-form.md). The aggregations are updated in place:
// their sources become the completed block summaries and the partial sum of
// the sublayer's own block, which `attnres.block_sum` ops accumulate one
// sublayer output at a time, so that only one partial sum is live.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"
#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_BLOCKIFY
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

/// Rewrites the Full AttnRes chain `chain` into blocks of `blockSize`.
static void blockify(Chain &chain, unsigned blockSize) {
  unsigned numSublayers = chain.getNumSublayers();
  RankedTensorType type = chain.getSourceType();
  OpBuilder builder(chain.final->getContext());

  SmallVector<Value> completed{chain.getEmbedding()};
  Value partial;
  for (unsigned l = 0; l < numSublayers; ++l) {
    ChainSublayer &sub = chain.sublayers[l];
    if (sub.aggregate) {
      SmallVector<Value> sources(completed);
      if (partial)
        sources.push_back(partial);
      sub.aggregate.getSourcesMutable().assign(sources);
    }
    // The next aggregation reads y_l (Full AttnRes), so the sums that replace
    // it go right before that aggregation, where y_l and the partial sum
    // both dominate. Only the first sublayer's aggregation can be missing.
    Operation *consumer = l + 1 < numSublayers
                              ? chain.sublayers[l + 1].aggregate.getOperation()
                              : chain.final.getOperation();
    Value sum = sub.output;
    if (partial) {
      builder.setInsertionPoint(consumer);
      sum = BlockSumOp::create(builder, sub.output.getLoc(), type,
                               ValueRange{partial, sub.output});
    }
    bool blockEnds = l % blockSize == blockSize - 1 || l + 1 == numSublayers;
    if (blockEnds) {
      completed.push_back(sum);
      partial = {};
    } else {
      partial = sum;
    }
  }
  chain.final.getSourcesMutable().assign(completed);
}

namespace {
struct BlockifyPass : public attnres::impl::BlockifyBase<BlockifyPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto refuse = [&](Operation *op, const Twine &why) {
      if (report)
        emitRemark(op->getLoc()) << "attnres-blockify: " << why;
    };
    SmallVector<Chain> chains = findChains(module, refuse);
    BlockingRequest request{blockSize, numBlocks, blockSize.hasValue(),
                            numBlocks.hasValue()};
    if (failed(verifyBlockingRequest(request, getArgument(),
                                     /*required=*/true,
                                     getOptionsLoc(module, chains))))
      return signalPassFailure();

    // Live depth sources of the functions holding chains, before.
    llvm::MapVector<Operation *, unsigned> liveBefore;
    if (report)
      for (Chain &chain : chains) {
        Operation *parent = chain.final->getParentOp();
        if (!liveBefore.count(parent))
          liveBefore[parent] = computeMaxLiveDepthSources(parent);
      }

    SmallVector<std::tuple<AggregateOp, std::string, Operation *>> remarks;
    for (Chain &chain : chains) {
      unsigned numSublayers = chain.getNumSublayers();
      if (!chain.isFull()) {
        if (report)
          emitRemark(chain.final.getLoc())
              << "attnres-blockify: chain of " << numSublayers
              << " sublayers is already in block form (block size "
              << chain.getBlockSize() << "), left unchanged";
        continue;
      }
      Blocking blocking = resolveBlocking(request, numSublayers, getArgument(),
                                          chain.final.getLoc());
      unsigned size = blocking.blockSize, blocks = blocking.numBlocks;
      SmallVector<unsigned> before = chain.getSourceCounts();
      if (report)
        remarks.emplace_back(
            chain.final,
            describeChain(chain, size, blocks) + "; sources per aggregation: " +
                formatSourceCounts(before) + " -> " +
                formatSourceCounts(getBlockSourceCounts(numSublayers, size)),
            chain.final->getParentOp());
      blockify(chain, size);
    }

    // Remarks once every chain is rewritten, with the functions' liveness.
    llvm::DenseMap<Operation *, unsigned> liveAfter;
    for (auto &[final, text, parent] : remarks) {
      if (!liveAfter.count(parent))
        liveAfter[parent] = computeMaxLiveDepthSources(parent);
      emitRemark(final.getLoc())
          << "attnres-blockify: " << text
          << "; max live depth sources: " << liveBefore[parent] << " -> "
          << liveAfter[parent];
    }
  }
};
} // namespace
