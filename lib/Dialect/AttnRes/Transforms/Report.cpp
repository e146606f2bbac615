//===- Report.cpp - report AttnRes chains ---------------------------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// An analysis pass that emits remarks on every chain (block structure,
// sources per aggregation, bytes moved per token per sublayer) and on every
// function (live depth sources). See docs/block-form.md.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"
#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/Interfaces/FunctionInterfaces.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_REPORT
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

namespace {
struct ReportPass : public attnres::impl::ReportBase<ReportPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto refuse = [&](Operation *op, const Twine &why) {
      emitRemark(op->getLoc()) << "attnres-report: " << why;
    };
    SmallVector<Chain> chains = findChains(module, refuse);
    BlockingRequest request{blockSize, numBlocks, blockSize.hasValue(),
                            numBlocks.hasValue()};
    if (failed(verifyBlockingRequest(request, getArgument(),
                                     /*required=*/false,
                                     getOptionsLoc(module, chains))))
      return signalPassFailure();
    for (Chain &chain : chains) {
      unsigned s = chain.getBlockSize(), n = chain.getNumBlocks();
      const char *form = chain.isFull() ? "Full AttnRes" : "Block AttnRes";
      // A Full chain is reported for the blocking asked for, if any.
      if (chain.isFull() && request.isSet()) {
        Blocking blocking =
            resolveBlocking(request, chain.getNumSublayers(), getArgument(),
                            chain.final.getLoc());
        s = blocking.blockSize;
        n = blocking.numBlocks;
      }
      emitRemark(chain.final.getLoc())
          << "attnres-report: " << form
          << " chain: " << describeChain(chain, s, n)
          << "; sources per aggregation: "
          << formatSourceCounts(chain.getSourceCounts());
    }
    module.walk([&](FunctionOpInterface fn) {
      if (fn.isExternal())
        return;
      unsigned live = computeMaxLiveDepthSources(fn);
      if (live)
        emitRemark(fn.getLoc())
            << "attnres-report: max live depth sources: " << live;
    });
  }
};
} // namespace
