#!/usr/bin/env python3
"""Generates the transformer models used by attnres-detect-residual-chains.

The models are written the way frontends emit them: linalg on tensors as
torch-mlir does (linalg.generic for elementwise ops and reductions,
linalg.matmul, linalg.fill, tensor.empty), or TOSA. The outputs are committed
(examples/*.mlir, test/Dialect/AttnRes/Transforms/detect-residual-chains-*.mlir
inputs, test/Integration/CPU/detect/*.mlir); rerun this script to regenerate.

Usage: gen_detect_models.py --form linalg --layers 12 --dim 64 ... > out.mlir
"""

import argparse
import sys

F32 = "f32"


class Emitter:
    def __init__(self):
        self.lines = []
        self.n = 0

    def tmp(self, hint="t"):
        self.n += 1
        return f"%v{self.n}_{hint}"

    pending = None

    def emit(self, s):
        if self.pending and s.startswith("%"):
            self.lines.append("    // expected-remark@+1 {{" + self.pending + "}}")
            self.pending = None
        self.lines.append("    " + s)


def tt(*shape):
    return "tensor<" + "x".join(str(s) for s in shape) + "xf32>"


# ---------------------------------------------------------------------------
# linalg form
# ---------------------------------------------------------------------------

ID2 = "affine_map<(d0, d1) -> (d0, d1)>"
ROW2 = "affine_map<(d0, d1) -> (d0)>"
COL2 = "affine_map<(d0, d1) -> (d1)>"


class Linalg:
    def __init__(self, e, T, D, F, eps, add_style):
        self.e, self.T, self.D, self.F, self.eps = e, T, D, F, eps
        self.add_style = add_style
        # A dynamic token dim is spelled "?" in types; its size is %dT
        # (tensor.dim of the function's first argument).
        self.Tsize = "%dT" if T == "?" else str(T)

    def empty(self, *shape):
        v = self.e.tmp("e")
        dyn = ", ".join("%dT" for s in shape if s == "?")
        self.e.emit(f"{v} = tensor.empty({dyn}) : {tt(*shape)}")
        return v

    def zeros(self, *shape):
        c = self.e.tmp("c")
        self.e.emit(f"{c} = arith.constant 0.0 : f32")
        v = self.e.tmp("z")
        self.e.emit(
            f"{v} = linalg.fill ins({c} : f32) outs({self.empty(*shape)} : {tt(*shape)}) -> {tt(*shape)}")
        return v

    def generic(self, ins, out, maps, iters, body, hint="g"):
        """ins: list of (value, type); out: (value, type); body: list of lines
        using ^bb args %a0.. and %acc; last line yields %r."""
        e = self.e
        v = e.tmp(hint)
        ins_s = ", ".join(x for x, _ in ins)
        ins_t = ", ".join(t for _, t in ins)
        maps_s = ", ".join(maps)
        iters_s = ", ".join(f'"{i}"' for i in iters)
        args = ", ".join(f"%a{i}: f32" for i in range(len(ins))) + (", " if ins else "") + "%acc: f32"
        e.emit(f"{v} = linalg.generic {{indexing_maps = [{maps_s}], iterator_types = [{iters_s}]}}")
        e.emit(f"    ins({ins_s} : {ins_t}) outs({out[0]} : {out[1]}) {{")
        e.emit(f"  ^bb0({args}):")
        for line in body:
            e.emit("    " + line)
        e.emit(f"}} -> {out[1]}")
        return v

    def rmsnorm(self, x, g):
        T, D = self.T, self.D
        sq = self.generic([(x, tt(T, D))], (self.empty(T, D), tt(T, D)), [ID2, ID2],
                          ["parallel", "parallel"], ["%r = arith.mulf %a0, %a0 : f32", "linalg.yield %r : f32"], "sq")
        ss = self.generic([(sq, tt(T, D))], (self.zeros(T), tt(T)), [ID2, ROW2],
                          ["parallel", "reduction"], ["%r = arith.addf %a0, %acc : f32", "linalg.yield %r : f32"], "ss")
        r = self.generic([(ss, tt(T))], (self.empty(T), tt(T)), ["affine_map<(d0) -> (d0)>"] * 2, ["parallel"],
                         [f"%dd = arith.constant {float(D):e} : f32", f"%ep = arith.constant {self.eps:e} : f32",
                          "%m = arith.divf %a0, %dd : f32", "%s = arith.addf %m, %ep : f32",
                          "%r = math.rsqrt %s : f32", "linalg.yield %r : f32"], "rs")
        n = self.generic([(x, tt(T, D)), (r, tt(T)), (g, tt(D))], (self.empty(T, D), tt(T, D)),
                         [ID2, ROW2, COL2, ID2], ["parallel", "parallel"],
                         ["%m = arith.mulf %a0, %a1 : f32", "%r = arith.mulf %m, %a2 : f32", "linalg.yield %r : f32"],
                         "nrm")
        return n

    def layernorm(self, x, g):
        T, D = self.T, self.D
        s = self.generic([(x, tt(T, D))], (self.zeros(T), tt(T)), [ID2, ROW2], ["parallel", "reduction"],
                         ["%r = arith.addf %a0, %acc : f32", "linalg.yield %r : f32"], "sum")
        xc = self.generic([(x, tt(T, D)), (s, tt(T))], (self.empty(T, D), tt(T, D)), [ID2, ROW2, ID2],
                          ["parallel", "parallel"],
                          [f"%dd = arith.constant {float(D):e} : f32", "%m = arith.divf %a1, %dd : f32",
                           "%r = arith.subf %a0, %m : f32", "linalg.yield %r : f32"], "xc")
        v = self.generic([(xc, tt(T, D))], (self.zeros(T), tt(T)), [ID2, ROW2], ["parallel", "reduction"],
                         ["%q = arith.mulf %a0, %a0 : f32", "%r = arith.addf %q, %acc : f32", "linalg.yield %r : f32"],
                         "var")
        n = self.generic([(xc, tt(T, D)), (v, tt(T)), (g, tt(D))], (self.empty(T, D), tt(T, D)),
                         [ID2, ROW2, COL2, ID2], ["parallel", "parallel"],
                         [f"%dd = arith.constant {float(D):e} : f32", f"%ep = arith.constant {self.eps:e} : f32",
                          "%m = arith.divf %a1, %dd : f32", "%s = arith.addf %m, %ep : f32",
                          "%rs = math.rsqrt %s : f32", "%y = arith.mulf %a0, %rs : f32",
                          "%r = arith.mulf %y, %a2 : f32", "linalg.yield %r : f32"], "ln")
        return n

    def matmul(self, a, b, M, K, N):
        v = self.e.tmp("mm")
        self.e.emit(f"{v} = linalg.matmul ins({a}, {b} : {tt(M, K)}, {tt(K, N)}) outs({self.zeros(M, N)} : {tt(M, N)}) -> {tt(M, N)}")
        return v

    def attention(self, n, wq, wk, wv, wo):
        T, D = self.T, self.D
        q = self.matmul(n, wq, T, D, D)
        k = self.matmul(n, wk, T, D, D)
        v = self.matmul(n, wv, T, D, D)
        kt = self.e.tmp("kt")
        self.e.emit(f"{kt} = linalg.transpose ins({k} : {tt(T, D)}) outs({self.empty(D, T)} : {tt(D, T)}) permutation = [1, 0]")
        s = self.matmul(q, kt, T, D, T)
        sc = 1.0 / (D ** 0.5)
        s2 = self.generic([(s, tt(T, T))], (self.empty(T, T), tt(T, T)), [ID2, ID2], ["parallel", "parallel"],
                          [f"%c = arith.constant {sc:e} : f32", "%r = arith.mulf %a0, %c : f32", "linalg.yield %r : f32"],
                          "sc")
        ninf = self.e.tmp("ninf")
        self.e.emit(f"{ninf} = arith.constant -3.4e38 : f32")
        mx0 = self.e.tmp("mx0")
        self.e.emit(f"{mx0} = linalg.fill ins({ninf} : f32) outs({self.empty(T)} : {tt(T)}) -> {tt(T)}")
        mx = self.generic([(s2, tt(T, T))], (mx0, tt(T)), [ID2, ROW2], ["parallel", "reduction"],
                          ["%r = arith.maximumf %a0, %acc : f32", "linalg.yield %r : f32"], "mx")
        ex = self.generic([(s2, tt(T, T)), (mx, tt(T))], (self.empty(T, T), tt(T, T)), [ID2, ROW2, ID2],
                          ["parallel", "parallel"],
                          ["%d = arith.subf %a0, %a1 : f32", "%r = math.exp %d : f32", "linalg.yield %r : f32"], "ex")
        sm = self.generic([(ex, tt(T, T))], (self.zeros(T), tt(T)), [ID2, ROW2], ["parallel", "reduction"],
                          ["%r = arith.addf %a0, %acc : f32", "linalg.yield %r : f32"], "sm")
        p = self.generic([(ex, tt(T, T)), (sm, tt(T))], (self.empty(T, T), tt(T, T)), [ID2, ROW2, ID2],
                         ["parallel", "parallel"], ["%r = arith.divf %a0, %a1 : f32", "linalg.yield %r : f32"], "p")
        o = self.matmul(p, v, T, T, D)
        return self.matmul(o, wo, T, D, D)

    def mlp(self, n, w1, w2):
        T, D, F = self.T, self.D, self.F
        u = self.matmul(n, w1, T, D, F)
        a = self.generic([(u, tt(T, F))], (self.empty(T, F), tt(T, F)), [ID2, ID2], ["parallel", "parallel"],
                         ["%c1 = arith.constant 1.0 : f32", "%ng = arith.negf %a0 : f32", "%ex = math.exp %ng : f32",
                          "%de = arith.addf %ex, %c1 : f32", "%sg = arith.divf %c1, %de : f32",
                          "%r = arith.mulf %a0, %sg : f32", "linalg.yield %r : f32"], "silu")
        return self.matmul(a, w2, T, F, D)

    def aggregate(self, srcs, w, g, v):
        """AttnRes written in primitives (spec section 2). v: variant dict."""
        T, D, n = self.T, self.D, len(srcs)
        e = self.e
        S, X = tt(n, T, D), tt(T, D)
        ID3 = "affine_map<(d0, d1, d2) -> (d0, d1, d2)>"
        R01 = "affine_map<(d0, d1, d2) -> (d0, d1)>"
        C2 = "affine_map<(d0, d1, d2) -> (d2)>"
        O12 = "affine_map<(d0, d1, d2) -> (d1, d2)>"
        if v["stack"] == "insert":
            cur = self.empty(n, T, D)
            for i, x in enumerate(srcs):
                nx = e.tmp("st")
                e.emit(f"{nx} = tensor.insert_slice {x} into {cur}[{i}, 0, 0] [1, {self.Tsize}, {D}] [1, 1, 1] : {X} into {S}")
                cur = nx
            V = cur
        else:
            exs = []
            for x in srcs:
                ex = e.tmp("ex")
                e.emit(f"{ex} = tensor.expand_shape {x} [[0, 1], [2]] output_shape [1, {self.Tsize}, {D}] : {X} into {tt(1, T, D)}")
                exs.append(ex)
            V = e.tmp("st")
            e.emit(f"{V} = tensor.concat dim(0) {', '.join(exs)} : ({', '.join([tt(1, T, D)] * n)}) -> {S}")
        P3 = ["parallel"] * 3
        RED = ["parallel", "parallel", "reduction"]
        sq = self.generic([(V, S)], (self.empty(n, T, D), S), [ID3, ID3], P3,
                          ["%r = arith.mulf %a0, %a0 : f32", "linalg.yield %r : f32"], "sq")
        ss = self.generic([(sq, S)], (self.zeros(n, T), tt(n, T)), [ID3, R01], RED,
                          ["%r = arith.addf %a0, %acc : f32", "linalg.yield %r : f32"], "ss")
        r = self.generic([(ss, tt(n, T))], (self.empty(n, T), tt(n, T)), [ID2, ID2], ["parallel", "parallel"],
                         [f"%dd = arith.constant {float(D):e} : f32", f"%ep = arith.constant {self.eps:e} : f32",
                          "%m = arith.divf %a0, %dd : f32", "%s = arith.addf %m, %ep : f32",
                          "%r = math.rsqrt %s : f32", "linalg.yield %r : f32"], "rs")
        if v["gain"] == "separate" and v["order"] == "normfirst":
            kn = self.generic([(V, S), (r, tt(n, T)), (g, tt(D))], (self.empty(n, T, D), S), [ID3, R01, C2, ID3], P3,
                              ["%m = arith.mulf %a0, %a1 : f32", "%r = arith.mulf %m, %a2 : f32",
                               "linalg.yield %r : f32"], "kn")
            z = self.generic([(w, tt(D)), (kn, S)], (self.zeros(n, T), tt(n, T)), [C2, ID3, R01], RED,
                             ["%m = arith.mulf %a0, %a1 : f32", "%r = arith.addf %m, %acc : f32",
                              "linalg.yield %r : f32"], "z")
        else:
            if v["gain"] == "separate":
                dot = self.generic([(V, S), (w, tt(D)), (g, tt(D))], (self.zeros(n, T), tt(n, T)), [ID3, C2, C2, R01],
                                   RED, ["%m = arith.mulf %a0, %a1 : f32", "%m2 = arith.mulf %m, %a2 : f32",
                                         "%r = arith.addf %m2, %acc : f32", "linalg.yield %r : f32"], "dot")
            else:
                q = w
                if v["gain"] == "folded":
                    M1 = "affine_map<(d0) -> (d0)>"
                    q = self.generic([(w, tt(D)), (g, tt(D))], (self.empty(D), tt(D)), [M1, M1, M1], ["parallel"],
                                     ["%r = arith.mulf %a0, %a1 : f32", "linalg.yield %r : f32"], "wg")
                dot = self.generic([(q, tt(D)), (V, S)], (self.zeros(n, T), tt(n, T)), [C2, ID3, R01], RED,
                                   ["%m = arith.mulf %a1, %a0 : f32", "%r = arith.addf %acc, %m : f32",
                                    "linalg.yield %r : f32"], "dot")
            z = self.generic([(r, tt(n, T)), (dot, tt(n, T))], (self.empty(n, T), tt(n, T)), [ID2, ID2, ID2],
                             ["parallel", "parallel"], ["%r = arith.mulf %a1, %a0 : f32", "linalg.yield %r : f32"], "z")
        COLT = "affine_map<(d0, d1) -> (d1)>"
        DRED = ["reduction", "parallel"]
        zs = z
        if v["softmax"] == "max":
            ninf = e.tmp("ninf")
            e.emit(f"{ninf} = arith.constant -3.4e38 : f32")
            mx0 = e.tmp("mx0")
            e.emit(f"{mx0} = linalg.fill ins({ninf} : f32) outs({self.empty(T)} : {tt(T)}) -> {tt(T)}")
            m = self.generic([(z, tt(n, T))], (mx0, tt(T)), [ID2, COLT], DRED,
                             ["%r = arith.maximumf %a0, %acc : f32", "linalg.yield %r : f32"], "mx")
            ex = self.generic([(z, tt(n, T)), (m, tt(T))], (self.empty(n, T), tt(n, T)), [ID2, COLT, ID2],
                              ["parallel", "parallel"],
                              ["%d = arith.subf %a0, %a1 : f32", "%r = math.exp %d : f32", "linalg.yield %r : f32"], "ex")
        else:
            ex = self.generic([(z, tt(n, T))], (self.empty(n, T), tt(n, T)), [ID2, ID2], ["parallel", "parallel"],
                              ["%r = math.exp %a0 : f32", "linalg.yield %r : f32"], "ex")
        sm = self.generic([(ex, tt(n, T))], (self.zeros(T), tt(T)), [ID2, COLT], DRED,
                          ["%r = arith.addf %a0, %acc : f32", "linalg.yield %r : f32"], "sm")
        a = self.generic([(ex, tt(n, T)), (sm, tt(T))], (self.empty(n, T), tt(n, T)), [ID2, COLT, ID2],
                         ["parallel", "parallel"], ["%r = arith.divf %a0, %a1 : f32", "linalg.yield %r : f32"], "a")
        return self.generic([(a, tt(n, T)), (V, S)], (self.zeros(T, D), X), [R01, ID3, O12],
                            ["reduction", "parallel", "parallel"],
                            ["%m = arith.mulf %a0, %a1 : f32", "%r = arith.addf %acc, %m : f32",
                             "linalg.yield %r : f32"], "agg")

    def add(self, x, y, i):
        T, D = self.T, self.D
        style = self.add_style if self.add_style != "mixed" else ["generic", "named", "arith"][i % 3]
        a, b = (x, y) if i % 2 == 0 else (y, x)  # both operand orders
        v = self.e.tmp("h")
        out = self.empty(T, D)
        self.e.pending = getattr(self, "remark", None)
        if style == "generic":
            return self.generic([(a, tt(T, D)), (b, tt(T, D))], (out, tt(T, D)), [ID2] * 3,
                                ["parallel", "parallel"], ["%r = arith.addf %a0, %a1 : f32", "linalg.yield %r : f32"],
                                "h")
        if style == "named":
            self.e.emit(f"{v} = linalg.add ins({a}, {b} : {tt(T, D)}, {tt(T, D)}) outs({out} : {tt(T, D)}) -> {tt(T, D)}")
            return v
        self.e.emit(f"{v} = arith.addf {a}, {b} : {tt(T, D)}")
        return v


# ---------------------------------------------------------------------------
# TOSA form ([1, T, D] tensors)
# ---------------------------------------------------------------------------


class Tosa:
    def __init__(self, e, T, D, F, eps, add_style):
        self.e, self.T, self.D, self.F, self.eps = e, T, D, F, eps
        self.consts_done = False

    def consts(self):
        e = self.e
        e.emit('%shift = "tosa.const"() <{values = dense<0> : tensor<1xi8>}> : () -> tensor<1xi8>')
        e.emit(f'%zp = "tosa.const"() <{{values = dense<0.0> : tensor<1xf32>}}> : () -> tensor<1xf32>')
        e.emit(f'%invd = "tosa.const"() <{{values = dense<{1.0 / self.D:e}> : tensor<1x1x1xf32>}}> : () -> tensor<1x1x1xf32>')
        e.emit(f'%eps = "tosa.const"() <{{values = dense<{self.eps:e}> : tensor<1x1x1xf32>}}> : () -> tensor<1x1x1xf32>')
        e.emit(f'%scale = "tosa.const"() <{{values = dense<{1.0 / self.D ** 0.5:e}> : tensor<1x1x1xf32>}}> : () -> tensor<1x1x1xf32>')

    def op(self, text, ty, hint="t"):
        v = self.e.tmp(hint)
        self.e.emit(f"{v} = {text} : {ty}")
        return v

    def mul(self, a, ta, b, tb, tr):
        return self.op(f"tosa.mul {a}, {b}, %shift", f"({ta}, {tb}, tensor<1xi8>) -> {tr}", "mul")

    def _mean(self, x, name):
        """mean over D of x, [1, T, 1]."""
        X, R = tt(1, self.T, self.D), tt(1, self.T, 1)
        s = self.op(f"tosa.reduce_sum {x} {{axis = 2 : i32}}", f"({X}) -> {R}", name)
        return self.mul(s, R, "%invd", tt(1, 1, 1), R)

    def _scale_rms(self, x, g, name):
        """x * rsqrt(mean(x^2) + eps) * g (the sum of squares named `name`)."""
        X, R = tt(1, self.T, self.D), tt(1, self.T, 1)
        ms = self._mean(self.mul(x, X, x, X, X), name)
        a = self.op(f"tosa.add {ms}, %eps", f"({R}, {tt(1, 1, 1)}) -> {R}", "a")
        r = self.op(f"tosa.rsqrt {a}", f"({R}) -> {R}", "r")
        n = self.mul(x, X, r, R, X)
        return self.mul(n, X, g, tt(1, 1, self.D), X)

    def rmsnorm(self, x, g):
        return self._scale_rms(x, g, "ss")

    def layernorm(self, x, g):
        X, R = tt(1, self.T, self.D), tt(1, self.T, 1)
        m = self._mean(x, "s")
        xc = self.op(f"tosa.sub {x}, {m}", f"({X}, {R}) -> {X}", "xc")
        return self._scale_rms(xc, g, "vs")

    def matmul(self, a, b, M, K, N):
        return self.op(f"tosa.matmul {a}, {b}, %zp, %zp",
                       f"({tt(1, M, K)}, {tt(1, K, N)}, tensor<1xf32>, tensor<1xf32>) -> {tt(1, M, N)}", "mm")

    def attention(self, n, wq, wk, wv, wo):
        T, D = self.T, self.D
        q = self.matmul(n, wq, T, D, D)
        k = self.matmul(n, wk, T, D, D)
        v = self.matmul(n, wv, T, D, D)
        kt = self.op(f"tosa.transpose {k} {{perms = array<i32: 0, 2, 1>}}", f"({tt(1, T, D)}) -> {tt(1, D, T)}", "kt")
        s = self.matmul(q, kt, T, D, T)
        S, R = tt(1, T, T), tt(1, T, 1)
        s2 = self.mul(s, S, "%scale", tt(1, 1, 1), S)
        mx = self.op(f"tosa.reduce_max {s2} {{axis = 2 : i32}}", f"({S}) -> {R}", "mx")
        d = self.op(f"tosa.sub {s2}, {mx}", f"({S}, {R}) -> {S}", "d")
        ex = self.op(f"tosa.exp {d}", f"({S}) -> {S}", "ex")
        sm = self.op(f"tosa.reduce_sum {ex} {{axis = 2 : i32}}", f"({S}) -> {R}", "sm")
        rc = self.op(f"tosa.reciprocal {sm}", f"({R}) -> {R}", "rc")
        p = self.mul(ex, S, rc, R, S)
        o = self.matmul(p, v, T, T, D)
        return self.matmul(o, wo, T, D, D)

    def mlp(self, n, w1, w2):
        T, D, F = self.T, self.D, self.F
        u = self.matmul(n, w1, T, D, F)
        sg = self.op(f"tosa.sigmoid {u}", f"({tt(1, T, F)}) -> {tt(1, T, F)}", "sg")
        a = self.mul(u, tt(1, T, F), sg, tt(1, T, F), tt(1, T, F))
        return self.matmul(a, w2, T, F, D)

    def aggregate(self, srcs, w, g, v):
        T, D, n = self.T, self.D, len(srcs)
        S, X, Z = tt(n, T, D), tt(1, T, D), tt(n, T, 1)
        R = tt(1, T, 1)
        V = self.op(f"tosa.concat {', '.join(srcs)} {{axis = 0 : i32}}", f"({', '.join([X] * n)}) -> {S}", "st")
        sq = self.mul(V, S, V, S, S)
        ss = self.op(f"tosa.reduce_sum {sq} {{axis = 2 : i32}}", f"({S}) -> {Z}", "ss")
        ms = self.mul(ss, Z, "%invd", tt(1, 1, 1), Z)
        ad = self.op(f"tosa.add {ms}, %eps", f"({Z}, {tt(1, 1, 1)}) -> {Z}", "ad")
        r = self.op(f"tosa.rsqrt {ad}", f"({Z}) -> {Z}", "r")
        if v["order"] == "normfirst":
            kn = self.mul(V, S, r, Z, S)
            kg = self.mul(kn, S, g, tt(1, 1, D), S) if v["gain"] == "separate" else kn
            q = w
            if v["gain"] == "folded":
                q = self.mul(w, tt(1, 1, D), g, tt(1, 1, D), tt(1, 1, D))
            zz = self.mul(kg, S, q, tt(1, 1, D), S)
            z = self.op(f"tosa.reduce_sum {zz} {{axis = 2 : i32}}", f"({S}) -> {Z}", "z")
        else:
            q = self.mul(w, tt(1, 1, D), g, tt(1, 1, D), tt(1, 1, D)) if v["gain"] != "prefolded" else w
            vq = self.mul(q, tt(1, 1, D), V, S, S)
            dot = self.op(f"tosa.reduce_sum {vq} {{axis = 2 : i32}}", f"({S}) -> {Z}", "dot")
            z = self.mul(r, Z, dot, Z, Z)
        if v["softmax"] == "max":
            m = self.op(f"tosa.reduce_max {z} {{axis = 0 : i32}}", f"({Z}) -> {R}", "mx")
            d = self.op(f"tosa.sub {z}, {m}", f"({Z}, {R}) -> {Z}", "d")
        else:
            d = z
        ex = self.op(f"tosa.exp {d}", f"({Z}) -> {Z}", "ex")
        sm = self.op(f"tosa.reduce_sum {ex} {{axis = 0 : i32}}", f"({Z}) -> {R}", "sm")
        rc = self.op(f"tosa.reciprocal {sm}", f"({R}) -> {R}", "rc")
        a = self.mul(ex, Z, rc, R, Z)
        wv = self.mul(a, Z, V, S, S)
        return self.op(f"tosa.reduce_sum {wv} {{axis = 0 : i32}}", f"({S}) -> {X}", "agg")

    def add(self, x, y, i):
        X = tt(1, self.T, self.D)
        a, b = (x, y) if i % 2 == 0 else (y, x)
        self.e.pending = getattr(self, "remark", None)
        return self.op(f"tosa.add {a}, {b}", f"({X}, {X}) -> {X}", "h")


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def weight_types(kind, form, D, F):
    mat = (lambda a, b: tt(a, b)) if form == "linalg" else (lambda a, b: tt(1, a, b))
    vec = tt(D) if form == "linalg" else tt(1, 1, D)
    if kind == "attn":
        return [vec, mat(D, D), mat(D, D), mat(D, D), mat(D, D)]
    return [vec, mat(D, F), mat(F, D)]


def sublayer_body(B, kind, norm, h, ws):
    n = (B.rmsnorm if norm == "rms" else B.layernorm)(h, ws[0])
    return sublayer_core(B, kind, n, ws[1:])


def sublayer_core(B, kind, n, ws):
    """The sublayer after its norm: attention or MLP of the normalised input."""
    if kind == "attn":
        return B.attention(n, *ws)
    return B.mlp(n, *ws)


def opaque_callees(args, kinds, form, D, F, X):
    """(name, argument types, body builder) of the callees of --opaque."""
    out = []
    for kind in sorted(set(kinds)):
        wts = weight_types(kind, form, D, F)
        if args.opaque == "core":
            out.append((f"{kind}_core", [X] + wts[1:], lambda B, xs, kind=kind: sublayer_core(B, kind, xs[0], xs[1:])))
        else:
            out.append((f"{kind}_block", [X] + wts,
                        lambda B, xs, kind=kind: sublayer_body(B, kind, args.norm, xs[0], xs[1:])))
    if args.final == "opaque":
        gt = tt(D) if form == "linalg" else tt(1, 1, D)
        out.append(("final_norm", [X, gt],
                    lambda B, xs: (B.rmsnorm if args.norm == "rms" else B.layernorm)(xs[0], xs[1])))
    return out


def definitions(args, kinds, form, T, D, F, X):
    """--defs: a module that defines the --opaque callees (public functions),
    compiled separately and linked at execution time."""
    lines = []
    for name, types, body in opaque_callees(args, kinds, form, D, F, X):
        e = Emitter()
        B = (Linalg if form == "linalg" else Tosa)(e, T, D, F, args.eps, args.add)
        if form == "tosa":
            B.consts()
        xs = ["%x"] + [f"%p{j}" for j in range(len(types) - 1)]
        if T == "?":
            e.emit(f"%c0_i = arith.constant 0 : index")
            e.emit(f"%dT = tensor.dim %x, %c0_i : {X}")
        y = body(B, xs)
        sig = ", ".join(f"{x}: {t}" for x, t in zip(xs, types))
        lines.append(f"  func.func @{name}({sig}) -> {X} {{")
        lines.extend(e.lines)
        lines.append(f"    return {y} : {X}")
        lines.append("  }")
    return "module {\n" + "\n".join(lines) + "\n}\n"


def gen(args):
    T, D, F, L = args.tokens, args.dim, 2 * args.dim, args.layers
    form = args.form
    if args.dynamic:
        T = "?"
    X = tt(T, D) if form == "linalg" else tt(1, T, D)
    Cls = Linalg if form == "linalg" else Tosa
    out = []
    kinds = ["attn" if l % 2 == 0 else "mlp" for l in range(L)]
    if args.mlp_only:
        kinds = ["mlp"] * L
    # Parameters: function arguments.
    params = []  # (name, type)
    for l, k in enumerate(kinds):
        for j, t in enumerate(weight_types(k, form, D, F)):
            params.append((f"%w{l}_{j}", t))
    gfinal = ("%gf", tt(D) if form == "linalg" else tt(1, 1, D))
    if args.final not in ("none",):
        params.append(gfinal)
    vec = tt(D) if form == "linalg" else tt(1, 1, D)
    variant = {"stack": args.stack, "gain": args.gain, "order": args.order, "softmax": args.softmax}
    if args.attnres:
        for l in range(0 if args.first_aggregation else 1, L + 1):
            params.append((f"%q{l}", vec))
            if args.gain != "prefolded":
                params.append((f"%g{l}", vec))

    if args.agg_only:
        e = Emitter()
        B = Cls(e, T, D, F, args.eps, args.add)
        if form == "tosa":
            B.consts()
        vec = tt(D) if form == "linalg" else tt(1, 1, D)
        variant = {"stack": args.stack, "gain": args.gain, "order": args.order, "softmax": args.softmax}
        srcs = [f"%v{i}" for i in range(L)]
        if args.dynamic:
            e.emit("%c0_i = arith.constant 0 : index")
            e.emit(f"%dT = tensor.dim %v0, %c0_i : {X}")
        h = B.aggregate(srcs, "%q", "%g" if args.gain != "prefolded" else None, variant)
        sig = ", ".join([f"{v}: {X}" for v in srcs] + [f"%q: {vec}"] + ([f"%g: {vec}"] if args.gain != "prefolded" else []))
        lines = [f"  func.func @{args.name}({sig}) -> {X} {{"] + e.lines + [f"    return {h} : {X}", "  }"]
        if args.no_module:
            return "\n".join(x[2:] for x in lines) + "\n"
        return "module {\n" + "\n".join(lines) + "\n}\n"
    # Sublayer functions for the call form.
    if args.calls:
        for kind in sorted(set(kinds)):
            e = Emitter()
            B = Cls(e, T, D, F, args.eps, args.add)
            wts = weight_types(kind, form, D, F)
            if form == "tosa":
                B.consts()
            ws = [f"%p{j}" for j in range(len(wts))]
            if args.dynamic:
                e.emit("%c0_i = arith.constant 0 : index")
                e.emit(f"%dT = tensor.dim %x, %c0_i : {X}")
            y = sublayer_body(B, kind, args.norm, "%x", ws)
            sig = ", ".join([f"%x: {X}"] + [f"{w}: {t}" for w, t in zip(ws, wts)])
            out.append(f"  func.func private @{kind}_{args.norm}({sig}) -> {X} {{")
            out.extend(e.lines)
            out.append(f"    return {y} : {X}")
            out.append("  }")
            out.append("")

    if args.defs:
        return definitions(args, kinds, form, T, D, F, X)
    opaque = {}
    if args.opaque:
        for name, types, _ in opaque_callees(args, kinds, form, D, F, X):
            vouched = args.vouch and (args.opaque == "block" or name == "final_norm")
            attr = " attributes {attnres.scale_invariant}" if vouched else ""
            out.append(f"  func.func private @{name}({', '.join(types)}) -> {X}{attr}")
            opaque[name] = types
        out.append("")

    e = Emitter()
    B = Cls(e, T, D, F, args.eps, args.add)
    if form == "tosa":
        B.consts()
    if args.dynamic:
        e.emit("%c0_i = arith.constant 0 : index")
        e.emit(f"%dT = tensor.dim %x, %c0_i : {X}")
    h = "%x"
    outs = []
    outs_y = []
    for l, kind in enumerate(kinds):
        ws = [f"%w{l}_{j}" for j in range(len(weight_types(kind, form, D, F)))]
        e.lines.append(f"    // sublayer {l}: {kind}")
        if args.attnres and (l > 0 or args.first_aggregation):
            e.lines.append(f"    // AttnRes aggregation {l} in primitives")
            h = B.aggregate(["%x"] + outs_y, f"%q{l}", f"%g{l}" if args.gain != "prefolded" else None, variant)
        if args.opaque == "core":
            # The norm is visible; the rest of the sublayer is opaque.
            n = (B.rmsnorm if args.norm == "rms" else B.layernorm)(h, ws[0])
            y = e.tmp("y")
            types = opaque[f"{kind}_core"]
            e.emit(f"{y} = func.call @{kind}_core({', '.join([n] + ws[1:])}) : ({', '.join(types)}) -> {X}")
        elif args.opaque == "block":
            # The whole sublayer, norm included, is opaque.
            y = e.tmp("y")
            types = opaque[f"{kind}_block"]
            e.emit(f"{y} = func.call @{kind}_block({', '.join([h] + ws)}) : ({', '.join(types)}) -> {X}")
        elif args.calls:
            y = e.tmp("y")
            wts = weight_types(kind, form, D, F)
            e.emit(f"{y} = func.call @{kind}_{args.norm}({h}, {', '.join(ws)}) : ({X}, {', '.join(wts)}) -> {X}")
        else:
            y = sublayer_body(B, kind, args.norm, h, ws)
        outs_y.append(y)
        if args.attnres:
            continue
        B.remark = args.remark if l == 0 else None
        hn = B.add(h, y, l)
        if args.postnorm:
            hn = (B.rmsnorm if args.norm == "rms" else B.layernorm)(hn, ws[0])
        if args.side_effect_at is not None and l == args.side_effect_at:
            e.emit(f"func.call @observe({hn}) : ({X}) -> ()")
        if args.keep_at is not None and l == args.keep_at:
            outs.append(hn)
        h = hn
    e.lines.append("    // final")
    if args.attnres:
        e.lines.append("    // final AttnRes aggregation in primitives")
        h = B.aggregate(["%x"] + outs_y, f"%q{L}", f"%g{L}" if args.gain != "prefolded" else None, variant)
    if args.final == "rms":
        res = B.rmsnorm(h, gfinal[0])
    elif args.final == "layer":
        res = B.layernorm(h, gfinal[0])
    elif args.final == "opaque":
        res = e.tmp("fin")
        e.emit(f"{res} = func.call @final_norm({h}, {gfinal[0]}) : ({X}, {gfinal[1]}) -> {X}")
    elif args.final == "linear":
        # A non-scale-invariant consumer: a plain scaling by a vector.
        if form == "linalg":
            res = B.generic([(h, tt(T, D)), (gfinal[0], tt(D))], (B.empty(T, D), tt(T, D)), [ID2, COL2, ID2],
                            ["parallel", "parallel"], ["%r = arith.mulf %a0, %a1 : f32", "linalg.yield %r : f32"], "lin")
        else:
            res = B.mul(h, X, gfinal[0], tt(1, 1, D), X)
    else:
        res = h
    results = [res] + outs
    sig = ", ".join([f"%x: {X}"] + [f"{n}: {t}" for n, t in params])
    rtypes = ", ".join([X] * len(results))
    body = []
    if args.side_effect_at is not None:
        body.append(f"  func.func private @observe({X})")
    body.append(f"  func.func @{args.name}({sig}) -> ({rtypes}) {{")
    body.extend(e.lines)
    body.append(f"    return {', '.join(results)} : {rtypes}")
    body.append("  }")
    if args.main:
        body.extend(main_func(args, X, params, len(results)))
    if args.no_module:
        return "\n".join(x[2:] if x.startswith("  ") else x for x in out + body) + "\n"
    text = "module {\n" + "\n".join(out + body) + "\n}\n"
    return text


def init_tensor(e, name, shape, k, vector):
    """Deterministic pseudo-random non-zero data computed in the IR:
    amp * sin(a*i + b*j + c) (+1 for norm gains), from linalg.index."""
    rank = len(shape)
    dims = ", ".join(f"d{i}" for i in range(rank))
    m = f"affine_map<({dims}) -> ({dims})>"
    ty = tt(*shape)
    # Rank 3 (TOSA, leading 1): the last two dims play the roles of rank 2's.
    fan = shape[-2] if rank >= 2 else 1
    amp = 0.2 if vector else (1.5 / fan ** 0.5 if rank >= 2 else 1.0)
    off = 1.0 if vector else 0.0
    a, b, c = 0.37 + 0.013 * k, 1.13 + 0.007 * k, 0.29 * k + 0.1
    emp = e.tmp("e")
    e.emit(f"{emp} = tensor.empty() : {ty}")
    iters = ", ".join(['"parallel"'] * rank)
    e.emit(f"{name} = linalg.generic {{indexing_maps = [{m}], iterator_types = [{iters}]}} outs({emp} : {ty}) {{")
    e.emit("^bb0(%o: f32):")
    lines = []
    for i in range(rank):
        lines += [f"  %i{i} = linalg.index {i} : index", f"  %n{i} = arith.index_cast %i{i} : index to i64",
                  f"  %f{i} = arith.sitofp %n{i} : i64 to f32"]
    lines += [f"  %ca = arith.constant {a:e} : f32", f"  %cb = arith.constant {b:e} : f32",
              f"  %cc = arith.constant {c:e} : f32", f"  %amp = arith.constant {amp:e} : f32",
              f"  %off = arith.constant {off:e} : f32",
              f"  %t0 = arith.mulf %f{max(rank - 2, 0)}, %ca : f32"]
    if rank >= 2:
        lines += [f"  %t1 = arith.mulf %f{rank - 1}, %cb : f32", "  %t2 = arith.addf %t0, %t1 : f32"]
    else:
        lines += ["  %t2 = arith.addf %t0, %t0 : f32"]
    lines += ["  %t3 = arith.addf %t2, %cc : f32", "  %t4 = math.sin %t3 : f32", "  %t5 = arith.mulf %t4, %amp : f32",
              "  %t6 = arith.addf %t5, %off : f32", "  linalg.yield %t6 : f32"]
    for l in lines:
        e.emit(l)
    e.emit(f"}} -> {ty}")


def main_func(args, X, params, nres):
    """@main: builds the input and the weights, runs @forward, prints every
    result with printMemrefF32."""
    e = Emitter()
    T, D = args.tokens, args.dim
    shape = [1, T, D] if args.form == "tosa" else [T, D]
    if args.dynamic:
        init_tensor(e, "%in_s", shape, 0, False)
        e.emit(f"%in = tensor.cast %in_s : {tt(*shape)} to {X}")
    else:
        init_tensor(e, "%in", shape, 0, False)
    for k, (n, t) in enumerate(params):
        shape = [int(x) for x in t[len("tensor<"):-len("xf32>")].split("x")]
        init_tensor(e, "%in" + n[1:], shape, k + 1, all(x == 1 for x in shape[:-1]))
    args_s = ", ".join(["%in"] + ["%in" + n[1:] for n, _ in params])
    types_s = ", ".join([X] + [t for _, t in params])
    res = [f"%r{i}" for i in range(nres)]
    e.emit(f"{', '.join(res)} = func.call @{args.name}({args_s}) : ({types_s}) -> ({', '.join([X] * nres)})")
    for r in res:
        u = e.tmp("u")
        e.emit(f"{u} = tensor.cast {r} : {X} to tensor<*xf32>")
        e.emit(f"func.call @printMemrefF32({u}) : (tensor<*xf32>) -> ()")
    return (["", "  func.func private @printMemrefF32(tensor<*xf32>)", "  func.func @main() {"] + e.lines +
            ["    return", "  }"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--form", choices=["linalg", "tosa"], default="linalg")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--tokens", type=int, default=8)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--eps", type=float, default=None,
                   help="the models' norm epsilon (default: the compiler's key-norm "
                        "default, attnres.defaults; needs python/ on PYTHONPATH)")
    p.add_argument("--norm", choices=["rms", "layer"], default="rms")
    p.add_argument("--final", choices=["rms", "layer", "linear", "opaque", "none"], default="rms",
                   help="the final consumer; 'opaque': a call of the declaration @final_norm")
    p.add_argument("--add", choices=["generic", "named", "arith", "mixed"], default="generic")
    p.add_argument("--calls", action="store_true", help="sublayers behind func.call")
    p.add_argument("--opaque", choices=["core", "block"], default=None,
                   help="sublayers as calls of declarations without a body: 'core' after a visible norm, "
                        "'block' taking the residual stream (norm inside)")
    p.add_argument("--vouch", action="store_true",
                   help="mark the opaque block (and final_norm) declarations attnres.scale_invariant")
    p.add_argument("--defs", action="store_true", help="print only the module defining the --opaque callees")
    p.add_argument("--dynamic", action="store_true", help="dynamic token dim (linalg form)")
    p.add_argument("--postnorm", action="store_true")
    p.add_argument("--mlp-only", action="store_true")
    p.add_argument("--side-effect-at", type=int, default=None)
    p.add_argument("--keep-at", type=int, default=None, help="also return h_{l+1}")
    p.add_argument("--name", default="forward")
    p.add_argument("--remark", default=None, help="expected remark on the first residual add")
    p.add_argument("--no-module", action="store_true")
    p.add_argument("--main", action="store_true", help="add @main with deterministic random data")
    p.add_argument("--agg-only", action="store_true", help="one aggregation over --layers sources")
    p.add_argument("--attnres", action="store_true", help="Full AttnRes in primitives instead of residual adds")
    p.add_argument("--first-aggregation", action="store_true",
                   help="with --attnres: also write sublayer 0's aggregation (a softmax over the "
                        "embedding alone) in primitives")
    p.add_argument("--stack", choices=["insert", "concat"], default="insert")
    p.add_argument("--gain", choices=["separate", "folded", "prefolded"], default="separate")
    p.add_argument("--order", choices=["normfirst", "dotfirst"], default="normfirst")
    p.add_argument("--softmax", choices=["max", "nomax"], default="max")
    args = p.parse_args()
    if args.eps is None:
        from attnres import defaults

        args.eps = defaults.epsilon()
    sys.stdout.write(gen(args))


if __name__ == "__main__":
    main()
