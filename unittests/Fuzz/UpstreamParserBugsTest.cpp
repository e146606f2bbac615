//===- UpstreamParserBugsTest.cpp - The fuzz target's input filter --------===//
//
// Part of the attnres project.
//
// Every input in `kCrashing` crashes Debian's MLIR 22.1 parser (checked with
// attnres-opt and stock mlir-opt-22 when the case was added; see
// test/Fuzz/README.md), so the filter must reject it. Every input in
// `kValid` parses, so the filter must let it through: rejecting valid input
// would hide the project's code from the fuzzer.
//
//===----------------------------------------------------------------------===//

#include "UpstreamParserBugs.h"

#include "gtest/gtest.h"

#include <string>

using mlir::attnres::fuzz::hitsKnownUpstreamParserCrash;

namespace {

std::string transpose(const std::string &permutation) {
  return "func.func @t(%a: tensor<2x4xf32>, %b: tensor<4x2xf32>) -> "
         "tensor<4x2xf32> {\n  %r = linalg.transpose ins(%a : "
         "tensor<2x4xf32>) outs(%b : tensor<4x2xf32>) " +
         permutation + "\n  return %r : tensor<4x2xf32>\n}\n";
}

TEST(UpstreamParserBugs, RejectsMalformedDenseArrays) {
  const char *const kCrashing[] = {
      "permutation = [1, 0",   // end of line (the first fuzz find)
      "permutation = [1, x]",  // not an integer
      "permutation = garbage", // no `[`
      "permutation = array<i64: 1, 0>",
      "permutation = [1, 99999999999999999999]", // does not fit in int64
      "permutation = [1, 1000000000000000000]",  // 19 digits: rejected too
      "permutation = [1,, 0]",
      "permutation = [1, 0,]",
      "permutation = [-]",
      "permutation = [1 0]",
      "permutation = [1, 0.5]",
      "permutation = [1, 0x1]",
      "permutation = [1, 0e1]",
      "permutation = [1, /0]",
      "permutation // comment\n = [1, 0", // comments between tokens
      "permutation = // comment\n [1, 0",
      "permutation = [1, // comment\n 0",
      "permutation=[1,\v0]", // \v is not whitespace to MLIR's lexer
      "dimensions = [1",
      "interchange = [0, 1",
  };
  for (const char *c : kCrashing)
    EXPECT_TRUE(hitsKnownUpstreamParserCrash(transpose(c))) << c;
  // A NUL is whitespace to MLIR's lexer: `permutation <NUL> = [1,`.
  std::string nul = transpose(std::string("permutation \0= [1, 0", 20));
  EXPECT_TRUE(hitsKnownUpstreamParserCrash(nul));
}

TEST(UpstreamParserBugs, AcceptsWellFormedDenseArrays) {
  const char *const kValid[] = {
      "permutation = [1, 0]",
      "permutation=[1,0]",
      "permutation = [ ]",
      "permutation = [-1, 0]",
      "permutation = [1, // comment\n 0]",
      "permutation = [1, 999999999999999999]", // 18 digits
      "permutation = [1, 0] // trailing comment",
  };
  for (const char *c : kValid)
    EXPECT_FALSE(hitsKnownUpstreamParserCrash(transpose(c))) << c;
  EXPECT_FALSE(hitsKnownUpstreamParserCrash(
      "%r = linalg.reduce ins(%a : tensor<2x4xf32>) outs(%b : tensor<2xf32>) "
      "dimensions = [1] (%x: f32, %y: f32) { ... }"));
  // A key that is not followed by `=` is not parsed as one.
  EXPECT_FALSE(hitsKnownUpstreamParserCrash("// the permutation of rows\n"));
}

TEST(UpstreamParserBugs, RejectsNonStringIteratorTypes) {
  const char *const kCrashing[] = {
      "iterator_types = [\"parallel\", tensor<f32>]",
      "iterator_types = [\"parallel\", 1]",
      "iterator_types = #alias",
      "\"iterator_types\" = [1]",              // quoted attribute name
      "\"iterator\\5Ftypes\" = [1]",           // escaped attribute name
      "iterator_types // c\n = [tensor<f32>]", // comment between tokens
      "iterator_types = [\"a\\\"b\", 1]",      // escaped quote in an entry
  };
  for (const char *c : kCrashing)
    EXPECT_TRUE(hitsKnownUpstreamParserCrash(std::string("linalg.generic {") +
                                             c + "} ins() outs()"))
        << c;
  EXPECT_FALSE(hitsKnownUpstreamParserCrash(
      "linalg.generic {indexing_maps = [#m, #m], iterator_types = "
      "[\"parallel\", \"reduction\"]} ins(%a) outs(%b)"));
  EXPECT_FALSE(hitsKnownUpstreamParserCrash(
      "linalg.generic {iterator_types = [ ]} ins() outs()"));
  // Backslashes are fine where no quoted name is followed by `=`.
  EXPECT_FALSE(
      hitsKnownUpstreamParserCrash("%s = \"foo.op\"() {a = \"x\\0Ay\"}"));
}

TEST(UpstreamParserBugs, RejectsDeepNesting) {
  std::string parens(300, '(');
  EXPECT_TRUE(hitsKnownUpstreamParserCrash(parens));
  // Function types nested through their results: `->` closes nothing.
  std::string results;
  for (int i = 0; i < 300; ++i)
    results += "() -> (";
  EXPECT_TRUE(hitsKnownUpstreamParserCrash(results));
  std::string shallow;
  for (int i = 0; i < 100; ++i)
    shallow += "tensor<";
  EXPECT_FALSE(hitsKnownUpstreamParserCrash(shallow));
  // Deep in total, shallow at every point.
  std::string flat;
  for (int i = 0; i < 1000; ++i)
    flat += "(a) -> (b)\n";
  EXPECT_FALSE(hitsKnownUpstreamParserCrash(flat));
}

} // namespace
