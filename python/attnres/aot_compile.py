"""Ahead-of-time compilation of an MLIR module with GPU kernels into a shared
library, in this process through the C API (docs/runtime.md):

  1. the pipeline (``attnres-lower-to-nvvm``, or with ``pipeline="upstream"``
     the target check and ``gpu-lower-to-nvvm-pipeline``) lowers the module to
     the LLVM dialect with its kernels in a ``gpu.binary``;
  2. the result is translated to LLVM IR and compiled to a host object
     (``attnres.compile_host``);
  3. the C compiler CMake configured links it with the static attnres CUDA
     runtime into lib<name>.so, exporting only _mlir_ciface_* and
     attnresRuntime*; it needs libc (and libm) at load time and dlopens
     libcuda.so.1 when a kernel first runs;
  4. <name>.h and <name>.json describe each exported function and its memref
     arguments (inputs in order, then the results as out-parameters).

The chip and PTX features default to the compiler's
(``attnres.default_nvvm_target()``); tool paths come from the build's
``attnres._config`` (CMake). The public functions of the input must be
func.func on tensors or memrefs (dynamic sizes are recorded as null in the
JSON). The loader of these libraries is attnres.aot.
"""

import json
import os
import re
import subprocess
import tempfile

__all__ = ["AotCompileError", "compile_library", "main", "parse_public_functions"]

ELEMENT_BYTES = {
    "f64": 8, "f32": 4, "f16": 2, "bf16": 2,
    "i64": 8, "i32": 4, "i16": 2, "i8": 1, "i1": 1, "index": 8,
}
C_SCALAR = {
    "f64": "double", "f32": "float", "i64": "int64_t", "i32": "int32_t",
    "i16": "int16_t", "i8": "int8_t", "i1": "bool", "index": "intptr_t",
}
FORMATS = ("isa", "bin", "fatbin")


class AotCompileError(Exception):
    pass


# --- Signature parsing -------------------------------------------------------

def split_top_level(text, sep=","):
    """Splits on `sep` outside <>, (), [] and {}."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current))
    return [p.strip() for p in parts]


def matching_paren(text, start):
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise AotCompileError("unbalanced parentheses in a function signature")


def parse_type(text):
    text = text.strip()
    m = re.fullmatch(r"(tensor|memref)<(.*)>", text)
    if m:
        inner = split_top_level(m.group(2))[0]  # drop a memref layout
        dims = inner.split("x")
        element = dims[-1].strip()
        shape = []
        for d in dims[:-1]:
            # A dynamic size is None: the caller fills it in the descriptor.
            shape.append(None if d.strip() == "?" else int(d))
        if element not in ELEMENT_BYTES:
            raise AotCompileError("unsupported element type in " + text)
        return {"kind": "memref", "element": element, "shape": shape,
                "rank": len(shape), "type": text}
    if text in ELEMENT_BYTES:
        return {"kind": "scalar", "element": text, "type": text}
    raise AotCompileError("unsupported argument type: " + text)


def parse_public_functions(mlir_text):
    """Returns [{name, args, results}] for every public func.func."""
    functions = []
    for m in re.finditer(r"func\.func\s+(private\s+|public\s+)?@([\w$.]+)\s*\(",
                         mlir_text):
        if m.group(1) and m.group(1).strip() == "private":
            continue
        open_paren = m.end() - 1
        close_paren = matching_paren(mlir_text, open_paren)
        args = []
        for i, arg in enumerate(split_top_level(mlir_text[open_paren + 1:close_paren])):
            am = re.match(r"(%[\w$.]+)\s*:\s*(.*)", arg, re.S)
            if not am:
                raise AotCompileError("cannot parse argument '%s' of @%s" % (arg, m.group(2)))
            type_text = am.group(2)
            type_text = re.sub(r"\s*\{.*\}\s*$", "", type_text, flags=re.S)
            entry = parse_type(type_text)
            entry["name"] = am.group(1)[1:]
            args.append(entry)
        rest = mlir_text[close_paren + 1:]
        results = []
        rm = re.match(r"\s*->\s*", rest)
        if rm:
            rest = rest[rm.end():]
            if rest.startswith("("):
                end = matching_paren(rest, 0)
                result_texts = split_top_level(rest[1:end])
            else:
                tm = re.match(r"((?:tensor|memref)<[^>]*>|\w+)", rest)
                result_texts = [tm.group(1)]
            for i, rt in enumerate(result_texts):
                rt = re.sub(r"\s*\{.*\}\s*$", "", rt, flags=re.S)
                entry = parse_type(rt)
                if entry["kind"] != "memref":
                    raise AotCompileError("@%s: scalar results are not supported" % m.group(2))
                entry["name"] = "result%d" % i
                results.append(entry)
        functions.append({"name": m.group(2), "args": args, "results": results})
    return functions


# --- Outputs -----------------------------------------------------------------

def describe(functions, library, options):
    described = []
    for f in functions:
        params = []
        for a in f["args"]:
            p = dict(a)
            p["role"] = "input"
            params.append(p)
        for r in f["results"]:
            p = dict(r)
            p["role"] = "output"
            params.append(p)
        for p in params:
            if p["kind"] == "memref":
                p["element_bytes"] = ELEMENT_BYTES[p["element"]]
                if None not in p["shape"]:
                    strides, s = [], 1
                    for d in reversed(p["shape"]):
                        strides.insert(0, s)
                        s *= d
                    p["contiguous_strides"] = strides
        described.append({"name": f["name"], "symbol": "_mlir_ciface_" + f["name"],
                          "params": params})
    return {
        "library": os.path.basename(library),
        "pipeline": options["pipeline"],
        "chip": options["chip"],
        "features": options["features"],
        "format": options["format"],
        "gpu_options": options.get("gpu_options"),
        "calling_convention": (
            "void symbol(params...): each memref parameter is a pointer to a "
            "descriptor {void *allocated; void *aligned; int64_t offset; "
            "int64_t sizes[rank]; int64_t strides[rank];} (strides in "
            "elements) of HOST memory; scalars are passed by value; outputs "
            "are written in place; runs on the calling thread."
            if options["pipeline"] == "cpu" else
            "void symbol(params...): each memref parameter is a pointer to a "
            "descriptor {void *allocated; void *aligned; int64_t offset; "
            "int64_t sizes[rank]; int64_t strides[rank];} (strides in "
            "elements) of DEVICE memory; scalars are passed by value; "
            "outputs are written in place. Runs on its own stream and "
            "synchronizes, unless attnresRuntimeSetStream was called on the "
            "calling thread."),
        "functions": described,
    }


def header_text(description, guard):
    lines = [
        "/* Generated by attnres.aot_compile: the functions of %s. */"
        % description["library"],
        "#ifndef %s" % guard, "#define %s" % guard, "",
        "#include <stdbool.h>", "#include <stdint.h>", "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
    ]
    ranks = sorted({p["rank"] for f in description["functions"]
                    for p in f["params"] if p["kind"] == "memref"})
    for r in ranks:
        dims = "[%d]" % r if r else "[1]"
        lines += [
            "#ifndef ATTNRES_MEMREF%dD_DEFINED" % r,
            "#define ATTNRES_MEMREF%dD_DEFINED" % r,
            "/* A rank-%d memref descriptor (device pointers, strides in"
            " elements). */" % r,
            "typedef struct {",
            "  void *allocated;", "  void *aligned;", "  int64_t offset;",
        ]
        if r:
            lines += ["  int64_t sizes%s;" % dims, "  int64_t strides%s;" % dims]
        lines += ["} attnres_memref%dd_t;" % r, "#endif", ""]
    for f in description["functions"]:
        params = []
        for p in f["params"]:
            if p["kind"] == "memref":
                params.append("attnres_memref%dd_t *%s /* %s %s */"
                              % (p["rank"], p["name"], p["role"], p["type"]))
            else:
                params.append("%s %s" % (C_SCALAR[p["element"]], p["name"]))
        lines.append("void %s(%s);" % (f["symbol"], ", ".join(params) or "void"))
    if description["pipeline"] == "cpu":
        lines += ["", "#ifdef __cplusplus", "}", "#endif", "", "#endif /* %s */" % guard, ""]
        return "\n".join(lines)
    lines += [
        "",
        "/* The attnres runtime linked into the library"
        " (runtime/include/attnres/Runtime/CudaRuntime.h). */",
        "int attnresRuntimeIsAvailable(void);",
        "int attnresRuntimeGetLastError(void);",
        "const char *attnresRuntimeGetLastErrorMessage(void);",
        "void attnresRuntimeClearError(void);",
        "void attnresRuntimeSetStream(void *stream);",
        "void attnresRuntimeResetStream(void);",
        "void *attnresRuntimeGetStream(int *isSet);",
        "void attnresRuntimeSetQuiet(int quiet);",
        "", "#ifdef __cplusplus", "}", "#endif", "", "#endif /* %s */" % guard, "",
    ]
    return "\n".join(lines)


def check_llvm_signatures(ll_text, description):
    """Each exported function exists in the LLVM IR with one pointer per memref
    parameter and one value per scalar."""
    for f in description["functions"]:
        m = re.search(r"define [^@\n]*@%s\(" % re.escape(f["symbol"]), ll_text)
        if not m:
            raise AotCompileError("%s is missing from the LLVM IR: is @%s public and "
                           "does the pipeline emit C interfaces?" % (f["symbol"], f["name"]))
        params = ll_text[m.end():matching_paren(ll_text, m.end() - 1)]
        got = len([a for a in split_top_level(params) if a.strip()])
        if got != len(f["params"]):
            raise AotCompileError("%s takes %d parameters in the LLVM IR but %d were derived "
                           "from the MLIR signature" % (f["symbol"], got, len(f["params"])))


def _config():
    try:
        from . import _config
    except ImportError:
        raise AotCompileError("attnres._config is missing: ahead-of-time compilation needs the "
                              "package of a CMake build (<build>/python_packages)")
    return _config


# convert-attnres-to-gpu options: `name=value` pairs separated by spaces.
_GPU_OPTIONS = re.compile(r"[a-z][a-z-]*=[A-Za-z0-9+._-]+( [a-z][a-z-]*=[A-Za-z0-9+._-]+)*")


def _pipeline(kind, chip, features, fmt, opt_level, gpu_options=None):
    if gpu_options and kind != "attnres":
        raise AotCompileError("gpu_options need the attnres pipeline, not %r" % (kind,))
    if kind == "cpu":
        return "attnres-lower-to-llvm{out-params=1}"
    if kind == "attnres":
        lower = "attnres-lower-to-nvvm{chip=%s features=%s format=%s opt-level=%d}" % (
            chip, features, fmt, opt_level)
        if not gpu_options:
            return lower
        # The conversion with the options first; the pipeline's own
        # convert-attnres-to-gpu then finds no attnres op left.
        return "convert-attnres-to-gpu{chip=%s features=%s %s},%s" % (
            chip, features, gpu_options, lower)
    if kind == "upstream":
        # The target is checked first: LLVM aborts on a chip/PTX pair it
        # cannot use.
        return ("attnres-validate-nvvm-target{chip=%s features=%s},"
                "gpu-lower-to-nvvm-pipeline{cubin-chip=%s cubin-features=%s cubin-format=%s "
                "opt-level=%d}" % (chip, features, chip, features, fmt, opt_level))
    raise AotCompileError("pipeline must be 'attnres', 'upstream' or 'cpu', got %r" % (kind,))


def compile_library(mlir_text, out_dir, name, *, pipeline="attnres", chip=None, features=None,
                    format="fatbin", opt_level=3, runtime=None, linker=None, keep=False,
                    source_name=None, gpu_options=None):
    """Compiles `mlir_text` into `out_dir`/lib<name>.so with <name>.json and
    <name>.h; returns the path of the library. `chip`/`features` default to
    the compiler's (attnres.default_nvvm_target()). With pipeline="cpu" the
    functions run on the host (attnres-lower-to-llvm{out-params=1}; no
    chip, no CUDA runtime; the CPU runtime is linked in, so the library
    needs libc and libm only). `gpu_options` (attnres pipeline only) are
    convert-attnres-to-gpu options, "name=value" pairs separated by spaces
    (e.g. "score-small-tokens=0 grad-prefetch-tokens=0"), recorded in the
    JSON. Raises AotCompileError (and attnres.CompileError for compiler
    diagnostics)."""
    from .compiler import compile_host, default_nvvm_target

    if not re.fullmatch(r"[A-Za-z0-9_]+", name or ""):
        raise AotCompileError("library name must be [A-Za-z0-9_]+: %s" % name)
    if format not in FORMATS:
        raise AotCompileError("format must be one of %s, got %r" % (FORMATS, format))
    default_chip, default_features = default_nvvm_target()
    chip = chip or default_chip
    features = features or default_features
    gpu_options = (gpu_options or "").strip() or None
    if gpu_options and not _GPU_OPTIONS.fullmatch(gpu_options):
        raise AotCompileError("gpu_options must be name=value pairs separated by spaces, "
                              "got %r" % (gpu_options,))
    functions = parse_public_functions(mlir_text)
    if not functions:
        raise AotCompileError("no public func.func in %s" % (source_name or "the module"))
    cfg = _config()
    cpu = pipeline == "cpu"
    if cpu:
        chip = features = format = None
    runtime = runtime or cfg.CUDA_RUNTIME_STATIC
    if not cpu and not os.path.exists(runtime):
        raise AotCompileError("static runtime not found: %s (build attnres_cuda_runtime_static)"
                              % runtime)
    if not cpu and cfg.CUDA_HOME and format != "isa":
        # gpu-module-to-binary finds ptxas/fatbinary through CUDA_HOME.
        os.environ.setdefault("CUDA_HOME", cfg.CUDA_HOME)
        os.environ.setdefault("CUDA_PATH", cfg.CUDA_HOME)

    host = compile_host(mlir_text,
                        _pipeline(pipeline, chip, features, format, opt_level, gpu_options),
                        source_name=source_name or name + ".mlir", opt_level=2)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    library = os.path.join(out_dir, "lib%s.so" % name)
    description = describe(functions, library, {"pipeline": pipeline, "chip": chip,
                                                "features": features, "format": format,
                                                "gpu_options": gpu_options})
    check_llvm_signatures(host.llvm_ir, description)

    work = out_dir if keep else tempfile.mkdtemp(prefix="aot-" + name + "-")
    obj = os.path.join(work, name + ".o")
    exports = os.path.join(work, name + ".exports.map")
    with open(obj, "wb") as f:
        f.write(host.object)
    if keep:
        with open(os.path.join(work, name + ".ll"), "w") as f:
            f.write(host.llvm_ir)
    with open(exports, "w") as f:
        f.write("{\n  global:\n")
        for fn in description["functions"]:
            f.write("    %s;\n" % fn["symbol"])
        if not cpu:
            f.write("    attnresRuntime*;\n")
        f.write("  local:\n    *;\n};\n")
    # The runtime is C-like (libc only): link with the C driver so that the
    # library has no libstdc++ dependency; libcuda is dlopened at run time.
    # A CPU library links the CPU runtime instead (memrefCopy and the f32 ->
    # bf16 conversion __truncsfbf2, which GCC 12's libgcc lacks), not MLIR's
    # runner utils, which would load libMLIR and libLLVM.
    if cpu and not os.path.exists(cfg.CPU_RUNTIME_STATIC):
        raise AotCompileError("static CPU runtime not found: %s (build attnres_cpu_runtime_static)"
                              % cfg.CPU_RUNTIME_STATIC)
    extra = [runtime] if not cpu else [cfg.CPU_RUNTIME_STATIC]
    cmd = [linker or cfg.C_COMPILER, "-shared", "-fPIC", "-o", library, obj] + extra + [
           "-Wl,--version-script=" + exports, "-Wl,--no-undefined", "-Wl,--as-needed", "-lm",
           "-Wl,-soname,lib%s.so" % name]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if not keep:
        for path in (obj, exports):
            os.remove(path)
        os.rmdir(work)
    if p.returncode != 0:
        raise AotCompileError("linking lib%s.so failed (exit %d): %s\n%s%s" % (
            name, p.returncode, " ".join(cmd), p.stdout, p.stderr))
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(description, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, name + ".h"), "w") as f:
        f.write(header_text(description, "ATTNRES_AOT_%s_H" % name.upper()))
    return library


def main(argv=None):
    import argparse
    import sys

    from .compiler import CompileError

    ap = argparse.ArgumentParser(prog="aot_compile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="MLIR module (func.func on tensors with attnres ops)")
    ap.add_argument("-o", "--output-dir", required=True)
    ap.add_argument("--name", help="library name (default: input file stem)")
    ap.add_argument("--pipeline", choices=["attnres", "upstream", "cpu"], default="attnres",
                    help="attnres: attnres-lower-to-nvvm; upstream: gpu-lower-to-nvvm-pipeline "
                         "(input already on GPU ops); cpu: attnres-lower-to-llvm, a host "
                         "library")
    ap.add_argument("--chip", help="default: the compiler's (attnres.default_nvvm_target())")
    ap.add_argument("--features", help="default: the compiler's")
    ap.add_argument("--format", default="fatbin", choices=FORMATS)
    ap.add_argument("--opt-level", type=int, default=3)
    ap.add_argument("--gpu-options", help="convert-attnres-to-gpu options for the attnres "
                    "pipeline, space-separated name=value pairs (e.g. 'score-small-tokens=64')")
    ap.add_argument("--runtime", help="static runtime archive (default: this build's)")
    ap.add_argument("--keep", action="store_true", help="keep the object and the LLVM IR")
    args = ap.parse_args(argv)
    name = args.name or re.sub(r"\W", "_", os.path.splitext(os.path.basename(args.input))[0])
    try:
        with open(args.input) as f:
            text = f.read()
        library = compile_library(text, args.output_dir, name, pipeline=args.pipeline,
                                  chip=args.chip, features=args.features, format=args.format,
                                  opt_level=args.opt_level, runtime=args.runtime,
                                  keep=args.keep, source_name=args.input,
                                  gpu_options=args.gpu_options)
    except CompileError as e:
        # The errors with their locations (not the notes that dump the IR).
        print("aot_compile: error: %s" % str(e).splitlines()[0], file=sys.stderr)
        for d in e.errors:
            print("  " + d.formatted, file=sys.stderr)
        return 1
    except (AotCompileError, OSError) as e:
        print("aot_compile: error: %s" % e, file=sys.stderr)
        return 1
    print(library)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
