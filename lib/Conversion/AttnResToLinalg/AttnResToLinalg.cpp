//===- AttnResToLinalg.cpp - attnres to linalg on tensors -----------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Conversion/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_CONVERTATTNRESTOLINALG
#include "attnres/Conversion/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

void mlir::attnres::populateAttnResToLinalgPatterns(
    RewritePatternSet &patterns) {}

namespace {
// Not implemented yet.
struct ConvertAttnResToLinalgPass
    : public attnres::impl::ConvertAttnResToLinalgBase<ConvertAttnResToLinalgPass> {
  using Base::Base;
  void runOnOperation() override {}
};
} // namespace
