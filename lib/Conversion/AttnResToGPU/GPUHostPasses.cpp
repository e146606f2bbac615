//===- GPUHostPasses.cpp - NVVM target check and host memory on the GPU ---===//
//
// Part of the attnres project.
//
// Two small passes of attnres-lower-to-nvvm:
// - attnres-validate-nvvm-target turns a chip/features pair that LLVM's
//   NVPTX backend or CUDA 13's ptxas would abort on into a diagnostic;
// - attnres-gpu-host-memory moves the host's buffers to the device
//   (memref.alloc/dealloc/copy -> gpu.alloc/dealloc/memcpy) and marks public
//   host functions llvm.emit_c_interface.
//
//===----------------------------------------------------------------------===//

#include "attnres/Conversion/Passes.h"
#include "attnres/Target/NVVMTarget.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/StringExtras.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_ATTNRESVALIDATENVVMTARGET
#define GEN_PASS_DEF_ATTNRESATTACHNVVMTARGET
#define GEN_PASS_DEF_ATTNRESGPUHOSTMEMORY
#include "attnres/Conversion/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

namespace {

struct AttnResValidateNVVMTargetPass
    : public attnres::impl::AttnResValidateNVVMTargetBase<
          AttnResValidateNVVMTargetPass> {
  using Base::Base;

  void runOnOperation() override {
    std::string error;
    if (!NVVMTargetInfo::parse(chip, features, error)) {
      getOperation().emitError() << "attnres-lower-to-nvvm: " << error;
      return signalPassFailure();
    }
    if (format != "isa" && format != "bin" && format != "fatbin") {
      getOperation().emitError() << "attnres-lower-to-nvvm: unknown format '"
                                 << format << "' (expected isa, bin or fatbin)";
      return signalPassFailure();
    }
  }
};

struct AttnResAttachNVVMTargetPass
    : public attnres::impl::AttnResAttachNVVMTargetBase<
          AttnResAttachNVVMTargetPass> {
  using Base::Base;

  void runOnOperation() override {
    auto target = NVVM::NVVMTargetAttr::get(
        &getContext(), optLevel, "nvptx64-nvidia-cuda", chip, features);
    getOperation().walk([&](gpu::GPUModuleOp module) {
      if (module.getTargetsAttr() && !module.getTargetsAttr().empty())
        return;
      module.setTargetsAttr(ArrayAttr::get(&getContext(), {target}));
    });
  }
};

/// Makes an async op synchronous: `%t = gpu.wait async`, the op depending
/// on %t, then `gpu.wait [%op]`.
static void makeSync(OpBuilder &b, Location loc,
                     function_ref<Value(Value)> buildAsync) {
  Type tokenType = gpu::AsyncTokenType::get(b.getContext());
  Value start =
      gpu::WaitOp::create(b, loc, tokenType, ValueRange{}).getAsyncToken();
  Value done = buildAsync(start);
  gpu::WaitOp::create(b, loc, Type(), ValueRange{done});
}

/// An allocation in the entry block of a function, never deallocated, that
/// does not escape (through views) into a return, a call or a store: it is a
/// temporary of the function, freed before the function returns. All kernel
/// launches are synchronous, so the end of the block is after its last use.
static bool isTemporary(memref::AllocOp alloc) {
  Block *block = alloc->getBlock();
  if (!isa<func::FuncOp>(alloc->getParentOp()) || !block->isEntryBlock() ||
      !block->mightHaveTerminator() ||
      !isa<func::ReturnOp>(block->getTerminator()))
    return false;
  SmallVector<Value> worklist{alloc.getResult()};
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    for (Operation *user : v.getUsers()) {
      if (isa<memref::DeallocOp, func::ReturnOp, func::CallOp, memref::StoreOp>(
              user))
        return false;
      if (isa<ViewLikeOpInterface>(user) ||
          isa<memref::CollapseShapeOp, memref::ExpandShapeOp, memref::CastOp>(
              user))
        llvm::append_range(worklist, user->getResults());
    }
  }
  return true;
}

struct AttnResGPUHostMemoryPass
    : public attnres::impl::AttnResGPUHostMemoryBase<AttnResGPUHostMemoryPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    Type tokenType = gpu::AsyncTokenType::get(&getContext());
    SmallVector<Operation *> ops;
    module.walk([&](Operation *op) {
      if (op->getParentOfType<gpu::GPUModuleOp>())
        return;
      if (isa<memref::AllocOp, memref::AllocaOp, memref::DeallocOp,
              memref::CopyOp>(op))
        ops.push_back(op);
    });
    IRRewriter rw(&getContext());
    for (Operation *op : ops) {
      rw.setInsertionPoint(op);
      Location loc = op->getLoc();
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        // Async with one dependency, waited for at once: gpu-to-llvm lowers
        // only that form of gpu.alloc (a synchronous one stays unconverted).
        Value memref;
        makeSync(rw, loc, [&](Value dep) {
          auto g = gpu::AllocOp::create(
              rw, loc, alloc.getType(), tokenType, ValueRange{dep},
              alloc.getDynamicSizes(), alloc.getSymbolOperands(),
              /*hostShared=*/false);
          memref = g.getMemref();
          return g.getAsyncToken();
        });
        bool freeAtEnd = isTemporary(alloc);
        rw.replaceOp(op, memref);
        if (freeAtEnd) {
          rw.setInsertionPoint(memref.getParentBlock()->getTerminator());
          makeSync(rw, loc, [&](Value dep) {
            return gpu::DeallocOp::create(rw, loc, tokenType, ValueRange{dep},
                                          memref)
                .getAsyncToken();
          });
        }
      } else if (auto alloca = dyn_cast<memref::AllocaOp>(op)) {
        // A host stack buffer that a kernel may read must be device memory
        // too; it is freed at the end of the enclosing block.
        auto g = gpu::AllocOp::create(rw, loc, alloca.getType(), Type(),
                                      ValueRange{}, alloca.getDynamicSizes(),
                                      alloca.getSymbolOperands(), false);
        rw.replaceOp(op, g.getMemref());
        rw.setInsertionPoint(g->getBlock()->getTerminator());
        makeSync(rw, loc, [&](Value dep) {
          return gpu::DeallocOp::create(rw, loc, tokenType, ValueRange{dep},
                                        g.getMemref())
              .getAsyncToken();
        });
      } else if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
        makeSync(rw, loc, [&](Value dep) {
          return gpu::DeallocOp::create(rw, loc, tokenType, ValueRange{dep},
                                        dealloc.getMemref())
              .getAsyncToken();
        });
        rw.eraseOp(op);
      } else if (auto copy = dyn_cast<memref::CopyOp>(op)) {
        makeSync(rw, loc, [&](Value dep) {
          return gpu::MemcpyOp::create(rw, loc, tokenType, ValueRange{dep},
                                       copy.getTarget(), copy.getSource())
              .getAsyncToken();
        });
        rw.eraseOp(op);
      }
    }
    for (auto fn : module.getOps<func::FuncOp>())
      if (fn.isPublic() && !fn.isExternal())
        fn->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                    UnitAttr::get(&getContext()));
  }
};

} // namespace
