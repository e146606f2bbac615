//===- attnres-plugin.cpp - attnres plugin for mlir-opt -------------------===//
//
// Part of the attnres project.
//
// Load with `mlir-opt --load-dialect-plugin=AttnResPlugin.so` (the dialect)
// and `--load-pass-plugin=AttnResPlugin.so` (passes and pipelines).
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/InitAllDialects.h"
#include "attnres/InitAllPasses.h"

#include "mlir/Tools/Plugins/DialectPlugin.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/Compiler.h"

using namespace mlir;

extern "C" LLVM_ATTRIBUTE_WEAK DialectPluginLibraryInfo
mlirGetDialectPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "AttnRes", LLVM_VERSION_STRING,
          [](DialectRegistry *registry) {
            attnres::registerAllAttnResDialects(*registry);
          }};
}

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "AttnResPasses", LLVM_VERSION_STRING,
          []() { attnres::registerAllAttnResPasses(); }};
}
