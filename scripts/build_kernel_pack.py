#!/usr/bin/env python3
"""Builds a kernel pack (attnres.kernel_pack): the attnres GPU kernels of a
model description compiled ahead of time, for attnres.torch_ops on a GPU
machine that has no MLIR.

  python3 scripts/build_kernel_pack.py -o .device/pack --build-dir build \
      --config d=896,dtype=bf16,sublayers=24,block=3

See docs/python.md ("Running compiled kernels in PyTorch").
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))
os.environ.setdefault("ATTNRES_SOURCE_DIR", REPO)

from attnres.kernel_pack import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
