"""Writing AttnRes IR from a model description (no MLIR by hand).

The function is written in Full AttnRes (sublayer ``l`` attends over
``[v_0, y_0 .. y_{l-1}]``, a final aggregation reads every source) through
attnres.irbuilder; for a block size S > 1 the compiler's
``attnres-blockify`` turns it into Block AttnRes (docs/block-form.md), so the
block structure is decided in one place, the compiler.
"""

from typing import List, Optional, Sequence, Union

from . import irbuilder as ir
from .defaults import resolve_blocking, resolve_epsilon

__all__ = ["build_model"]

_DTYPES = {"f32": "f32", "float32": "f32", "f16": "f16", "float16": "f16",
           "bf16": "bf16", "bfloat16": "bf16"}
_SUBLAYERS = ("call", "linear")


def _dtype_name(dtype) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("torch.", "")
    if name not in _DTYPES:
        raise ValueError("dtype must be one of f32, f16, bf16 (or the torch "
                         "names), got %r" % (dtype,))
    return _DTYPES[name]


def build_model(num_sublayers: int, block_size: Optional[int] = None, d: int = 64,
                dtype: str = "f32", tokens: Union[int, Sequence[int]] = 16, *,
                sublayer: str = "call", epsilon: Optional[float] = None,
                final_aggregate: bool = True,
                func_name: str = "forward", num_blocks: Optional[int] = None) -> str:
    """Returns the MLIR text of one AttnRes network as a ``func.func``.

    Args:
      num_sublayers: L, the number of sublayers (2 per transformer block).
      block_size: S, sublayers per block. 1 gives Full AttnRes; S > 1 gives
        Block AttnRes with ``attnres.block_sum`` summaries and partial sums (the
        last block is shorter when S does not divide L). None: the compiler's
        default (attnres.defaults.blocking(); not asked for, so Full unless
        ``num_blocks`` asks).
      num_blocks: N, the number of blocks instead of S (the compiler resolves
        S from L and N, ``attnres-blockify``); None: the compiler's default.
      d: D, the hidden size.
      dtype: storage type ``f32``, ``f16`` or ``bf16`` (torch dtypes accepted).
      tokens: the token dimensions, an int T or a tuple such as (B, T); every
        source is ``tensor<tokens x D x dtype>``. ``None`` is a dynamic
        dimension (``?``).
      sublayer: ``"call"``: sublayer ``l`` is ``func.call @sublayer_<l>`` of a
        private declaration (a placeholder for attention or MLP);
        ``"linear"``: sublayer ``l`` is ``linalg.matmul`` of its input with
        ``weights[l]`` (needs a 1-D ``tokens``).
      epsilon: the key-norm epsilon of every aggregation; None: the
        compiler's default (:func:`attnres.defaults.epsilon`).
      final_aggregate: emit the final aggregation over all sources (the
        function then returns it, else it returns the last sublayer output).
      func_name: name of the emitted function.

    The function's arguments are the embedding ``%emb`` (``v_0``/``b_0``),
    the stacked pseudo-queries ``%queries`` and key-norm gains ``%gains``
    (``tensor<(L+1) x D>``, row ``l`` for sublayer ``l``, row ``L`` for the
    final aggregation) and, for ``"linear"``, ``%weights``
    (``tensor<L x D x D>``).
    """
    if not isinstance(num_sublayers, int) or num_sublayers < 1:
        raise ValueError("num_sublayers must be a positive int, got %r" % (num_sublayers,))
    for name, v in (("block_size", block_size), ("num_blocks", num_blocks)):
        if v is not None and not isinstance(v, int):
            raise ValueError("%s must be an int or None, got %r" % (name, v))
    if not isinstance(d, int) or d < 1:
        raise ValueError("d must be a positive int, got %r" % (d,))
    if sublayer not in _SUBLAYERS:
        raise ValueError("sublayer must be one of %s, got %r" % (_SUBLAYERS, sublayer))
    epsilon = resolve_epsilon(epsilon)
    if not (epsilon >= 0.0 and epsilon != float("inf")):
        raise ValueError("epsilon must be finite and non-negative, got %r" % (epsilon,))
    tok = [tokens] if isinstance(tokens, int) or tokens is None else list(tokens)
    if not tok or any(t is not None and (not isinstance(t, int) or t < 1) for t in tok):
        raise ValueError("tokens must be a positive int or None (dynamic), or a "
                         "tuple of them, got %r" % (tokens,))
    if sublayer == "linear" and (len(tok) != 1 or tok[0] is None):
        raise ValueError("sublayer='linear' needs a static 1-D tokens (T), got %r" % (tokens,))
    if not func_name.replace("_", "a").isalnum():
        raise ValueError("func_name must be an identifier, got %r" % (func_name,))

    L, E = num_sublayers, _dtype_name(dtype)
    src_t = ir.tensor_type(tok + [d], E)
    vec_t = ir.tensor_type([d], E)
    stack_t = ir.tensor_type([L + 1, d], E)
    w_t = ir.tensor_type([L, d, d], E)
    mat_t = ir.tensor_type([d, d], E)

    funcs = []
    if sublayer == "call":
        for l in range(L):
            funcs.append("  func.func private @sublayer_%d(%s) -> %s" % (l, src_t, src_t))
    args = [("%emb", src_t), ("%queries", stack_t), ("%gains", stack_t)]
    if sublayer == "linear":
        args.append(("%weights", w_t))
    body: List[str] = []
    emit = body.append
    if sublayer == "linear":
        emit("    %%zero = arith.constant 0.000000e+00 : %s" % E)

    def aggregate(name: str, row: int, sources: List[str]) -> None:
        for v, stack in (("q", "%queries"), ("g", "%gains")):
            emit("    %%%s%s = tensor.extract_slice %s[%d, 0] [1, %d] [1, 1] : %s to %s"
                 % (v, name, stack, row, d, stack_t, vec_t))
        emit(ir.aggregate("%%h%s" % name, "%%q%s" % name, "%%g%s" % name, sources, epsilon,
                          src_t))

    def apply_sublayer(l: int) -> str:
        y = "%%y%d" % l
        if sublayer == "call":
            emit("    %s = func.call @sublayer_%d(%%h%d) : (%s) -> %s" % (y, l, l, src_t, src_t))
        else:
            emit("    %%w%d = tensor.extract_slice %%weights[%d, 0, 0] [1, %d, %d] [1, 1, 1] : %s to %s"
                 % (l, l, d, d, w_t, mat_t))
            emit("    %%e%d = tensor.empty() : %s" % (l, src_t))
            emit("    %%z%d = linalg.fill ins(%%zero : %s) outs(%%e%d : %s) -> %s"
                 % (l, E, l, src_t, src_t))
            emit("    %s = linalg.matmul ins(%%h%d, %%w%d : %s, %s) outs(%%z%d : %s) -> %s"
                 % (y, l, l, src_t, mat_t, l, src_t, src_t))
        return y

    # Full AttnRes: sublayer l reads [v_0, y_0 .. y_{l-1}]; the final
    # aggregation reads every source.
    sources = ["%emb"]
    for l in range(L):
        aggregate(str(l), l, sources)
        sources.append(apply_sublayer(l))
    if final_aggregate:
        aggregate("final", L, sources)
    result = "%hfinal" if final_aggregate else "%%y%d" % (L - 1)
    funcs.append(ir.func(func_name, args, [(result, src_t)], body))
    text = ir.module(funcs)
    options = "" if block_size == 1 else resolve_blocking(block_size, num_blocks)
    if not options:
        return text
    # Block AttnRes: the compiler's block form (attnres-blockify resolves and
    # checks S and N; semantics section 3).
    from .compiler import compile

    return compile(text, "attnres-blockify{%s}" % options)
