//===- AggregateGradLayoutTest.cpp - aggregate_grad's layout policy -------===//
//
// Part of the attnres project.
//
// chooseAggregateGradLayout (lib/Conversion/AttnResToGPU) decides, from the
// element type, D, the source count, accumulation, the pass options and the
// target's shared memory, how aggregate_grad's kernel is laid out: elements
// per thread, the occupancy hint, whether the rows stay in registers, and
// how many rows pass 1 keeps in shared memory. These are the cases that
// runs 19-34 measured (docs/gpu.md, bench/NOTES.md); the lit test
// convert-attnres-grad-to-gpu.mlir checks the kernels they produce.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/MLIRContext.h"
#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

namespace {

struct Layout {
  unsigned threads, elements, minCtas, sharedRows;
  bool inRegisters;
};

class AggregateGradLayoutTest : public ::testing::Test {
protected:
  Layout choose(Type e, int64_t d, unsigned n, bool acc,
                llvm::StringRef chip = "sm_90a",
                AggregateGradOptions options = {}) {
    std::string error;
    std::optional<NVVMTargetInfo> target =
        NVVMTargetInfo::parse(chip, "+ptx80", error);
    EXPECT_TRUE(target.has_value()) << error;
    AggregateGradSpec spec;
    spec.elementType = e;
    spec.d = d;
    spec.numSources = n;
    spec.accumulate = acc;
    chooseAggregateGradLayout(spec, options, *target);
    EXPECT_EQ(spec.layout.tokensPerCta, 1u);
    // Rows kept in shared memory never exceed the sources, and only when
    // they do not stay in registers.
    EXPECT_LE(spec.sharedRows, n);
    if (spec.rowsInRegisters)
      EXPECT_EQ(spec.sharedRows, 0u);
    return {spec.layout.ctaThreads(),
            unsigned(spec.layout.vectorsPerThread * spec.layout.vectorWidth),
            spec.layout.minCtasPerSM, spec.sharedRows, spec.rowsInRegisters};
  }

  MLIRContext ctx;
  Builder b{&ctx};
  Type bf16 = b.getBF16Type(), f32 = b.getF32Type();
};

// Two sources of 16-bit rows fit the registers (8 elements, 512 threads).
TEST_F(AggregateGradLayoutTest, FewSourcesStayInRegisters) {
  Layout l = choose(bf16, 4096, 2, false);
  EXPECT_TRUE(l.inRegisters);
  EXPECT_EQ(l.threads, 512u);
  EXPECT_EQ(l.elements, 8u);
}

// bf16 n = 9 D = 4096 (run 33): all rows in shared memory, 16 elements, two
// 256-thread CTAs per SM. With grad-rows-in-shared=0: 32 elements, re-read.
TEST_F(AggregateGradLayoutTest, SharedRowsTwoCtas) {
  Layout l = choose(bf16, 4096, 9, false);
  EXPECT_FALSE(l.inRegisters);
  EXPECT_EQ(l.elements, 16u);
  EXPECT_EQ(l.threads, 256u);
  EXPECT_EQ(l.minCtas, 2u);
  EXPECT_EQ(l.sharedRows, 9u);
  AggregateGradOptions reread;
  reread.rowsInShared = false;
  Layout r = choose(bf16, 4096, 9, false, "sm_90a", reread);
  EXPECT_EQ(r.sharedRows, 0u);
  EXPECT_EQ(r.elements, 32u);
  EXPECT_EQ(r.threads, 128u);
}

// bf16 n = 9 D = 2048: 16 elements make 128-thread CTAs, which get no
// occupancy hint (run 35: with it ptxas took 234 registers, two CTAs per
// SM, and the kernel was 1.10x slower than at 128 registers, four).
TEST_F(AggregateGradLayoutTest, SmallCtasNoHint) {
  Layout l = choose(bf16, 2048, 9, false);
  EXPECT_EQ(l.elements, 16u);
  EXPECT_EQ(l.threads, 128u);
  EXPECT_EQ(l.minCtas, 0u);
  EXPECT_EQ(l.sharedRows, 9u);
}

// 17 rows (136 KB) do not fit two CTAs: one CTA keeps them all.
// min-ctas-per-sm=2 keeps the 13 that fit two (run 34: slower, not default).
TEST_F(AggregateGradLayoutTest, ManySourcesOneCta) {
  Layout l = choose(bf16, 4096, 17, false);
  EXPECT_EQ(l.threads, 256u);
  EXPECT_EQ(l.minCtas, 0u);
  EXPECT_EQ(l.sharedRows, 17u);
  AggregateGradOptions two;
  two.minCtasPerSM = 2;
  Layout t = choose(bf16, 4096, 17, false, "sm_90a", two);
  EXPECT_EQ(t.minCtas, 2u);
  EXPECT_EQ(t.sharedRows, 13u);
}

// D = 7168: 16 elements (448 threads) without accumulators, 32 (224) with
// them (run 34: the 448-thread kernel spills).
TEST_F(AggregateGradLayoutTest, WideRowsWithAccumulators) {
  Layout l = choose(bf16, 7168, 10, false);
  EXPECT_EQ(l.threads, 448u);
  EXPECT_EQ(l.sharedRows, 10u);
  Layout a = choose(bf16, 7168, 10, true);
  EXPECT_EQ(a.threads, 224u);
  EXPECT_EQ(a.elements, 32u);
  EXPECT_EQ(a.sharedRows, 10u);
  // At D = 4096 the accumulating kernel keeps 256-thread CTAs.
  EXPECT_EQ(choose(bf16, 4096, 9, true).threads, 256u);
  // elements-per-thread overrides the policy.
  AggregateGradOptions e16;
  e16.elementsPerThread = 16;
  EXPECT_EQ(choose(bf16, 7168, 10, true, "sm_90a", e16).threads, 448u);
}

// Rows that do not all fit: the first k stay (f32 n = 20 D = 4096: 13 of
// 20 at one CTA per SM on sm_90; the 100 KB of sm_86 hold 5 of 9 bf16 rows
// for each of two CTAs, sm_80's 164 KB all 9).
TEST_F(AggregateGradLayoutTest, PartialRowsAndTheTargetsSharedMemory) {
  EXPECT_EQ(choose(f32, 4096, 20, false).sharedRows, 13u);
  EXPECT_EQ(choose(bf16, 4096, 9, false, "sm_86").sharedRows, 5u);
  EXPECT_EQ(choose(bf16, 4096, 9, false, "sm_80").sharedRows, 9u);
}

} // namespace
