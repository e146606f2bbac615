#!/usr/bin/env python3
"""Checks the printMemrefF32 output of a CPU integration test against the
independent numpy reference (attnres_ref.py).

Part of the attnres project. Usage (from a lit RUN line):

    ... | mlir-runner ... | python3 check_output.py test.mlir

The test file declares its inputs as `%name = arith.constant dense<...> :
tensor<...xE>` and, in comments, one `// REF: {json}` line per printed
memref, in print order. Each REF names an op of the reference, the constants
it reads, which result it checks and how (see `evaluate`). The reference is
recomputed here in float64 from the constants of the test file itself, so the
expected values cannot drift from the inputs.

Tolerances (by the storage type of the checked result; the values are
printed in f32 with 6 significant digits, about 5e-6 relative):
    f32  1e-5     f16  2e-3     bf16  1e-2
An element passes when |got - ref| <= tol * scale + tol * |ref|, where scale
depends on the REF's "mode":
    "row"  (default) the largest |ref| of the element's last-dimension vector
           (a token's D features), so that one token of small magnitude is not
           hidden by another of large magnitude;
    "rel"  0 (pure relative error; for positive per-token values such as an
           inverse RMS);
    "abs1" max(1, |ref|) (per-token log-domain values such as lse).
NaN or Inf in the output always fails. Exits 1 with a report on any mismatch.

Gradients (test/Integration/CPU/grad) use the same table: the worst
error/bound seen there at these tolerances is about 0.25 (f32, where the
backward subtracts nearly equal terms dz_i = a_i (da_i - sum_j a_j da_j) and
sums over tokens), 0.19 (bf16) and 0.11 (f16). The parameter gradients
dquery/dgain are f32 results and are checked with the f32 value whatever
the storage type of the inputs.

A REF with "wrong": NAME compares against a deliberately wrong formula
(WRONG_FORMULAS below, written here and not in the reference): the control
tests require the check to fail there, showing that it can.
"""

import ast
import json
import re
import sys

import numpy as np

from attnres import reference as ref

TOLERANCES = {"f32": 1e-5, "f16": 2e-3, "bf16": 1e-2}

CONST_RE = re.compile(
    r"%([A-Za-z0-9_]+)\s*=\s*arith\.constant\s+dense<(.*?)>\s*:\s*"
    r"tensor<([0-9x]*?)x?(f32|f16|bf16)>", re.S)
REF_RE = re.compile(r"^\s*//\s*REF:\s*(\{.*\})\s*$", re.M)


def parse_constants(text):
    """Returns {name: float64 array rounded to its storage type}."""
    consts = {}
    for m in CONST_RE.finditer(text):
        name, body, shape, dtype = m.groups()
        body = " ".join(line.split("//")[0] for line in body.splitlines())
        values = np.array(ast.literal_eval(body.strip()), dtype=np.float64)
        dims = [int(d) for d in shape.split("x") if d]
        if list(values.shape) != dims:
            sys.exit("check_output: constant %%%s has shape %s, declared %s" %
                     (name, list(values.shape), dims))
        consts[name] = ref.round_to_dtype(values, dtype)
    return consts


def parse_memrefs(output):
    """Returns the list of arrays printed by printMemrefF32, in order."""
    arrays = []
    chunks = output.split("Unranked Memref")[1:]
    for chunk in chunks:
        sizes = re.search(r"sizes\s*=\s*\[([0-9, ]*)\]", chunk)
        data = chunk.split("data =", 1)
        if not sizes or len(data) != 2:
            sys.exit("check_output: cannot parse memref header:\n" + chunk[:200])
        dims = [int(d) for d in sizes.group(1).replace(" ", "").split(",") if d]
        nums = re.findall(r"-?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)",
                          data[1])
        values = np.array([float(x) for x in nums], dtype=np.float64)
        if values.size != int(np.prod(dims)):
            sys.exit("check_output: memref of sizes %s printed %d values" %
                     (dims, values.size))
        arrays.append(values.reshape(dims))
    return arrays


def _wrong_no_rms_derivative(q, g, srcs, eps, dh):
    """dv of aggregate with the inverse RMS treated as a constant (the
    -dz r^2 z v / D term missing): a plausible, wrong backward."""
    v = np.stack(srcs, 0)
    w = q * g
    r = ref.inv_rms(v, eps)
    z = r * np.sum(v * w, -1)
    a = np.exp(z - z.max(0))
    a = a / a.sum(0)
    da = np.sum(v * dh, -1)
    dz = a * (da - np.sum(a * da, 0))
    return a[..., None] * dh + (dz * r)[..., None] * w


def _merge_operands(spec, c):
    o, lse, q, g, u = (c[spec[k]] for k in ("out", "lse", "query", "gain", "update"))
    p = u + c[spec["partial"]] if "partial" in spec else u
    return o, lse, q, g, p


def _wrong_merge_gate_derivative(spec, c):
    """merge's gradient with d sigmoid(x) / dx taken as sigmoid(x) (a, not
    a (1 - a)): returns (dout, dlse, dquery, dgain, dupdate)."""
    o, lse, q, g, p = _merge_operands(spec, c)
    dh, dpn = c[spec["dh"]], c[spec["dpn"]]
    w = q * g
    r = ref.inv_rms(p, spec["eps"])
    cs = r * np.sum(p * w, -1)
    a = 1.0 / (1.0 + np.exp(lse - cs))
    dc = np.sum(dh * (p - o), -1) * a
    cr = (dc * r)[..., None]
    dp = a[..., None] * dh + dpn + cr * (w - (cs * r / p.shape[-1])[..., None] * p)
    dwg = np.sum((cr * p).reshape(-1, p.shape[-1]), 0)
    return (1.0 - a)[..., None] * dh, -dc, dwg * g, dwg * q, dp


def _wrong_merge_norm_no_rms_derivative(spec, c):
    """merge_norm's gradient with the norm's inverse RMS taken as a constant
    (dH = dh + rn gn dhn, the -rn^3 h <h, gn dhn> / D term missing)."""
    o, lse, q, g, p = _merge_operands(spec, c)
    w = q * g
    r = ref.inv_rms(p, spec["eps"])
    a = 1.0 / (1.0 + np.exp(lse - r * np.sum(p * w, -1)))
    h = ref.round_to_dtype(o + a[..., None] * (p - o), spec["dtype_in"])
    rn = ref.inv_rms(h, spec["norm_eps"])[..., None]
    dH = c[spec["dh"]] + rn * c[spec["norm_gain"]] * c[spec["dhn"]]
    partial = c[spec["partial"]] if "partial" in spec else None
    return ref.merge_grad(c[spec["out"]], lse, q, g, c[spec["update"]], partial, spec["eps"], dH,
                          c[spec["dpn"]])


def _fd(loss, x, h=2e-6):
    """Central finite-difference gradient of the scalar loss() at array x
    (x is perturbed in place and restored)."""
    return ref.central_difference(loss, x, h)


def _block_attnres_fd(spec, c):
    """(H, dv0, dqueries, dgains) of reference.block_attnres with sublayer
    l: y = h * scales[l], for L = sum(dH * H): the gradients by central
    finite differences of the float64 forward (not from any gradient
    formula), so a chain of gradient ops is checked against the model."""
    v0, qs, gs = (np.array(c[spec[k]]) for k in ("v0", "queries", "gains"))
    scales, dH = c[spec["scales"]], c[spec["dH"]]
    sub = lambda l, h: h * scales[l]
    model = lambda: ref.block_attnres(v0, qs, gs, sub, spec["block_size"], spec["eps"])
    loss = lambda: float(np.sum(dH * model()))
    return model(), _fd(loss, v0), _fd(loss, qs), _fd(loss, gs)


def wrong_formula(spec, c, value):
    """The value of a REF marked "wrong" (see the module docstring)."""
    get = lambda k: c[spec[k]]
    many = lambda k: [c[n] for n in spec[k]]
    name = spec["wrong"]
    if name == "no_rms_derivative" and spec["op"] == "aggregate_grad" \
            and spec.get("result", 0) == 0:
        dv = _wrong_no_rms_derivative(get("query"), get("gain"), many("sources"), spec["eps"],
                                      get("dh"))[spec["index"]]
        return dv + (c[spec["acc"][spec["index"]]] if "acc" in spec else 0.0)
    if name == "swap_params" and spec["op"] == "aggregate_grad" and spec["result"] in (1, 2):
        # dquery = dwg * query, dgain = dwg * gain (the right one is the other
        # vector): dwg recovered from the correct result.
        q, g = get("query"), get("gain")
        dwg = value / (g if spec["result"] == 1 else q)
        return dwg * (q if spec["result"] == 1 else g)
    if name == "no_lse_grad" and spec["op"] == "block_score_grad":
        # The gradient as if dlse were zero: the a_li dlse_l term of dz missing.
        res = ref.block_score_grad(get("queries"), get("gains"), many("sources"), spec["eps"],
                                   get("dout"), get("dlse") * 0.0)
        out = res[spec["result"]]
        if spec["result"] == 0:
            out = out[spec["index"]] + (c[spec["acc"][spec["index"]]] if "acc" in spec else 0.0)
        return out
    if name == "gate_derivative" and spec["op"] == "merge_grad" and "norm_gain" not in spec:
        return _wrong_merge_gate_derivative(spec, c)[spec["result"]]
    if name == "norm_no_rms_derivative" and spec["op"] == "merge_grad" and "norm_gain" in spec:
        return _wrong_merge_norm_no_rms_derivative(spec, c)[spec["result"]]
    sys.exit("check_output: unknown wrong formula %s for %s" % (name, spec["name"]))


def evaluate(spec, c):
    """The reference value of one REF. Keys: op, the operands by constant
    name, eps, result (index of the op's result, default 0)."""
    op = spec["op"]
    get = lambda k: c[spec[k]]
    many = lambda k: [c[n] for n in spec[k]]
    if op == "aggregate":
        res = (ref.aggregate(get("query"), get("gain"), many("sources"),
                             spec["eps"]),)
    elif op == "block_sum":
        res = (ref.block_sum(many("inputs")),)
    elif op == "inv_rms":
        res = (ref.inv_rms(get("input"), spec["eps"]),)
    elif op == "block_score":
        r = many("inv_rms") if "inv_rms" in spec else None
        res = ref.block_score(get("queries"), get("gains"), many("sources"),
                              spec["eps"], r)
    elif op == "merge":
        partial = get("partial") if "partial" in spec else None
        res = ref.merge(get("out"), get("lse"), get("query"), get("gain"),
                        get("update"), partial, spec["eps"])
    elif op == "aggregate_stats":
        lse, r = ref.aggregate_stats(get("query"), get("gain"), many("sources"), spec["eps"])
        res = (lse, r[spec["index"]] if "index" in spec else r)
    elif op == "aggregate_grad":
        dv, dq, dg = ref.aggregate_grad(get("query"), get("gain"), many("sources"),
                                        spec["eps"], get("dh"))
        if "acc" in spec:
            dv = dv + np.stack(many("acc"), 0)
        res = (dv[spec["index"]] if "index" in spec else dv, dq, dg)
    elif op == "block_score_grad":
        dv, dW, dG = ref.block_score_grad(get("queries"), get("gains"), many("sources"),
                                          spec["eps"], get("dout"), get("dlse"))
        if "acc" in spec:
            dv = dv + np.stack(many("acc"), 0)
        res = (dv[spec["index"]] if "index" in spec else dv, dW, dG)
    elif op == "merge_grad":
        partial = get("partial") if "partial" in spec else None
        args = (get("out"), get("lse"), get("query"), get("gain"), get("update"), partial)
        if "norm_gain" in spec:
            # The op normalises h as stored (rounded to the storage type).
            rnd = lambda h: ref.round_to_dtype(h, spec["dtype_in"])
            res = ref.merge_norm_grad(*args, get("norm_gain"), spec["eps"], spec["norm_eps"],
                                      get("dh"), get("dhn"), get("dpn"), round_h=rnd)
        else:
            res = ref.merge_grad(*args, spec["eps"], get("dh"), get("dpn"))
    elif op == "block_attnres_grad":
        res = _block_attnres_fd(spec, c)
    elif op == "two_phase":
        # Phase 1 over the summaries, then phase 2 for query `row`, must equal
        # one aggregation over the summaries and the updated partial sum.
        row = spec["row"]
        p = get("update") + get("partial")
        res = (ref.aggregate(get("queries")[row], get("gains")[row],
                             many("sources") + [p], spec["eps"]), p)
    else:
        sys.exit("check_output: unknown reference op " + op)
    value = res[spec.get("result", 0)]
    if "wrong" in spec:
        value = wrong_formula(spec, c, value)
    return value


def compare(index, spec, got, want):
    dtype = spec["dtype"]
    tol = TOLERANCES[dtype]
    mode = spec.get("mode", "row")
    name = spec.get("name", "#%d" % index)
    if got.shape != want.shape:
        print("FAIL %s: printed shape %s, reference shape %s" %
              (name, got.shape, want.shape))
        return False
    if mode == "row":
        scale = np.broadcast_to(
            np.max(np.abs(want), axis=-1, keepdims=True), want.shape)
    elif mode == "rel":
        scale = np.zeros_like(want)
    elif mode == "abs1":
        scale = np.maximum(1.0, np.abs(want))
    else:
        sys.exit("check_output: unknown mode " + mode)
    bound = tol * scale + tol * np.abs(want)
    err = np.abs(got - want)
    bad = ~np.isfinite(got) | ~(err <= bound)
    worst = float(np.max(np.where(bound > 0, err / np.maximum(bound, 1e-300),
                                  err)))
    if np.any(bad):
        idx = np.argwhere(bad)
        print("FAIL %s (%s, tol %g, mode %s): %d of %d elements out of "
              "tolerance" % (name, dtype, tol, mode, len(idx), got.size))
        for i in idx[:8]:
            i = tuple(int(x) for x in i)
            print("  at %s: got %r, reference %r, bound %g" %
                  (i, float(got[i]), float(want[i]), float(bound[i])))
        return False
    print("ok %s (%s, tol %g, mode %s): %d elements, worst error/bound %.3f" %
          (name, dtype, tol, mode, got.size, worst))
    return True


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_output.py TEST.mlir < runner-output")
    with open(sys.argv[1]) as f:
        text = f.read()
    specs = [json.loads(s) for s in REF_RE.findall(text)]
    if not specs:
        sys.exit("check_output: no // REF: line in " + sys.argv[1])
    consts = parse_constants(text)
    arrays = parse_memrefs(sys.stdin.read())
    if len(arrays) != len(specs):
        print("FAIL: %d memrefs printed, %d REF lines" % (len(arrays),
                                                          len(specs)))
        sys.exit(1)
    ok = True
    for i, (spec, got) in enumerate(zip(specs, arrays)):
        missing = [n for k, v in spec.items()
                   if k in ("query", "gain", "queries", "gains", "out", "lse",
                            "update", "partial", "input", "dh", "dout", "dlse", "dpn",
                            "norm_gain", "dhn", "v0", "scales", "dH")
                   for n in [v] if n not in consts]
        missing += [n for k in ("sources", "inputs", "inv_rms", "acc")
                    for n in spec.get(k, []) if n not in consts]
        if missing:
            sys.exit("check_output: REF names unknown constants %s" % missing)
        ok &= compare(i, spec, got, evaluate(spec, consts))
    print("PASSED" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
