"""The compiler's defaults as every Python path sees them (issue 15).

Each default has one definition, in the compiler's C++ headers; Python never
spells it again. :func:`epsilon` asks the compiler through the C API when the
native extension exists (the build machine), and otherwise reads the one C++
definition from the source tree's header: the GPU machine runs
``attnres.torch_ops``, kernel packs and ``bench/`` from the source tree,
without the native extension. Both give the same f32 value widened to a
Python float.

Callers look the value up when they run (``defaults.epsilon()``), so that
a copy of the tree with the definition changed in the header sees every path
follow (python/tests/test_defaults.py).
"""

import os
import re
import struct

__all__ = ["EPSILON_HEADER", "epsilon", "resolve_epsilon", "source_dir"]

#: The header that defines the key-norm epsilon (``kDefaultEpsilon``),
#: relative to the source tree.
EPSILON_HEADER = "include/attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"

_HERE = os.path.dirname(os.path.abspath(__file__))


def source_dir():
    """The attnres source tree: this build's (attnres._config) when the
    package is a CMake build's copy, else the tree this file lives in
    (python/attnres)."""
    try:
        from . import _config

        if os.path.isdir(_config.SOURCE_DIR):
            return _config.SOURCE_DIR
    except ImportError:
        pass
    return os.path.abspath(os.path.join(_HERE, os.pardir, os.pardir))


def _f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def _from_header(path):
    """kDefaultEpsilon's value in the C++ header at ``path``."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"\bkDefaultEpsilon\s*=\s*([0-9.eE+-]+)[fF]?\s*;", text)
    if not m:
        raise RuntimeError("%s does not define kDefaultEpsilon" % path)
    return _f32(m.group(1))


def _from_native():
    try:
        from . import _attnres
    except ImportError:
        return None
    return float(_attnres.default_epsilon())


def epsilon():
    """The key-norm epsilon of ``attnres.aggregate`` (and every op built
    from it) when none is written: the compiler's (C API), else its one
    definition read from the source tree's header."""
    value = _from_native()
    if value is not None:
        return value
    path = os.path.join(source_dir(), EPSILON_HEADER)
    if not os.path.exists(path):
        raise RuntimeError(
            "the key-norm epsilon default is unknown: neither the attnres native "
            "extension nor the source tree's %s is available" % EPSILON_HEADER)
    return _from_header(path)


def resolve_epsilon(eps):
    """``eps`` as a float, the default (:func:`epsilon`) when None."""
    return epsilon() if eps is None else float(eps)
