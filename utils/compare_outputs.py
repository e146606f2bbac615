#!/usr/bin/env python3
"""Compares the printMemrefF32 outputs of two mlir-runner runs element by
element: |a - b| <= atol + rtol * |b| for every element of every printed
memref, and the same shapes. Exits 1 (and says where) when they differ.

Usage: compare_outputs.py BEFORE AFTER [--rtol R] [--atol A]
"""

import argparse
import re
import sys

HEADER = re.compile(r"Unranked Memref base@ = \S+ rank = (\d+) offset = \d+ sizes = \[([0-9, ]*)\]")
NUMBER = re.compile(r"[-+]?(?:nan|inf|\d+\.?\d*(?:e[-+]?\d+)?)", re.IGNORECASE)


def parse(path):
    """List of (sizes, values) for each printed memref."""
    out = []
    with open(path) as f:
        text = f.read()
    headers = list(HEADER.finditer(text))
    for i, h in enumerate(headers):
        sizes = [int(x) for x in h.group(2).replace(" ", "").split(",") if x]
        start = text.index("data =", h.end()) + len("data =")
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        vals = [float(x) for x in NUMBER.findall(text[start:end])]
        n = 1
        for s in sizes:
            n *= s
        if len(vals) != n:
            sys.exit(f"{path}: memref #{i} has {len(vals)} values, expected {n}")
        out.append((sizes, vals))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol", type=float, default=1e-4)
    a = p.parse_args()
    x, y = parse(a.before), parse(a.after)
    if not x:
        sys.exit(f"{a.before}: no memref printed")
    if len(x) != len(y):
        sys.exit(f"{len(x)} memrefs before, {len(y)} after")
    worst = 0.0
    bad = 0
    for k, ((sx, vx), (sy, vy)) in enumerate(zip(x, y)):
        if sx != sy:
            sys.exit(f"memref #{k}: sizes {sx} before, {sy} after")
        for i, (u, v) in enumerate(zip(vx, vy)):
            err = abs(u - v)
            worst = max(worst, err / (abs(u) + a.atol / a.rtol))
            if not err <= a.atol + a.rtol * abs(u):
                if bad < 5:
                    print(f"memref #{k} element {i}: before {u}, after {v}, |diff| {err:.3g}")
                bad += 1
    n = sum(len(v) for _, v in x)
    print(f"compared {n} elements in {len(x)} memrefs: {bad} outside atol={a.atol:g} rtol={a.rtol:g} "
          f"(worst relative error {worst:.3g})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
