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

/// Whether some `key = ...` in `text` is not a list `[...]` that
/// `wellFormed` accepts (given the text after the `[`).
bool hasBadList(llvm::StringRef text, llvm::StringRef key,
                llvm::function_ref<bool(llvm::StringRef)> wellFormed) {
  size_t pos = 0;
  while ((pos = text.find(key, pos)) != llvm::StringRef::npos) {
    pos += key.size();
    llvm::StringRef rest = text.drop_front(pos).ltrim();
    if (!rest.consume_front("="))
      continue;
    rest = rest.ltrim();
    if (!rest.consume_front("[") || !wellFormed(rest))
      return true;
  }
  return false;
}

/// `"a", "b", ...]`: quoted strings only.
bool isStringList(llvm::StringRef rest) {
  while (true) {
    rest = rest.ltrim();
    if (rest.consume_front("]"))
      return true;
    if (!rest.consume_front("\""))
      return false;
    size_t close = rest.find('"');
    if (close == llvm::StringRef::npos)
      return false;
    rest = rest.drop_front(close + 1).ltrim();
    if (!rest.consume_front(",") && !rest.starts_with("]"))
      return false;
  }
}

/// `i, j, ...]`: integers only.
bool isIntegerList(llvm::StringRef rest) {
  size_t close = rest.find_first_not_of("0123456789-, \t\n\r");
  return close != llvm::StringRef::npos && rest[close] == ']';
}

/// Known crashes of Debian's MLIR 22.1 parser, outside this project:
/// - the custom parsers of linalg.transpose and linalg.broadcast store a null
///   attribute when the dense i64 array after `permutation =` /
///   `dimensions =` fails to parse (`permutation = [1, 0` at the end of a
///   line, `[1, x]`, or garbage instead of `[`), then segfault in
///   NamedAttrList::set;
/// - linalg.generic's parser builds its error for a non-string
///   `iterator_types` entry from a null string and aborts ("LLVM ERROR: out
///   of memory"; test/Fuzz/upstream-linalg-iterator-types.mlir).
/// Such inputs are rejected before parsing so that the fuzzer keeps
/// exploring our code; the rare valid generic spellings (`array<i64: ...>`,
/// `#linalg.iterator_type<...>`) are skipped too, at little cost in coverage.
/// See docs/reliability.md and test/Fuzz/README.md.
bool hitsKnownUpstreamParserCrash(llvm::StringRef text) {
  return hasBadList(text, "iterator_types", isStringList) ||
         hasBadList(text, "permutation", isIntegerList) ||
         hasBadList(text, "dimensions", isIntegerList);
}

/// Debian's MLIR 22.1 parser also recurses without a limit on nested
/// function types (`((((...`): a few thousand levels overflow the stack.
/// Inputs nested deeper than any real module are rejected.
bool nestsTooDeep(llvm::StringRef text) {
  int depth = 0;
  for (char c : text) {
    if (c == '(' || c == '[' || c == '{' || c == '<')
      ++depth;
    else if ((c == ')' || c == ']' || c == '}' || c == '>') && depth > 0)
      --depth;
    if (depth > 256)
      return true;
  }
  return false;
}

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
  if (hitsKnownUpstreamParserCrash(text) || nestsTooDeep(text))
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
