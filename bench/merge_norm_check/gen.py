#!/usr/bin/env python3
"""Compile attnres.merge kernels with the fused RMSNorm (spec E.5) to PTX for
check.py, next to plain merges of the same shapes as the baseline.

Runs on the build machine (the attnres package, in process; no GPU). Same conventions as
bench/kernels_check/gen.py (manifest.json with kernel name, block size and
tokens per CTA). Usage (repository root):
  PYTHONPATH=build/python_packages python3 -m bench.merge_norm_check.gen <out-dir>
"""
import json
import os
import re
import sys

import attnres
from attnres import irbuilder as ir


def merge_mlir(e, d, partial, norm, use_h):
    return ir.module([ir.kernel_merge("k", e, d, partial, None, 1e-5 if norm else None,
                                      return_h=use_h)])


def add(manifest, entry, mlir):
    name = entry["name"]
    a = attnres.compile(mlir, "convert-attnres-to-gpu")
    ptx = attnres.compile_gpu(a, "attnres-lower-to-nvvm{format=isa}").object().data.decode()
    with open(os.path.join(sys.argv[1], name + ".ptx"), "w") as f:
        f.write(ptx)
    host = a.split("gpu.module")[0]
    tpc = re.search(r"arith.ceildivui %\w+, %c(\d+)", host)
    entry.update({"ptx": name + ".ptx",
                  "kernel": re.search(r"\.visible \.entry (\w+)\(", ptx).group(1),
                  "block": int(re.search(r"\.(?:reqntid|maxntid) (\d+)", ptx).group(1)),
                  "tokens_per_cta": int(tpc.group(1)) if tpc else 1})
    manifest.append(entry)
    print(name, entry["kernel"], "block", entry["block"], "tpc", entry["tokens_per_cta"])


def cases():
    """(manifest entry, module text) of every kernel compiled (also used by
    scripts/ptx_corpus.py)."""
    for (e, t, d, partial, use_h, timed) in [
            ("bf16", 16384, 4096, True, True, True), ("bf16", 16384, 4096, False, False, True),
            ("f16", 1000, 7168, True, True, False), ("f32", 333, 13, False, True, False),
            ("bf16", 777, 64, True, True, False), ("bf16", 300, 1000, False, False, False),
            ("f32", 2049, 4096, True, True, False)]:
        tag = f"{e}_d{d}" + ("_p" if partial else "")
        for norm in (False, True):
            if not norm and not use_h:
                continue
            yield ({"name": f"merge_{tag}" + ("_n" if norm else "") + ("" if use_h else "_nh"),
                   "e": e, "t": t, "d": d, "partial": partial, "norm": norm, "use_h": use_h,
                   "time": timed}, merge_mlir(e, d, partial, norm, use_h))
        if not use_h:  # the plain merge of the same shape as a baseline
            yield ({"name": f"merge_{tag}", "e": e, "t": t, "d": d, "partial": partial,
                    "norm": False, "use_h": True, "time": timed}, merge_mlir(e, d, partial, False, True))


def main():
    os.makedirs(sys.argv[1], exist_ok=True)
    manifest = []
    for entry, mlir in cases():
        add(manifest, entry, mlir)
    with open(os.path.join(sys.argv[1], "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
