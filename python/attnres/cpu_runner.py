"""Running a compiled function on the CPU with mlir-runner, for tests.

``run_on_cpu`` wraps a ``func.func`` on tensors into a ``main`` that feeds it
constant inputs and prints every result with ``printMemrefF32``, lowers the
module with a pipeline (``attnres-lower-to-llvm`` by default, through
:func:`attnres.compile`) and runs it with ``mlir-runner``. Slow and meant for
small shapes; results come back as float32 numpy arrays.
"""

import os
import re
import shutil
import subprocess
import tempfile
from typing import Callable, List, Optional, Sequence

import numpy as np

from . import irbuilder as irb

__all__ = ["run_on_cpu", "find_llvm_tool", "runner_utils"]


def _llvm_dirs():
    """(tools, libraries) of the LLVM this build uses (attnres/_config.py,
    written by CMake); (None, None) outside a CMake build's package."""
    try:
        from . import _config
    except ImportError:
        return None, None
    return _config.LLVM_TOOLS_DIR, _config.LLVM_LIBRARY_DIR


def find_llvm_tool(name: str) -> str:
    """An LLVM/MLIR tool of this build's LLVM, else the one on PATH."""
    tools, _ = _llvm_dirs()
    if tools and os.path.exists(os.path.join(tools, name)):
        return os.path.join(tools, name)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError("%s not found (not in this build's LLVM, not on PATH)" % name)
    return found


def runner_utils() -> List[str]:
    """The mlir-runner support libraries (printMemrefF32 and friends)."""
    _, libs = _llvm_dirs()
    if not libs:
        libs = os.path.join(os.path.dirname(os.path.realpath(find_llvm_tool("mlir-runner"))),
                            os.pardir, "lib")
    return [os.path.join(libs, "libmlir_runner_utils.so"),
            os.path.join(libs, "libmlir_c_runner_utils.so")]


_ET = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64",
       np.dtype(np.float16): "f16", np.dtype(np.int64): "i64",
       np.dtype(np.int32): "i32"}


_tensor_type = irb.tensor_type


def _wrap(ir: str, func_name: str, inputs: Sequence[np.ndarray],
          result_types: List[str]) -> str:
    lines = []
    args = []
    for i, a in enumerate(inputs):
        a = np.ascontiguousarray(a)
        et = _ET.get(a.dtype)
        if et is None:
            raise TypeError("unsupported input dtype %s" % a.dtype)
        t = _tensor_type(a.shape, et)
        flat_t = _tensor_type([a.size], et)
        lines.append("    %%flat%d = arith.constant %s" % (i, irb.dense(a.reshape(-1), et)))
        if a.ndim == 1:
            lines.append("    %%in%d = tensor.cast %%flat%d : %s to %s" % (i, i, flat_t, t))
        else:
            lines.append("    %%in%d = tensor.expand_shape %%flat%d [[%s]] output_shape [%s] : %s into %s"
                         % (i, i, ", ".join(str(k) for k in range(a.ndim)),
                            ", ".join(str(s) for s in a.shape), flat_t, t))
        args.append(("%%in%d" % i, t))
    res = ", ".join("%%r#%d" % k for k in range(len(result_types))) if len(result_types) > 1 else "%r"
    lines.append("    %s = func.call @%s(%s) : (%s) -> (%s)"
                 % ("%r:%d" % len(result_types) if len(result_types) > 1 else "%r", func_name,
                    ", ".join(a for a, _ in args), ", ".join(t for _, t in args),
                    ", ".join(result_types)))
    names = res.split(", ")
    for k, (name, t) in enumerate(zip(names, result_types)):
        et = t[t.rindex("x") + 1:-1] if "x" in t else t[len("tensor<"):-1]
        v = name
        if et != "f32":
            raise TypeError("only f32 results can be printed, got %s" % t)
        lines.append("    %%u%d = tensor.cast %s : %s to tensor<*xf32>" % (k, v, t))
        lines.append("    func.call @printMemrefF32(%%u%d) : (tensor<*xf32>) -> ()" % k)
    main = ["  func.func private @printMemrefF32(tensor<*xf32>)",
            "  func.func @main() {"] + lines + ["    return", "  }"]
    body = ir.rstrip()
    if not body.endswith("}"):
        raise ValueError("expected a module")
    return body[:-1] + "\n".join(main) + "\n}\n"


def _result_types(ir: str, func_name: str) -> List[str]:
    m = re.search(r"func\.func @%s\((.*)\) -> (.*) \{" % re.escape(func_name), ir)
    if not m:
        raise ValueError("function @%s not found" % func_name)
    res = m.group(2).strip()
    if res.startswith("("):
        res = res[1:-1]
    return re.findall(r"tensor<[^>]*>", res)


def _parse_prints(out: str, count: int) -> List[np.ndarray]:
    results = []
    for chunk in out.split("Unranked Memref")[1:]:
        sizes = re.search(r"sizes = \[([^\]]*)\]", chunk)
        shape = [int(s) for s in sizes.group(1).split(",") if s.strip()] if sizes else []
        data = chunk[chunk.index("data =") + len("data ="):]
        nums = re.findall(r"[-+]?(?:nan|inf|\d+\.?\d*(?:[eE][-+]?\d+)?)", data)
        arr = np.array([float(x) for x in nums], dtype=np.float32)
        results.append(arr.reshape(shape))
    if len(results) != count:
        raise RuntimeError("expected %d printed results, got %d:\n%s" % (count, len(results), out))
    return results


def run_on_cpu(ir: str, inputs: Sequence[np.ndarray], *, func_name: str = "forward",
               pipeline: str = "attnres-lower-to-llvm",
               compile_fn: Optional[Callable[[str, str], str]] = None,
               timeout: float = 300.0) -> List[np.ndarray]:
    """Runs ``@func_name`` of ``ir`` on ``inputs`` and returns its results."""
    if compile_fn is None:
        from .compiler import compile as compile_fn
    types = _result_types(ir, func_name)
    wrapped = _wrap(ir, func_name, inputs, types)
    lowered = compile_fn(wrapped, pipeline)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "module.mlir")
        with open(path, "w") as f:
            f.write(lowered)
        cmd = [find_llvm_tool("mlir-runner"), path, "-e", "main",
               "-entry-point-result=void"] + ["-shared-libs=%s" % so for so in runner_utils()]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("mlir-runner failed (%d):\n%s" % (p.returncode, p.stderr[-4000:]))
    return _parse_prints(p.stdout, len(types))
