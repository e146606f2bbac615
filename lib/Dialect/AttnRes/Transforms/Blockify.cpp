//===- Blockify.cpp ---------------------------------------------------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_BLOCKIFY
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

namespace {
// Not implemented yet: see the open issue for this pass.
struct BlockifyPass : public attnres::impl::BlockifyBase<BlockifyPass> {
  using Base::Base;
  void runOnOperation() override {}
};
} // namespace
