//===- Pipelines.cpp - registration of the attnres pipelines ---===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Pipelines/Pipelines.h"

#include "mlir/Pass/PassRegistry.h"

using namespace mlir;
using namespace mlir::attnres;

void mlir::attnres::registerAttnResPipelines() {
  PassPipelineRegistration<LowerToLLVMOptions>(
      "attnres-lower-to-llvm",
      "Lower attnres and tensor-level func/arith/math/tensor/linalg/tosa to "
      "the LLVM dialect for CPU execution (mlir-runner)",
      buildLowerToLLVMPipeline);
  PassPipelineRegistration<LowerToNVVMOptions>(
      "attnres-lower-to-nvvm",
      "Lower attnres on tensors to GPU kernels (NVVM) and host code",
      buildLowerToNVVMPipeline);
}
