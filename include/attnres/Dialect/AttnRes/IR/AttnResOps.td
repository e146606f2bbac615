//===- AttnResOps.td - AttnRes operations ------------------*- tablegen -*-===//
//
// Part of the attnres project. The semantics of every op and its numbered
// constraints are in docs/spec.md; verifiers cite them as (Cn).
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_IR_ATTNRESOPS_TD
#define ATTNRES_DIALECT_ATTNRES_IR_ATTNRESOPS_TD

include "attnres/Dialect/AttnRes/IR/AttnResDialect.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"

// Storage element types: accumulation is always f32.
def AttnRes_ElementType : AnyTypeOf<[F32, F16, BF16]>;

// ODS only requires ranked tensors. Element types (f32, f16 or bf16 for
// values; f32 for inverse RMS and log-sum-exp), ranks and shapes are checked
// by the op verifiers, so that every diagnostic names its numbered
// constraint (Cn) of docs/spec.md.
def AttnRes_Tensor : Type<IsRankedTensorTypePred,
    "ranked tensor of f32, f16 or bf16 values", "::mlir::RankedTensorType">;
def AttnRes_F32Tensor : Type<IsRankedTensorTypePred,
    "ranked tensor of f32 values", "::mlir::RankedTensorType">;

//===----------------------------------------------------------------------===//
// AggregateOp
//===----------------------------------------------------------------------===//

def AttnRes_AggregateOp : AttnRes_Op<"aggregate", [Pure,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>]> {
  let summary = "softmax attention over depth with one pseudo-query";
  let description = [{
    One AttnRes depth aggregation (spec section A). For every token position
    `p` (all leading dimensions) and sources `v_0 .. v_{n-1}`:

    ```
    r_i  = 1 / sqrt(mean_d v_i[p, d]^2 + epsilon)
    z_i  = r_i * sum_d query[d] * norm_weight[d] * v_i[p, d]
    a    = softmax_i(z)
    h[p] = sum_i a_i * v_i[p, :]
    ```

    The sources enter the weighted sum raw, not normalised. All arithmetic is
    done in f32 and the result is rounded once to the storage type.

    The operand order is a fixed contract: `query`, `norm_weight`, then one or
    more `sources` of one type `tensor<...xDxE>`.

    Example:

    ```mlir
    %h = attnres.aggregate %w, %g over %v0, %v1, %v2 {epsilon = 1.0e-06 : f32}
        : tensor<16x4096xbf16>
    ```

    The query and the gain only need a type compatible with `tensor<D x E>`
    (spec 0.4); when theirs differs from it, the custom form gives both:

    ```mlir
    %h = attnres.aggregate %w, %g over %v0 {epsilon = 1.0e-06 : f32}
        : tensor<8x64xf32> operand_types(tensor<?xf32>, tensor<64xf32>)
    ```

    Generic form:

    ```mlir
    %h = "attnres.aggregate"(%w, %g, %v0, %v1)
        {epsilon = 1.0e-06 : f32}
        : (tensor<64xf32>, tensor<64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
        -> tensor<8x64xf32>
    ```
  }];

  let arguments = (ins
    AttnRes_Tensor:$query,
    AttnRes_Tensor:$norm_weight,
    Variadic<AttnRes_Tensor>:$sources,
    F32Attr:$epsilon
  );
  let results = (outs AttnRes_Tensor:$result);

  // The sources and the result have the type after the colon (C4); the
  // query and the gain have the derived type `tensor<D x E>` unless
  // `operand_types(...)` gives theirs (spec 0.4).
  let assemblyFormat = [{
    $query `,` $norm_weight `over` custom<Operands1>($sources) attr-dict `:`
    custom<AggregateTypes>(type($result), ref($sources), type($sources),
                           type($query), type($norm_weight))
  }];
  let hasVerifier = 1;
  let hasFolder = 1;

  let builders = [
    OpBuilder<(ins "Value":$query, "Value":$normWeight, "ValueRange":$sources,
                   CArg<"float", "::mlir::attnres::kDefaultEpsilon">:$epsilon)>
  ];

  let extraClassDeclaration = [{
    /// The type shared by every source and the result.
    RankedTensorType getSourceType() {
      return ::llvm::cast<RankedTensorType>(getResult().getType());
    }
    /// Number of depth sources.
    unsigned getNumSources() { return getSources().size(); }
  }];
}

//===----------------------------------------------------------------------===//
// BlockSumOp
//===----------------------------------------------------------------------===//

// Not `Commutative`: f32 addition is not associative and the spec fixes the
// accumulation order (B.1), so operands must not be reordered.
def AttnRes_BlockSumOp : AttnRes_Op<"block_sum", [Pure,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>]> {
  let summary = "block summary or partial sum: elementwise sum of outputs";
  let description = [{
    Sums its operands elementwise, accumulating in f32 left to right from
    the first operand and rounding once to the storage type (spec section
    B). The order is part of the semantics, so the op is not commutative.
    Block AttnRes uses it for block summaries `b_n` (the sum of the outputs
    of the sublayers of block `n`) and for partial sums `b_n^i` (the sum of
    the first `i` outputs of block `n`).
    Keeping the sums as their own op lets the block-form passes find them
    without pattern-matching generic additions.

    Example:

    ```mlir
    %b1 = attnres.block_sum %y0, %y1, %y2 : tensor<16x4096xbf16>
    ```
  }];

  let arguments = (ins Variadic<AttnRes_Tensor>:$inputs);
  let results = (outs AttnRes_Tensor:$result);
  // Every input has the result type (C4).
  let assemblyFormat = [{
    custom<Operands1>($inputs) attr-dict `:`
    custom<SameTypes>(type($result), ref($inputs), type($inputs))
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;

  let builders = [
    // The result has the inputs' type.
    OpBuilder<(ins "ValueRange":$inputs)>
  ];
}

//===----------------------------------------------------------------------===//
// InvRmsOp
//===----------------------------------------------------------------------===//

def AttnRes_InvRmsOp : AttnRes_Op<"inv_rms", [Pure,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>]> {
  let summary = "inverse root-mean-square of each token's feature vector";
  let description = [{
    `result[p] = 1 / sqrt(mean_d input[p, d]^2 + epsilon)` in f32 (spec
    section C). The two-phase form computes it once per block summary, when
    the block completes, and every later phase-1 scoring reuses it.

    Example:

    ```mlir
    %r = attnres.inv_rms %b1 {epsilon = 1.0e-06 : f32}
        : tensor<16x4096xbf16> -> tensor<16xf32>
    ```
  }];

  let arguments = (ins AttnRes_Tensor:$input, F32Attr:$epsilon);
  let results = (outs AttnRes_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;

  let builders = [
    // The result is `tensor<...xf32>`, the input's shape without D.
    OpBuilder<(ins "Value":$input, CArg<"float", "::mlir::attnres::kDefaultEpsilon">:$epsilon)>
  ];
}

//===----------------------------------------------------------------------===//
// BlockScoreOp (phase 1)
//===----------------------------------------------------------------------===//

def AttnRes_BlockScoreOp : AttnRes_Op<"block_score", [
    Pure, AttrSizedOperandSegments, DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>]> {
  let summary = "phase 1: score S pseudo-queries against completed summaries";
  let description = [{
    Phase 1 of the two-phase Block AttnRes computation (spec section D).
    `queries` and `norm_weights` are `tensor<SxDxE>`: row `l` holds the
    pseudo-query and key-norm gain of the `l`-th sublayer of the block. The
    `sources` (`tensor<...xDxE>`) are the completed block summaries
    `b_0 .. b_{n-1}`; `inv_rms`, when present, holds one `tensor<...xf32>` per
    source with its inverse RMS (computed by `attnres.inv_rms` with the same
    epsilon), so that it is not recomputed. For every query `l` and token `p`:

    ```
    z[l, i]  = r_i[p] * sum_d queries[l, d] * norm_weights[l, d] * b_i[p, d]
    m        = max_i z[l, i];  s = sum_i exp(z[l, i] - m)
    out[l, p, :] = sum_i exp(z[l, i] - m) * b_i[p, :] / s
    lse[l, p]    = m + log(s)
    ```

    The op is in destination-passing style: `outs` are the `tensor<Sx...xDxE>`
    output and the `tensor<Sx...xf32>` log-sum-exp, and the results have their
    types.

    Example:

    ```mlir
    %o, %lse = attnres.block_score %W, %G over %b0, %b1, %b2
        inv_rms %r0, %r1, %r2 outs %o_init, %lse_init {epsilon = 1.0e-06 : f32}
        : tensor<16x4096xbf16> -> tensor<6x16x4096xbf16>
    ```

    The types of `queries`, `norm_weights`, `inv_rms` and `lse_init` are
    derived from the two types after the colon; when one of them is only
    compatible with its derived type (spec 0.4), the custom form ends with
    `operand_types(...)` listing all of them in operand order.
  }];

  let arguments = (ins
    AttnRes_Tensor:$queries,
    AttnRes_Tensor:$norm_weights,
    Variadic<AttnRes_Tensor>:$sources,
    Variadic<AttnRes_F32Tensor>:$inv_rms,
    AttnRes_Tensor:$out_init,
    AttnRes_F32Tensor:$lse_init,
    F32Attr:$epsilon
  );
  let results = (outs AttnRes_Tensor:$out, AttnRes_F32Tensor:$lse);
  // `: source-type -> out-type`; the queries, gains, inv_rms and lse_init
  // have types derived from these two unless `operand_types(...)` gives
  // theirs (spec 0.4); the results have the inits' types (C11).
  let assemblyFormat = [{
    $queries `,` $norm_weights `over` custom<Operands1>($sources)
    (`inv_rms` custom<Operands1>($inv_rms)^)?
    `outs` $out_init `,` $lse_init attr-dict `:`
    custom<BlockScoreTypes>(ref($sources), type($sources), ref($inv_rms),
                            type($inv_rms), type($out_init), type($queries),
                            type($norm_weights), type($lse_init), type($out),
                            type($lse))
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;

  let builders = [
    // The results have the types of `outInit` and `lseInit`.
    OpBuilder<(ins "Value":$queries, "Value":$normWeights,
                   "ValueRange":$sources, "ValueRange":$invRms,
                   "Value":$outInit, "Value":$lseInit,
                   CArg<"float", "::mlir::attnres::kDefaultEpsilon">:$epsilon)>
  ];

  let extraClassDeclaration = [{
    /// Number of queries scored at once (S).
    int64_t getNumQueries() {
      return ::llvm::cast<RankedTensorType>(getQueries().getType()).getDimSize(0);
    }
    RankedTensorType getSourceType() {
      return ::llvm::cast<RankedTensorType>(getSources().front().getType());
    }
    MutableOperandRange getDpsInitsMutable() {
      return MutableOperandRange(getOperation(),
          getOperation()->getNumOperands() - 2, 2);
    }
  }];
}

//===----------------------------------------------------------------------===//
// MergeOp (phase 2)
//===----------------------------------------------------------------------===//

def AttnRes_MergeOp : AttnRes_Op<"merge", [Pure,
    DeclareOpInterfaceMethods<ReifyRankedShapedTypeOpInterface,
        ["reifyResultShapes"]>]> {
  let summary = "phase 2: partial-sum update fused with the online-softmax "
                "merge (and optionally the sublayer's RMSNorm)";
  let description = [{
    Phase 2 of the two-phase Block AttnRes computation for sublayer `i >= 1`
    of a block (spec section E). It first updates the partial sum with the
    previous sublayer's output, then merges the phase-1 result of the
    sublayer's query (`out`, `lse` over the completed summaries) with the
    single remaining source, the updated partial sum:

    ```
    p'   = partial + update          (p' = update when partial is absent)
    c    = inv_rms(p') * sum_d query[d] * norm_weight[d] * p'[d]
    h    = out + sigmoid(c - lse) * (p' - out)
    ```

    Results are `h` (the sublayer's input) and `p'` (the new partial sum).
    This equals `attnres.aggregate` over the summaries and `p'`.

    With `norm %gain_n` and a `norm_epsilon` attribute (spec E.5), the op also
    applies the sublayer's own RMSNorm to `h` and has a third result

    ```
    hn   = h * rsqrt(mean_d h[d]^2 + norm_epsilon) * gain_n
    ```

    computed from `h` rounded to the storage type, so that the sublayer's
    norm does not read `h` back from memory. `attnres-fuse-summaries` creates
    this form when the sublayer's RMSNorm reads `h` directly.

    Examples:

    ```mlir
    %h, %p2 = attnres.merge %o1, %lse1, %w1, %g1 update %y1 partial %p1
        {epsilon = 1.0e-06 : f32} : tensor<16x4096xbf16>
    %h, %p2, %hn = attnres.merge %o1, %lse1, %w1, %g1 update %y1 partial %p1
        norm %gn {epsilon = 1.0e-06 : f32, norm_epsilon = 1.0e-05 : f32}
        : tensor<16x4096xbf16>
    ```

    The types of `lse`, `query`, `norm_weight` and the norm gain are
    derived from the value type; when one of them is only compatible with
    its derived type (spec 0.4), the custom form ends with
    `operand_types(...)` listing all of them in operand order.

    In the generic form, the optional `partial` and `norm` gain are the
    trailing operands in this order; the presence of `norm_epsilon` says that
    the last one is the norm gain.
  }];

  let arguments = (ins
    AttnRes_Tensor:$out,
    AttnRes_F32Tensor:$lse,
    AttnRes_Tensor:$query,
    AttnRes_Tensor:$norm_weight,
    AttnRes_Tensor:$update,
    // [partial] [norm_gain]: which ones are present is given by the number
    // of operands and by `norm_epsilon` (verified, spec E (C8)). One
    // variadic group keeps the generic form of the two-result op unchanged.
    Variadic<AttnRes_Tensor>:$optional_operands,
    F32Attr:$epsilon,
    OptionalAttr<F32Attr>:$norm_epsilon
  );
  let results = (outs AttnRes_Tensor:$result, AttnRes_Tensor:$new_partial,
                 Optional<AttnRes_Tensor>:$normed);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let hasCanonicalizer = 1;

  let builders = [
    // Both results have the type of `update`; `partial` may be null.
    OpBuilder<(ins "Value":$out, "Value":$lse, "Value":$query,
                   "Value":$normWeight, "Value":$update, "Value":$partial,
                   CArg<"float", "::mlir::attnres::kDefaultEpsilon">:$epsilon)>,
    // The form with the fused RMSNorm: three results of the type of
    // `update`; `partial` may be null, `normGain` may not.
    OpBuilder<(ins "Value":$out, "Value":$lse, "Value":$query,
                   "Value":$normWeight, "Value":$update, "Value":$partial,
                   "Value":$normGain, "float":$epsilon, "float":$normEpsilon)>,
    // Two results of the given types, without norm.
    OpBuilder<(ins "Type":$resultType, "Type":$newPartialType, "Value":$out,
                   "Value":$lse, "Value":$query, "Value":$normWeight,
                   "Value":$update, "Value":$partial, "FloatAttr":$epsilon)>
  ];

  let extraClassDeclaration = [{
    /// Whether the op applies the sublayer's RMSNorm (`norm_epsilon` given).
    bool hasNorm() { return static_cast<bool>(getNormEpsilonAttr()); }
    /// The partial sum `b_n^{i-1}`, or null.
    Value getPartial() {
      OperandRange tail = getOptionalOperands();
      unsigned numGain = hasNorm() && !tail.empty() ? 1 : 0;
      return tail.size() > numGain ? tail.front() : Value();
    }
    /// The gain of the fused RMSNorm, or null.
    Value getNormGain() {
      OperandRange tail = getOptionalOperands();
      return hasNorm() && !tail.empty() ? tail.back() : Value();
    }
  }];
}

// The training ops (forward with statistics, backward).
include "attnres/Dialect/AttnRes/IR/AttnResGradOps.td"

#endif // ATTNRES_DIALECT_ATTNRES_IR_ATTNRESOPS_TD
