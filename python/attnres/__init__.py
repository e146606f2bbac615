"""attnres: the Attention Residuals compiler from Python.

- ``compile(ir, pipeline)`` parses MLIR text, runs a textual pass pipeline and
  returns the printed module; failures raise :class:`CompileError` carrying
  the diagnostics with their locations.
- ``compile_gpu(ir)`` runs ``attnres-lower-to-nvvm`` and returns the compiled
  GPU objects (cubin/fatbin/PTX bytes) with the host module text.
- ``build_model(...)`` writes Full or Block AttnRes IR from a model
  description.
- ``attnres.frontend`` traces a PyTorch ``nn.Module`` with torch.fx into
  linalg-on-tensors IR (needs torch).

See docs/python.md.
"""

import os as _os
import sys as _sys


def _extend_path_to_build_tree():
    """Lets the source tree (python/attnres) find the native extension of a
    CMake build: $ATTNRES_BUILD_DIR/python_packages/attnres, else the
    repository's build/ directory."""
    import importlib.util

    here = _os.path.dirname(_os.path.abspath(__file__))
    if any(f.startswith("_attnres") and f.endswith(".so") for f in _os.listdir(here)):
        return
    candidates = []
    if _os.environ.get("ATTNRES_BUILD_DIR"):
        candidates.append(_os.environ["ATTNRES_BUILD_DIR"])
    candidates.append(_os.path.join(here, _os.pardir, _os.pardir, "build"))
    for build in candidates:
        pkg = _os.path.join(build, "python_packages", "attnres")
        if _os.path.isdir(pkg) and any(
            f.startswith("_attnres") and f.endswith(".so") for f in _os.listdir(pkg)
        ):
            __path__.append(_os.path.abspath(pkg))  # noqa: F821
            return


_extend_path_to_build_tree()

from . import compiler as _compiler  # noqa: E402
from .compiler import *  # noqa: E402,F401,F403
from .model import build_model  # noqa: E402

__all__ = sorted(_compiler.__all__ + ["build_model"])
