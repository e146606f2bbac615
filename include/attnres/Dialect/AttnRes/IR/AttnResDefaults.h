//===- AttnResDefaults.h - Defaults of the AttnRes dialect ------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// The one definition of each default of the AttnRes dialect and its passes
// (issue 15): the key-norm epsilon of the ops (their ODS builders' default
// arguments, the passes that create ops, the C API and so Python) and the
// `block-size` / `num-blocks` options of the passes that partition or report
// a blocking. No other file spells these values as code
// (scripts/check_one_definition.py); python/attnres/defaults.py reads them
// through the C API, or from this file where the native extension is absent.
// Kept free of MLIR includes so that it sits before the ops' generated
// declarations in AttnRes.h.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_IR_ATTNRESDEFAULTS_H
#define ATTNRES_DIALECT_ATTNRES_IR_ATTNRESDEFAULTS_H

#include <cstdint>

namespace mlir {
namespace attnres {

/// The epsilon of the key RMSNorm when nothing else says (spec section 1.3:
/// the `epsilon` attribute). The default argument of the ops' builders.
inline constexpr float kDefaultEpsilon = 1.0e-6f;

/// The `block-size` and `num-blocks` of a pass that is not given them (the
/// options' defaults in Passes.td, BlockingRequest, the C API's and so
/// Python's): 0, not asked for, so that a chain keeps the blocking it has
/// (Full AttnRes stays Full, and attnres-blockify asks for one of them).
inline constexpr int64_t kDefaultBlockSize = 0;
inline constexpr int64_t kDefaultNumBlocks = 0;

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_DIALECT_ATTNRES_IR_ATTNRESDEFAULTS_H
