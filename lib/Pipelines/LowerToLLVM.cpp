//===- LowerToLLVM.cpp - the attnres-lower-to-llvm pipeline (CPU) ---===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "Common.h"
#include "attnres/Conversion/Passes.h"
#include "attnres/Dialect/AttnRes/Transforms/Passes.h"
#include "attnres/Pipelines/Pipelines.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/TosaToLinalg/TosaToLinalg.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::attnres;

void mlir::attnres::buildLowerToLLVMPipeline(
    OpPassManager &pm, const LowerToLLVMOptions &options) {
  // TOSA -> linalg/arith/tensor (upstream's order: named ops first, so that
  // tosa.matmul becomes linalg.batch_matmul, then the elementwise and
  // reduction ops, then constants and shape ops). A no-op on other input.
  pm.addNestedPass<func::FuncOp>(tosa::createTosaToLinalgNamed());
  pm.addNestedPass<func::FuncOp>(tosa::createTosaToLinalg());
  pm.addNestedPass<func::FuncOp>(createTosaToArithPass());
  pm.addNestedPass<func::FuncOp>(createTosaToTensorPass());

  // Elementwise arith/math on tensors written by the user (e.g. an
  // arith.extf of a bf16 result before printing) become linalg.generic, so
  // that they bufferize.
  pm.addPass(createConvertElementwiseToLinalgPass());
  addPreBufferizationCleanup(pm);
  // The aggregations of a Full AttnRes chain read their sources from one
  // stacked tensor, decomposed over it before bufferization: O(L) ops and
  // buffers for L sublayers instead of O(L^2) (docs/depth.md).
  pm.addNestedPass<func::FuncOp>(createStackAggregateSources());

  // Tensors -> buffers, with memref function signatures. Upstream's
  // one-shot-bufferize bufferizes the attnres ops through their
  // BufferizableOpInterface models (BufferizableOpInterfaceImpl.cpp): each
  // becomes its linalg decomposition on memrefs, writing block_score's outs
  // and aggregate_grad's accumulators in place where One-Shot Analysis
  // allows. No attnres pass runs here.
  addModuleBufferization(pm);
  if (options.outParams) {
    // As attnres-lower-to-nvvm does for its host functions: the caller
    // passes the result buffers, and calls _mlir_ciface_<name>.
    addResultsToOutParams(pm);
    pm.addPass(createEmitCInterface());
  }
  // Upstream's buffer-deallocation-pipeline with attnres-split-fresh-deallocs
  // after the ownership-based pass: a deep model's one block would otherwise
  // free all its temporaries in one bufferization.dealloc, which the
  // simplification pass handles in time quadratic in its length
  // (docs/depth.md).
  memref::ExpandReallocPassOptions expandOpts;
  expandOpts.emitDeallocs = false;
  pm.addPass(memref::createExpandReallocPass(expandOpts));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(bufferization::createOwnershipBasedBufferDeallocationPass());
  pm.addNestedPass<func::FuncOp>(createSplitFreshDeallocs());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(bufferization::createBufferDeallocationSimplificationPass());
  pm.addPass(bufferization::createLowerDeallocationsPass());
  pm.addPass(createCSEPass());
  pm.addPass(createCanonicalizerPass());

  // Loops -> LLVM.
  pm.addPass(createConvertLinalgToLoopsPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  // One block per loop nest: convert-scf-to-cf splits the block at each
  // loop, moving the rest of the block (quadratic in a deep model's one
  // block; docs/depth.md).
  pm.addNestedPass<func::FuncOp>(createSplitBlocksAfterLoops());
  addSCFToControlFlow(pm);
  // f16/bf16 arith.extf/truncf need no expansion here: LLVM 22's x86 backend
  // expands bf16 conversions inline and calls libgcc's __extendhfsf2 /
  // __truncsfhf2 (GCC 12) for f16, which mlir-runner resolves.
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}
