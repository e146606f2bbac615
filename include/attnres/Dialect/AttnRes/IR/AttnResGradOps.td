//===- AttnResGradOps.td - AttnRes gradient operations -----*- tablegen -*-===//
//
// Part of the attnres project. The training ops: forward variants that save
// the per-token statistics a backward needs, and the backward ops. Their
// semantics and numbered constraints are in docs/spec.md section I; the
// verifiers cite them as (Cn). Included by AttnResOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_IR_ATTNRESGRADOPS_TD
#define ATTNRES_DIALECT_ATTNRES_IR_ATTNRESGRADOPS_TD

//===----------------------------------------------------------------------===//
// AggregateStatsOp
//===----------------------------------------------------------------------===//

def AttnRes_AggregateStatsOp : AttnRes_Op<"aggregate_stats", [Pure,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>]> {
  let summary = "aggregate that also returns the statistics its backward "
                "needs";
  let description = [{
    The forward of `attnres.aggregate` for training (spec section I.1): the
    result `h` is exactly `attnres.aggregate`'s, and the op also returns,
    for every token `p`, the log-sum-exp of the logits and the inverse RMS of
    every source, in f32:

    ```
    r_i[p] = 1 / sqrt(mean_d v_i[p, d]^2 + epsilon)
    z_i[p] = r_i[p] * sum_d query[d] * norm_weight[d] * v_i[p, d]
    lse[p] = max_i z_i + log(sum_i exp(z_i - max_i z_i))
    ```

    These are `O(T * n)` floats, never `O(T * n * D)`: the backward
    (`attnres.aggregate_grad`) recomputes the rest from the sources.

    Example:

    ```mlir
    %h, %lse, %r:3 = attnres.aggregate_stats %w, %g over %v0, %v1, %v2
        {epsilon = 1.0e-05 : f32} : tensor<16x4096xbf16>
    ```

    The types of `lse` and of each `inv_rms` are `tensor<16xf32>` here (the
    sources' shape without D), implied by the custom form.
  }];

  let arguments = (ins
    AttnRes_Tensor:$query,
    AttnRes_Tensor:$norm_weight,
    Variadic<AttnRes_Tensor>:$sources,
    F32Attr:$epsilon
  );
  let results = (outs AttnRes_Tensor:$result, AttnRes_F32Tensor:$lse,
                 Variadic<AttnRes_F32Tensor>:$inv_rms);

  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;

  let extraClassDeclaration = [{
    RankedTensorType getSourceType() {
      return ::llvm::cast<RankedTensorType>(getResult().getType());
    }
    unsigned getNumSources() { return getSources().size(); }
  }];
}

//===----------------------------------------------------------------------===//
// AggregateGradOp
//===----------------------------------------------------------------------===//

def AttnRes_AggregateGradOp : AttnRes_Op<"aggregate_grad", [Pure,
    AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>]> {
  let summary = "gradient of attnres.aggregate w.r.t. its sources, query "
                "and gain";
  let description = [{
    The backward of `attnres.aggregate` (spec section I.2). Given the
    incoming gradient `dh` of `h` and the statistics saved by
    `attnres.aggregate_stats` (`lse` and one `inv_rms` per source), it
    recomputes the logits from the sources and returns, for every token `p`:

    ```
    z_i   = r_i * sum_d w[d] g[d] v_i[p, d]
    a_i   = exp(z_i - lse)
    da_i  = sum_d v_i[p, d] dh[p, d];   dz_i = a_i (da_i - sum_j a_j da_j)
    dv_i[p, :] = a_i dh[p, :] + dz_i r_i (w g - z_i r_i v_i[p, :] / D)
    dwg[d]     = sum_p sum_i dz_i r_i v_i[p, d]
    dquery = dwg * g;   dgain = dwg * w
    ```

    `dquery` and `dgain` are sums over all tokens, accumulated in f32 in
    increasing token order (row-major over the leading dimensions) and
    returned in f32: the order is fixed, so the result is deterministic.

    With `accumulate %a0, ...` (one per source, of the sources' type), each
    source's result is `a_i + dv_i`, added in f32 and rounded once: a source
    that feeds many aggregations accumulates its gradient in place (the
    lowering reads and writes each `a_i` once, and bufferizes it in place).

    Example:

    ```mlir
    %dv:3, %dw, %dg = attnres.aggregate_grad %w, %g over %v0, %v1, %v2
        stats %lse, %r0, %r1, %r2 grad %dh {epsilon = 1.0e-05 : f32}
        : tensor<16x4096xbf16>
    %da:2, %dw2, %dg2 = attnres.aggregate_grad %w, %g over %v0, %v1
        stats %lse2, %r0, %r1 grad %dh2 accumulate %acc0, %acc1
        {epsilon = 1.0e-05 : f32} : tensor<16x4096xbf16>
    ```

    `dquery` and `dgain` have type `tensor<4096xf32>` here.
  }];

  let arguments = (ins
    AttnRes_Tensor:$query,
    AttnRes_Tensor:$norm_weight,
    Variadic<AttnRes_Tensor>:$sources,
    AttnRes_F32Tensor:$lse,
    Variadic<AttnRes_F32Tensor>:$inv_rms,
    AttnRes_Tensor:$grad,
    Variadic<AttnRes_Tensor>:$accumulators,
    F32Attr:$epsilon
  );
  let results = (outs Variadic<AttnRes_Tensor>:$source_grads,
                 AttnRes_F32Tensor:$query_grad,
                 AttnRes_F32Tensor:$norm_weight_grad);

  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;

  let extraClassDeclaration = [{
    RankedTensorType getSourceType() {
      return ::llvm::cast<RankedTensorType>(getGrad().getType());
    }
    unsigned getNumSources() { return getSources().size(); }
    /// Whether the source gradients are added to `accumulators`.
    bool isAccumulating() { return !getAccumulators().empty(); }
  }];
}

//===----------------------------------------------------------------------===//
// BlockScoreGradOp
//===----------------------------------------------------------------------===//

def AttnRes_BlockScoreGradOp : AttnRes_Op<"block_score_grad", [Pure,
    AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>]> {
  let summary = "gradient of attnres.block_score (phase 1) w.r.t. its "
                "sources, queries and gains";
  let description = [{
    The backward of `attnres.block_score` (spec section I.3). Given the
    incoming gradients `dout` (`tensor<S x ... x D x E>`) and `dlse`
    (`tensor<S x ... x f32>`) of its two results, the forward's `lse` and
    the inverse RMS of each source (the `attnres.inv_rms` values phase 1
    reads), it recomputes the logits and returns, with `wg_l = W_l * G_l`:

    ```
    z_li  = r_i * sum_d wg_l[d] v_i[p, d];   a_li = exp(z_li - lse_l)
    da_li = sum_d v_i[p, d] dout_l[p, d]
    dz_li = a_li (da_li - sum_j a_lj da_lj) + a_li dlse_l
    dv_i  = sum_l (a_li dout_l + dz_li r_i wg_l - dz_li r_i^2 z_li v_i / D)
    dwg_l[d] = sum_p sum_i dz_li r_i v_i[p, d]
    dqueries_l = dwg_l * G_l;   dgains_l = dwg_l * W_l
    ```

    The sum over the S queries of `dv_i` is taken in f32 in order
    `l = 0 .. S-1` and rounded once (after adding the accumulator, with
    `accumulate`). `dqueries` and `dgains` are f32 sums over the tokens in
    increasing token order, as for `attnres.aggregate_grad`.

    Example:

    ```mlir
    %db:2, %dW, %dG = attnres.block_score_grad %W, %G over %b0, %b1
        stats %lse, %r0, %r1 grad %dout, %dlse {epsilon = 1.0e-05 : f32}
        : tensor<16x4096xbf16> -> tensor<6x16x4096xbf16>
    ```

    `dW` and `dG` have type `tensor<6x4096xf32>` here.
  }];

  let arguments = (ins
    AttnRes_Tensor:$queries,
    AttnRes_Tensor:$norm_weights,
    Variadic<AttnRes_Tensor>:$sources,
    AttnRes_F32Tensor:$lse,
    Variadic<AttnRes_F32Tensor>:$inv_rms,
    AttnRes_Tensor:$out_grad,
    AttnRes_F32Tensor:$lse_grad,
    Variadic<AttnRes_Tensor>:$accumulators,
    F32Attr:$epsilon
  );
  let results = (outs Variadic<AttnRes_Tensor>:$source_grads,
                 AttnRes_F32Tensor:$queries_grad,
                 AttnRes_F32Tensor:$norm_weights_grad);

  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;

  let extraClassDeclaration = [{
    RankedTensorType getSourceType() {
      return ::llvm::cast<RankedTensorType>(getSources().front().getType());
    }
    unsigned getNumSources() { return getSources().size(); }
    bool isAccumulating() { return !getAccumulators().empty(); }
  }];
}

//===----------------------------------------------------------------------===//
// MergeGradOp
//===----------------------------------------------------------------------===//

def AttnRes_MergeGradOp : AttnRes_Op<"merge_grad", [Pure,
    AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>]> {
  let summary = "gradient of attnres.merge (phase 2, optionally with the "
                "fused RMSNorm)";
  let description = [{
    The backward of `attnres.merge` (spec section I.4). It takes the
    forward's operands and the incoming gradients of its results (`dh` of
    `h`, `dp_new` of `new_partial` and, in the fused-norm form, `dhn` of
    `normed`) and recomputes `p' = [partial +] update`, its inverse RMS, the
    gate `a = sigmoid(c - lse)` and (fused norm) the stored `h` and its
    inverse RMS `rn` from the operands; no statistics are saved. With
    `wg = query * norm_weight` (f32):

    ```
    dH    = dh [+ rn gn dhn - rn^3 h <h, gn dhn> / D]        (fused norm)
    dc    = <dH, p' - out> a (1 - a)
    dout  = (1 - a) dH;       dlse = -dc
    dp    = a dH + dp_new + dc r (wg - c r p' / D)
    dwg   = sum over tokens of dc r p';  dquery = dwg g;  dgain = dwg w
    dgn   = sum over tokens of h rn dhn                        (fused norm)
    ```

    `dp` is the gradient of both `update` and `partial` (`p'` is their
    sum). `dp_new` carries the gradient of the next sublayer's partial sum,
    so a chain of merges accumulates the partial-sum gradient through it.
    `dout` and `dp` are rounded once to the storage type; `dlse` and the
    parameter gradients stay f32, summed over the tokens in increasing token
    order (deterministic, as `attnres.aggregate_grad`).

    Examples:

    ```mlir
    %do, %dl, %dw, %dg, %dp = attnres.merge_grad %o, %lse, %w, %g
        update %y partial %p grad %dh, %dpn {epsilon = 1.0e-05 : f32}
        : tensor<16x4096xbf16>
    %do, %dl, %dw, %dg, %dp, %dgn = attnres.merge_grad %o, %lse, %w, %g
        update %y partial %p norm %gn grad %dh, %dpn, %dhn
        {epsilon = 1.0e-05 : f32, norm_epsilon = 1.0e-05 : f32}
        : tensor<16x4096xbf16>
    ```

    `%dl` has type `tensor<16xf32>`, `%dw`, `%dg` and `%dgn` have type
    `tensor<4096xf32>` here.
  }];

  let arguments = (ins
    AttnRes_Tensor:$out,
    AttnRes_F32Tensor:$lse,
    AttnRes_Tensor:$query,
    AttnRes_Tensor:$norm_weight,
    AttnRes_Tensor:$update,
    Optional<AttnRes_Tensor>:$partial,
    Optional<AttnRes_Tensor>:$norm_gain,
    AttnRes_Tensor:$grad,
    AttnRes_Tensor:$new_partial_grad,
    Optional<AttnRes_Tensor>:$normed_grad,
    F32Attr:$epsilon,
    OptionalAttr<F32Attr>:$norm_epsilon
  );
  let results = (outs AttnRes_Tensor:$out_grad,
                 AttnRes_F32Tensor:$lse_grad,
                 AttnRes_F32Tensor:$query_grad,
                 AttnRes_F32Tensor:$norm_weight_grad,
                 AttnRes_Tensor:$update_grad,
                 Optional<AttnRes_F32Tensor>:$norm_gain_grad);

  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;

  let extraClassDeclaration = [{
    /// Whether this is the gradient of the fused-norm merge (spec E.5).
    bool hasNorm() { return static_cast<bool>(getNormEpsilonAttr()); }
  }];
}

#endif // ATTNRES_DIALECT_ATTNRES_IR_ATTNRESGRADOPS_TD
