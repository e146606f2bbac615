//===- Passes.td - AttnRes transformation passes -----------*- tablegen -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_TRANSFORMS_PASSES_TD
#define ATTNRES_DIALECT_ATTNRES_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def DetectResidualChains : Pass<"attnres-detect-residual-chains", "ModuleOp"> {
  let summary = "Raise AttnRes written in primitives and convert standard "
                "PreNorm residual chains to Full AttnRes";
  let description = [{
    The pipeline of `attnres-raise-aggregations` followed by
    `attnres-convert-residual-chains` (its options are forwarded: `report` to
    both, the others to the conversion). It finds the residual structure of
    a model given as linalg on tensors, TOSA or `func.call` sublayers, by
    semantics rather than by spelling (docs/detection.md): a demand-driven
    interpreter evaluates candidate subgraphs on pseudo-random data and
    compares them with the formulas.

    Raising: a value computed from a stack of tensors (`tensor.concat`,
    `tosa.concat`, or `tensor.insert_slice`s into a fresh tensor) and from at
    most two feature vectors that equals the AttnRes aggregation of spec
    section 2 (for any order of the commuting steps, gain separate or folded
    into the query) becomes `attnres.aggregate`.

    Conversion (`convert-standard`): residual adds (`linalg.generic`,
    `linalg.add`, `tosa.add`, `arith.addf` on tensors, either operand order)
    are linked into chains `h_{l+1} = h_l + f_l(h_l)`. A chain of at least two
    sublayers in which every `f_l` reads `h_l` only through a scale-invariant
    norm (RMSNorm, LayerNorm; inline or inside a called function) and whose
    final value feeds a scale-invariant norm becomes Full AttnRes (spec
    section 4): the input of sublayer `l >= 1` and the final norm's input
    become `attnres.aggregate` over `[h_0, f_0 out, ..., f_{l-1} out]`.

    Parameters: each new aggregation reads its pseudo-query and gain from
    public mutable `ml_program.global`s, zero and one initialised, named
    `@attnres_query_<func>_<l>` / `@attnres_gain_<func>_<l>` (l = 1..L-1) and
    `@attnres_query_<func>_final` / `@attnres_gain_<func>_final`; a second
    chain of one function gets a `c<k>_` infix. They are loaded with
    `ml_program.global_load`, so a training framework can find and update
    them by name.

    Opaque sublayers: a `func.call` to a declaration without a body (what
    the torch.fx frontend emits for unknown submodules) that returns values is
    taken as a function of its operands. A chain whose sublayers call it on
    the output of a visible norm is converted; one that passes the residual
    stream to it directly is refused, unless the callee is vouched
    scale-invariant by the unit attribute `attnres.scale_invariant` on its
    declaration or by `scale-invariant-callees`.

    Token dimensions may be dynamic (`tensor<?x64xf32>`); the feature
    dimension must be static.

    What is not converted is left untouched; with `report`, one remark per
    chain says its length and why (PostNorm, no scale-invariant consumer,
    side effects, opaque callee, plain sum of unrelated tensors, ...).
  }];
  let dependentDialects = [
    "::mlir::attnres::AttnResDialect", "::mlir::tensor::TensorDialect",
    "::mlir::arith::ArithDialect", "::mlir::ml_program::MLProgramDialect"
  ];
  let options = [
    Option<"convertStandard", "convert-standard", "bool", /*default=*/"true",
           "Convert standard PreNorm residual chains to Full AttnRes">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit one remark per chain found or refused">,
    ListOption<"scaleInvariantCallees", "scale-invariant-callees",
               "std::string",
               "Callees (symbol names) vouched scale-invariant: their results "
               "do not change when the residual stream they receive is scaled "
               "(like a declaration marked `attnres.scale_invariant`)">,
  ];
}

def RaiseAggregations : Pass<"attnres-raise-aggregations", "ModuleOp"> {
  let summary = "Raise AttnRes aggregations written in primitives to "
                "attnres.aggregate";
  let description = [{
    The raising half of `attnres-detect-residual-chains` (docs/detection.md).
    Every stack of tensors (`tensor.concat`, `tosa.concat`, or a chain of
    `tensor.insert_slice`s into a fresh tensor) is a candidate set of depth
    sources. A value of the sources' type computed from the stack and from at
    most two feature vectors (plus constants) that equals the AttnRes
    aggregation of spec section 2 (for any order of the commuting steps, gain
    separate or folded into the query) becomes `attnres.aggregate`. Equality
    is decided numerically: a demand-driven interpreter evaluates the
    candidate on pseudo-random sources and vectors and compares it, in
    float64, with the reference formula for each epsilon candidate (the small
    positive constants of the subgraph, and 0).

    A softmax over a depth of one source (the first aggregation of a Full
    AttnRes model, whose stack is a reshape of `h_0` to a unit depth
    dimension) is recognised too; the aggregate folder then replaces it by
    its source.

    Example:

    ```mlir
    %s = tensor.concat dim(0) %e0, %e1 : (tensor<1x8x64xf32>, ...) -> ...
    // ... RMS, logits, softmax over dim 0, weighted sum, in linalg ...
    // becomes
    %h = attnres.aggregate %q, %g over %v0, %v1 : tensor<8x64xf32>
    ```
  }];
  let dependentDialects = [
    "::mlir::attnres::AttnResDialect", "::mlir::tensor::TensorDialect",
    "::mlir::arith::ArithDialect"
  ];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit one remark per raised aggregation">,
  ];
}

def ConvertResidualChains
    : Pass<"attnres-convert-residual-chains", "ModuleOp"> {
  let summary = "Convert standard PreNorm residual chains to Full AttnRes";
  let description = [{
    The conversion half of `attnres-detect-residual-chains`
    (docs/detection.md). Residual adds (`linalg.generic`, `linalg.add`,
    `tosa.add`, `arith.addf` on tensors, either operand order) whose sublayer
    output depends on the stream through an op that mixes features or tokens
    are linked into chains `h_{l+1} = h_l + f_l(h_l)`. A chain of at least
    two sublayers in which every `f_l` reads `h_l` only through a
    scale-invariant norm and whose final value feeds a scale-invariant norm
    becomes Full AttnRes (spec section 4): the input of sublayer `l >= 1` and
    the final norm's input become `attnres.aggregate` over
    `[h_0, f_0 out, ..., f_{l-1} out]`, with zero-initialised pseudo-queries
    and unit gains in public mutable `ml_program.global`s.

    What is not converted is left untouched; with `report`, one remark per
    chain says its length and why (PostNorm, no scale-invariant consumer,
    side effects, opaque callee, dynamic feature dimension, ...).

    Example:

    ```mlir
    %h1 = arith.addf %h0, %y0 : tensor<8x64xf32>   // y0 = f0(rmsnorm(h0))
    // %h1 as the input of sublayer 1's norm becomes
    %a1 = attnres.aggregate %q1, %g1 over %h0, %y0 : tensor<8x64xf32>
    ```
  }];
  let dependentDialects = [
    "::mlir::attnres::AttnResDialect", "::mlir::tensor::TensorDialect",
    "::mlir::arith::ArithDialect", "::mlir::ml_program::MLProgramDialect"
  ];
  let options = [
    Option<"convertStandard", "convert-standard", "bool", /*default=*/"true",
           "Convert standard PreNorm residual chains to Full AttnRes">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit one remark per chain found or refused">,
    ListOption<"scaleInvariantCallees", "scale-invariant-callees",
               "std::string",
               "Callees (symbol names) vouched scale-invariant: their results "
               "do not change when the residual stream they receive is scaled "
               "(like a declaration marked `attnres.scale_invariant`)">,
  ];
}

def Blockify : Pass<"attnres-blockify", "ModuleOp"> {
  let summary = "Rewrite Full AttnRes chains into Block AttnRes";
  let description = [{
    Partitions each chain of Full AttnRes aggregations into blocks of
    `block-size` sublayers (spec section G): block summaries are sums of
    their sublayers' outputs, each sublayer attends over the completed
    summaries and the partial sum of its own block.

    Chains are found by structure (see docs/block-form.md): aggregation `l`
    reads `[v_0, y_0 .. y_(l-1)]` where `y_i` is computed from the result of
    aggregation `i`, and a final aggregation reads all `[v_0 .. y_(L-1)]`.
    The `i`-th sublayer of block `n` then reads `[b_0 .. b_(n-1)]` (`i = 0`)
    or `[b_0 .. b_(n-1), b_n^i]` (`i >= 1`), with `b_0` the embedding, the
    partial sums `b_n^(i+1) = block_sum(b_n^i, y)` and the summaries
    `b_n = block_sum(b_n^(S-1), y_last)`; the last block is shorter when `S`
    does not divide `L`; the final aggregation reads `[b_0 .. b_N]`. Each
    aggregation keeps its own pseudo-query, gain and epsilon. `block-size=1`
    leaves the IR unchanged. `block-size` wins over `num-blocks`; with only
    `num-blocks = N`, `S = ceil(L / N)` per chain. Chains already in block
    form (S > 1) are left alone.

    Example (`L = 4`, `block-size=2`):

    ```mlir
    %h2 = attnres.aggregate %w2, %g2 over %v0, %y0, %y1 : tensor<8x64xf32>
    // becomes
    %b1 = attnres.block_sum %y0, %y1 : tensor<8x64xf32>
    %h2 = attnres.aggregate %w2, %g2 over %v0, %b1 : tensor<8x64xf32>
    ```
  }];
  let dependentDialects = ["::mlir::attnres::AttnResDialect"];
  let options = [
    Option<"blockSize", "block-size", "int64_t",
           /*default=*/"::mlir::attnres::kDefaultBlockSize",
           "Sublayers per block (S); wins over num-blocks when both are set">,
    Option<"numBlocks", "num-blocks", "int64_t",
           /*default=*/"::mlir::attnres::kDefaultNumBlocks",
           "Number of blocks (N); S = ceil(L / N)">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit one remark per chain with its block structure">,
  ];
}

def FuseSummaries : Pass<"attnres-fuse-summaries", "ModuleOp"> {
  let summary = "Turn Block AttnRes into the two-phase computation";
  let description = [{
    Rewrites the aggregations of each block into one batched phase-1
    `attnres.block_score` over the completed summaries (whose inverse RMS is
    computed once by `attnres.inv_rms`) and one phase-2 `attnres.merge` per
    later sublayer, fused with the partial-sum update (spec section H).

    For block `n` with sublayers `i = 0 .. S-1`: `attnres.inv_rms` of each
    summary once, when it completes; one `attnres.block_score` of the `S`
    stacked pseudo-queries and gains (`tensor<SxD>`, built with
    `tensor.insert_slice` into `tensor.empty`) over `[b_0 .. b_(n-1)]`; then
    `h = tensor.extract_slice` of row 0 for `i = 0`, and for `i >= 1`
    `h, b_n^i = attnres.merge` of row `i` with `update = y_(i-1)` and
    `partial = b_n^(i-1)` (absent for `i = 1`). The summary is
    `b_n = block_sum(b_n^(S-1), y_(S-1))`. The final aggregation becomes a
    one-query `block_score` reusing the stored inverse RMS. The sublayers'
    own RMSNorms are not fused (docs/block-form.md). Chains whose
    aggregations disagree on epsilon are left alone.
  }];
  let dependentDialects = [
    "::mlir::attnres::AttnResDialect", "::mlir::tensor::TensorDialect"
  ];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit one remark per chain with its I/O before and after">,
  ];
}

def Report : Pass<"attnres-report", "ModuleOp"> {
  let summary = "Report the AttnRes chains, their block structure, I/O and "
                "live depth sources";
  let description = [{
    An analysis pass: it changes nothing. For every chain of aggregations
    (Full or Block AttnRes, see docs/block-form.md) it emits a remark with
    the number of sublayers `L`, the block size `S` and number of blocks `N`,
    the number of sources of every aggregation, and the bytes moved per
    token per sublayer by the Full, naive block and two-phase forms
    (section 6 of the semantics). For every function it emits a remark with
    the largest number of depth-source tensors (summaries, partial sums,
    sources of aggregations) live at once, which is `L + 1` for Full AttnRes
    and `N + 1` for the block and two-phase forms.

    With `block-size` or `num-blocks` set, the cost of a Full AttnRes chain
    is reported for that blocking.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t",
           /*default=*/"::mlir::attnres::kDefaultBlockSize",
           "Block size to report for Full AttnRes chains">,
    Option<"numBlocks", "num-blocks", "int64_t",
           /*default=*/"::mlir::attnres::kDefaultNumBlocks",
           "Number of blocks to report for Full AttnRes chains">,
  ];
}

def SplitFreshDeallocs : Pass<"attnres-split-fresh-deallocs", "func::FuncOp"> {
  let summary = "Free each fresh buffer after its last use instead of in the "
                "block's one bufferization.dealloc";
  let description = [{
    Runs between `ownership-based-buffer-deallocation` and
    `buffer-deallocation-simplification`. The ownership-based pass frees
    every buffer allocated in a block with one `bufferization.dealloc` at the
    block's end; in a straight-line model body that op lists every
    temporary of the function (thousands for a deep model), and the
    simplification pass compares its memrefs pairwise (quadratic in depth),
    while at run time every temporary stays allocated until the function
    returns.

    For every memref of a `bufferization.dealloc` that is the result of a
    `memref.alloc` in the dealloc's block, is deallocated unconditionally
    (condition `true`) and cannot alias a retained value, the pass removes it
    from the dealloc and frees it with a `memref.dealloc` right after its last
    use in that block. "Cannot alias" is decided conservatively: the buffer's
    aliases are closed under every memref- or tensor-typed result of any op
    that uses an alias (views, casts, `func.call` results, results of
    region ops whose bodies use an alias); a buffer is left in the
    `bufferization.dealloc` when an alias is retained, reaches the block's
    terminator, is used outside the block, is listed a second time in the
    dealloc or is freed by another op.

    Example:
    ```mlir
    %a = memref.alloc() : memref<4xf32>
    linalg.fill ins(%c : f32) outs(%a : memref<4xf32>)
    memref.copy %a, %out : memref<4xf32> to memref<4xf32>
    // ... many more ops ...
    bufferization.dealloc (%a, %b : ...) if (%true, %true)
    // becomes
    %a = memref.alloc() : memref<4xf32>
    linalg.fill ins(%c : f32) outs(%a : memref<4xf32>)
    memref.copy %a, %out : memref<4xf32> to memref<4xf32>
    memref.dealloc %a : memref<4xf32>
    // ... many more ops ...
    bufferization.dealloc (%b : ...) if (%true)
    ```
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def EmitCInterface : Pass<"attnres-emit-c-interface", "ModuleOp"> {
  let summary = "Mark every public function llvm.emit_c_interface";
  let description = [{
    Marks every public `func.func` with a body `llvm.emit_c_interface`, so
    that the LLVM lowering also emits `_mlir_ciface_<name>`, which takes
    pointers to memref descriptors: the entry points that
    `attnres.aot_compile` exports from a CPU library
    (`attnres-lower-to-llvm{out-params=1}`). Private functions and
    declarations are left alone.

    Example:
    ```mlir
    func.func @f(%a: memref<?xf32>) { return }
    // becomes
    func.func @f(%a: memref<?xf32>) attributes {llvm.emit_c_interface} { return }
    ```
  }];
}

def StackAggregateSources
    : Pass<"attnres-stack-aggregate-sources", "func::FuncOp"> {
  let summary = "Keep the sources of a Full AttnRes chain in one stacked "
                "buffer and decompose its aggregations over it";
  let description = [{
    A Full AttnRes chain of L sublayers aggregates l+1 sources at sublayer l:
    L(L+1)/2 source operands in all (after `attnres-fuse-summaries`, one
    `attnres.block_score` per sublayer). Decomposed one source at a time
    (what `one-shot-bufferize` does through the attnres ops' bufferization
    models) that is a number of linalg ops and buffers quadratic in depth
    (docs/depth.md, cause 2). This pass, run before bufferization, finds in
    each block the `attnres.aggregate` and `attnres.block_score` ops (two or
    more sources) whose sources (and, for block_score, `inv_rms` operands)
    are a contiguous run of one sequence of values `v_0, v_1, ...` of one
    type defined in that order in the block (the sublayer outputs of a
    chain). Each sequence is kept in one buffer `memref<N x T... x D x E>`
    (a `memref.alloc` after `v_0`, and after each `v_j` a
    `bufferization.materialize_in_destination` of `v_j` into the
    `memref.subview` of slot `j`); each such op is replaced by its
    decomposition (`decomposeOverStacked`) over a read-only
    `bufferization.to_tensor restrict` of the slots of its run: scores,
    softmax and weighted sum are a constant number of linalg ops over the
    stacked dimension, whatever the number of sources. The whole chain then
    needs O(L) ops and buffers, and each `v_j` is copied once.

    The stack is a buffer rather than a chain of `tensor.insert_slice` ops:
    One-Shot Analysis would compare every read of that chain with every
    write into it (42 s of bufferization at 128 sublayers). Each run's
    tensor is only read, and the slots written after it is created are
    disjoint from it.

    Ops whose runs have different types, are not defined in order in one
    block, or repeat a value are left unchanged (they bufferize by their
    per-source decomposition).

    Example:
    ```mlir
    %h1 = attnres.aggregate %q1, %g1 over %v0, %v1 : tensor<2x64xf32>
    %v2 = ...
    %h2 = attnres.aggregate %q2, %g2 over %v0, %v1, %v2 : tensor<2x64xf32>
    // becomes
    %stack = memref.alloc() : memref<3x2x64xf32>
    // copies of %v0, %v1 into slots 0 and 1:
    %s0 = memref.subview %stack[0, 0, 0] [1, 2, 64] [1, 1, 1] : ...
    bufferization.materialize_in_destination %v0 in restrict writable %s0
    ...
    %r1 = memref.subview %stack[0, 0, 0] [2, 2, 64] [1, 1, 1] : ...
    %t1 = bufferization.to_tensor %r1 restrict : ... to tensor<2x2x64xf32>
    // ... linalg.generic ops over %t1 giving %h1
    %v2 = ...
    // copy of %v2 into slot 2, then linalg.generic ops over the whole
    // stack giving %h2
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::linalg::LinalgDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::tensor::TensorDialect"
  ];
}

def SplitBlocksAfterLoops
    : Pass<"attnres-split-blocks-after-loops", "func::FuncOp"> {
  let summary = "End the function body's block after every region op, so "
                "that lowering SCF to control flow is linear in their number";
  let description = [{
    `convert-scf-to-cf` lowers an `scf.for` (or `scf.if`, ...) by splitting
    its block right after the op, which moves every later op of the block
    into a new block. A deep model's body is one block holding thousands of
    loop nests, so the lowering moves O(K^2) ops for K loops (docs/depth.md,
    cause 3). This pass, run right before it, splits each block of the
    function body after every op with regions, from the last such op to the
    first (each split moves only the ops up to the next split: linear in
    all), and joins the pieces with `cf.br`. Only the function's own blocks
    are split; region bodies (a loop's body) are left as they are. The
    control flow is unchanged: each new block has the previous one as its
    only predecessor.

    Example:
    ```mlir
    scf.for ... { ... }
    %x = arith.addf ...
    scf.for ... { ... }
    return
    // becomes
    scf.for ... { ... }
    cf.br ^bb1
  ^bb1:
    %x = arith.addf ...
    scf.for ... { ... }
    cf.br ^bb2
  ^bb2:
    return
    ```
  }];
  let dependentDialects = ["::mlir::cf::ControlFlowDialect"];
}

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_PASSES_TD
