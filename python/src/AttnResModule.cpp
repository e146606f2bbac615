//===- AttnResModule.cpp - pybind11 module attnres._attnres ---------------===//
//
// Part of the attnres project.
//
// The native half of the Python package, written against the attnres C API
// (libAttnResCAPI.so) only: no MLIR C++ header is included here, so this
// file may use exceptions while Debian's MLIR is built without them. The
// Python half (attnres/compiler.py) turns the raw results into exceptions
// and objects.
//
//===----------------------------------------------------------------------===//

#include "attnres-c/Compiler.h"
#include "attnres-c/Target.h"

#include "mlir-c/IR.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <tuple>
#include <vector>

namespace py = pybind11;

namespace {

/// (severity, is_note, file, line, column, location, message, formatted)
using DiagnosticTuple =
    std::tuple<std::string, bool, std::string, unsigned, unsigned, std::string,
               std::string, std::string>;

struct GpuObject {
  std::string binaryName, target, chip, format, object;
};

struct Collected {
  std::vector<DiagnosticTuple> diagnostics;
  std::vector<GpuObject> objects;
  std::string text;
};

std::string str(MlirStringRef s) { return std::string(s.data, s.length); }

const char *severityName(MlirDiagnosticSeverity severity) {
  switch (severity) {
  case MlirDiagnosticError:
    return "error";
  case MlirDiagnosticWarning:
    return "warning";
  case MlirDiagnosticNote:
    return "note";
  case MlirDiagnosticRemark:
    return "remark";
  }
  return "error";
}

void collectDiagnostic(const AttnResDiagnostic *d, void *userData) {
  auto *c = static_cast<Collected *>(userData);
  c->diagnostics.emplace_back(
      severityName(d->severity), d->isNote, str(d->file), d->line, d->column,
      str(d->location), str(d->message), str(d->formatted));
}

void collectText(MlirStringRef s, void *userData) {
  static_cast<Collected *>(userData)->text.append(s.data, s.length);
}

void collectObject(const AttnResGpuObject *o, void *userData) {
  static_cast<Collected *>(userData)->objects.push_back(
      {str(o->binaryName), str(o->target), str(o->chip), str(o->format),
       str(o->object)});
}

/// Parses `source` and runs `pipeline` in a fresh context without the GIL,
/// then calls `after(module)` on success (still without the GIL: it must not
/// touch Python objects). Diagnostics go to `c`. Returns whether all of it
/// succeeded.
template <typename After>
bool parseAndRun(const std::string &source, const std::string &pipeline,
                 const std::string &sourceName, Collected &c, After after) {
  py::gil_scoped_release release;
  bool ok = false;
  MlirContext ctx = attnresContextCreate(/*enableThreading=*/false);
  MlirModule module = attnresParseModule(
      ctx, mlirStringRefCreate(source.data(), source.size()),
      mlirStringRefCreate(sourceName.data(), sourceName.size()),
      collectDiagnostic, &c);
  if (!mlirModuleIsNull(module)) {
    ok = mlirLogicalResultIsSuccess(attnresRunPassPipeline(
             module, mlirStringRefCreate(pipeline.data(), pipeline.size()),
             collectDiagnostic, &c)) &&
         after(module);
    mlirModuleDestroy(module);
  }
  mlirContextDestroy(ctx);
  return ok;
}

/// Parses `source`, runs `pipeline`, prints. Returns
/// (ok, text, diagnostics, gpu_objects); text is None on failure.
py::tuple compile(const std::string &source, const std::string &pipeline,
                  const std::string &sourceName, bool generic, bool debugInfo,
                  bool wantGpuObjects) {
  Collected c;
  bool ok = parseAndRun(source, pipeline, sourceName, c, [&](MlirModule m) {
    attnresPrintModule(m, generic, debugInfo, collectText, &c);
    if (wantGpuObjects)
      attnresForEachGpuObject(m, collectObject, &c);
    return true;
  });
  py::list objects;
  for (const GpuObject &o : c.objects)
    objects.append(py::make_tuple(o.binaryName, o.target, o.chip, o.format,
                                  py::bytes(o.object)));
  py::object text = ok ? py::object(py::str(c.text)) : py::object(py::none());
  return py::make_tuple(ok, text, py::cast(c.diagnostics), objects);
}

void collectBytes(MlirStringRef s, void *userData) {
  static_cast<std::string *>(userData)->append(s.data, s.length);
}

/// Parses `source`, runs `pipeline` (which must lower to the LLVM dialect)
/// and compiles the result for the host. Returns (ok, object bytes, LLVM IR
/// text, diagnostics); the object and the IR are None on failure.
py::tuple compileHost(const std::string &source, const std::string &pipeline,
                      const std::string &sourceName, int optLevel) {
  Collected c;
  std::string object;
  bool ok = parseAndRun(source, pipeline, sourceName, c, [&](MlirModule m) {
    return mlirLogicalResultIsSuccess(
        attnresEmitHostCode(m, optLevel, collectText, &c, collectBytes, &object,
                            collectDiagnostic, &c));
  });
  py::object obj = ok ? py::object(py::bytes(object)) : py::object(py::none());
  py::object ir = ok ? py::object(py::str(c.text)) : py::object(py::none());
  return py::make_tuple(ok, obj, ir, py::cast(c.diagnostics));
}

py::tuple defaultNVVMTarget() {
  return py::make_tuple(str(attnresGetDefaultNVVMChip()),
                        str(attnresGetDefaultNVVMFeatures()));
}

} // namespace

PYBIND11_MODULE(_attnres, m) {
  m.doc() = "Native part of the attnres package (over libAttnResCAPI.so)";
  m.def("compile", &compile, py::arg("source"), py::arg("pipeline"),
        py::arg("source_name"), py::arg("generic") = false,
        py::arg("debug_info") = false, py::arg("gpu_objects") = false,
        "Parse, run a textual pass pipeline and print; returns (ok, text, "
        "diagnostics, gpu_objects).");
  m.def("compile_host", &compileHost, py::arg("source"), py::arg("pipeline"),
        py::arg("source_name"), py::arg("opt_level") = 2,
        "Parse, run a pipeline to the LLVM dialect, compile for the host; "
        "returns (ok, object bytes, LLVM IR text, diagnostics).");
  m.def("default_epsilon", &attnresGetDefaultEpsilon,
        "The key-norm epsilon of attnres ops when none is written (f32).");
  m.def(
      "default_blocking",
      [] {
        return py::make_tuple(attnresGetDefaultBlockSize(),
                              attnresGetDefaultNumBlocks());
      },
      "(block-size, num-blocks) of attnres-blockify/-report when not given "
      "(0: not asked for).");
  m.def("default_nvvm_target", &defaultNVVMTarget,
        "(chip, features) that attnres-lower-to-nvvm uses by default.");
}
