//===- Target.cpp - attnres C API: targets and host objects ---------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres-c/Target.h"

#include "attnres/Dialect/AttnRes/IR/AttnResDefaults.h"
#include "attnres/Target/NVVMTarget.h"

#include "mlir/CAPI/IR.h"
#include "mlir/CAPI/Support.h"
#include "mlir/CAPI/Utils.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

#include <memory>
#include <mutex>
#include <string>

using namespace mlir;

MlirStringRef attnresGetDefaultNVVMChip(void) {
  return wrap(StringRef(attnres::kDefaultChip));
}

MlirStringRef attnresGetDefaultNVVMFeatures(void) {
  return wrap(StringRef(attnres::kDefaultFeatures));
}

float attnresGetDefaultEpsilon(void) { return attnres::kDefaultEpsilon; }

int64_t attnresGetDefaultBlockSize(void) { return attnres::kDefaultBlockSize; }

int64_t attnresGetDefaultNumBlocks(void) { return attnres::kDefaultNumBlocks; }

namespace {

/// Reports one error (no IR location of its own) to a diagnostic callback.
void reportError(AttnResDiagnosticCallback callback, void *userData,
                 StringRef location, StringRef message) {
  if (!callback)
    return;
  std::string formatted = (location + ": error: " + message).str();
  AttnResDiagnostic d{
      MlirDiagnosticError,
      /*isNote=*/false,    wrap(StringRef()),         0, 0, wrap(location),
      wrap(message),       wrap(StringRef(formatted))};
  callback(&d, userData);
}

/// A host TargetMachine for PIC code, or null with `error` set.
std::unique_ptr<llvm::TargetMachine>
createHostTargetMachine(int optLevel, std::string &error) {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return nullptr;
  llvm::CodeGenOptLevel level = optLevel <= 0   ? llvm::CodeGenOptLevel::None
                                : optLevel == 1 ? llvm::CodeGenOptLevel::Less
                                : optLevel == 2
                                    ? llvm::CodeGenOptLevel::Default
                                    : llvm::CodeGenOptLevel::Aggressive;
  std::unique_ptr<llvm::TargetMachine> machine(
      target->createTargetMachine(triple, "generic", "", llvm::TargetOptions(),
                                  llvm::Reloc::PIC_, std::nullopt, level));
  if (!machine)
    error = "cannot create a target machine for " + triple.str();
  return machine;
}

} // namespace

MlirLogicalResult attnresEmitHostCode(
    MlirModule module, int optLevel, MlirStringCallback irCallback,
    void *irUserData, MlirStringCallback objectCallback, void *objectUserData,
    AttnResDiagnosticCallback diagnosticCallback, void *diagnosticUserData) {
  ModuleOp moduleOp = unwrap(module);
  if (optLevel < 0 || optLevel > 3) {
    reportError(diagnosticCallback, diagnosticUserData, "<host code>",
                "optimisation level must be 0 to 3, got " +
                    std::to_string(optLevel));
    return wrap(failure());
  }

  // Diagnostics of the translation (an op without an LLVM IR translation, a
  // gpu.binary with no offloading handler) carry the op's location.
  std::string translationErrors;
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule;
  {
    ScopedDiagnosticHandler handler(
        moduleOp.getContext(), [&](Diagnostic &diag) {
          llvm::raw_string_ostream os(translationErrors);
          diag.getLocation().print(os);
          os << ": " << diag.str() << "\n";
          return success();
        });
    llvmModule = translateModuleToLLVMIR(moduleOp, llvmContext);
  }
  if (!llvmModule) {
    reportError(diagnosticCallback, diagnosticUserData, "<host code>",
                "cannot translate the module to LLVM IR (is it lowered to "
                "the LLVM dialect?)\n" +
                    StringRef(translationErrors).trim().str());
    return wrap(failure());
  }

  std::string error;
  std::unique_ptr<llvm::TargetMachine> machine =
      createHostTargetMachine(optLevel, error);
  if (!machine) {
    reportError(diagnosticCallback, diagnosticUserData, "<host code>", error);
    return wrap(failure());
  }
  llvmModule->setDataLayout(machine->createDataLayout());
  llvmModule->setTargetTriple(machine->getTargetTriple());
  auto optimize =
      makeOptimizingTransformer(optLevel, /*sizeLevel=*/0, machine.get());
  if (llvm::Error err = optimize(llvmModule.get())) {
    reportError(diagnosticCallback, diagnosticUserData, "<host code>",
                "LLVM optimisation failed: " + llvm::toString(std::move(err)));
    return wrap(failure());
  }

  if (irCallback) {
    detail::CallbackOstream stream(irCallback, irUserData);
    llvmModule->print(stream, nullptr);
    stream.flush();
  }
  if (!objectCallback)
    return wrap(success());
  llvm::SmallVector<char, 0> object;
  {
    llvm::raw_svector_ostream os(object);
    llvm::legacy::PassManager passes;
    if (machine->addPassesToEmitFile(passes, os, nullptr,
                                     llvm::CodeGenFileType::ObjectFile)) {
      reportError(diagnosticCallback, diagnosticUserData, "<host code>",
                  "the host target cannot emit object files");
      return wrap(failure());
    }
    passes.run(*llvmModule);
  }
  objectCallback(mlirStringRefCreate(object.data(), object.size()),
                 objectUserData);
  return wrap(success());
}
