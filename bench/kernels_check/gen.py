#!/usr/bin/env python3
"""Compile attnres kernels to PTX for bench/kernels_check/check.py.

Runs on the build machine (attnres-opt, no GPU): for every configuration
below it writes an MLIR function with one attnres op, lowers it with
convert-attnres-to-gpu (with optional pass options) and
attnres-lower-to-nvvm{format=isa}, extracts the PTX of the gpu.binary and
records in manifest.json what check.py needs to launch it (kernel name,
block size from .reqntid, argument layout). Usage:
    gen.py <attnres-opt> <out-dir>
"""
import json
import os
import re
import subprocess
import sys

from attnres import defaults
from attnres import irbuilder as ir

OPT, OUT = sys.argv[1], sys.argv[2]
os.makedirs(OUT, exist_ok=True)

# Each kernel is one function @k holding one attnres op with the compiler's
# default key-norm epsilon (eps None: attnres.defaults), as check.py uses it.

def agg_mlir(e, d, n):
    return ir.kernel_aggregate("k", e, d, n, None)

def score_mlir(e, d, n, s, inv):
    """attnres.block_score of s queries over n sources, with the inverse
    RMS of each source as arguments when `inv`, and its outs as arguments."""
    src, q = ir.tensor_type(["?", d], e), ir.tensor_type([s, d], e)
    out, lse = ir.tensor_type([s, "?", d], e), ir.tensor_type([s, "?"], "f32")
    names = ["%%v%d" % i for i in range(n)]
    rs = ["%%r%d" % i for i in range(n)] if inv else []
    args = ([("%W", q), ("%G", q)] + [(v, src) for v in names]
            + [(r, ir.tensor_type(["?"], "f32")) for r in rs] + [("%o", out), ("%l", lse)])
    body = [ir.block_score(("%a", "%b"), "%W", "%G", names, ("%o", "%l"), None, src, out,
                           rs or None)]
    return ir.func("k", args, [("%a", out), ("%b", lse)], body)

def merge_mlir(e, d, partial):
    return ir.kernel_merge("k", e, d, partial, None)

def extract_ptx(text):
    m = re.search(r'(?:assembly|isa) = "((?:[^"\\]|\\.)*)"', text)
    s = m.group(1)
    return re.sub(r'\\([0-9A-Fa-f]{2})', lambda x: chr(int(x.group(1), 16)), s).replace('\\\\', '\\')

def tokens_per_cta(host, kernel):
    """The tokens per CTA of `kernel`'s launch in the host IR: c where its
    grid is ceildivui(T, c), possibly times the CTAs per token; else 1. Only
    that launch counts: block_score's small-T branch launches another kernel
    with a grid of its own (a search of the whole host IR took its 4 for the
    tensor-core kernel, which launched a quarter of the CTAs: run 32's two
    `err inf` entries)."""
    m = re.search(r"gpu.launch_func\s+@attnres_kernels::@%s blocks in \((%%\w+)" % re.escape(kernel), host)
    grid = m.group(1) if m else None
    for _ in range(2):
        d = grid and re.search(re.escape(grid) + r" = arith\.(\w+) (%\w+), %c(\d+)", host)
        if not d:
            return 1
        if d.group(1) == "ceildivui":
            return int(d.group(3))
        if d.group(1) != "muli":
            return 1
        grid = d.group(2)
    return 1


def split_info(ptx):
    """split-query-gains: the kernel that splits w*g before the main one
    (its name and block size; check.py launches it first), else {}."""
    m = re.search(r"\.visible \.entry (query_gain_split_\w+)\((?:.|\n)*?\.(?:reqntid|maxntid) (\d+)", ptx)
    return {"split_kernel": m.group(1), "split_block": int(m.group(2))} if m else {}


def compile_one(name, mlir, gpu_opts=""):
    conv = "--convert-attnres-to-gpu" + (f"={gpu_opts}" if gpu_opts else "")
    a = subprocess.run([OPT, conv], input=mlir, capture_output=True, text=True, check=True)
    b = subprocess.run([OPT, "--attnres-lower-to-nvvm=format=isa"], input=a.stdout,
                       capture_output=True, text=True, check=True)
    ptx = extract_ptx(b.stdout)
    kname = re.search(r"\.visible \.entry (\w+)\(", ptx).group(1)
    block = int(re.search(r"\.(?:reqntid|maxntid) (\d+)", ptx).group(1))
    with open(os.path.join(OUT, name + ".ptx"), "w") as f:
        f.write(ptx)
    return {"ptx": name + ".ptx", "kernel": kname, "block": block, **split_info(ptx)}

def stats_mlir(e, d, n):
    """attnres.aggregate_stats over n sources [? x d]: (h, lse, r_0..r_n-1)."""
    src, vec, st = ir.tensor_type(["?", d], e), ir.tensor_type([d], e), ir.tensor_type(["?"], "f32")
    names = ["%%v%d" % i for i in range(n)]
    rs = ["%%r%d" % i for i in range(n)]
    args = [("%w", vec), ("%g", vec)] + [(v, src) for v in names]
    body = [ir.aggregate_stats(["%h", "%lse"] + rs, "%w", "%g", names, None, src)]
    return ir.func("k", args, [("%h", src), ("%lse", st)] + [(r, st) for r in rs], body)

def grad_mlir(e, d, n, acc):
    """attnres.aggregate_grad over n sources [? x d] (with accumulators when
    `acc`): (dv_0..dv_n-1, dquery, dgain)."""
    src, vec, st = ir.tensor_type(["?", d], e), ir.tensor_type([d], e), ir.tensor_type(["?"], "f32")
    pv = ir.tensor_type([d], "f32")
    names = ["%%v%d" % i for i in range(n)]
    rs = ["%%r%d" % i for i in range(n)]
    accs = ["%%a%d" % i for i in range(n)] if acc else []
    dvs = ["%%dv%d" % i for i in range(n)]
    args = ([("%w", vec), ("%g", vec)] + [(v, src) for v in names] + [("%lse", st)]
            + [(r, st) for r in rs] + [("%dh", src)] + [(a, src) for a in accs])
    body = [ir.aggregate_grad(dvs + ["%dq", "%dg"], "%w", "%g", names, "%lse", rs, "%dh", None, src,
                              accs or None)]
    return ir.func("k", args, [(v, src) for v in dvs] + [("%dq", pv), ("%dg", pv)], body)

def merge_grad_mlir(e, d, partial, norm, zero_dh=False):
    """attnres.merge_grad on [? x d] (with the partial sum / fused norm) at
    the default epsilons: irbuilder.kernel_merge_grad, the kernel packs' form
    (zero_dh: dh is a zero fill, the kernel takes no dh)."""
    eps = defaults.epsilon()
    return ir.kernel_merge_grad("k", e, d, partial, eps, eps if norm else None, zero_dh)

manifest = []


def launch_smem(host):
    """The dynamic shared memory of the first kernel launch in the host IR
    (bulk-copy phase 1, aggregate_grad with its rows in shared memory), in
    bytes; 0 when it takes none."""
    smem = re.search(r"dynamic_shared_memory_size (%\w+)", host)
    if not smem:
        return 0
    return int(re.search(re.escape(smem.group(1)) + r" = arith.constant (\d+) : i32", host).group(1))


def add_grad(entry, mlir, gpu_opts=""):
    """A backward op: the PTX holds the main kernel and (aggregate_grad) the
    deterministic reduction of the per-CTA partials; their names and block
    sizes, and the CTA count of the main kernel (min(T, grad-ctas))."""
    name = entry["name"]
    conv = "--convert-attnres-to-gpu" + (f"={gpu_opts}" if gpu_opts else "")
    a = subprocess.run([OPT, conv], input=mlir, capture_output=True, text=True, check=True).stdout
    b = subprocess.run([OPT, "--attnres-lower-to-nvvm=format=isa"], input=a,
                       capture_output=True, text=True, check=True).stdout
    ptx = extract_ptx(b)
    with open(os.path.join(OUT, name + ".ptx"), "w") as f:
        f.write(ptx)
    entries = re.findall(r"\.visible \.entry (\w+)\(", ptx)
    blocks = {k: int(v) for k, v in re.findall(
        r"\.visible \.entry (\w+)\((?:.|\n)*?\.(?:reqntid|maxntid) (\d+)", ptx)}
    main = [k for k in entries if not k.startswith(("param_grad_reduce", "query_gain_split"))
            and "_params_" not in k][0]
    entry.update(split_info(ptx))
    # block_score_grad: the column-tiled kernel of the parameter partials
    # (grid P x tiles, tiles of 128 vectors of the widest width dividing D).
    prm = [k for k in entries if "_params_" in k]
    # block_score_grad with persistent CTAs: min(T, grad-ctas / 2) of them.
    if re.search(r"_tc(_t\d+)?(_w\d)?_p(_|$)", main):
        entry["persistent"] = True
    if prm:
        vw = 16 // {"f32": 4, "f16": 2, "bf16": 2}[entry["e"]]
        while vw > 1 and entry["d"] % vw:
            vw //= 2
        entry.update({"params_kernel": prm[0], "params_block": blocks[prm[0]],
                      "tiles": -(-(entry["d"] // vw) // 128)})
    entry.update({"ptx": name + ".ptx", "kernel": main, "block": blocks[main],
                  "tokens_per_cta": tokens_per_cta(a.split("gpu.module")[0], main),
                  "smem": launch_smem(a.split("gpu.module")[0])})
    red = [k for k in entries if k.startswith("param_grad_reduce")]
    if red:
        entry.update({"reduce_kernel": red[0], "reduce_block": blocks[red[0]]})
        entry["grad_ctas"] = int(re.search(r"grad-ctas=(\d+)", gpu_opts).group(1)) if "grad-ctas" in gpu_opts else 528
    manifest.append(entry)
    print(name, main, "block", entry["block"], "reduce", entry.get("reduce_kernel"), "smem", entry["smem"],
          flush=True)

def add_sgrad(e, n, s, d, t, acc, timed, suffix, gpu_opts):
    """A block_score_grad entry: sgrad_<e>_n<n>_s<S>_d<D>[_t<T>][_acc]<suffix>
    (timed entries carry no _t: they are the T = 16384 benchmark shapes)."""
    name = f"sgrad_{e}_n{n}_s{s}_d{d}" + ("" if timed else f"_t{t}") + ("_acc" if acc else "") + suffix
    add_grad({"name": name, "op": "block_score_grad", "e": e, "n": n, "s": s, "t": t, "d": d, "acc": acc,
              "time": timed}, ir.kernel_block_score_grad("k", e, d, s, n, defaults.epsilon(), acc), gpu_opts)


def add(entry, mlir, gpu_opts=""):
    name = entry["name"]
    info = compile_one(name, mlir, gpu_opts)
    # ctas per token group and tokens per CTA, read off the host IR.
    a = subprocess.run([OPT, "--convert-attnres-to-gpu" + (f"={gpu_opts}" if gpu_opts else "")],
                       input=mlir, capture_output=True, text=True, check=True).stdout
    host = a.split("gpu.module")[0]
    info["tokens_per_cta"] = tokens_per_cta(host, info["kernel"])
    g = re.search(r"_g(\d+)", info["kernel"])
    info["groups"] = (entry.get("s", 1) // int(g.group(1))) if g else 1
    # Tensor-core phase 1 with a cluster split: that many CTAs per token.
    x = re.search(r"_tma_x(\d+)", info["kernel"])
    if x:
        info["groups"] = int(x.group(1))
    # Dynamic shared memory of the launch (bulk-copy kernels), in bytes.
    info["smem"] = launch_smem(host)
    entry.update(info)
    manifest.append(entry)
    print(name, info["kernel"], "block", info["block"], "tpc", info["tokens_per_cta"], "groups", info["groups"],
          "smem", info["smem"])

# Backward kernels (issue 12 item 4): the benchmark shapes (bf16, timed, with
# and without accumulators) and a correctness sweep over types, odd and large
# D, 1..20 sources. KC_SET=grad generates only these.
GRAD_SET = os.environ.get("KC_SET", "all") in ("all", "grad")
if GRAD_SET:
    for (n, t, d) in [(9, 16384, 4096), (17, 16384, 4096), (9, 65536, 2048), (10, 8192, 7168)]:
        if os.environ.get("KC_SET") == "grad":  # the forward, timed in the same run
            add({"name": f"agg_bf16_n{n}_d{d}", "op": "aggregate", "e": "bf16", "n": n, "t": t, "d": d,
                 "time": True}, agg_mlir("bf16", d, n))
        add_grad({"name": f"stats_bf16_n{n}_d{d}", "op": "aggregate_stats", "e": "bf16", "n": n, "t": t,
                  "d": d, "time": True}, stats_mlir("bf16", d, n))
        for acc in (False, True):
            add_grad({"name": f"grad_bf16_n{n}_d{d}{'_acc' if acc else ''}", "op": "aggregate_grad",
                      "e": "bf16", "n": n, "t": t, "d": d, "acc": acc, "time": True},
                     grad_mlir("bf16", d, n, acc))
    GRAD_SWEEP = [("f32", 1, 37, 50), ("f32", 3, 37, 1000), ("bf16", 2, 37, 333), ("f16", 5, 37, 77),
                  ("f32", 20, 4096, 129), ("bf16", 20, 4096, 300), ("f16", 7, 4096, 600),
                  ("bf16", 4, 7168, 555), ("f32", 11, 7168, 64), ("bf16", 13, 7168, 100),
                  ("bf16", 1, 4096, 100), ("bf16", 6, 100, 1001), ("f32", 2, 13, 4), ("bf16", 17, 2048, 2000),
                  ("f16", 9, 1000, 3)]
    for (e, n, d, t) in GRAD_SWEEP:
        add_grad({"name": f"stats_{e}_n{n}_d{d}_t{t}", "op": "aggregate_stats", "e": e, "n": n, "t": t,
                  "d": d, "time": False}, stats_mlir(e, d, n))
        for acc in (False, True):
            # 20 sources with accumulators take 4400 bytes of kernel
            # parameters: PTX ISA 8.1's parameter space (convert-attnres-to-gpu
            # refuses them at the default +ptx80).
            opts = "features=+ptx81" if acc and n >= 20 else ""
            add_grad({"name": f"grad_{e}_n{n}_d{d}_t{t}{'_acc' if acc else ''}", "op": "aggregate_grad",
                      "e": e, "n": n, "t": t, "d": d, "acc": acc, "time": False}, grad_mlir(e, d, n, acc),
                     opts)
    # aggregate_grad re-reading its rows in the second pass (the default until
    # run 33, grad-rows-in-shared=0): `_reread` next to each timed entry and on
    # the sweep's 16-bit shapes, where the default keeps the rows in shared
    # memory (bench/NOTES.md run 33).
    for (n, t, d) in [(9, 16384, 4096), (17, 16384, 4096), (9, 65536, 2048), (10, 8192, 7168)]:
        for acc in (False, True):
            add_grad({"name": f"grad_bf16_n{n}_d{d}{'_acc' if acc else ''}_reread", "op": "aggregate_grad",
                      "e": "bf16", "n": n, "t": t, "d": d, "acc": acc, "time": True},
                     grad_mlir("bf16", d, n, acc), "grad-rows-in-shared=0")
    for (e, n, d, t) in GRAD_SWEEP:
        if e == "f32" or d < 100:
            continue
        for acc in (False, True):
            add_grad({"name": f"grad_{e}_n{n}_d{d}_t{t}{'_acc' if acc else ''}_reread", "op": "aggregate_grad",
                      "e": e, "n": n, "t": t, "d": d, "acc": acc, "time": False}, grad_mlir(e, d, n, acc),
                     "grad-rows-in-shared=0" + (" features=+ptx81" if acc and n >= 20 else ""))
    for (e, d, t, partial, norm, timed) in [("bf16", 4096, 16384, True, False, True),
                                            ("bf16", 4096, 16384, True, True, True),
                                            ("bf16", 7168, 8192, True, False, True),
                                            ("f32", 37, 1000, False, False, False),
                                            ("f32", 37, 999, True, True, False),
                                            ("bf16", 4096, 300, False, True, False),
                                            ("f16", 7168, 129, True, False, False),
                                            ("bf16", 100, 2001, True, True, False),
                                            ("f32", 4096, 65, False, False, False)]:
        tag = ("_p" if partial else "") + ("_n" if norm else "")
        add_grad({"name": f"mgrad_{e}_d{d}_t{t}{tag}", "op": "merge_grad", "e": e, "t": t, "d": d,
                  "partial": partial, "norm": norm, "time": timed}, merge_grad_mlir(e, d, partial, norm),
                 "grad-prefetch-tokens=0")
    # The packs' merge_norm_grad: dh known to be zero, not an argument.
    for (e, d, t, timed) in [("bf16", 4096, 16384, True), ("f32", 37, 999, False),
                             ("bf16", 7168, 8192, True)]:
        add_grad({"name": f"mgrad_{e}_d{d}_t{t}_p_n_z", "op": "merge_grad", "e": e, "t": t, "d": d,
                  "partial": True, "norm": True, "zero_dh": True, "time": timed},
                 merge_grad_mlir(e, d, True, True, zero_dh=True), "grad-prefetch-tokens=0")
    # block_score_grad (phase 1's backward) on the CUDA cores
    # (grad-tensor-cores=0): the phase-1 benchmark shapes (n, S, T, D; bf16,
    # timed) and a sweep over types, odd D, 1..9 sources.
    SGRAD_TIMED = [(9, 8, 16384, 4096, False), (5, 6, 16384, 4096, False), (9, 8, 16384, 2048, False),
                   (9, 8, 16384, 7168, False), (9, 8, 16384, 4096, True)]
    for (n, s, t, d, acc) in SGRAD_TIMED:
        add_sgrad("bf16", n, s, d, t, acc, True, "", "grad-tensor-cores=0")
    for (e, n, s, d, t, acc) in [("f32", 2, 3, 13, 7, False), ("bf16", 5, 6, 100, 901, True),
                                 ("f16", 2, 3, 4100, 5, False), ("f32", 1, 1, 64, 40, True),
                                 ("bf16", 4, 8, 100, 6, False), ("bf16", 9, 8, 4096, 200, True),
                                 ("f16", 9, 8, 7168, 33, False), ("f32", 5, 6, 2048, 300, False),
                                 ("bf16", 3, 2, 37, 1001, False), ("f32", 9, 8, 7168, 17, True)]:
        add_sgrad(e, n, s, d, t, acc, False, "", "grad-tensor-cores=0")
    # block_score_grad with the dot products on the tensor cores
    # (grad-tensor-cores, the default since run 27; bench/NOTES.md run 27):
    # `_tc` next to the timed entries, and a sweep over what the mma tiles
    # make special: D not a multiple of 32 (partial blocks), n = 1, 16, 17
    # (two A tiles, padded rows), S = 1, 12 (padded B columns), T = 1, S above
    # the CTA's 32 threads (a thread takes several), n = 24.
    for (n, s, t, d, acc) in SGRAD_TIMED:
        add_sgrad("bf16", n, s, d, t, acc, True, "_tc", "grad-tensor-cores=1")
    for (n, s, d, t, acc) in [(9, 8, 4096, 200, True), (1, 1, 64, 40, True), (17, 12, 2048, 300, False),
                              (3, 2, 40, 1001, False), (5, 6, 104, 901, True), (16, 8, 7168, 33, False),
                              (8, 3, 8, 7, False), (4, 8, 4096, 1, False), (3, 40, 64, 50, False),
                              (24, 2, 256, 20, False)]:
        add_sgrad("bf16", n, s, d, t, acc, False, "_tc", "grad-tensor-cores=1")
    for d in (4096, 7168):
        add_sgrad("bf16", 9, 8, d, 16384, False, True, "_tc_w8", "grad-tensor-cores=1 sweep-width=8")
    # The CTA size from elements-per-thread (session 17, not yet measured):
    # 32 elements per thread = 128 threads at D = 4096, so more CTAs, and
    # more tokens' rows in flight, per SM; 8 = 512 threads. Timed next to
    # `_tc`, and checked where the smaller CTA takes several queries or
    # blocks per thread.
    for (n, s_, d) in [(9, 8, 4096), (9, 8, 7168), (5, 6, 4096)]:
        for el in (32, 8):
            add_sgrad("bf16", n, s_, d, 16384, False, True, f"_tc_e{el}",
                      f"grad-tensor-cores=1 elements-per-thread={el}")
    for (n, s_, d, t, acc) in [(17, 12, 2048, 300, False), (3, 40, 64, 50, False),
                               (9, 8, 4096, 200, True), (5, 6, 104, 901, True)]:
        add_sgrad("bf16", n, s_, d, t, acc, False, "_tc_e32", "grad-tensor-cores=1 elements-per-thread=32")
    # block_score_grad keeping the token's rows in shared memory between its
    # two sweeps (score-grad-shared-rows, session 20): `_tc_sh` (-1: as many
    # as fit two CTAs per SM) next to each timed `_tc`; at n = 9 S = 8
    # D = 4096 also all 17 rows (one CTA per SM, 256 or 512 threads) and the
    # sources only. Checked where the stash is partial (dout rows from both
    # places), with accumulators, two A tiles, padded rows and queries, D not
    # a multiple of 32, many queries.
    for (n, s, t, d, acc) in SGRAD_TIMED:
        add_sgrad("bf16", n, s, d, t, acc, True, "_tc_sh", "grad-tensor-cores=1 score-grad-shared-rows=-1")
    for tag, opts in [("sh17", "score-grad-shared-rows=17"),
                      ("sh17_e8", "score-grad-shared-rows=17 elements-per-thread=8"),
                      ("sh9", "score-grad-shared-rows=9")]:
        add_sgrad("bf16", 9, 8, 4096, 16384, False, True, f"_tc_{tag}", "grad-tensor-cores=1 " + opts)
    for (n, s_, d, t, acc, rows) in [(9, 8, 4096, 200, True, -1), (17, 12, 2048, 300, False, -1),
                                     (17, 12, 2048, 300, False, 20), (3, 2, 40, 1001, False, -1),
                                     (5, 6, 104, 901, True, -1), (5, 6, 104, 901, True, 7),
                                     (16, 8, 7168, 33, False, -1), (24, 2, 256, 20, False, -1),
                                     (3, 40, 64, 50, False, -1), (3, 40, 64, 50, False, 3),
                                     (1, 1, 64, 40, True, -1), (4, 8, 4096, 1, False, -1)]:
        add_sgrad("bf16", n, s_, d, t, acc, False, f"_tc_sh{'' if rows < 0 else rows}",
                  f"grad-tensor-cores=1 score-grad-shared-rows={rows}")
    # block_score_grad with persistent CTAs (score-grad-persistent, session
    # 20, not yet measured): each CTA a chunk of tokens, the next token's rows
    # requested into L2 during the current one. Without a hint ptxas takes
    # about 227 registers (one CTA per SM): `_tc_p_c264` runs one wave of 132
    # CTAs; `_tc_p_m2` keeps two per SM (128 registers, 88 bytes of spill at
    # n = 9 S = 8). Checked where chunks hold many tokens, T = 1, S above the
    # threads, two A tiles, accumulators.
    for (n, s, t, d, acc) in SGRAD_TIMED:
        add_sgrad("bf16", n, s, d, t, acc, True, "_tc_p_m2",
                  "grad-tensor-cores=1 score-grad-persistent=1 min-ctas-per-sm=2")
        add_sgrad("bf16", n, s, d, t, acc, True, "_tc_p_c264",
                  "grad-tensor-cores=1 score-grad-persistent=1 grad-ctas=264")
    for (n, s_, d, t, acc) in [(9, 8, 4096, 3000, False), (4, 8, 4096, 1, False), (17, 12, 2048, 300, False),
                               (3, 40, 64, 50, False), (5, 6, 104, 901, True)]:
        add_sgrad("bf16", n, s_, d, t, acc, False, "_tc_p_m2",
                  "grad-tensor-cores=1 score-grad-persistent=1 min-ctas-per-sm=2")
    # block_score_grad with w*g split once per call (split-query-gains,
    # session 21, not yet measured): `_tc_qs` next to each timed `_tc`;
    # checked with padded queries (S = 12, 40, 2), two A tiles, D not a
    # multiple of 32, T = 1, accumulators, and the shared-rows and persistent
    # forms.
    for (n, s, t, d, acc) in SGRAD_TIMED:
        add_sgrad("bf16", n, s, d, t, acc, True, "_tc_qs", "grad-tensor-cores=1 split-query-gains=1")
    for (n, s_, d, t, acc) in [(9, 8, 4096, 200, True), (17, 12, 2048, 300, False), (3, 2, 40, 1001, False),
                               (5, 6, 104, 901, True), (4, 8, 4096, 1, False), (3, 40, 64, 50, False),
                               (1, 1, 64, 40, True)]:
        add_sgrad("bf16", n, s_, d, t, acc, False, "_tc_qs", "grad-tensor-cores=1 split-query-gains=1")
    # The source gradients on the tensor cores as well (score-grad-mma-sweep,
    # session 21, never run yet): `_tc_ms` next to each timed `_tc`, and the
    # same checks (k-tiles with padded queries at S = 2, 6, 12, 40; two m-tiles
    # at n = 17; D not a multiple of 64; T = 1; accumulators; persistent).
    for (n, s, t, d, acc) in SGRAD_TIMED:
        add_sgrad("bf16", n, s, d, t, acc, True, "_tc_ms", "grad-tensor-cores=1 score-grad-mma-sweep=1")
    for (n, s_, d, t, acc) in [(9, 8, 4096, 200, True), (17, 12, 2048, 300, False), (3, 2, 40, 1001, False),
                               (5, 6, 104, 901, True), (4, 8, 4096, 1, False), (3, 40, 64, 50, False),
                               (1, 1, 64, 40, True), (16, 8, 7168, 33, False), (24, 2, 256, 20, False)]:
        add_sgrad("bf16", n, s_, d, t, acc, False, "_tc_ms", "grad-tensor-cores=1 score-grad-mma-sweep=1")
    # The mma sweep takes about 106 registers, so 128-thread CTAs
    # (elements-per-thread=32, `_tc_ms_e32`) fit four per SM without spills:
    # twice the tokens in flight of the 256-thread default (ptxas spills
    # when min-ctas-per-sm caps the 256-thread kernel at three).
    for (n, s, t, d, acc) in SGRAD_TIMED:
        add_sgrad("bf16", n, s, d, t, acc, True, "_tc_ms_e32",
                  "grad-tensor-cores=1 score-grad-mma-sweep=1 elements-per-thread=32")
    add_sgrad("bf16", 17, 12, 2048, 300, False, False, "_tc_ms_e32",
              "grad-tensor-cores=1 score-grad-mma-sweep=1 elements-per-thread=32")
    add_sgrad("bf16", 5, 6, 104, 901, True, False, "_tc_p_ms",
              "grad-tensor-cores=1 score-grad-mma-sweep=1 score-grad-persistent=1 min-ctas-per-sm=2")
    add_sgrad("bf16", 9, 8, 4096, 16384, False, True, "_tc_sh_qs",
              "grad-tensor-cores=1 split-query-gains=1 score-grad-shared-rows=-1")
    add_sgrad("bf16", 5, 6, 104, 901, True, False, "_tc_p_qs",
              "grad-tensor-cores=1 split-query-gains=1 score-grad-persistent=1 min-ctas-per-sm=2")
    # With four CTAs per SM the L2 prefetch of each token's rows may matter
    # less (or more): the same with l2-prefetch=0.
    for el in (16, 32):
        add_sgrad("bf16", 9, 8, 4096, 16384, False, True, f"_tc_e{el}_nol2",
                  f"grad-tensor-cores=1 elements-per-thread={el} l2-prefetch=0")
    # merge_grad loading the next token's rows one token ahead
    # (grad-prefetch-tokens, the default since run 27; the entries above name
    # grad-prefetch-tokens=0): `_pf` next to each entry above where the rows fit
    # (16-bit rows at 8 elements per thread, f32 at small D), the same checks.
    for (e, d, t, partial, norm, zero_dh, timed) in [
            ("bf16", 4096, 16384, True, False, False, True), ("bf16", 4096, 16384, True, True, False, True),
            ("bf16", 4096, 16384, True, True, True, True), ("f32", 37, 1000, False, False, False, False),
            ("f32", 37, 999, True, True, False, False), ("f32", 37, 999, True, True, True, False),
            ("bf16", 4096, 300, False, True, False, False), ("bf16", 100, 2001, True, True, False, False),
            ("f32", 64, 7, True, False, False, False)]:
        tag = ("_p" if partial else "") + ("_n" if norm else "") + ("_z" if zero_dh else "")
        add_grad({"name": f"mgrad_{e}_d{d}_t{t}{tag}_pf", "op": "merge_grad", "e": e, "t": t, "d": d,
                  "partial": partial, "norm": norm, "zero_dh": zero_dh, "time": timed},
                 merge_grad_mlir(e, d, partial, norm, zero_dh=zero_dh), "grad-prefetch-tokens=1")
    # Tuning variants of the timed backward kernels (pass options).
    GRAD_VARIANTS = [v for v in os.environ.get(
        "GRAD_VARIANTS", "elements-per-thread=8;elements-per-thread=32").split(";") if v]
    # GRAD_VARIANT_SHAPES="n,t,d,acc;..." (acc 0/1) replaces the aggregate_grad shapes.
    GRAD_VARIANT_SHAPES = [(9, 16384, 4096, False), (17, 16384, 4096, False), (10, 8192, 7168, False),
                           (10, 8192, 7168, True)]
    if os.environ.get("GRAD_VARIANT_SHAPES"):
        GRAD_VARIANT_SHAPES = [tuple(int(x) for x in v.split(",")[:3]) + (v.split(",")[3] == "1",)
                               for v in os.environ["GRAD_VARIANT_SHAPES"].split(";") if v]
    for opts in GRAD_VARIANTS:
        tag = opts.replace("min-ctas-per-sm=", "m").replace("elements-per-thread=", "e").replace(
            "grad-ctas=", "c").replace("grad-rows-in-shared=0", "reread").replace(" ", "_")
        for (n, t, d, acc) in GRAD_VARIANT_SHAPES:
            add_grad({"name": f"grad_bf16_n{n}_d{d}{'_acc' if acc else ''}_{tag}", "op": "aggregate_grad",
                      "e": "bf16", "n": n, "t": t, "d": d, "acc": acc, "time": True},
                     grad_mlir("bf16", d, n, acc), opts)
        add_grad({"name": f"mgrad_bf16_d4096_t16384_p_{tag}", "op": "merge_grad", "e": "bf16", "t": 16384,
                  "d": 4096, "partial": True, "norm": False, "time": True},
                 merge_grad_mlir("bf16", 4096, True, False), opts)
        for d in (4096, 7168):
            add_sgrad("bf16", 9, 8, d, 16384, False, True, f"_{tag}", opts + " grad-tensor-cores=0")
    # Fewer CTAs than the default (the chunking and the reduction's slices
    # with P not a multiple of 32).
    add_grad({"name": "grad_bf16_n5_d4096_t1000_c37", "op": "aggregate_grad", "e": "bf16", "n": 5, "t": 1000,
              "d": 4096, "acc": False, "time": False}, grad_mlir("bf16", 4096, 5, False), "grad-ctas=37")

# Aggregation: the benchmark shapes (bf16) and correctness shapes.
if os.environ.get("KC_SET", "all") == "grad":
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    sys.exit(0)
for (n, t, d) in [(9, 16384, 4096), (17, 16384, 4096), (9, 65536, 2048), (10, 8192, 7168)]:
    add({"name": f"agg_bf16_n{n}_d{d}", "op": "aggregate", "e": "bf16", "n": n, "t": t, "d": d, "time": True},
        agg_mlir("bf16", d, n))
for (e, n, t, d) in [("f32", 3, 1000, 13), ("f16", 5, 3001, 4096), ("f32", 4, 2049, 4096),
                     ("bf16", 2, 777, 64), ("bf16", 6, 999, 7168), ("f16", 3, 513, 8192),
                     ("bf16", 3, 300, 1000), ("bf16", 1, 100, 4096), ("f32", 1, 50, 13)]:
    add({"name": f"agg_{e}_n{n}_d{d}", "op": "aggregate", "e": e, "n": n, "t": t, "d": d, "time": False},
        agg_mlir(e, d, n))

# Aggregation variants (pass options) for tuning.
AGG_VARIANTS = [] if os.environ.get("AGG_VARIANTS") == "0" else [("e8p3s1", "elements-per-thread=8 prefetch-depth=3 sources-per-step=1"),
                ("e8p2s2", "elements-per-thread=8 prefetch-depth=2 sources-per-step=2"),
                ("e16p2s1", "elements-per-thread=16 prefetch-depth=2 sources-per-step=1"),
                ("e16p1s2", "elements-per-thread=16 prefetch-depth=1 sources-per-step=2")]
# AGG_VARIANTS="tag=options;..." and AGG_SHAPES="n,t,d;..." replace the lists.
if os.environ.get("AGG_VARIANTS", "0") != "0":
    AGG_VARIANTS = [tuple(v.split("=", 1)) for v in os.environ["AGG_VARIANTS"].split(";") if v]
AGG_SHAPES = [tuple(int(x) for x in v.split(",")) for v in os.environ.get(
    "AGG_SHAPES", "9,16384,4096;17,16384,4096;9,65536,2048;10,8192,7168").split(";") if v]
for (n, t, d) in AGG_SHAPES:
    for tag, opts in AGG_VARIANTS:
        add({"name": f"agg_bf16_n{n}_d{d}_{tag}", "op": "aggregate", "e": "bf16", "n": n, "t": t, "d": d,
             "time": True}, agg_mlir("bf16", d, n), opts)

# Phase 1: the shapes, default heuristic, and G variants for tuning.
for (n, s, d) in [(5, 8, 2048), (5, 8, 4096), (9, 8, 2048), (9, 8, 4096), (9, 6, 7168), (5, 8, 8192)]:
    add({"name": f"bs_bf16_n{n}_s{s}_d{d}", "op": "block_score", "e": "bf16", "n": n, "s": s,
         "t": 16384, "d": d, "inv": False, "time": True}, score_mlir("bf16", d, n, s, False))
    add({"name": f"bs_bf16_n{n}_s{s}_d{d}_r", "op": "block_score", "e": "bf16", "n": n, "s": s,
         "t": 16384, "d": d, "inv": True, "time": True}, score_mlir("bf16", d, n, s, True))
BS_VARIANTS = os.environ.get("BS_VARIANTS", "tensor-cores=0;min-ctas-per-sm=2;sweep-width=2").split(";")
BS_SHAPES = [tuple(int(x) for x in v.split(",")) for v in
             os.environ.get("BS_SHAPES", "9,8,4096;5,6,2048;9,6,7168").split(";") if v]
for (n, s, d) in BS_SHAPES:
    for opts in [v for v in BS_VARIANTS if v]:
        tag = opts.replace("tensor-cores=0", "old").replace("elements-per-thread=", "e").replace(
            "prefetch-depth=", "p").replace("min-ctas-per-sm=", "m").replace("sweep-width=", "w").replace(
            "l2-prefetch-ahead=", "a").replace("l2-prefetch=0", "nol2").replace("cluster-split=", "x").replace(
            "bulk-copy=0", "nobulk").replace("queries-per-cta=", "g").replace(" ", "_")
        add({"name": f"bs_bf16_n{n}_s{s}_d{d}_{tag}", "op": "block_score", "e": "bf16", "n": n, "s": s,
             "t": 16384, "d": d, "inv": False, "time": True}, score_mlir("bf16", d, n, s, False), opts)
# Correctness of the tensor-core kernel: odd shapes (D % 32 != 0, n > 16,
# S > 8, one source, few tokens), with and without inv_rms.
for (n, s, d, t, inv) in [(17, 8, 8192, 300, False), (1, 3, 72, 5, False), (3, 10, 200, 77, True),
                          (16, 9, 1000, 33, False), (2, 1, 8, 7, True),
                          # cluster split (two CTAs per token): D/2 not a
                          # multiple of 32, S = 5, inv_rms; and the 9 x 7168 rows
                          (13, 5, 4112, 57, True), (9, 8, 7168, 41, False)]:
    add({"name": f"bs_bf16_n{n}_s{s}_d{d}_t{t}", "op": "block_score", "e": "bf16", "n": n, "s": s,
         "t": t, "d": d, "inv": inv, "time": False}, score_mlir("bf16", d, n, s, inv))
# Phase 1 with w*g split once per call (split-query-gains, session 21, not
# yet measured): `_qs` next to the twelve timed shapes and the D = 7168
# shapes below 85% of the floor (bulk copies, one CTA or a cluster of two);
# checked with padded queries, inv_rms, the cluster split, few tokens.
for (n, s, d) in [(5, 8, 2048), (5, 8, 4096), (9, 8, 2048), (9, 8, 4096), (9, 6, 7168), (5, 8, 8192),
                  (9, 8, 7168), (5, 6, 7168)]:
    for inv in (False, True):
        add({"name": f"bs_bf16_n{n}_s{s}_d{d}{'_r' if inv else ''}_qs", "op": "block_score", "e": "bf16",
             "n": n, "s": s, "t": 16384, "d": d, "inv": inv, "time": True},
            score_mlir("bf16", d, n, s, inv), "split-query-gains=1")
# Phase 1 with sweep 2 on the tensor cores (score-mma-sweep, session 21, not
# yet run on a GPU), alone and with the split: `_ms` / `_qs_ms` next to the
# same timed shapes; checked at the same odd shapes (one source: exact).
for (n, s, d) in [(5, 8, 2048), (5, 8, 4096), (9, 8, 2048), (9, 8, 4096), (9, 6, 7168), (5, 8, 8192),
                  (9, 8, 7168), (5, 6, 7168)]:
    for tag, opts in [("ms", "score-mma-sweep=1"), ("qs_ms", "score-mma-sweep=1 split-query-gains=1")]:
        add({"name": f"bs_bf16_n{n}_s{s}_d{d}_{tag}", "op": "block_score", "e": "bf16", "n": n, "s": s,
             "t": 16384, "d": d, "inv": False, "time": True}, score_mlir("bf16", d, n, s, False), opts)
for (n, s, d, t, inv) in [(1, 3, 72, 5, False), (3, 10, 200, 77, True), (16, 9, 1000, 33, False),
                          (13, 5, 4112, 57, True), (9, 8, 7168, 41, False), (17, 20, 136, 9, True)]:
    add({"name": f"bs_bf16_n{n}_s{s}_d{d}_t{t}_ms", "op": "block_score", "e": "bf16", "n": n, "s": s,
         "t": t, "d": d, "inv": inv, "time": False}, score_mlir("bf16", d, n, s, inv), "score-mma-sweep=1")
for (n, s, d, t, inv) in [(1, 3, 72, 5, False), (3, 10, 200, 77, True), (16, 9, 1000, 33, False),
                          (13, 5, 4112, 57, True), (9, 8, 7168, 41, False)]:
    add({"name": f"bs_bf16_n{n}_s{s}_d{d}_t{t}_qs", "op": "block_score", "e": "bf16", "n": n, "s": s,
         "t": t, "d": d, "inv": inv, "time": False}, score_mlir("bf16", d, n, s, inv), "split-query-gains=1")
add({"name": "bs_f32_n3_s6_d100", "op": "block_score", "e": "f32", "n": 3, "s": 6, "t": 301, "d": 100,
     "inv": False, "time": False}, score_mlir("f32", 100, 3, 6, False))

# Phase 2.
add({"name": "merge_bf16_d4096_p", "op": "merge", "e": "bf16", "t": 16384, "d": 4096, "partial": True,
     "time": True}, merge_mlir("bf16", 4096, True))
add({"name": "merge_f32_d13", "op": "merge", "e": "f32", "t": 333, "d": 13, "partial": False,
     "time": False}, merge_mlir("f32", 13, False))
add({"name": "merge_f16_d7168_p", "op": "merge", "e": "f16", "t": 1000, "d": 7168, "partial": True,
     "time": False}, merge_mlir("f16", 7168, True))

with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
