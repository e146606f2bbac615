//===- AttnResDialect.td - AttnRes dialect definition ------*- tablegen -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_DIALECT_ATTNRES_IR_ATTNRESDIALECT_TD
#define ATTNRES_DIALECT_ATTNRES_IR_ATTNRESDIALECT_TD

include "mlir/IR/OpBase.td"

def AttnRes_Dialect : Dialect {
  let name = "attnres";
  let summary = "Attention Residuals: softmax attention over network depth";
  let description = [{
    The `attnres` dialect models Attention Residuals (Kimi Team, 2026): each
    sublayer of a network reads a softmax-weighted mixture of the embedding and
    of earlier sublayer outputs instead of the fixed residual sum. The weights
    come from one learned, input-independent pseudo-query per sublayer scored
    against the RMS-normalised sources.

    The dialect has two levels:

    * `attnres.aggregate` is one depth aggregation (Full AttnRes, or one
      aggregation of Block AttnRes). Its operands and semantics are a fixed
      contract (see docs/spec.md).
    * `attnres.block_sum`, `attnres.inv_rms`, `attnres.block_score` and
      `attnres.merge` express the block form and its two-phase computation:
      block summaries and partial sums, the inverse RMS of each summary
      computed once, the batched phase-1 scoring of all queries of a block and
      the phase-2 online-softmax merge fused with the partial-sum update.

    All ops work on tensors, accumulate in f32 whatever the storage type (f32,
    f16 or bf16) and are token-local: every leading dimension is a batch of
    independent token positions, the last dimension is the feature dimension D.
  }];
  let cppNamespace = "::mlir::attnres";
  // Shape reification and the block_score canonicalization create tensor ops.
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
  let useDefaultAttributePrinterParser = 0;
  let useDefaultTypePrinterParser = 0;
  let hasConstantMaterializer = 0;
}

class AttnRes_Op<string mnemonic, list<Trait> traits = []>
    : Op<AttnRes_Dialect, mnemonic, traits>;

#endif // ATTNRES_DIALECT_ATTNRES_IR_ATTNRESDIALECT_TD
