//===- LowerToNVVM.cpp - the attnres-lower-to-nvvm pipeline (GPU) ---===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Pipelines/Pipelines.h"
#include "attnres/Conversion/Passes.h"

#include "mlir/Pass/PassManager.h"

using namespace mlir;
using namespace mlir::attnres;

void mlir::attnres::buildLowerToNVVMPipeline(
    OpPassManager &pm, const LowerToNVVMOptions &options) {
  // Filled in by the GPU lowering work; for now only the attnres kernels.
  pm.addPass(createConvertAttnResToGPU());
}
