"""Writing AttnRes IR from a model description (no MLIR by hand).

The emitted function follows docs/block-form.md and the attnres-blockify
contract: sublayer ``l`` attends over ``[v_0, y_0 .. y_{l-1}]`` (Full AttnRes)
or over the completed block summaries and its block's partial sum (Block
AttnRes, block size S > 1), and a final aggregation reads every source.
"""

from typing import List, Sequence, Union

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


def _float_literal(x: float) -> str:
    return "%.9e" % float(x)


def build_model(num_sublayers: int, block_size: int = 1, d: int = 64,
                dtype: str = "f32", tokens: Union[int, Sequence[int]] = 16, *,
                sublayer: str = "call", epsilon: float = 1e-6,
                final_aggregate: bool = True,
                func_name: str = "forward") -> str:
    """Returns the MLIR text of one AttnRes network as a ``func.func``.

    Args:
      num_sublayers: L, the number of sublayers (2 per transformer block).
      block_size: S, sublayers per block. 1 gives Full AttnRes; S > 1 gives
        Block AttnRes with ``attnres.block_sum`` summaries and partial sums (the
        last block is shorter when S does not divide L).
      d: D, the hidden size.
      dtype: storage type ``f32``, ``f16`` or ``bf16`` (torch dtypes accepted).
      tokens: the token dimensions, an int T or a tuple such as (B, T); every
        source is ``tensor<tokens x D x dtype>``. ``None`` is a dynamic
        dimension (``?``).
      sublayer: ``"call"``: sublayer ``l`` is ``func.call @sublayer_<l>`` of a
        private declaration (a placeholder for attention or MLP);
        ``"linear"``: sublayer ``l`` is ``linalg.matmul`` of its input with
        ``weights[l]`` (needs a 1-D ``tokens``).
      epsilon: the key-norm epsilon of every aggregation.
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
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError("block_size must be a positive int, got %r" % (block_size,))
    if not isinstance(d, int) or d < 1:
        raise ValueError("d must be a positive int, got %r" % (d,))
    if sublayer not in _SUBLAYERS:
        raise ValueError("sublayer must be one of %s, got %r" % (_SUBLAYERS, sublayer))
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

    L, S, E = num_sublayers, block_size, _dtype_name(dtype)
    src_t = "tensor<%sx%dx%s>" % ("x".join("?" if t is None else str(t) for t in tok), d, E)
    vec_t = "tensor<%dx%s>" % (d, E)
    stack_t = "tensor<%dx%dx%s>" % (L + 1, d, E)
    w_t = "tensor<%dx%dx%dx%s>" % (L, d, d, E)
    mat_t = "tensor<%dx%dx%s>" % (d, d, E)
    eps = _float_literal(epsilon)

    out: List[str] = []
    emit = out.append
    emit("module {")
    if sublayer == "call":
        for l in range(L):
            emit("  func.func private @sublayer_%d(%s) -> %s" % (l, src_t, src_t))
    args = ["%%emb: %s" % src_t, "%%queries: %s" % stack_t, "%%gains: %s" % stack_t]
    if sublayer == "linear":
        args.append("%%weights: %s" % w_t)
    emit("  func.func @%s(%s) -> %s {" % (func_name, ", ".join(args), src_t))
    if sublayer == "linear":
        emit("    %%zero = arith.constant 0.000000e+00 : %s" % E)

    def aggregate(name: str, row: int, sources: List[str]) -> None:
        emit("    %%q%s = tensor.extract_slice %%queries[%d, 0] [1, %d] [1, 1] : %s to %s"
             % (name, row, d, stack_t, vec_t))
        emit("    %%g%s = tensor.extract_slice %%gains[%d, 0] [1, %d] [1, 1] : %s to %s"
             % (name, row, d, stack_t, vec_t))
        emit("    %%h%s = attnres.aggregate %%q%s, %%g%s over %s {epsilon = %s : f32} : %s"
             % (name, name, name, ", ".join(sources), eps, src_t))

    def block_sum(result: str, inputs: List[str]) -> None:
        emit("    %s = attnres.block_sum %s : %s" % (result, ", ".join(inputs), src_t))

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

    if S == 1:
        # Full AttnRes: sublayer l reads [v_0, y_0 .. y_{l-1}].
        sources = ["%emb"]
        for l in range(L):
            aggregate(str(l), l, sources)
            sources.append(apply_sublayer(l))
        final_sources = sources
    else:
        # Block AttnRes (semantics section 3): summaries [b_0 .. b_{n-1}] and
        # the partial sum b_n^i (i >= 1) of the current block.
        summaries = ["%emb"]
        partial = None
        n = 1
        for l in range(L):
            i = l % S
            aggregate(str(l), l, summaries + ([partial] if i >= 1 else []))
            y = apply_sublayer(l)
            last_in_block = i == S - 1 or l == L - 1
            if i == 0:
                new_partial = y  # b_n^1 = y_0
            else:
                new_partial = ("%%b%d" % n) if last_in_block else ("%%p%d_%d" % (n, i + 1))
                block_sum(new_partial, [partial, y])
            partial = new_partial
            if last_in_block:
                summaries.append(partial)
                partial = None
                n += 1
        final_sources = summaries

    if final_aggregate:
        aggregate("final", L, final_sources)
        emit("    return %%hfinal : %s" % src_t)
    else:
        emit("    return %%y%d : %s" % (L - 1, src_t))
    emit("  }")
    emit("}")
    return "\n".join(out) + "\n"
