"""Shared helpers of the attnres Python tests.

Run with the CMake build's package on the path:
  PYTHONPATH=build/python_packages /usr/bin/python3 -m pytest python/tests
"""

import os
import sys

import pytest

try:
    import attnres
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("the attnres package is not importable: run the tests with "
                      "PYTHONPATH=<build>/python_packages (docs/python.md)") from e

# The CPU lowering used by the numerical tests, spelled with upstream passes
# after convert-attnres-to-linalg (toolchain.md), so that it exercises the
# binding's pipeline parser with a long pipeline. math-to-llvm runs before
# math-to-libm so that only erf becomes a libm call.
CPU_PIPELINE = (
    "builtin.module(func.func(convert-attnres-to-linalg),"
    "one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map},"
    "buffer-deallocation-pipeline,convert-linalg-to-loops,"
    "expand-strided-metadata,lower-affine,convert-scf-to-cf,"
    "convert-math-to-llvm,convert-math-to-libm,convert-to-llvm,"
    "reconcile-unrealized-casts)"
)


@pytest.fixture(scope="session", autouse=True)
def _native():
    if not attnres.native_available():
        pytest.fail("the attnres native extension is not importable: build the "
                    "AttnResPythonModules target and set PYTHONPATH=<build>/python_packages")


def compile_isolated(ir, pipeline, timeout=600):
    """attnres.compile_with_diagnostics in a child process, so that a crash
    in a pass fails one test instead of killing the whole session. Returns
    (text, diagnostics); raises CompileError as compile does."""
    import json
    import subprocess

    child = (
        "import json, sys\n"
        "import attnres\n"
        "req = json.load(sys.stdin)\n"
        "try:\n"
        "    r = attnres.compile_with_diagnostics(req['ir'], req['pipeline'])\n"
        "    out = {'ok': True, 'text': r.text, 'diags': [list(d.__dict__.values()) for d in r.diagnostics]}\n"
        "except attnres.CompileError as e:\n"
        "    out = {'ok': False, 'text': str(e), 'diags': [list(d.__dict__.values()) for d in e.diagnostics]}\n"
        "json.dump(out, sys.stdout)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    p = subprocess.run([sys.executable, "-c", child], input=json.dumps({"ir": ir, "pipeline": pipeline}),
                       capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        pytest.fail("compiling with '%s' crashed the process (exit %d):\n%s"
                    % (pipeline, p.returncode, p.stderr[-3000:]))
    out = json.loads(p.stdout)
    diags = [attnres.Diagnostic(*d) for d in out["diags"]]
    if not out["ok"]:
        raise attnres.CompileError(out["text"].splitlines()[0], diags)
    return out["text"], diags
