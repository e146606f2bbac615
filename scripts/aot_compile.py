#!/usr/bin/env python3
"""Ahead-of-time compiles an MLIR module with GPU kernels into a shared library.

Steps (docs/runtime.md describes them and the files they produce):
  1. attnres-opt --attnres-lower-to-nvvm=... (or, with --pipeline=upstream,
     Debian's mlir-opt with gpu-lower-to-nvvm-pipeline) -> LLVM dialect
  2. mlir-translate --mlir-to-llvmir                   -> LLVM IR
  3. clang++ -O2 -fPIC -c                              -> object
  4. clang -shared with the static attnres CUDA runtime -> lib<name>.so
     exporting only _mlir_ciface_* and attnresRuntime*; it needs libc (and
     libm) at load time and dlopens libcuda.so.1 when a kernel first runs.
  5. <name>.h and <name>.json describe each exported function and its memref
     arguments (inputs in order, then the results as out-parameters).

The public functions of the input must be func.func on tensors or memrefs
(dynamic sizes are recorded as null in the JSON).
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

LLVM_BIN = "/usr/lib/llvm-22/bin"

ELEMENT_BYTES = {
    "f64": 8, "f32": 4, "f16": 2, "bf16": 2,
    "i64": 8, "i32": 4, "i16": 2, "i8": 1, "i1": 1, "index": 8,
}
C_SCALAR = {
    "f64": "double", "f32": "float", "i64": "int64_t", "i32": "int32_t",
    "i16": "int16_t", "i8": "int8_t", "i1": "bool", "index": "intptr_t",
}


class AotError(Exception):
    pass


def run(cmd, verbose, env=None):
    if verbose:
        print("+ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise AotError(
            "command failed (exit %d): %s\n%s%s"
            % (result.returncode, " ".join(shlex.quote(c) for c in cmd),
               result.stdout, result.stderr))
    return result


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
    raise AotError("unbalanced parentheses in a function signature")


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
            raise AotError("unsupported element type in " + text)
        return {"kind": "memref", "element": element, "shape": shape,
                "rank": len(shape), "type": text}
    if text in ELEMENT_BYTES:
        return {"kind": "scalar", "element": text, "type": text}
    raise AotError("unsupported argument type: " + text)


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
                raise AotError("cannot parse argument '%s' of @%s" % (arg, m.group(2)))
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
                    raise AotError("@%s: scalar results are not supported" % m.group(2))
                entry["name"] = "result%d" % i
                results.append(entry)
        functions.append({"name": m.group(2), "args": args, "results": results})
    return functions


# --- Outputs -----------------------------------------------------------------

def describe(functions, library, args):
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
        "pipeline": args.pipeline,
        "chip": args.chip,
        "features": args.features,
        "format": args.format,
        "calling_convention": (
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
        "/* Generated by scripts/aot_compile.py: the functions of %s. */"
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
        m = re.search(r"define [^@]*@%s\(([^)]*)\)" % re.escape(f["symbol"]), ll_text)
        if not m:
            raise AotError("%s is missing from the LLVM IR: is @%s public and "
                           "does the pipeline emit C interfaces?" % (f["symbol"], f["name"]))
        got = len([a for a in m.group(1).split(",") if a.strip()])
        if got != len(f["params"]):
            raise AotError("%s takes %d parameters in the LLVM IR but %d were derived "
                           "from the MLIR signature" % (f["symbol"], got, len(f["params"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="MLIR module (func.func on tensors with attnres ops)")
    ap.add_argument("-o", "--output-dir", required=True)
    ap.add_argument("--name", help="library name (default: input file stem)")
    ap.add_argument("--pipeline", choices=["attnres", "upstream"], default="attnres",
                    help="attnres: attnres-opt --attnres-lower-to-nvvm; upstream: "
                         "mlir-opt gpu-lower-to-nvvm-pipeline (input already on GPU ops)")
    ap.add_argument("--chip", default="sm_90a")
    ap.add_argument("--features", default="+ptx80")
    ap.add_argument("--format", default="fatbin", choices=["isa", "bin", "fatbin"])
    ap.add_argument("--opt-level", type=int, default=3)
    ap.add_argument("--build-dir", default=None,
                    help="attnres build directory (default: <repo>/build)")
    ap.add_argument("--opt-tool", help="override the optimizer binary")
    ap.add_argument("--runtime", help="static runtime archive (default: "
                    "<build-dir>/lib/libattnres_cuda_runtime_static.a)")
    ap.add_argument("--cuda-home", default=os.environ.get("CUDA_HOME", "/usr/local/cuda"))
    ap.add_argument("--keep", action="store_true", help="keep intermediate files")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = os.path.abspath(args.build_dir or os.path.join(repo, "build"))
    name = args.name or re.sub(r"\W", "_", os.path.splitext(os.path.basename(args.input))[0])
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise AotError("library name must be [A-Za-z0-9_]+: " + name)
    if not re.fullmatch(r"sm_\d+[a-z]?", args.chip):
        raise AotError("bad --chip " + args.chip)
    if not re.fullmatch(r"\+ptx\d+", args.features):
        raise AotError("bad --features " + args.features)
    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)
    runtime = args.runtime or os.path.join(build, "lib", "libattnres_cuda_runtime_static.a")
    if not os.path.exists(runtime):
        raise AotError("static runtime not found: %s (build attnres_cuda_runtime_static)" % runtime)

    with open(args.input) as f:
        mlir_text = f.read()
    functions = parse_public_functions(mlir_text)
    if not functions:
        raise AotError("no public func.func in " + args.input)

    env = dict(os.environ)
    env["CUDA_HOME"] = args.cuda_home
    env["CUDA_PATH"] = args.cuda_home
    env["PATH"] = os.path.join(args.cuda_home, "bin") + os.pathsep + env.get("PATH", "")

    work = out if args.keep else tempfile.mkdtemp(prefix="aot-" + name + "-")
    llvm_mlir = os.path.join(work, name + ".llvm.mlir")
    ll = os.path.join(work, name + ".ll")
    obj = os.path.join(work, name + ".o")
    exports = os.path.join(work, name + ".exports.map")
    library = os.path.join(out, "lib%s.so" % name)

    if args.pipeline == "attnres":
        tool = args.opt_tool or os.path.join(build, "bin", "attnres-opt")
        opts = "chip=%s features=%s format=%s opt-level=%d" % (
            args.chip, args.features, args.format, args.opt_level)
        run([tool, args.input, "--attnres-lower-to-nvvm=" + opts, "-o", llvm_mlir],
            args.verbose, env)
    else:
        tool = args.opt_tool or os.path.join(LLVM_BIN, "mlir-opt")
        pipeline = ("builtin.module(gpu-lower-to-nvvm-pipeline{cubin-chip=%s "
                    "cubin-features=%s cubin-format=%s opt-level=%d})"
                    % (args.chip, args.features, args.format, args.opt_level))
        run([tool, args.input, "--pass-pipeline=" + pipeline, "-o", llvm_mlir],
            args.verbose, env)
    run([os.path.join(LLVM_BIN, "mlir-translate"), "--mlir-to-llvmir", llvm_mlir,
         "-o", ll], args.verbose, env)

    description = describe(functions, library, args)
    with open(ll) as f:
        check_llvm_signatures(f.read(), description)

    run(["clang++-22", "-O2", "-fPIC", "-Wno-override-module", "-c", ll, "-o", obj],
        args.verbose, env)
    with open(exports, "w") as f:
        f.write("{\n  global:\n")
        for fn in description["functions"]:
            f.write("    %s;\n" % fn["symbol"])
        f.write("    attnresRuntime*;\n  local:\n    *;\n};\n")
    # The runtime is C-like (libc only): link with the C driver so that the
    # library has no libstdc++ dependency; libcuda is dlopened at run time.
    run(["clang-22", "-shared", "-fPIC", "-o", library, obj, runtime,
         "-Wl,--version-script=" + exports, "-Wl,--no-undefined",
         "-Wl,--as-needed", "-lm", "-Wl,-soname,lib%s.so" % name],
        args.verbose, env)

    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(description, f, indent=2)
        f.write("\n")
    guard = "ATTNRES_AOT_%s_H" % name.upper()
    with open(os.path.join(out, name + ".h"), "w") as f:
        f.write(header_text(description, guard))
    if not args.keep:
        for p in (llvm_mlir, ll, obj, exports):
            if os.path.exists(p):
                os.remove(p)
        os.rmdir(work)
    print(library)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AotError as e:
        print("aot_compile: error: %s" % e, file=sys.stderr)
        sys.exit(1)
