//===- AttnResOpsTest.cpp - C++ API tests of the attnres ops --------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Verifier.h"
#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::attnres;

namespace {

class AttnResOpsTest : public ::testing::Test {
protected:
  AttnResOpsTest() {
    ctx.loadDialect<AttnResDialect, func::FuncDialect>();
  }
  MLIRContext ctx;
};

// Building an aggregate through the C++ builder gives a verified op with the
// sources' type and the requested epsilon.
TEST_F(AttnResOpsTest, BuildAggregate) {
  OpBuilder b(&ctx);
  Location loc = b.getUnknownLoc();
  auto module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module.getBody());
  auto src = RankedTensorType::get({4, 24}, b.getBF16Type());
  auto vec = RankedTensorType::get({24}, b.getBF16Type());
  auto fn = func::FuncOp::create(
      b, loc, "f", b.getFunctionType({vec, vec, src, src, src}, {src}));
  Block *body = fn.addEntryBlock();
  b.setInsertionPointToEnd(body);
  auto agg = AggregateOp::create(b, loc, body->getArgument(0),
                                 body->getArgument(1),
                                 body->getArguments().drop_front(2), 1e-5f);
  func::ReturnOp::create(b, loc, agg.getResult());
  EXPECT_TRUE(succeeded(verify(module)));
  EXPECT_EQ(agg.getType(), src);
  EXPECT_EQ(agg.getNumSources(), 3u);
  EXPECT_FLOAT_EQ(agg.getEpsilon().convertToFloat(), 1e-5f);
  module->erase();
}

} // namespace
