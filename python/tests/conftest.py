"""Shared helpers of the attnres Python tests.

Run with the CMake build's package on the path:
  PYTHONPATH=build/python_packages /usr/bin/python3 -m pytest python/tests
"""

import os
import sys

import pytest

# Let `python3 -m pytest python/tests` also work from the source tree: the
# package then finds the native extension of build/ (or $ATTNRES_BUILD_DIR).
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
try:
    import attnres  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.abspath(_SRC))

import attnres  # noqa: E402

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
