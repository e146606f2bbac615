"""PyTorch frontend: a module traced through concrete shapes into aten ops,
translated to linalg-on-tensors MLIR that attnres-detect-residual-chains
understands (docs/python.md).

Needs torch (Debian's python3-torch 1.13 or torch 2.x)."""

from .emitter import FrontendError
from .fx_importer import TraceResult, import_module, trace, treat_as_aten

__all__ = ["FrontendError", "TraceResult", "import_module", "trace", "treat_as_aten"]
