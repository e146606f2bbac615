"""The ctypes loader of AOT-compiled attnres libraries, re-exported from the
package (python/attnres/aot.py is the one copy; docs/runtime.md)."""

import os
import sys

_PYTHON = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "python")
if os.path.isdir(os.path.join(_PYTHON, "attnres")):
    sys.path.insert(0, os.path.abspath(_PYTHON))

from attnres.aot import (AotError, AotFunction, AotLibrary, TORCH_DTYPE_NAMES,  # noqa: E402,F401
                         descriptor_type, make_descriptor, raw_descriptor)
