//===- DetectResidualChains.cpp - raising + conversion pipeline -----------===//
//
// Part of the attnres project.
//
// attnres-detect-residual-chains is the pipeline of the two detection passes
// (docs/detection.md): attnres-raise-aggregations (AttnRes written in
// primitives to attnres.aggregate), then attnres-convert-residual-chains
// (standard PreNorm chains to Full AttnRes). Its options are forwarded.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_DETECTRESIDUALCHAINS
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

namespace {

struct DetectResidualChainsPass
    : public attnres::impl::DetectResidualChainsBase<DetectResidualChainsPass> {
  using Base::Base;

  void runOnOperation() override {
    OpPassManager pm(ModuleOp::getOperationName());
    RaiseAggregationsOptions raise;
    raise.report = report;
    pm.addPass(createRaiseAggregations(raise));
    ConvertResidualChainsOptions convert;
    convert.convertStandard = convertStandard;
    convert.report = report;
    convert.scaleInvariantCallees = llvm::to_vector(scaleInvariantCallees);
    pm.addPass(createConvertResidualChains(convert));
    if (failed(runPipeline(pm, getOperation())))
      signalPassFailure();
  }
};

} // namespace
