#!/usr/bin/env python3
"""Builds a kernel pack (attnres.kernel_pack): the attnres GPU kernels of a
model description compiled ahead of time, for attnres.torch_ops on a GPU
machine that has no MLIR. A thin command line over the package; the same
as `python3 -m attnres.kernel_pack`:

  PYTHONPATH=build/python_packages python3 scripts/build_kernel_pack.py \
      -o .device/pack --config d=896,dtype=bf16,sublayers=24,block=3

See docs/python.md ("Running compiled kernels in PyTorch").
"""

import sys

try:
    from attnres.kernel_pack import main
except ImportError as e:
    sys.exit("build_kernel_pack: %s\nrun with PYTHONPATH=<build>/python_packages "
             "(docs/python.md)" % e)

if __name__ == "__main__":
    sys.exit(main())
