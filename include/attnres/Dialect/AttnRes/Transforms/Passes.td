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
    Finds the residual structure of a model given as linalg on tensors, TOSA
    or opaque `func.call` sublayers. AttnRes aggregations written in
    primitives are raised to `attnres.aggregate`; with `convert-standard`, a
    standard PreNorm chain `h_{l+1} = h_l + f_l(h_l)` becomes Full AttnRes
    with zero-initialised pseudo-queries and unit gains (spec section F).
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
  ];
}

def Blockify : Pass<"attnres-blockify", "ModuleOp"> {
  let summary = "Rewrite Full AttnRes chains into Block AttnRes";
  let description = [{
    Partitions each chain of Full AttnRes aggregations into blocks of
    `block-size` sublayers (spec section G): block summaries are sums of
    their sublayers' outputs, each sublayer attends over the completed
    summaries and the partial sum of its own block.
  }];
  let dependentDialects = ["::mlir::attnres::AttnResDialect"];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"0",
           "Sublayers per block (S); wins over num-blocks when both are set">,
    Option<"numBlocks", "num-blocks", "int64_t", /*default=*/"0",
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
  }];
  let dependentDialects = [
    "::mlir::attnres::AttnResDialect", "::mlir::tensor::TensorDialect"
  ];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit one remark per chain with its I/O before and after">,
  ];
}

#endif // ATTNRES_DIALECT_ATTNRES_TRANSFORMS_PASSES_TD
