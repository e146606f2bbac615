//===- LowerToNVVM.cpp - the attnres-lower-to-nvvm pipeline (GPU) ---===//
//
// Part of the attnres project.
//
// attnres on tensors -> hand-written GPU kernels (convert-attnres-to-gpu) ->
// buffers on the device -> NVVM -> a gpu.binary plus host code that calls
// the mgpu* runtime ABI. The GPU half follows upstream's
// gpu-lower-to-nvvm-pipeline (mlir/lib/Dialect/GPU/Pipelines), with the
// target checked first because LLVM aborts on a bad chip/PTX pair.
//
//===----------------------------------------------------------------------===//

#include "Common.h"
#include "attnres/Conversion/Passes.h"
#include "attnres/Pipelines/Pipelines.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::attnres;

void mlir::attnres::buildLowerToNVVMPipeline(
    OpPassManager &pm, const LowerToNVVMOptions &options) {
  // Fail with a diagnostic, before anything reaches LLVM, on a bad target.
  AttnResValidateNVVMTargetOptions target;
  target.chip = options.chip;
  target.features = options.features;
  target.format = options.format;
  pm.addPass(createAttnResValidateNVVMTarget(target));

  // attnres ops -> kernels + gpu.launch_func on buffers, in a kernel module
  // whose #nvvm.target is this pipeline's (or the target of the kernel
  // module of a previous convert-attnres-to-gpu run, which
  // attnres-attach-nvvm-target below keeps: one target, one object). The pass
  // derives every chip-dependent choice (tensor cores, bulk copies,
  // clusters, L2 prefetch) from that target.
  ConvertAttnResToGPUOptions gpuOpts;
  gpuOpts.chip = options.chip;
  gpuOpts.features = options.features;
  gpuOpts.optLevel = options.optLevel;
  pm.addPass(createConvertAttnResToGPU(gpuOpts));
  addPreBufferizationCleanup(pm);

  // Tensors -> buffers; results become out-parameters of the public
  // functions (the caller owns the device buffers).
  addModuleBufferization(pm);
  addResultsToOutParams(pm);
  pm.addPass(createCanonicalizerPass());

  // Host buffers live on the device, temporaries are freed at the end of
  // their function (the ownership-based deallocation pipeline rejects
  // gpu.launch_func, whose memory effects it does not know); C interfaces
  // for the callers.
  pm.addPass(createAttnResGPUHostMemory());

  // Upstream gpu-lower-to-nvvm-pipeline, common part.
  addSCFToControlFlow(pm);
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  AttnResAttachNVVMTargetOptions nvvm;
  nvvm.chip = options.chip;
  nvvm.features = options.features;
  nvvm.optLevel = options.optLevel;
  pm.addPass(createAttnResAttachNVVMTarget(nvvm));
  pm.addPass(createLowerAffinePass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  addCanonicalizeAndCSE(pm);

  // Kernels -> NVVM.
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps());
  pm.addNestedPass<gpu::GPUModuleOp>(createCanonicalizerPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCSEPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createReconcileUnrealizedCastsPass());

  // Host -> LLVM with mgpu* calls; kernels -> gpu.binary.
  pm.addPass(createGpuToLLVMConversionPass());
  GpuModuleToBinaryPassOptions binOpts;
  binOpts.compilationTarget = options.format;
  pm.addPass(createGpuModuleToBinaryPass(binOpts));
  pm.addPass(createConvertMathToLLVMPass());
  addCanonicalizeAndCSE(pm);
  pm.addPass(createReconcileUnrealizedCastsPass());
}
