#!/usr/bin/env python3
"""Ahead-of-time compiles an MLIR module with GPU kernels into a shared
library: a thin command line over attnres.aot_compile (the compilation runs
in process through the C API; docs/runtime.md). The same as
`python3 -m attnres.aot_compile`:

  PYTHONPATH=build/python_packages python3 scripts/aot_compile.py IN.mlir -o DIR
"""

import sys

try:
    from attnres.aot_compile import main
except ImportError as e:
    sys.exit("aot_compile: error: %s\nrun with PYTHONPATH=<build>/python_packages "
             "(docs/runtime.md)" % e)

if __name__ == "__main__":
    sys.exit(main())
