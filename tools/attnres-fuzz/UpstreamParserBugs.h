//===- UpstreamParserBugs.h - Inputs that crash Debian's MLIR parser ------===//
//
// Part of the attnres project.
//
// The fuzz target parses arbitrary text with every upstream dialect loaded.
// Debian's MLIR 22.1 parser crashes on a few input classes that have nothing
// to do with attnres (test/Fuzz/README.md lists them with the runs that found
// them). The fuzz target rejects those inputs before parsing so that fuzzing
// keeps exploring the project's own code. The checks work on tokens as MLIR's
// lexer sees them (whitespace and `//` comments between tokens), and they err
// on the side of rejecting: a valid input that is skipped costs a little
// coverage, a crashing input that is let through stops the run.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_TOOLS_FUZZ_UPSTREAMPARSERBUGS_H
#define ATTNRES_TOOLS_FUZZ_UPSTREAMPARSERBUGS_H

#include "llvm/ADT/StringRef.h"

namespace mlir::attnres::fuzz {

/// Whether `text` may reach one of the known crashes of Debian's MLIR 22.1
/// parser:
/// - custom parsers that store a null attribute when a dense i64 array fails
///   to parse (`linalg.transpose` `permutation = [...]`, `linalg.broadcast`
///   and `linalg.reduce` `dimensions = [...]`, the `interchange = [...]` of
///   linalg transform ops), then segfault in `NamedAttrList::set`: rejected
///   unless every such key is followed by `=` and a well-formed list of
///   integers that fit in 64 bits;
/// - `linalg.generic`'s parser builds its error for a non-string
///   `iterator_types` entry from a null string and aborts: rejected unless
///   every `iterator_types = [...]` holds quoted strings only;
/// - the parser recurses without a limit on nested types: rejected when
///   brackets nest deeper than 256 levels.
bool hitsKnownUpstreamParserCrash(llvm::StringRef text);

} // namespace mlir::attnres::fuzz

#endif // ATTNRES_TOOLS_FUZZ_UPSTREAMPARSERBUGS_H
