//===- SplitBlocksAfterLoops.cpp - One block per loop nest ----------------===//
//
// Part of the attnres project.
//
// attnres-split-blocks-after-loops: splits the blocks of a function body
// after every op with regions, so that convert-scf-to-cf, which splits the
// block of each loop it lowers, moves O(1) ops per loop instead of the rest
// of the function (docs/depth.md, cause 3).
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/IR/Builders.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_SPLITBLOCKSAFTERLOOPS
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

namespace {
struct SplitBlocksAfterLoopsPass
    : public attnres::impl::SplitBlocksAfterLoopsBase<
          SplitBlocksAfterLoopsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    SmallVector<Block *> blocks;
    for (Block &block : func.getBody())
      blocks.push_back(&block);
    OpBuilder b(func.getContext());
    for (Block *block : blocks) {
      SmallVector<Operation *> regionOps;
      for (Operation &op : *block)
        if (op.getNumRegions() > 0 && &op != &block->back())
          regionOps.push_back(&op);
      // From the last to the first: each split moves only the ops after
      // this region op up to the previous split.
      for (Operation *op : llvm::reverse(regionOps)) {
        Block *rest = block->splitBlock(op->getNextNode());
        b.setInsertionPointToEnd(block);
        cf::BranchOp::create(b, op->getLoc(), rest);
      }
    }
  }
};
} // namespace
