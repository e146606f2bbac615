//===- attnres-opt.cpp - attnres optimizer driver -------------------------===//
//
// Part of the attnres project.
//
// mlir-opt with every upstream dialect and pass plus the attnres dialect,
// passes and pipelines.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/InitAllDialects.h"
#include "attnres/InitAllPasses.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::attnres::registerAllAttnResPasses();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  // gpu-module-to-binary (attnres-lower-to-nvvm) translates gpu.module
  // bodies to LLVM IR, as upstream mlir-opt does.
  mlir::registerAllGPUToLLVMIRTranslations(registry);
  mlir::attnres::registerAllAttnResDialects(registry);

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "attnres optimizer driver\n", registry));
}
