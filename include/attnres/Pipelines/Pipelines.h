//===- Pipelines.h - AttnRes lowering pipelines -----------------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_PIPELINES_PIPELINES_H
#define ATTNRES_PIPELINES_PIPELINES_H

#include "attnres/Target/NVVMTarget.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir {
class OpPassManager;
namespace attnres {

/// Options of `attnres-lower-to-llvm` (CPU).
struct LowerToLLVMOptions : public PassPipelineOptions<LowerToLLVMOptions> {
  PassOptions::Option<bool> outParams{
      *this, "out-params",
      llvm::cl::desc("Results of the public functions become out-parameters "
                     "(the caller owns the buffers) and the public functions "
                     "get C interfaces (_mlir_ciface_*): the form "
                     "attnres.aot_compile links into a CPU library"),
      llvm::cl::init(false)};
};

/// attnres + func/arith/math/tensor/linalg on tensors -> LLVM dialect, with
/// function-boundary bufferization, runnable by mlir-runner.
void buildLowerToLLVMPipeline(OpPassManager &pm,
                              const LowerToLLVMOptions &options);

/// Options of `attnres-lower-to-nvvm` (GPU).
struct LowerToNVVMOptions : public PassPipelineOptions<LowerToNVVMOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip", llvm::cl::desc("Target chip (sm_XX or sm_XXa)"),
      llvm::cl::init(kDefaultChip)};
  PassOptions::Option<std::string> features{
      *this, "features", llvm::cl::desc("PTX features (+ptxNN)"),
      llvm::cl::init(kDefaultFeatures)};
  PassOptions::Option<std::string> format{
      *this, "format",
      llvm::cl::desc("Binary format of the gpu.binary: isa, bin or fatbin"),
      llvm::cl::init("fatbin")};
  PassOptions::Option<int> optLevel{*this, "opt-level",
                                    llvm::cl::desc("Optimisation level (0-3)"),
                                    llvm::cl::init(3)};
};

void buildLowerToNVVMPipeline(OpPassManager &pm,
                              const LowerToNVVMOptions &options);

/// Registers both pipelines.
void registerAttnResPipelines();

} // namespace attnres
} // namespace mlir

#endif // ATTNRES_PIPELINES_PIPELINES_H
