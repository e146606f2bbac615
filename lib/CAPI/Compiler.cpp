//===- Compiler.cpp - one-call entry points of the attnres C API ----------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres-c/Compiler.h"
#include "attnres-c/Passes.h"

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"
#include "attnres/InitAllDialects.h"

#include "mlir/CAPI/IR.h"
#include "mlir/CAPI/Support.h"
#include "mlir/CAPI/Utils.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <mutex>
#include <unistd.h>

using namespace mlir;

namespace {

/// The longest printed op kept in a "see current operation" note.
constexpr size_t kMaxOpNoteChars = 2000;

/// Forwards every diagnostic of a context to an AttnResDiagnosticCallback
/// while alive, and swallows them when the callback is null.
class ForwardingDiagnosticHandler {
public:
  ForwardingDiagnosticHandler(MLIRContext *context,
                              AttnResDiagnosticCallback callback,
                              void *userData)
      : handler(context,
                [this](Diagnostic &diag) {
                  report(diag, /*isNote=*/false);
                  for (Diagnostic &note : diag.getNotes())
                    report(note, /*isNote=*/true);
                  return success();
                }),
        callback(callback), userData(userData) {}

  /// Reports an error that has no IR location (e.g. a pipeline syntax error).
  void reportError(StringRef location, StringRef message,
                   DiagnosticSeverity severity = DiagnosticSeverity::Error) {
    std::string formatted =
        (location + ": " + severityName(severity) + ": " + message).str();
    AttnResDiagnostic d{
        convert(severity),
        /*isNote=*/false,  wrap(StringRef()),         0, 0, wrap(location),
        wrap(message),     wrap(StringRef(formatted))};
    if (callback)
      callback(&d, userData);
  }

private:
  static MlirDiagnosticSeverity convert(DiagnosticSeverity severity) {
    switch (severity) {
    case DiagnosticSeverity::Error:
      return MlirDiagnosticError;
    case DiagnosticSeverity::Warning:
      return MlirDiagnosticWarning;
    case DiagnosticSeverity::Note:
      return MlirDiagnosticNote;
    case DiagnosticSeverity::Remark:
      return MlirDiagnosticRemark;
    }
    return MlirDiagnosticError;
  }

  static StringRef severityName(DiagnosticSeverity severity) {
    switch (severity) {
    case DiagnosticSeverity::Error:
      return "error";
    case DiagnosticSeverity::Warning:
      return "warning";
    case DiagnosticSeverity::Note:
      return "note";
    case DiagnosticSeverity::Remark:
      return "remark";
    }
    return "error";
  }

  void report(Diagnostic &diag, bool isNote) {
    if (!callback)
      return;
    std::string location, message, formatted;
    {
      llvm::raw_string_ostream os(location);
      diag.getLocation().print(os);
    }
    message = diag.str();
    // MLIR attaches the op a diagnostic is on as a "see current operation"
    // note. For an error on the module that is the whole module (megabytes
    // for a real model): such a note, or one too long to read, is cut.
    StringRef kSeeOp = "see current operation: ";
    if (isNote && StringRef(message).starts_with(kSeeOp)) {
      StringRef op = StringRef(message).drop_front(kSeeOp.size()).ltrim();
      if (op.starts_with("\"builtin.module\"") || op.starts_with("module") ||
          op.size() > kMaxOpNoteChars) {
        StringRef name = op.take_until([](char c) {
                             return c == '(' || c == ' ' || c == '\n';
                           }).trim('"');
        message = (kSeeOp + "'" + name + "' (" + Twine(op.size()) +
                   " characters, not shown)")
                      .str();
      }
    }
    // The first file location inside the location (fused, name, call-site
    // locations wrap one), as mlir-opt's SourceMgr handler finds it.
    StringRef file;
    unsigned line = 0, column = 0;
    if (auto fileLoc = diag.getLocation()->findInstanceOf<FileLineColLoc>()) {
      file = fileLoc.getFilename().getValue();
      line = fileLoc.getLine();
      column = fileLoc.getColumn();
    }
    {
      llvm::raw_string_ostream os(formatted);
      if (!file.empty())
        os << file << ":" << line << ":" << column;
      else
        os << location;
      os << ": " << severityName(diag.getSeverity()) << ": " << message;
    }
    AttnResDiagnostic d{convert(diag.getSeverity()),
                        isNote,
                        wrap(file),
                        line,
                        column,
                        wrap(StringRef(location)),
                        wrap(StringRef(message)),
                        wrap(StringRef(formatted))};
    callback(&d, userData);
  }

  ScopedDiagnosticHandler handler;
  AttnResDiagnosticCallback callback;
  void *userData;
};

/// The most characters of captured stderr text kept in one message.
constexpr size_t kMaxCapturedChars = 4096;

/// Runs `fn` with file descriptor 2 pointed at a temporary file and returns
/// what was written there. LLVM's command-line option parsers (used by pass
/// options) report a bad value such as `block-size=abc` only through
/// llvm::errs(), with no stream to hand them: this is how that reason reaches
/// the caller instead of the terminal. The redirection is process-wide, so it
/// is serialised and kept to the few microseconds of pipeline parsing.
template <typename Fn> std::string captureStderr(Fn fn) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::FILE *tmp = std::tmpfile();
  int saved = tmp ? ::dup(2) : -1;
  if (saved < 0) {
    if (tmp)
      std::fclose(tmp);
    fn();
    return "";
  }
  llvm::errs().flush();
  std::fflush(stderr);
  ::dup2(::fileno(tmp), 2);
  fn();
  llvm::errs().flush();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string text;
  std::rewind(tmp);
  char buffer[512];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), tmp)) > 0 &&
         text.size() < kMaxCapturedChars)
    text.append(buffer, n);
  std::fclose(tmp);
  if (text.size() > kMaxCapturedChars)
    text = text.substr(0, kMaxCapturedChars) + "...";
  return text;
}

} // namespace

MlirContext attnresContextCreate(bool enableThreading) {
  static std::once_flag once;
  std::call_once(once, [] {
    registerAllPasses();
    attnresRegisterAllPasses();
  });
  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  // gpu-module-to-binary translates gpu.module to LLVM IR.
  registerAllToLLVMIRTranslations(registry);
  attnres::registerAllAttnResDialects(registry);
  auto *context = new MLIRContext(
      registry, enableThreading ? MLIRContext::Threading::ENABLED
                                : MLIRContext::Threading::DISABLED);
  return wrap(context);
}

MlirModule attnresParseModule(MlirContext context, MlirStringRef source,
                              MlirStringRef bufferName,
                              AttnResDiagnosticCallback callback,
                              void *userData) {
  MLIRContext *ctx = unwrap(context);
  ForwardingDiagnosticHandler handler(ctx, callback, userData);
  auto sourceMgr = std::make_shared<llvm::SourceMgr>();
  sourceMgr->AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(unwrap(source), unwrap(bufferName)),
      llvm::SMLoc());
  // parseSourceFile verifies the parsed module.
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, ctx);
  if (!module)
    return MlirModule{nullptr};
  return MlirModule{module.release().getOperation()};
}

MlirLogicalResult attnresRunPassPipeline(MlirModule module,
                                         MlirStringRef pipeline,
                                         AttnResDiagnosticCallback callback,
                                         void *userData) {
  ModuleOp moduleOp = unwrap(module);
  MLIRContext *ctx = moduleOp.getContext();
  ForwardingDiagnosticHandler handler(ctx, callback, userData);

  // Parse into an OpPassManager anchored on builtin.module and use it as the
  // top-level pass manager. Adding the parsed manager under a module
  // PassManager (pm.addPass / nest) would nest builtin.module twice and the
  // passes would run on nothing.
  StringRef text = unwrap(pipeline).trim();
  std::string anchored;
  if (text.starts_with("builtin.module(") ||
      text.starts_with("builtin.module ("))
    anchored = text.str();
  else
    anchored = ("builtin.module(" + text + ")").str();

  // Pass-option parse errors go partly to `errorStream` and partly (a value
  // that does not parse, e.g. `block-size=abc`) straight to llvm::errs():
  // both become the one error diagnostic, the option's reason first.
  std::string errors;
  llvm::raw_string_ostream errorStream(errors);
  FailureOr<OpPassManager> parsed = failure();
  std::string printed =
      captureStderr([&] { parsed = parsePassPipeline(anchored, errorStream); });
  if (failed(parsed)) {
    // The messages without blank lines and without the empty program name
    // that LLVM's option parser puts first (": for the --x option: ...").
    std::string reason;
    SmallVector<StringRef> lines;
    std::string all = printed + "\n" + errors;
    StringRef(all).split(lines, '\n');
    for (StringRef line : lines) {
      line = line.rtrim();
      if (line.starts_with(": "))
        line = line.drop_front(2);
      if (line.trim().empty())
        continue;
      if (!reason.empty())
        reason += "\n";
      reason += line.str();
    }
    handler.reportError(
        "<pass pipeline>",
        (Twine("invalid pass pipeline '") + text + "': " + reason).str());
    return wrap(failure());
  }
  if (!printed.empty())
    handler.reportError("<pass pipeline>",
                        (Twine("pass pipeline '") + text +
                         "' parsed with messages: " + StringRef(printed).trim())
                            .str(),
                        DiagnosticSeverity::Warning);
  if (parsed->getOpAnchorName() != ModuleOp::getOperationName()) {
    handler.reportError("<pass pipeline>",
                        "the pass pipeline must be anchored on builtin.module");
    return wrap(failure());
  }
  PassManager pm(ctx, ModuleOp::getOperationName());
  static_cast<OpPassManager &>(pm) = *parsed;
  // Verification failures and pass failures are reported as diagnostics.
  return wrap(pm.run(moduleOp));
}

void attnresPrintModule(MlirModule module, bool generic, bool debugInfo,
                        MlirStringCallback callback, void *userData) {
  detail::CallbackOstream stream(callback, userData);
  OpPrintingFlags flags;
  if (generic)
    flags.printGenericOpForm();
  if (debugInfo)
    flags.enableDebugInfo();
  unwrap(module)->print(stream, flags);
  stream.flush();
}

intptr_t attnresForEachGpuObject(MlirModule module,
                                 AttnResGpuObjectCallback callback,
                                 void *userData) {
  intptr_t count = 0;
  unwrap(module)->walk([&](gpu::BinaryOp binary) {
    for (Attribute attr : binary.getObjects()) {
      auto object = dyn_cast<gpu::ObjectAttr>(attr);
      if (!object)
        continue;
      std::string target;
      {
        llvm::raw_string_ostream os(target);
        object.getTarget().print(os);
      }
      StringRef chip;
      if (auto nvvm = dyn_cast<NVVM::NVVMTargetAttr>(object.getTarget()))
        chip = nvvm.getChip();
      std::string format =
          gpu::stringifyCompilationTarget(object.getFormat()).str();
      AttnResGpuObject o{wrap(binary.getSymName()), wrap(StringRef(target)),
                         wrap(chip), wrap(StringRef(format)),
                         wrap(object.getObject().getValue())};
      ++count;
      if (callback)
        callback(&o, userData);
    }
  });
  return count;
}
