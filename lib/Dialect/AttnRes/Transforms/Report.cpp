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
    if (blockSize < 0 || numBlocks < 0) {
      module.emitError() << "attnres-report: block-size and num-blocks must "
                            "be positive";
      return signalPassFailure();
    }
    auto refuse = [&](Operation *op, const Twine &why) {
      op->emitRemark() << "attnres-report: " << why;
    };
    for (Chain &chain : findChains(module, refuse)) {
      unsigned l = chain.getNumSublayers();
      unsigned s = chain.getBlockSize(), n = chain.getNumBlocks();
      const char *form = chain.isFull() ? "Full AttnRes" : "Block AttnRes";
      // A Full chain is reported for the blocking asked for, if any.
      if (chain.isFull() && (blockSize > 0 || numBlocks > 0)) {
        int64_t size =
            blockSize > 0 ? blockSize : (l + numBlocks - 1) / numBlocks;
        s = std::min<int64_t>(size, l);
        n = (l + s - 1) / s;
      }
      chain.final.emitRemark() << "attnres-report: " << form
                               << " chain: " << describeChain(chain, s, n)
                               << "; sources per aggregation: "
                               << formatSourceCounts(chain.getSourceCounts());
    }
    module.walk([&](FunctionOpInterface fn) {
      if (fn.isExternal())
        return;
      unsigned live = computeMaxLiveDepthSources(fn);
      if (live)
        fn->emitRemark() << "attnres-report: max live depth sources: " << live;
    });
  }
};
} // namespace
