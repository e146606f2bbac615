//===- AttnResOpsTest.cpp - C++ API tests of the attnres ops --------------===//
//
// Part of the attnres project.
//
// Builders, verifier diagnostics (constraint numbers of docs/spec.md), folds,
// canonicalization patterns and shape reification through the C++ API.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "gtest/gtest.h"

#include <string>

using namespace mlir;
using namespace mlir::attnres;

namespace {

class AttnResOpsTest : public ::testing::Test {
protected:
  AttnResOpsTest() : b(&ctx) {
    ctx.loadDialect<AttnResDialect, arith::ArithDialect, func::FuncDialect,
                    tensor::TensorDialect>();
    loc = b.getUnknownLoc();
    module = ModuleOp::create(loc);
  }
  ~AttnResOpsTest() override { module->erase(); }

  /// Creates `func.func @f(argTypes)` with an entry block and sets the
  /// insertion point into it.
  Block *makeFunc(TypeRange argTypes) {
    b.setInsertionPointToEnd(module.getBody());
    auto fn =
        func::FuncOp::create(b, loc, "f", b.getFunctionType(argTypes, {}));
    Block *body = fn.addEntryBlock();
    b.setInsertionPointToEnd(body);
    return body;
  }

  /// Verifies `op` and returns the concatenated diagnostics ("" if valid).
  std::string verifyMessages(Operation *op) {
    std::string messages;
    ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &diag) {
      messages += diag.str();
      messages += "\n";
      return success();
    });
    if (succeeded(verify(op)))
      return "";
    return messages;
  }

  RankedTensorType tensor(ArrayRef<int64_t> shape, Type elt) {
    return RankedTensorType::get(shape, elt);
  }

  MLIRContext ctx;
  OpBuilder b;
  Location loc = UnknownLoc::get(&ctx);
  ModuleOp module;
};

// Building an aggregate through the C++ builder gives a verified op with the
// sources' type and the requested epsilon.
TEST_F(AttnResOpsTest, BuildAggregate) {
  auto src = tensor({4, 24}, b.getBF16Type());
  auto vec = tensor({24}, b.getBF16Type());
  Block *body = makeFunc({vec, vec, src, src, src});
  auto agg =
      AggregateOp::create(b, loc, body->getArgument(0), body->getArgument(1),
                          body->getArguments().drop_front(2), 1e-5f);
  func::ReturnOp::create(b, loc);
  EXPECT_TRUE(succeeded(verify(module)));
  EXPECT_EQ(agg.getType(), src);
  EXPECT_EQ(agg.getNumSources(), 3u);
  EXPECT_FLOAT_EQ(agg.getEpsilon().convertToFloat(), 1e-5f);
}

// The type-inferring builders of block_sum, inv_rms, block_score and merge.
TEST_F(AttnResOpsTest, BuildBlockFormOps) {
  Type bf16 = b.getBF16Type(), f32 = b.getF32Type();
  auto src = tensor({ShapedType::kDynamic, 8, 32}, bf16);
  auto vec = tensor({32}, bf16);
  auto mat = tensor({3, 32}, bf16);
  auto out = tensor({3, ShapedType::kDynamic, 8, 32}, bf16);
  auto lse = tensor({3, ShapedType::kDynamic, 8}, f32);
  auto tok = tensor({ShapedType::kDynamic, 8}, f32);
  Block *body = makeFunc({src, src, vec, mat, out, lse, tok});
  Value a = body->getArgument(0), c = body->getArgument(1);
  Value q = body->getArgument(2), w = body->getArgument(3);

  auto sum = BlockSumOp::create(b, loc, ValueRange{a, c});
  EXPECT_EQ(sum.getType(), src);

  auto rms = InvRmsOp::create(b, loc, sum.getResult());
  EXPECT_EQ(rms.getType(), tok);
  EXPECT_FLOAT_EQ(rms.getEpsilon().convertToFloat(), 1e-6f);

  auto score = BlockScoreOp::create(
      b, loc, w, w, ValueRange{a, sum},
      ValueRange{InvRmsOp::create(b, loc, a), rms.getResult()},
      body->getArgument(4), body->getArgument(5), 2e-6f);
  EXPECT_EQ(score.getOut().getType(), out);
  EXPECT_EQ(score.getLse().getType(), lse);
  EXPECT_EQ(score.getNumQueries(), 3);
  EXPECT_EQ(score.getDpsInits().size(), 2u);
  EXPECT_EQ(score.getInvRms().size(), 2u);

  auto merge = MergeOp::create(b, loc, a, body->getArgument(6), q, q, c,
                               /*partial=*/Value());
  EXPECT_EQ(merge.getResult().getType(), src);
  EXPECT_EQ(merge.getNewPartial().getType(), src);
  EXPECT_FALSE(merge.getPartial());
  auto merge2 = MergeOp::create(b, loc, a, body->getArgument(6), q, q, c,
                                merge.getNewPartial());
  EXPECT_EQ(merge2.getPartial(), merge.getNewPartial());
  func::ReturnOp::create(b, loc);
  EXPECT_EQ(verifyMessages(module), "");
}

// Invalid ops built through the C++ API are reported with the constraint
// number of docs/spec.md.
TEST_F(AttnResOpsTest, VerifierAggregate) {
  Type f32 = b.getF32Type();
  auto src = tensor({4, 64}, f32);
  Block *body = makeFunc({tensor({32}, f32), tensor({64}, f32), src});
  Value q32 = body->getArgument(0), q64 = body->getArgument(1);
  Value v = body->getArgument(2);

  auto bad = AggregateOp::create(b, loc, q32, q64, ValueRange{v, v});
  EXPECT_NE(verifyMessages(bad).find("query must have type "
                                     "'tensor<64xf32>'"),
            std::string::npos);
  EXPECT_NE(verifyMessages(bad).find("(C5)"), std::string::npos);
  bad->erase();

  auto noSource = AggregateOp::create(b, loc, src, q64, q64, ValueRange{},
                                      b.getF32FloatAttr(1e-6f));
  EXPECT_NE(verifyMessages(noSource).find("requires at least one source (C1)"),
            std::string::npos);
  noSource->erase();

  auto negEps = AggregateOp::create(b, loc, q64, q64, ValueRange{v, v}, -1.f);
  EXPECT_NE(verifyMessages(negEps).find("(C7)"), std::string::npos);
  negEps->erase();

  auto good = AggregateOp::create(b, loc, q64, q64, ValueRange{v, v}, 0.f);
  EXPECT_EQ(verifyMessages(good), "");
}

TEST_F(AttnResOpsTest, VerifierBlockScoreAndMerge) {
  Type f32 = b.getF32Type(), f16 = b.getF16Type();
  auto src = tensor({8, 16}, f16);
  Block *body = makeFunc({tensor({2, 16}, f16), src, tensor({2, 8, 16}, f16),
                          tensor({2, 8}, f32), tensor({4}, f32),
                          tensor({8}, f32), tensor({16}, f16)});
  Value w = body->getArgument(0), v = body->getArgument(1);
  Value o = body->getArgument(2), l = body->getArgument(3);
  Value r4 = body->getArgument(4), r8 = body->getArgument(5);
  Value q = body->getArgument(6);

  // (C7): one inv_rms for two sources.
  auto count = BlockScoreOp::create(b, loc, w, w, ValueRange{v, v},
                                    ValueRange{r8}, o, l);
  EXPECT_NE(verifyMessages(count).find("(C7)"), std::string::npos);
  count->erase();
  // (C8): an inv_rms over 4 tokens for sources of 8.
  auto shape =
      BlockScoreOp::create(b, loc, w, w, ValueRange{v}, ValueRange{r4}, o, l);
  EXPECT_NE(verifyMessages(shape).find("inv_rms #0 must have type "
                                       "'tensor<8xf32>'"),
            std::string::npos);
  shape->erase();
  // (C10): lse_init given where out_init goes.
  auto lse =
      BlockScoreOp::create(b, loc, w, w, ValueRange{v}, ValueRange{}, o, o);
  EXPECT_NE(verifyMessages(lse).find("(C10)"), std::string::npos);
  lse->erase();
  // (C4) of merge: lse of the wrong token count.
  auto merge = MergeOp::create(b, loc, v, r4, q, q, v, Value());
  EXPECT_NE(verifyMessages(merge).find("lse must have type 'tensor<8xf32>'"),
            std::string::npos);
  EXPECT_NE(verifyMessages(merge).find("(C4)"), std::string::npos);
  merge->erase();
  // (C3) of merge: explicit result types that differ from update.
  auto types = MergeOp::create(b, loc, src, tensor({8, 16}, f32), v, r8, q, q,
                               v, Value(), b.getF32FloatAttr(1e-6f));
  EXPECT_NE(verifyMessages(types).find("new_partial has type"),
            std::string::npos);
  types->erase();
  // (C3) of inv_rms: bf16 result.
  auto rms =
      InvRmsOp::create(b, loc, tensor({8}, f16), v, b.getF32FloatAttr(1e-6f));
  EXPECT_NE(verifyMessages(rms).find("(C3)"), std::string::npos);
  rms->erase();

  auto good = BlockScoreOp::create(b, loc, w, w, ValueRange{v, v},
                                   ValueRange{r8, r8}, o, l);
  EXPECT_EQ(verifyMessages(good), "");
}

// fold() of aggregate and block_sum with one operand returns that operand;
// with more it does nothing.
TEST_F(AttnResOpsTest, Fold) {
  Type f32 = b.getF32Type();
  auto src = tensor({4, 8}, f32);
  auto vec = tensor({8}, f32);
  Block *body = makeFunc({vec, src, src});
  Value q = body->getArgument(0), v = body->getArgument(1);
  Value u = body->getArgument(2);

  SmallVector<OpFoldResult> results;
  auto one = AggregateOp::create(b, loc, q, q, ValueRange{v});
  ASSERT_TRUE(succeeded(one->fold(results)));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(dyn_cast<Value>(results.front()), v);

  results.clear();
  auto two = AggregateOp::create(b, loc, q, q, ValueRange{v, u});
  EXPECT_TRUE(failed(two->fold(results)));

  results.clear();
  auto sum1 = BlockSumOp::create(b, loc, ValueRange{u});
  ASSERT_TRUE(succeeded(sum1->fold(results)));
  EXPECT_EQ(dyn_cast<Value>(results.front()), u);

  results.clear();
  auto sum2 = BlockSumOp::create(b, loc, ValueRange{u, v});
  EXPECT_TRUE(failed(sum2->fold(results)));
}

// Greedy canonicalization: zero inputs of block_sum and a zero partial of
// merge are dropped, f32 sums are flattened, bf16 sums are not.
TEST_F(AttnResOpsTest, Canonicalize) {
  Type f32 = b.getF32Type(), bf16 = b.getBF16Type();
  auto src = tensor({4, 8}, f32);
  auto srcBf = tensor({4, 8}, bf16);
  Block *body = makeFunc(
      {src, src, src, srcBf, srcBf, srcBf, tensor({4}, f32), tensor({8}, f32)});
  Value a = body->getArgument(0), c = body->getArgument(1);
  Value d = body->getArgument(2);
  Value x = body->getArgument(3), y = body->getArgument(4);
  Value z = body->getArgument(5);
  Value l = body->getArgument(6), q = body->getArgument(7);

  Value zero = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(src, b.getF32FloatAttr(0.0f)));
  auto withZero = BlockSumOp::create(b, loc, ValueRange{a, zero, c});
  auto inner = BlockSumOp::create(b, loc, ValueRange{a, c});
  auto outer = BlockSumOp::create(b, loc, ValueRange{inner, d});
  auto innerBf = BlockSumOp::create(b, loc, ValueRange{x, y});
  auto outerBf = BlockSumOp::create(b, loc, ValueRange{innerBf, z});
  auto merge = MergeOp::create(b, loc, a, l, q, q, c, zero);
  func::ReturnOp::create(b, loc,
                         ValueRange{withZero, outer, outerBf, merge.getResult(),
                                    merge.getNewPartial()});
  auto fn = cast<func::FuncOp>(body->getParentOp());
  fn.setType(
      b.getFunctionType(body->getArgumentTypes(), {src, src, srcBf, src, src}));
  ASSERT_EQ(verifyMessages(module), "");

  RewritePatternSet patterns(&ctx);
  BlockSumOp::getCanonicalizationPatterns(patterns, &ctx);
  MergeOp::getCanonicalizationPatterns(patterns, &ctx);
  ASSERT_TRUE(succeeded(applyPatternsGreedily(fn, std::move(patterns))));
  ASSERT_EQ(verifyMessages(module), "");

  auto ret = cast<func::ReturnOp>(body->getTerminator());
  auto s0 = ret.getOperand(0).getDefiningOp<BlockSumOp>();
  ASSERT_TRUE(s0);
  EXPECT_EQ(SmallVector<Value>(s0.getInputs()), (SmallVector<Value>{a, c}));
  auto s1 = ret.getOperand(1).getDefiningOp<BlockSumOp>();
  ASSERT_TRUE(s1);
  EXPECT_EQ(SmallVector<Value>(s1.getInputs()), (SmallVector<Value>{a, c, d}));
  auto s2 = ret.getOperand(2).getDefiningOp<BlockSumOp>();
  ASSERT_TRUE(s2);
  EXPECT_EQ(s2.getInputs().size(), 2u);
  EXPECT_TRUE(s2.getInputs().front().getDefiningOp<BlockSumOp>());
  auto m = ret.getOperand(3).getDefiningOp<MergeOp>();
  ASSERT_TRUE(m);
  EXPECT_FALSE(m.getPartial());
  EXPECT_EQ(ret.getOperand(4), m.getNewPartial());
}

// Shape reification gives tensor.dim of the operands for dynamic sizes.
TEST_F(AttnResOpsTest, ReifyResultShapes) {
  Type f32 = b.getF32Type();
  auto src = tensor({ShapedType::kDynamic, 3, 8}, f32);
  Block *body = makeFunc({tensor({8}, f32), src});
  Value q = body->getArgument(0), v = body->getArgument(1);
  auto agg = AggregateOp::create(b, loc, q, q, ValueRange{v, v});
  auto rms = InvRmsOp::create(b, loc, v);

  ReifiedRankedShapedTypeDims shapes;
  ASSERT_TRUE(
      succeeded(cast<ReifyRankedShapedTypeOpInterface>(agg.getOperation())
                    .reifyResultShapes(b, shapes)));
  ASSERT_EQ(shapes.size(), 1u);
  ASSERT_EQ(shapes[0].size(), 3u);
  auto dim = dyn_cast<Value>(shapes[0][0]).getDefiningOp<tensor::DimOp>();
  ASSERT_TRUE(dim);
  EXPECT_EQ(dim.getSource(), v);
  EXPECT_EQ(getConstantIntValue(shapes[0][1]), 3);
  EXPECT_EQ(getConstantIntValue(shapes[0][2]), 8);

  shapes.clear();
  ASSERT_TRUE(
      succeeded(cast<ReifyRankedShapedTypeOpInterface>(rms.getOperation())
                    .reifyResultShapes(b, shapes)));
  ASSERT_EQ(shapes[0].size(), 2u);
  EXPECT_TRUE(dyn_cast<Value>(shapes[0][0]));
  EXPECT_EQ(getConstantIntValue(shapes[0][1]), 3);
}

} // namespace
