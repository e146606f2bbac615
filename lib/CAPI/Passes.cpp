//===- Passes.cpp - C API registration of the attnres passes --------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres-c/Passes.h"

#include "attnres/InitAllPasses.h"

#include <mutex>

void attnresRegisterAllPasses(void) {
  // Registering a pass name twice is a fatal error in the registry.
  static std::once_flag once;
  std::call_once(once, [] { mlir::attnres::registerAllAttnResPasses(); });
}
