//===- AttnResToLinalg.cpp - attnres to linalg on tensors -----------------===//
//
// Part of the attnres project.
//
// A driver over the decomposition interface: every attnres op implements
// linalg::AggregatedOpInterface (DecompositionInterfaceImpl.cpp), whose
// `decomposeOperation` expresses it as linalg.generic reductions and
// elementwise maps on tensors. This pass decomposes each attnres op and
// replaces it, so the pass and `transform.structured.decompose_interface`
// share one description of each op's math.
//
//===----------------------------------------------------------------------===//

#include "attnres/Conversion/Passes.h"
#include "attnres/Dialect/AttnRes/Transforms/DecompositionInterfaceImpl.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_CONVERTATTNRESTOLINALG
#include "attnres/Conversion/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

/// Decomposes `op` through linalg::AggregatedOpInterface and replaces it.
/// Emits an error at the op and fails when it has no decomposition.
static LogicalResult decomposeAttnResOp(RewriterBase &rewriter, Operation *op) {
  auto decomposable = dyn_cast<linalg::AggregatedOpInterface>(op);
  if (!decomposable)
    return op->emitOpError(
        "has no decomposition into linalg (linalg::AggregatedOpInterface is "
        "not registered for it)");
  rewriter.setInsertionPoint(op);
  FailureOr<SmallVector<Value>> replacements =
      decomposable.decomposeOperation(rewriter);
  if (failed(replacements))
    return op->emitOpError("could not be decomposed into linalg");
  rewriter.replaceOp(op, *replacements);
  return success();
}

namespace {
/// Decomposes any attnres op (for use in a user's pattern set).
struct DecomposeAttnResOpPattern : public RewritePattern {
  DecomposeAttnResOpPattern(MLIRContext *ctx)
      : RewritePattern(MatchAnyOpTypeTag(), /*benefit=*/1, ctx) {}

  LogicalResult matchAndRewrite(Operation *op,
                                PatternRewriter &rewriter) const override {
    if (!isa<AttnResDialect>(op->getDialect()))
      return rewriter.notifyMatchFailure(op, "not an attnres op");
    auto decomposable = dyn_cast<linalg::AggregatedOpInterface>(op);
    if (!decomposable)
      return rewriter.notifyMatchFailure(op, "no decomposition registered");
    FailureOr<SmallVector<Value>> replacements =
        decomposable.decomposeOperation(rewriter);
    if (failed(replacements))
      return rewriter.notifyMatchFailure(op, "decomposition failed");
    rewriter.replaceOp(op, *replacements);
    return success();
  }
};
} // namespace

void mlir::attnres::populateAttnResToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<DecomposeAttnResOpPattern>(patterns.getContext());
}

namespace {
struct ConvertAttnResToLinalgPass
    : public attnres::impl::ConvertAttnResToLinalgBase<
          ConvertAttnResToLinalgPass> {
  using Base::Base;

  void getDependentDialects(DialectRegistry &registry) const override {
    Base::getDependentDialects(registry);
    // The pass works in any context (attnres-opt, the plugin in mlir-opt,
    // the C API) whether or not the tool registered the external models.
    registerDecompositionInterfaceExternalModels(registry);
  }

  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (op != getOperation() && isa<AttnResDialect>(op->getDialect()))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : ops)
      if (failed(decomposeAttnResOp(rewriter, op)))
        return signalPassFailure();
  }
};
} // namespace
