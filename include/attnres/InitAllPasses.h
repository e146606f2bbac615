//===- InitAllPasses.h - Register every attnres pass ------------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_INITALLPASSES_H
#define ATTNRES_INITALLPASSES_H

#include "attnres/Conversion/Passes.h"
#include "attnres/Dialect/AttnRes/Transforms/Passes.h"
#include "attnres/Pipelines/Pipelines.h"

namespace mlir {
namespace attnres {

/// Registers the attnres passes and pipelines with the global registry.
inline void registerAllAttnResPasses() {
  registerAttnResPasses();
  registerAttnResConversionPasses();
  registerAttnResPipelines();
}

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_INITALLPASSES_H
