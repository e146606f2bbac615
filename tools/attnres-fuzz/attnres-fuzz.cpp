//===- attnres-fuzz.cpp - libFuzzer target over the attnres compiler ------===//
//
// Part of the attnres project.
//
// Parses the input as MLIR, verifies it, and runs every attnres pass and both
// pipelines on a clone of the module. Any input may be rejected with a
// diagnostic; none may crash, assert or hang. Build with
// -DATTNRES_ENABLE_FUZZER=ON (clang only); see docs/reliability.md.
//
//===----------------------------------------------------------------------===//

#include "UpstreamParserBugs.h"

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/InitAllDialects.h"
#include "attnres/InitAllPasses.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

using namespace mlir;

namespace {
/// The pass pipelines each input goes through, one at a time, on a clone.
const char *const kPipelines[] = {
    "builtin.module(canonicalize)",
    "builtin.module(attnres-detect-residual-chains{report=true})",
    "builtin.module(attnres-blockify{block-size=2 report=true})",
    "builtin.module(attnres-blockify{num-blocks=3})",
    "builtin.module(attnres-fuse-summaries{report=true})",
    ("builtin.module(attnres-detect-residual-chains,attnres-blockify{block-"
     "size=2},attnres-fuse-summaries)"),
    "builtin.module(convert-attnres-to-linalg)",
    "builtin.module(convert-attnres-to-gpu)",
    "builtin.module(attnres-lower-to-llvm)",
    "builtin.module(attnres-lower-to-nvvm{format=isa})",
};

struct FuzzState {
  DialectRegistry registry;
  std::unique_ptr<MLIRContext> context;
  FuzzState() {
    registerAllPasses();
    attnres::registerAllAttnResPasses();
    registerAllDialects(registry);
    registerAllExtensions(registry);
    attnres::registerAllAttnResDialects(registry);
    context = std::make_unique<MLIRContext>(registry);
    context->loadAllAvailableDialects();
    // Multithreading only adds noise to a fuzzer.
    context->disableMultithreading();
  }
};

FuzzState &getState() {
  static FuzzState state;
  return state;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // Large inputs only slow the search down.
  if (size > 64 * 1024)
    return -1;
  FuzzState &state = getState();
  MLIRContext &ctx = *state.context;
  // Diagnostics are expected; swallow them.
  ScopedDiagnosticHandler silence(&ctx, [](Diagnostic &) { return success(); });

  std::string text(reinterpret_cast<const char *>(data), size);
  // Known crashes of Debian's MLIR parser, outside this project. The filter
  // can be turned off (ATTNRES_FUZZ_NO_FILTER=1) to replay such an input, as
  // test/Fuzz/triage.test does.
  static const bool filter = !std::getenv("ATTNRES_FUZZ_NO_FILTER");
  if (filter && attnres::fuzz::hitsKnownUpstreamParserCrash(text))
    return -1;
  ParserConfig config(&ctx);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, config);
  if (!module || failed(verify(*module)))
    return 0;

  for (const char *pipeline : kPipelines) {
    OwningOpRef<ModuleOp> clone = module->clone();
    PassManager pm(&ctx, ModuleOp::getOperationName());
    std::string errors;
    llvm::raw_string_ostream errStream(errors);
    if (failed(parsePassPipeline(pipeline, pm, errStream))) {
      llvm::errs() << "fuzz target: bad built-in pipeline " << pipeline << ": "
                   << errors << "\n";
      std::abort();
    }
    (void)pm.run(*clone);
  }
  return 0;
}
