"""The one builder of attnres MLIR text in the package.

Types, dense literals, the attnres ops (``aggregate``, ``block_sum``,
``inv_rms``, ``block_score``, ``merge`` with and without the fused RMSNorm,
and the training ops ``aggregate_stats`` and ``aggregate_grad``),
``linalg.generic``, the kernel functions of one op (what kernel packs and
the benchmarks compile), a ``@main`` that prints a result, and the reading
of what ``mlir-runner`` printed. The model builder (attnres.model), kernel
packs, the CPU runner, the benchmarks and the test generators under utils/
write their IR through these functions: the syntax of each op is spelled
here once.
"""

import math
import re
import struct

__all__ = [
    "NONFINITE_HEX", "aggregate", "aggregate_grad", "aggregate_stats", "block_score",
    "block_sum", "dense", "eps_literal",
    "func", "generic", "inv_rms", "kernel_aggregate", "kernel_block_score", "kernel_merge",
    "module", "merge", "nested", "number", "print_and_return", "printed_values",
    "tensor_type",
]

# Bit patterns of NaN, +Inf and -Inf: MLIR's float literals cannot spell them.
NONFINITE_HEX = {"f32": ("0x7FC00000", "0x7F800000", "0xFF800000"),
                 "f16": ("0x7E00", "0x7C00", "0xFC00"),
                 "bf16": ("0x7FC0", "0x7F80", "0xFF80")}


def tensor_type(shape, elt):
    """``tensor<AxBxE>``; a None or "?" dimension is dynamic."""
    dims = ["?" if s is None else str(s) for s in shape]
    return "tensor<%s>" % "x".join(dims + [elt])


def eps_literal(x):
    """An epsilon attribute's value, rounded to f32 as the attribute stores it
    (a string is taken as the literal itself; None is the compiler's default,
    attnres.defaults.epsilon())."""
    if isinstance(x, str):
        return x
    if x is None:
        from .defaults import epsilon

        x = epsilon()
    return "%.9e" % struct.unpack("f", struct.pack("f", float(x)))[0]


def number(x, dtype):
    """One element of a dense literal: %.9e, or the bit pattern of NaN/Inf."""
    if math.isnan(x):
        return NONFINITE_HEX[dtype][0]
    if math.isinf(x):
        return NONFINITE_HEX[dtype][1] if x > 0 else NONFINITE_HEX[dtype][2]
    if dtype.startswith("i") or dtype == "index":
        return str(int(x))
    return "%.9e" % float(x)


def nested(a, dtype):
    """The nested-bracket body of a dense literal of the array `a`."""
    if a.ndim == 1:
        return "[" + ", ".join(number(x, dtype) for x in a) + "]"
    return "[" + ", ".join(nested(x, dtype) for x in a) + "]"


def dense(a, dtype):
    """`dense<...> : tensor<...>` holding the array `a` in element type
    `dtype` (the values must be representable in it)."""
    import numpy as np

    a = np.asarray(a)
    return "dense<%s> : %s" % (nested(a, dtype), tensor_type(a.shape, dtype))


def _attrs(eps, norm_eps=None):
    s = "epsilon = %s : f32" % eps_literal(eps)
    if norm_eps is not None:
        s += ", norm_epsilon = %s : f32" % eps_literal(norm_eps)
    return "{%s}" % s


# --- attnres ops (one line each, indented by `indent`) ----------------------------------

def aggregate(result, query, gain, sources, eps, src_type, indent="    "):
    return "%s%s = attnres.aggregate %s, %s over %s %s : %s" % (
        indent, result, query, gain, ", ".join(sources), _attrs(eps), src_type)


def block_sum(result, inputs, src_type, indent="    "):
    return "%s%s = attnres.block_sum %s : %s" % (indent, result, ", ".join(inputs), src_type)


def inv_rms(result, source, eps, src_type, out_type, indent="    "):
    return "%s%s = attnres.inv_rms %s %s : %s -> %s" % (
        indent, result, source, _attrs(eps), src_type, out_type)


def block_score(results, queries, gains, sources, inits, eps, src_type, out_type,
                inv_rms_values=None, indent="    "):
    """`results` and `inits` are (out, lse) names; `inv_rms_values` the
    optional precomputed inverse RMS of each source."""
    inv = (" inv_rms %s" % ", ".join(inv_rms_values)) if inv_rms_values else ""
    return "%s%s, %s = attnres.block_score %s, %s over %s%s outs %s, %s %s : %s -> %s" % (
        indent, results[0], results[1], queries, gains, ", ".join(sources), inv, inits[0],
        inits[1], _attrs(eps), src_type, out_type)


def merge(results, out, lse, query, gain, update, partial, eps, src_type, norm_gain=None,
          norm_eps=None, indent="    "):
    """attnres.merge; with `norm_gain` the fused RMSNorm (three results:
    h, p', hn), else two (h, p')."""
    operands = "%s, %s, %s, %s update %s" % (out, lse, query, gain, update)
    if partial is not None:
        operands += " partial %s" % partial
    if norm_gain is not None:
        operands += " norm %s" % norm_gain
    return "%s%s = attnres.merge %s %s : %s" % (
        indent, ", ".join(results), operands,
        _attrs(eps, norm_eps if norm_gain is not None else None), src_type)


def aggregate_stats(results, query, gain, sources, eps, src_type, indent="    "):
    """attnres.aggregate_stats: `results` are the names of h, lse and the
    inverse RMS of the sources as the caller writes them (``%r:3`` for a
    group of three, ``%r`` for one)."""
    return "%s%s = attnres.aggregate_stats %s, %s over %s %s : %s" % (
        indent, ", ".join(results), query, gain, ", ".join(sources), _attrs(eps), src_type)


def aggregate_grad(results, query, gain, sources, lse, inv_rms_values, grad, eps, src_type,
                   accumulate=None, indent="    "):
    """attnres.aggregate_grad: `results` are the names of dv (a group, as
    ``%dv:3``), dquery and dgain; `lse` and `inv_rms_values` what
    aggregate_stats returned, `grad` dh; `accumulate` the optional
    accumulators of dv (the in-place form)."""
    acc = (" accumulate " + ", ".join(accumulate)) if accumulate else ""
    return "%s%s = attnres.aggregate_grad %s, %s over %s stats %s, %s grad %s%s %s : %s" % (
        indent, ", ".join(results), query, gain, ", ".join(sources), lse,
        ", ".join(inv_rms_values), grad, acc, _attrs(eps), src_type)


# --- functions and modules --------------------------------------------------------------

def func(name, args, results, body, private=False):
    """A func.func: `args` is [(name, type)], `results` [(value, type)] (the
    return), `body` the lines before the return."""
    head = "  func.func %s@%s(%s) -> %s {" % (
        "private " if private else "", name,
        ", ".join("%s: %s" % a for a in args), _result_types([t for _, t in results]))
    ret = "    return %s : %s" % (", ".join(v for v, _ in results),
                                  ", ".join(t for _, t in results))
    return "\n".join([head] + list(body) + [ret, "  }"])


def _result_types(types):
    return types[0] if len(types) == 1 else "(%s)" % ", ".join(types)


def module(funcs):
    return "module {\n" + "\n\n".join(funcs) + "\n}\n"


def _token_dims(src, rank, body):
    """`tensor.dim` of the `rank` token dimensions of `src` (dynamic)."""
    dims = []
    for i in range(rank):
        body.append("    %%c%d = arith.constant %d : index" % (i, i))
        body.append("    %%t%d = tensor.dim %%b0, %%c%d : %s" % (i, i, src))
        dims.append("%%t%d" % i)
    return ", ".join(dims)


def kernel_aggregate(name, dtype, d, n, eps, tokens=("?",)):
    """One function computing attnres.aggregate over n sources [tokens x d]."""
    src, vec = tensor_type(list(tokens) + [d], dtype), tensor_type([d], dtype)
    args = [("%w", vec), ("%g", vec)] + [("%%v%d" % i, src) for i in range(n)]
    body = [aggregate("%h", "%w", "%g", ["%%v%d" % i for i in range(n)], eps, src)]
    return func(name, args, [("%h", src)], body)


def kernel_aggregate_stats(name, dtype, d, n, eps):
    """The training forward of an aggregation over n sources [? x d]:
    returns (h, lse [?] f32, the inverse RMS of each source [?] f32)."""
    src, vec, tok = tensor_type(["?", d], dtype), tensor_type([d], dtype), tensor_type(["?"], "f32")
    args = [("%w", vec), ("%g", vec)] + [("%%v%d" % i, src) for i in range(n)]
    body = [aggregate_stats(["%h", "%lse", "%%r:%d" % n], "%w", "%g",
                            ["%%v%d" % i for i in range(n)], eps, src)]
    return func(name, args, [("%h", src), ("%lse", tok)] + [("%%r#%d" % i, tok) for i in range(n)],
                body)


def kernel_aggregate_grad(name, dtype, d, n, eps):
    """The backward of an aggregation over n sources [? x d] from the
    statistics of kernel_aggregate_stats and dh: returns (dv_0 .. dv_n-1,
    dquery [d] f32, dgain [d] f32)."""
    src, vec, tok = tensor_type(["?", d], dtype), tensor_type([d], dtype), tensor_type(["?"], "f32")
    par = tensor_type([d], "f32")
    args = ([("%w", vec), ("%g", vec)] + [("%%v%d" % i, src) for i in range(n)]
            + [("%lse", tok)] + [("%%r%d" % i, tok) for i in range(n)] + [("%dh", src)])
    body = [aggregate_grad(["%%dv:%d" % n, "%dq", "%dg"], "%w", "%g",
                           ["%%v%d" % i for i in range(n)], "%lse",
                           ["%%r%d" % i for i in range(n)], "%dh", eps, src)]
    return func(name, args,
                [("%%dv#%d" % i, src) for i in range(n)] + [("%dq", par), ("%dg", par)], body)


def kernel_block_score_grad(name, dtype, d, s, n, eps, accumulate=False):
    """The backward of phase 1 (attnres.block_score_grad) of s queries over n
    summaries [? x d]: (W, G, b_0 .. b_n-1, lse [s x ?] f32, the inverse RMS
    of each summary [?] f32, dout [s x ? x d], dlse [s x ?] f32, [acc_0 ..
    acc_n-1]) -> (db_0 .. db_n-1, dW [s x d] f32, dG [s x d] f32)."""
    src, q = tensor_type(["?", d], dtype), tensor_type([s, d], dtype)
    tok, stok = tensor_type(["?"], "f32"), tensor_type([s, "?"], "f32")
    dout, par = tensor_type([s, "?", d], dtype), tensor_type([s, d], "f32")
    names = ["%%b%d" % i for i in range(n)]
    rs = ["%%r%d" % i for i in range(n)]
    accs = ["%%a%d" % i for i in range(n)] if accumulate else []
    args = ([("%wq", q), ("%gq", q)] + [(b, src) for b in names] + [("%lse", stok)]
            + [(r, tok) for r in rs] + [("%dout", dout), ("%dlse", stok)] + [(a, src) for a in accs])
    acc = (" accumulate " + ", ".join(accs)) if accs else ""
    body = ["    %%db:%d, %%dW, %%dG = attnres.block_score_grad %%wq, %%gq over %s stats %%lse, %s "
            "grad %%dout, %%dlse%s %s : %s -> %s" % (n, ", ".join(names), ", ".join(rs), acc,
                                                  _attrs(eps), src, dout)]
    return func(name, args,
                [("%%db#%d" % i, src) for i in range(n)] + [("%dW", par), ("%dG", par)], body)


def kernel_merge_grad(name, dtype, d, partial, eps, norm_eps=None, zero_dh=False):
    """The backward of phase 2 on [? x d] (attnres.merge_grad): (o, lse, w,
    g, u, [p], [gn], dh, dp_new, [dhn]) -> (dout, dlse [?] f32, dquery [d]
    f32, dgain [d] f32, dupdate (also the partial's gradient), [dnorm_gain
    [d] f32]); with `norm_eps` the fused RMSNorm's backward too. With
    `zero_dh` the function has no dh argument: dh is a zero fill (h has no
    other user, as in torch_ops.merge_norm), which the GPU kernel does not
    read (convert-attnres-to-gpu's known-zero grad)."""
    x, vec = tensor_type(["?", d], dtype), tensor_type([d], dtype)
    tok, par = tensor_type(["?"], "f32"), tensor_type([d], "f32")
    norm = norm_eps is not None
    args = [("%o", x), ("%lse", tok), ("%w", vec), ("%g", vec), ("%u", x)]
    operands = "%o, %lse, %w, %g update %u"
    if partial:
        args.append(("%p", x))
        operands += " partial %p"
    if norm:
        args.append(("%gn", vec))
        operands += " norm %gn"
    body = []
    if zero_dh:
        body += ["    %c0 = arith.constant 0 : index",
                 "    %t0 = tensor.dim %u, %c0 : " + x,
                 "    %e0 = tensor.empty(%t0) : " + x,
                 "    %z0 = arith.constant 0.0 : " + dtype,
                 "    %%dh = linalg.fill ins(%%z0 : %s) outs(%%e0 : %s) -> %s" % (dtype, x, x)]
    else:
        args.append(("%dh", x))
    args += [("%dpn", x)] + ([("%dhn", x)] if norm else [])
    operands += " grad %dh, %dpn" + (", %dhn" if norm else "")
    results = [("%do", x), ("%dl", tok), ("%dq", par), ("%dg", par), ("%dp", x)]
    if norm:
        results.append(("%dgn", par))
    body.append("    %s = attnres.merge_grad %s %s : %s" % (
        ", ".join(v for v, _ in results), operands, _attrs(eps, norm_eps), x))
    return func(name, args, results, body)


def kernel_block_score(name, dtype, d, s, n, eps, tokens=("?",)):
    """Phase 1 of s queries over n summaries: returns (out, lse)."""
    tokens = list(tokens)
    src, q = tensor_type(tokens + [d], dtype), tensor_type([s, d], dtype)
    out, lse = tensor_type([s] + tokens + [d], dtype), tensor_type([s] + tokens, "f32")
    args = [("%wq", q), ("%gq", q)] + [("%%b%d" % i, src) for i in range(n)]
    body = []
    dyn = _token_dims(src, sum(1 for t in tokens if t in ("?", None)), body)
    body.append("    %%o0 = tensor.empty(%s) : %s" % (dyn, out))
    body.append("    %%l0 = tensor.empty(%s) : %s" % (dyn, lse))
    body.append(block_score(("%o", "%lse"), "%wq", "%gq", ["%%b%d" % i for i in range(n)],
                            ("%o0", "%l0"), eps, src, out))
    return func(name, args, [("%o", out), ("%lse", lse)], body)


def kernel_merge(name, dtype, d, partial, eps, norm_eps=None, return_h=None):
    """Phase 2 on [? x d]: (o, lse, w, g, u, [p], [gn]) -> (h, p'); with
    `norm_eps` the fused RMSNorm, returning (hn, p') (and h first when
    `return_h`: the kernel then stores it too). Without a partial sum p' is
    the update itself (spec E.1): it is not returned (a returned p' would be
    copied into its out-parameter), the caller keeps the update."""
    x, vec, lse = tensor_type(["?", d], dtype), tensor_type([d], dtype), tensor_type(["?"], "f32")
    args = [("%o", x), ("%lse", lse), ("%w", vec), ("%g", vec), ("%u", x)]
    if partial:
        args.append(("%p", x))
    norm = norm_eps is not None
    if norm:
        args.append(("%gn", vec))
    results = ["%h", "%p2"] + (["%hn"] if norm else [])
    body = [merge(results, "%o", "%lse", "%w", "%g", "%u", "%p" if partial else None, eps, x,
                  "%gn" if norm else None, norm_eps)]
    if not norm:
        returned = ["%h", "%p2"]
    else:
        returned = ["%h", "%p2", "%hn"] if return_h else ["%hn", "%p2"]
    if not partial:
        returned.remove("%p2")
    return func(name, args, [(v, x) for v in returned], body)


# --- linalg and printing ------------------------------------------------------------------

def generic(ins, outs, maps, iters, args, body, result):
    """One linalg.generic: `ins` is [(value, type)], `outs` and `result` are
    (value, type), `maps` are affine_map bodies, `args` the block arguments
    and `body` the lines of the region."""
    return ("  %s = linalg.generic {indexing_maps = [%s], iterator_types = [%s]} "
            "ins(%s : %s) outs(%s : %s) {\n  ^bb0(%s):\n%s\n  } -> %s" % (
                result[0], ", ".join("affine_map<%s>" % m for m in maps),
                ", ".join('"%s"' % i for i in iters),
                ", ".join(v for v, _ in ins), ", ".join(t for _, t in ins),
                outs[0], outs[1], args,
                "\n".join("    " + line for line in body), result[1]))


def print_and_return(value, shape, dtype):
    """The last lines of @main: print the tensor `value` of `shape` x `dtype`
    with printMemrefF32 (widened to f32 first unless it is f32), return."""
    ty = tensor_type(shape, dtype)
    lines = []
    if dtype != "f32":
        ty32 = tensor_type(shape, "f32")
        dims = ", ".join("d%d" % i for i in range(len(shape)))
        ident = "(%s) -> (%s)" % (dims, dims)
        lines.append("  %%print_init = tensor.empty() : %s" % ty32)
        lines.append(generic([(value, ty)], ("%print_init", ty32),
                             [ident, ident], ["parallel"] * len(shape),
                             "%%a: %s, %%o: f32" % dtype,
                             ["%%x = arith.extf %%a : %s to f32" % dtype,
                              "linalg.yield %x : f32"],
                             ("%print_f32", ty32)))
        value, ty = "%print_f32", ty32
    lines.append("  %%u = tensor.cast %s : %s to tensor<*xf32>" % (value, ty))
    lines.append("  func.call @printMemrefF32(%u) : (tensor<*xf32>) -> ()")
    lines.append("  return")
    lines.append("}")
    return lines


def printed_values(text):
    """The numbers printMemrefF32 printed (after its `data =`), as float64,
    nan and +-inf included; None when `text` holds no printed memref."""
    import numpy as np

    idx = text.find("data =")
    if idx < 0:
        return None
    nums = re.findall(r"-?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)",
                      text[idx + 6:])
    return np.array([float(x) for x in nums], dtype=np.float64)
