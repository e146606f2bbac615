"""The compiler's defaults as every Python path sees them (issue 15).

Each default has one definition, in the compiler's C++ headers; Python never
spells it again. :func:`epsilon` and :func:`blocking` ask the compiler
through the C API when the native extension exists (the build machine), and
otherwise read the one C++ definition from the source tree's header: the GPU
machine runs ``attnres.torch_ops``, kernel packs and ``bench/`` from the
source tree, without the native extension. Both give the same values (the
epsilon as the f32 value widened to a Python float).

Callers look the value up when they run (``defaults.epsilon()``), so that
a copy of the tree with the definition changed in the header sees every path
follow (python/tests/test_defaults.py). The values are read once per process
(torch_ops calls :func:`resolve_epsilon` on every operator call).
"""

import functools
import os
import re
import struct

__all__ = ["DEFAULTS_HEADER", "blocking", "epsilon", "resolve_blocking",
           "resolve_epsilon", "source_dir"]

#: The header that defines the key-norm epsilon (``kDefaultEpsilon``) and the
#: block-size and num-blocks defaults (``kDefaultBlockSize``,
#: ``kDefaultNumBlocks``), relative to the source tree.
DEFAULTS_HEADER = "include/attnres/Dialect/AttnRes/IR/AttnResDefaults.h"

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


def _header_constant(name):
    """The value of ``name = <number>;`` in the source tree's
    DEFAULTS_HEADER, as written (a string)."""
    path = os.path.join(source_dir(), DEFAULTS_HEADER)
    if not os.path.exists(path):
        raise RuntimeError(
            "the compiler's default %s is unknown: neither the attnres native "
            "extension nor the source tree's %s is available" % (name, DEFAULTS_HEADER))
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"\b%s\s*=\s*([0-9.eE+-]+)[fF]?\s*;" % name, text)
    if not m:
        raise RuntimeError("%s does not define %s" % (path, name))
    return m.group(1)


def _native():
    try:
        from . import _attnres
    except ImportError:
        return None
    return _attnres


@functools.lru_cache(maxsize=None)
def epsilon():
    """The key-norm epsilon of ``attnres.aggregate`` (and every op built
    from it) when none is written: the compiler's (C API), else its one
    definition read from the source tree's header."""
    native = _native()
    if native is not None:
        return float(native.default_epsilon())
    return _f32(_header_constant("kDefaultEpsilon"))


def resolve_epsilon(eps):
    """``eps`` as a float, the default (:func:`epsilon`) when None."""
    return epsilon() if eps is None else float(eps)


@functools.lru_cache(maxsize=None)
def blocking():
    """(block-size, num-blocks) that attnres-blockify and attnres-report use
    when they are not given: the compiler's (C API), else its one definition
    read from the source tree's header. 0 means not asked for: a chain keeps
    its blocking (Full AttnRes stays Full)."""
    native = _native()
    if native is not None:
        return tuple(int(v) for v in native.default_blocking())
    return (int(_header_constant("kDefaultBlockSize")),
            int(_header_constant("kDefaultNumBlocks")))


def resolve_blocking(block_size=None, num_blocks=None):
    """The ``attnres-blockify`` options of a request: ``block_size`` and
    ``num_blocks`` as given, the compiler's defaults (:func:`blocking`) for
    those that are None. Returns the pass's option text (``block-size=S
    num-blocks=N``, only the values that ask for a blocking: the compiler
    resolves S and N and checks them), or "" when nothing asks for one."""
    default_s, default_n = blocking()
    s = default_s if block_size is None else block_size
    n = default_n if num_blocks is None else num_blocks
    options = []
    if block_size is not None or s > 0:
        options.append("block-size=%d" % s)
    if num_blocks is not None or n > 0:
        options.append("num-blocks=%d" % n)
    return " ".join(options)
