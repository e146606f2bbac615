"""Kernel packs: the AttnRes GPU kernels a model needs, compiled ahead of time.

A kernel pack is a directory made on the build machine (which has MLIR and
LLVM) and copied to the GPU machine (which needs neither):

    kernel_pack.json          the manifest (below)
    lib<library>.so           AOT libraries (attnres.aot_compile), one per
    <library>.json            (dtype, D, epsilon); each exports one
    <library>.h               _mlir_ciface_* function per kernel
    mlir/<library>.mlir       the module each library was compiled from

Every function takes dynamic token counts (``tensor<?xDxE>``), so one pack
serves any batch and sequence length. The manifest lists each kernel:

    {"op": "aggregate" | "block_score" | "merge" | "merge_norm" | "aggregate_stats"
           | "aggregate_grad" | "block_score_grad" | "merge_grad" | "merge_norm_grad",
     "dtype": "bf16", "d": 896,
     "num_sources": 5,        # aggregate*, block_score*
     "num_queries": 3,        # block_score, block_score_grad (S)
     "partial": true,         # merge, merge_norm: with or without a partial sum
     "epsilon": 1e-06,        # the f32 epsilon attribute compiled in
     "norm_epsilon": 1e-05,   # merge_norm: the fused RMSNorm's epsilon
     "library": "attnres_bf16_d896", "function": "agg_bf16_d896_n5"}

``merge_norm`` kernels are attnres.merge with the sublayer's RMSNorm fused
(docs/spec.md E.5), built when a config has ``norm_eps``: their function
takes (o, lse, w, g, u, [p], gn) and returns (hn, p'), the normed input of
the sublayer and the new partial sum; the merge's h is not a result, so the
kernel does not store it (spec E-C2).

Building (here; needs a build of attnres-opt and the static runtime):

    from attnres.kernel_pack import PackConfig, build_kernel_pack
    build_kernel_pack(".device/pack", [PackConfig(d=896, dtype="bf16",
                      sublayers=24, block_size=3)])

or ``python3 scripts/build_kernel_pack.py -o DIR --config
d=896,dtype=bf16,sublayers=24,block=3``. Loading (anywhere):
``KernelPack(DIR).find("aggregate", "bf16", 896, num_sources=5)``;
attnres.torch_ops runs them as torch custom ops. See docs/python.md.
"""

import json
import math
import os
import re
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

from . import irbuilder as ir
from .defaults import epsilon as default_epsilon
from .defaults import resolve_epsilon

__all__ = ["KernelPack", "KernelPackError", "PackConfig", "build_kernel_pack",
           "kernel_functions", "model_kernels", "parse_config", "MANIFEST"]

MANIFEST = "kernel_pack.json"
FORMAT_VERSION = 3  # 3: merge_norm_grad kernels take no dh
_DTYPES = {"f32": "f32", "float32": "f32", "f16": "f16", "float16": "f16",
           "bf16": "bf16", "bfloat16": "bf16"}


class KernelPackError(RuntimeError):
    pass


def f32(x):
    """x rounded to the nearest float32 (how the epsilon attribute stores it)."""
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def dtype_name(dtype):
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("torch.", "")
    if name not in _DTYPES:
        raise KernelPackError("dtype must be f32, f16 or bf16, got %r" % (dtype,))
    return _DTYPES[name]


@dataclass(frozen=True)
class PackConfig:
    """What one model needs: hidden size D, storage dtype, L sublayers in
    blocks of S or in N blocks (S = 1, or neither asked for: Full AttnRes,
    aggregate kernels only; None: the compiler's defaults, which it resolves
    with attnres-blockify) and the
    key-norm epsilon (None: the compiler's default, attnres.defaults).
    ``max_sources`` raises the largest aggregation
    compiled (default: what the model uses, N + 1 with N = ceil(L / S)).
    ``grad``: also the training kernels: of every aggregation of two or more
    sources (``aggregate_stats``, the forward that saves the log-sum-exp and
    inverse RMS, and ``aggregate_grad``, the backward), the backward of every
    phase 1 (``block_score_grad``) and of every merge (``merge_grad``;
    ``merge_norm_grad`` with norm_eps)."""

    d: int
    dtype: str = "bf16"
    sublayers: int = 24
    block_size: Optional[int] = None
    num_blocks: Optional[int] = None
    epsilon: Optional[float] = None
    max_sources: int = 0
    two_phase: bool = True
    norm_eps: Optional[float] = None
    grad: bool = False

    def __post_init__(self):
        object.__setattr__(self, "epsilon", resolve_epsilon(self.epsilon))

    def check(self):
        """The fields Python owns; the block structure (L, S) is the
        compiler's to check (attnres-blockify)."""
        if not isinstance(self.d, int) or self.d < 1:
            raise KernelPackError("d must be a positive int, got %r" % (self.d,))
        dtype_name(self.dtype)
        if not (self.epsilon >= 0 and math.isfinite(self.epsilon)):
            raise KernelPackError("epsilon must be finite and >= 0")
        if self.norm_eps is not None and not (self.norm_eps >= 0
                                              and math.isfinite(self.norm_eps)):
            raise KernelPackError("norm_eps must be finite and >= 0")


_AGGREGATE = re.compile(r"attnres\.aggregate \S+, \S+ over (.*?) \{")
_BLOCK_SCORE = re.compile(r"attnres\.block_score \S+, \S+ over (.*?)(?: inv_rms .*?)? outs .*"
                          r"-> tensor<(\d+)x")
_MERGE = re.compile(r"attnres\.merge .* update \S+( partial)?")


def model_kernels(cfg):
    """Asks the compiler which kernels the model of `cfg` runs: its Full
    AttnRes (attnres.build_model) through ``attnres-blockify`` (block form:
    the aggregations) and ``attnres-fuse-summaries`` (two-phase form: phase 1
    shapes and merges). Returns (aggregate source counts, [(S, n)] of
    block_score, [partial] of merge), each sorted; the aggregate counts are
    extended up to ``max_sources``."""
    from .compiler import CompileError, compile
    from .model import build_model

    try:
        blocked = build_model(cfg.sublayers, cfg.block_size, d=cfg.d,
                              dtype=dtype_name(cfg.dtype), tokens=None, epsilon=cfg.epsilon,
                              num_blocks=cfg.num_blocks)
        fused = (compile(blocked, "attnres-fuse-summaries")
                 if cfg.two_phase and "attnres.block_sum" in blocked else "")
    except (CompileError, ValueError) as e:
        raise KernelPackError("the compiler rejected the model of %s: %s" % (cfg, e))
    aggs = {len(m.group(1).split(",")) for m in _AGGREGATE.finditer(blocked)}
    aggs |= set(range(1, cfg.max_sources + 1))
    scores = {(int(m.group(2)), len(m.group(1).split(","))) for m in _BLOCK_SCORE.finditer(fused)}
    merges = {bool(m.group(1)) for m in _MERGE.finditer(fused)}
    return sorted(aggs), sorted(scores), sorted(merges)


def parse_config(text):
    """``d=896,dtype=bf16,sublayers=24,block=3[,eps=1e-6][,max_sources=9]
    [,two_phase=0][,norm_eps=1e-6][,grad=1]`` -> PackConfig (``blocks=N``
    instead of ``block=S``; norm_eps: also the merge kernels with the
    sublayers' RMSNorm fused, of that epsilon; grad: also the training
    kernels of the aggregations)."""
    fields = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise KernelPackError("bad config item %r (want key=value)" % part)
        k, v = part.split("=", 1)
        fields[k.strip()] = v.strip()
    known = {"d", "dtype", "sublayers", "layers", "block", "block_size", "blocks", "num_blocks",
             "eps", "epsilon", "max_sources", "two_phase", "norm_eps", "grad"}
    unknown = set(fields) - known
    if unknown:
        raise KernelPackError("unknown config keys %s (known: %s)" % (sorted(unknown),
                                                                    sorted(known)))
    if "d" not in fields:
        raise KernelPackError("a config needs d=<hidden size>")
    try:
        sublayers = int(fields.get("sublayers", 0)) or 2 * int(fields.get("layers", 12))
        cfg = PackConfig(
            d=int(fields["d"]), dtype=dtype_name(fields.get("dtype", "bf16")),
            sublayers=sublayers,
            block_size=_int_or_none(fields.get("block", fields.get("block_size"))),
            num_blocks=_int_or_none(fields.get("blocks", fields.get("num_blocks"))),
            epsilon=resolve_epsilon(fields.get("eps", fields.get("epsilon"))),
            max_sources=int(fields.get("max_sources", 0)),
            two_phase=fields.get("two_phase", "1") not in ("0", "false", "no"),
            norm_eps=float(fields["norm_eps"]) if "norm_eps" in fields else None,
            grad=fields.get("grad", "0") not in ("0", "false", "no"))
    except ValueError as e:
        raise KernelPackError("bad config %r: %s" % (text, e))
    cfg.check()
    return cfg


def _int_or_none(text):
    return None if text is None else int(text)


def _eps_tag(x):
    """A name-safe spelling of an epsilon: 1e-06 -> 1em06."""
    return ("%g" % f32(x)).replace("-", "m").replace("+", "").replace(".", "p")


def kernel_functions(configs):
    """The kernels the configs need, deduplicated: a list of manifest
    entries with an ``mlir`` field (the func.func text), grouped by library."""
    configs = list(configs)
    eps_ids = {}
    entries = {}
    for cfg in configs:
        cfg.check()
        dt, d, eps = dtype_name(cfg.dtype), cfg.d, f32(cfg.epsilon)
        if eps == f32(default_epsilon()):
            suffix = ""
        else:
            suffix = "_e%d" % eps_ids.setdefault(eps, len(eps_ids) + 1)
        lib = "attnres_%s_d%d%s" % (dt, d, suffix)
        base = "%s_d%d%s" % (dt, d, suffix)
        aggs, scores, merges = model_kernels(cfg)
        for n in aggs:
            name = "agg_%s_n%d" % (base, n)
            entries[name] = {"op": "aggregate", "dtype": dt, "d": d, "num_sources": n,
                             "epsilon": eps, "library": lib, "function": name,
                             "mlir": ir.kernel_aggregate(name, dt, d, n, eps)}
            if not cfg.grad or n < 2:
                continue   # one source: h = v_0, dv_0 = dh (spec A.2), no kernel
            for op, prefix, build in (("aggregate_stats", "aggs", ir.kernel_aggregate_stats),
                                      ("aggregate_grad", "aggg", ir.kernel_aggregate_grad)):
                name = "%s_%s_n%d" % (prefix, base, n)
                entries[name] = {"op": op, "dtype": dt, "d": d, "num_sources": n,
                                 "epsilon": eps, "library": lib, "function": name,
                                 "mlir": build(name, dt, d, n, eps)}
        for s, n in scores:
            name = "score_%s_s%d_n%d" % (base, s, n)
            entries[name] = {"op": "block_score", "dtype": dt, "d": d, "num_queries": s,
                             "num_sources": n, "epsilon": eps, "library": lib,
                             "function": name,
                             "mlir": ir.kernel_block_score(name, dt, d, s, n, eps)}
            if cfg.grad:
                name = "scoreg_%s_s%d_n%d" % (base, s, n)
                entries[name] = {"op": "block_score_grad", "dtype": dt, "d": d,
                                 "num_queries": s, "num_sources": n, "epsilon": eps,
                                 "library": lib, "function": name,
                                 "mlir": ir.kernel_block_score_grad(name, dt, d, s, n, eps)}
        for partial in merges:
            name = "merge_%s%s" % (base, "_p" if partial else "")
            entries[name] = {"op": "merge", "dtype": dt, "d": d, "partial": partial,
                             "epsilon": eps, "library": lib, "function": name,
                             "mlir": ir.kernel_merge(name, dt, d, partial, eps)}
            if cfg.grad:
                name = "mergeg_%s%s" % (base, "_p" if partial else "")
                entries[name] = {"op": "merge_grad", "dtype": dt, "d": d, "partial": partial,
                                 "epsilon": eps, "library": lib, "function": name,
                                 "mlir": ir.kernel_merge_grad(name, dt, d, partial, eps)}
            if cfg.norm_eps is None:
                continue
            neps = f32(cfg.norm_eps)
            name = "mergen_%s%s_ne%s" % (base, "_p" if partial else "", _eps_tag(neps))
            entries[name] = {"op": "merge_norm", "dtype": dt, "d": d, "partial": partial,
                             "epsilon": eps, "norm_epsilon": neps, "library": lib,
                             "function": name,
                             "mlir": ir.kernel_merge(name, dt, d, partial, eps, neps)}
            if cfg.grad:
                name = "mergeng_%s%s_ne%s" % (base, "_p" if partial else "", _eps_tag(neps))
                # torch_ops.merge_norm does not return h: its gradient is zero
                # and the kernel takes no dh (format 3).
                entries[name] = {"op": "merge_norm_grad", "dtype": dt, "d": d,
                                 "partial": partial, "epsilon": eps, "norm_epsilon": neps,
                                 "library": lib, "function": name,
                                 "mlir": ir.kernel_merge_grad(name, dt, d, partial, eps, neps,
                                                              zero_dh=True)}
    return list(entries.values())


def build_kernel_pack(out_dir, configs, *, chip=None, features=None, format="fatbin",
                      opt_level=3, jobs=2, verbose=False, device="cuda", gpu_options=None):
    """Compiles the kernels of `configs` (PackConfig or config strings) into
    a kernel pack in `out_dir` (replacing its libraries and manifest), in
    this process (attnres.aot_compile). `chip`/`features` default to the
    compiler's (attnres.default_nvvm_target()). device="cpu" compiles the
    same functions for the host instead (attnres-lower-to-llvm; no chip):
    attnres.torch_ops runs them on CPU tensors. `gpu_options` (cuda only)
    are convert-attnres-to-gpu options for every library, "name=value" pairs
    separated by spaces (attnres.aot_compile.compile_library), recorded in
    the manifest. Returns the manifest dict.
    Raises KernelPackError with the compiler's diagnostics when a library
    fails to build."""
    from .aot_compile import AotCompileError, compile_library
    from .compiler import CompileError, default_nvvm_target

    configs = [parse_config(c) if isinstance(c, str) else c for c in configs]
    if not configs:
        raise KernelPackError("no configs")
    if device not in ("cuda", "cpu"):
        raise KernelPackError("device must be 'cuda' or 'cpu', got %r" % (device,))
    default_chip, default_features = default_nvvm_target()
    chip, features = chip or default_chip, features or default_features
    if device == "cpu":
        if gpu_options:
            raise KernelPackError("gpu_options apply to device='cuda' only")
        chip = features = format = None
    entries = kernel_functions(configs)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(os.path.join(out_dir, "mlir"), exist_ok=True)
    libraries = {}
    for e in entries:
        libraries.setdefault(e["library"], []).append(e["mlir"])

    def build(lib):
        text = ir.module(libraries[lib])
        src = os.path.join(out_dir, "mlir", lib + ".mlir")
        with open(src, "w") as f:
            f.write(text)
        if verbose:
            print("compiling lib%s.so (%d kernels)" % (lib, len(libraries[lib])), file=sys.stderr)
        try:
            compile_library(text, out_dir, lib, chip=chip, features=features,
                            format=format or "fatbin", opt_level=opt_level, source_name=src,
                            gpu_options=gpu_options,
                            pipeline="cpu" if device == "cpu" else "attnres")
        except (AotCompileError, CompileError) as e:
            raise KernelPackError("building lib%s.so failed:\n%s" % (lib, e))
        return lib

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(build, sorted(libraries)))

    manifest = {
        "format_version": FORMAT_VERSION,
        "device": device, "chip": chip, "features": features, "format": format,
        "gpu_options": (gpu_options or "").strip() or None,
        "configs": [{"d": c.d, "dtype": dtype_name(c.dtype), "sublayers": c.sublayers,
                     "block_size": c.block_size, "num_blocks": c.num_blocks,
                     "epsilon": f32(c.epsilon),
                     "max_sources": c.max_sources, "two_phase": c.two_phase,
                     "norm_eps": None if c.norm_eps is None else f32(c.norm_eps),
                     "grad": c.grad}
                    for c in configs],
        "libraries": sorted(libraries),
        "kernels": [{k: v for k, v in e.items() if k != "mlir"} for e in entries],
    }
    with open(os.path.join(out_dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return manifest


# --- Loading ---------------------------------------------------------------------

def _key(op, dtype, d, num_sources=None, num_queries=None, partial=None, epsilon=None,
         norm_epsilon=None):
    return (op, dtype_name(dtype), int(d),
            None if num_sources is None else int(num_sources),
            None if num_queries is None else int(num_queries),
            None if partial is None else bool(partial), f32(resolve_epsilon(epsilon)),
            None if norm_epsilon is None else f32(norm_epsilon))


class KernelPack:
    """A kernel pack directory: the manifest, and its libraries loaded with
    ctypes (attnres.aot) the first time one of their kernels is looked up.
    Loading needs no GPU; running a kernel does."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        manifest = os.path.join(self.path, MANIFEST)
        if not os.path.exists(manifest):
            raise KernelPackError("%s: no %s (build the pack with "
                                  "scripts/build_kernel_pack.py)" % (self.path, MANIFEST))
        with open(manifest) as f:
            self.manifest = json.load(f)
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise KernelPackError("%s: format_version %r, expected %d" % (
                manifest, self.manifest.get("format_version"), FORMAT_VERSION))
        self._index = {}
        for k in self.manifest["kernels"]:
            key = _key(k["op"], k["dtype"], k["d"], k.get("num_sources"),
                       k.get("num_queries"), k.get("partial"), k["epsilon"],
                       k.get("norm_epsilon"))
            self._index[key] = k
        self._libraries = {}

    @property
    def kernels(self):
        return self.manifest["kernels"]

    @property
    def device(self):
        """"cuda" (GPU kernels) or "cpu" (host functions)."""
        return self.manifest.get("device", "cuda")

    def library(self, name):
        from .aot import AotLibrary

        if name not in self._libraries:
            self._libraries[name] = AotLibrary(os.path.join(self.path, "lib%s.so" % name))
        return self._libraries[name]

    def libraries(self):
        """The libraries loaded so far."""
        return list(self._libraries.values())

    def entry(self, op, dtype, d, num_sources=None, num_queries=None, partial=None,
              epsilon=None, norm_epsilon=None):
        """The manifest entry of a kernel, or None (norm_epsilon: merge_norm;
        epsilon None: the compiler's default)."""
        return self._index.get(_key(op, dtype, d, num_sources, num_queries, partial, epsilon,
                                    norm_epsilon))

    def find(self, op, dtype, d, num_sources=None, num_queries=None, partial=None,
             epsilon=None, norm_epsilon=None):
        """(AotLibrary, AotFunction) of a kernel, or None when the pack lacks it."""
        e = self.entry(op, dtype, d, num_sources, num_queries, partial, epsilon, norm_epsilon)
        if e is None:
            return None
        lib = self.library(e["library"])
        return lib, lib[e["function"]]

    def summary(self):
        """One line per (op, dtype, D, epsilon, S/partial) with the source counts."""
        groups = {}
        for k in self.kernels:
            extra = ("S=%d" % k["num_queries"]) if k["op"] in ("block_score",
                                                               "block_score_grad") else (
                ("partial" if k["partial"] else "no partial")
                if k["op"] in ("merge", "merge_norm", "merge_grad", "merge_norm_grad") else "")
            if k["op"] in ("merge_norm", "merge_norm_grad"):
                extra += " norm_eps=%g" % k["norm_epsilon"]
            g = groups.setdefault((k["op"], k["dtype"], k["d"], k["epsilon"], extra), [])
            if "num_sources" in k:
                g.append(k["num_sources"])
        lines = []
        for (op, dt, d, eps, extra), ns in sorted(groups.items(), key=str):
            lines.append("%s %s D=%d eps=%g%s%s" % (
                op, dt, d, eps, (" " + extra) if extra else "",
                (" n=%s" % ",".join(map(str, sorted(ns)))) if ns else ""))
        return lines


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(
        description="Builds a kernel pack: the attnres GPU kernels of one or more model "
                    "configurations compiled ahead of time into shared libraries plus a "
                    "manifest (" + MANIFEST + "), for attnres.torch_ops on a machine "
                    "without MLIR.")
    ap.add_argument("-o", "--output-dir", required=True)
    ap.add_argument("--config", action="append", required=True,
                    help="d=896,dtype=bf16,sublayers=24,block=3[,eps=E][,max_sources=N]"
                         "[,two_phase=0][,norm_eps=E] (repeatable; eps defaults to the "
                         "compiler's; layers=L means 2L sublayers; norm_eps adds the merges "
                         "with the fused RMSNorm)")
    ap.add_argument("--chip", help="default: the compiler's (attnres.default_nvvm_target())")
    ap.add_argument("--features", help="default: the compiler's")
    ap.add_argument("--format", default="fatbin", choices=["isa", "bin", "fatbin"])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: the same functions compiled for the host (attnres-lower-to-llvm)")
    ap.add_argument("--gpu-options", help="convert-attnres-to-gpu options for every library, "
                    "space-separated name=value pairs (e.g. 'score-small-tokens=64')")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    try:
        build_kernel_pack(args.output_dir, args.config, chip=args.chip,
                          features=args.features, format=args.format, jobs=args.jobs,
                          verbose=args.verbose, device=args.device,
                          gpu_options=args.gpu_options)
    except KernelPackError as e:
        print("build_kernel_pack: error: %s" % e, file=sys.stderr)
        return 1
    pack = KernelPack(args.output_dir)
    print("kernel pack %s: %d kernels in %d libraries" % (
        args.output_dir, len(pack.kernels), len(pack.manifest["libraries"])))
    for line in pack.summary():
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
