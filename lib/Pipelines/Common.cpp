//===- Common.cpp - pieces shared by the attnres pipelines ----------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::attnres::addCanonicalizeAndCSE(OpPassManager &pm) {
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::attnres::addPreBufferizationCleanup(OpPassManager &pm) {
  pm.addPass(createCanonicalizerPass());
}

void mlir::attnres::addSCFToControlFlow(OpPassManager &pm) {
  SCFToControlFlowPassOptions options;
  options.allowPatternRollback = false;
  pm.addPass(createSCFToControlFlowPass(options));
}

void mlir::attnres::addModuleBufferization(OpPassManager &pm) {
  bufferization::OneShotBufferizePassOptions bufOpts;
  bufOpts.bufferizeFunctionBoundaries = true;
  bufOpts.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufOpts));
}

void mlir::attnres::addResultsToOutParams(OpPassManager &pm) {
  bufferization::BufferResultsToOutParamsPassOptions outOpts;
  outOpts.hoistStaticAllocs = true;
  outOpts.hoistDynamicAllocs = true;
  outOpts.modifyPublicFunctions = true;
  pm.addPass(bufferization::createBufferResultsToOutParamsPass(outOpts));
}
