//===- InterfaceLayout.cpp - loops and operand roles of attnres ops -------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "InterfaceLayout.h"

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::detail;

SmallVector<unsigned> OpLayout::loopsOf(DimRole role) const {
  SmallVector<unsigned> loops;
  unsigned first = stacked ? 1 : 0;
  bool withS = role == DimRole::Rows || role == DimRole::Stacked ||
               role == DimRole::StackedToken;
  bool withT = role == DimRole::Value || role == DimRole::Token ||
               role == DimRole::Stacked || role == DimRole::StackedToken;
  bool withD = role == DimRole::Feature || role == DimRole::Value ||
               role == DimRole::Rows || role == DimRole::Stacked;
  if (withS)
    loops.push_back(0);
  if (withT)
    for (unsigned i = 0; i < numTokenDims; ++i)
      loops.push_back(first + i);
  if (withD)
    loops.push_back(featureLoop());
  return loops;
}

static unsigned rankOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getRank();
}

FailureOr<OpLayout> mlir::attnres::detail::getOpLayout(Operation *op) {
  OpLayout layout;
  // Roles of the non-init operands; a DPS init takes the role of its tied
  // result (filled in below).
  bool ok =
      llvm::TypeSwitch<Operation *, bool>(op)
          .Case([&](AggregateOp agg) {
            layout.numTokenDims = rankOf(agg.getResult()) - 1;
            layout.operands.assign(op->getNumOperands(), DimRole::Value);
            layout.operands[agg.getQueryMutable().getOperandNumber()] =
                DimRole::Feature;
            layout.operands[agg.getNormWeightMutable().getOperandNumber()] =
                DimRole::Feature;
            layout.results.assign(op->getNumResults(), DimRole::Value);
            layout.valueOperand = agg.getSources().getBeginOperandIndex();
            return true;
          })
          .Case([&](AggregateStatsOp stats) {
            // aggregate plus its per-token statistics (lse, one inverse RMS
            // per source): token-local, D a reduction.
            layout.numTokenDims = rankOf(stats.getResult()) - 1;
            layout.operands.assign(op->getNumOperands(), DimRole::Value);
            layout.operands[stats.getQueryMutable().getOperandNumber()] =
                DimRole::Feature;
            layout.operands[stats.getNormWeightMutable().getOperandNumber()] =
                DimRole::Feature;
            layout.results.assign(op->getNumResults(), DimRole::Token);
            layout.results[0] = DimRole::Value;
            layout.valueOperand = stats.getSources().getBeginOperandIndex();
            return true;
          })
          .Case([&](AggregateGradOp grad) {
            // The backward of aggregate: the source gradients are per token,
            // the query and gain gradients sums over the tokens.
            layout.numTokenDims = rankOf(grad.getGrad()) - 1;
            layout.tokensAreReduction = true;
            layout.operands.assign(op->getNumOperands(), DimRole::Value);
            layout.operands[grad.getQueryMutable().getOperandNumber()] =
                DimRole::Feature;
            layout.operands[grad.getNormWeightMutable().getOperandNumber()] =
                DimRole::Feature;
            layout.operands[grad.getLseMutable().getOperandNumber()] =
                DimRole::Token;
            for (OpOperand &r : grad.getInvRmsMutable())
              layout.operands[r.getOperandNumber()] = DimRole::Token;
            layout.results.assign(op->getNumResults(), DimRole::Value);
            layout.results[cast<OpResult>(grad.getQueryGrad())
                               .getResultNumber()] = DimRole::Feature;
            layout.results[cast<OpResult>(grad.getNormWeightGrad())
                               .getResultNumber()] = DimRole::Feature;
            layout.valueOperand = grad.getSources().getBeginOperandIndex();
            return true;
          })
          .Case([&](MergeGradOp grad) {
            // The backward of merge: per-token gradients of out, lse and
            // update; the query, gain and norm gain gradients are sums over
            // the tokens.
            layout.numTokenDims = rankOf(grad.getUpdate()) - 1;
            layout.tokensAreReduction = true;
            layout.operands.assign(op->getNumOperands(), DimRole::Value);
            layout.operands[grad.getLseMutable().getOperandNumber()] =
                DimRole::Token;
            layout.operands[grad.getQueryMutable().getOperandNumber()] =
                DimRole::Feature;
            layout.operands[grad.getNormWeightMutable().getOperandNumber()] =
                DimRole::Feature;
            for (OpOperand &g : grad.getNormGainMutable())
              layout.operands[g.getOperandNumber()] = DimRole::Feature;
            layout.results.assign(op->getNumResults(), DimRole::Value);
            for (Value r : {Value(grad.getLseGrad())})
              layout.results[cast<OpResult>(r).getResultNumber()] =
                  DimRole::Token;
            for (Value r :
                 {Value(grad.getQueryGrad()), Value(grad.getNormWeightGrad()),
                  Value(grad.getNormGainGrad())})
              if (r)
                layout.results[cast<OpResult>(r).getResultNumber()] =
                    DimRole::Feature;
            layout.valueOperand = grad.getUpdateMutable().getOperandNumber();
            return true;
          })
          .Case([&](BlockScoreGradOp grad) {
            // The backward of block_score: the source gradients are per
            // token and summed over the queries S; the queries' and gains'
            // gradients are sums over the tokens.
            layout.numTokenDims = rankOf(grad.getSources().front()) - 1;
            layout.stacked = true;
            layout.tokensAreReduction = true;
            layout.queriesAreReduction = true;
            layout.operands.assign(op->getNumOperands(), DimRole::Value);
            layout.rowsOperand = grad.getQueriesMutable().getOperandNumber();
            layout.operands[layout.rowsOperand] = DimRole::Rows;
            layout.operands[grad.getNormWeightsMutable().getOperandNumber()] =
                DimRole::Rows;
            layout.operands[grad.getLseMutable().getOperandNumber()] =
                DimRole::StackedToken;
            for (OpOperand &r : grad.getInvRmsMutable())
              layout.operands[r.getOperandNumber()] = DimRole::Token;
            layout.operands[grad.getOutGradMutable().getOperandNumber()] =
                DimRole::Stacked;
            layout.operands[grad.getLseGradMutable().getOperandNumber()] =
                DimRole::StackedToken;
            layout.results.assign(op->getNumResults(), DimRole::Value);
            for (Value r : {Value(grad.getQueriesGrad()),
                            Value(grad.getNormWeightsGrad())})
              layout.results[cast<OpResult>(r).getResultNumber()] =
                  DimRole::Rows;
            layout.valueOperand = grad.getSources().getBeginOperandIndex();
            return true;
          })
          .Case([&](BlockSumOp sum) {
            layout.numTokenDims = rankOf(sum.getResult()) - 1;
            layout.featureIsReduction = false;
            layout.operands.assign(op->getNumOperands(), DimRole::Value);
            layout.results.assign(op->getNumResults(), DimRole::Value);
            return true;
          })
          .Case([&](InvRmsOp rms) {
            layout.numTokenDims = rankOf(rms.getInput()) - 1;
            layout.operands.assign(op->getNumOperands(), DimRole::Token);
            layout.operands[rms.getInputMutable().getOperandNumber()] =
                DimRole::Value;
            layout.results.assign(op->getNumResults(), DimRole::Token);
            layout.valueOperand = rms.getInputMutable().getOperandNumber();
            return true;
          })
          .Case([&](BlockScoreOp score) {
            layout.numTokenDims = rankOf(score.getSources().front()) - 1;
            layout.stacked = true;
            layout.operands.assign(op->getNumOperands(), DimRole::Value);
            layout.rowsOperand = score.getQueriesMutable().getOperandNumber();
            layout.operands[layout.rowsOperand] = DimRole::Rows;
            layout.operands[score.getNormWeightsMutable().getOperandNumber()] =
                DimRole::Rows;
            for (OpOperand &r : score.getInvRmsMutable())
              layout.operands[r.getOperandNumber()] = DimRole::Token;
            layout.results = {DimRole::Stacked, DimRole::StackedToken};
            layout.valueOperand = score.getSources().getBeginOperandIndex();
            return true;
          })
          .Case([&](MergeOp merge) {
            layout.numTokenDims = rankOf(merge.getResult()) - 1;
            layout.operands.assign(op->getNumOperands(), DimRole::Value);
            layout.operands[merge.getLseMutable().getOperandNumber()] =
                DimRole::Token;
            layout.operands[merge.getQueryMutable().getOperandNumber()] =
                DimRole::Feature;
            layout.operands[merge.getNormWeightMutable().getOperandNumber()] =
                DimRole::Feature;
            // The norm gain, when present, is the last optional operand.
            OperandRange tail = merge.getOptionalOperands();
            if (merge.getNormGain())
              layout.operands[tail.getBeginOperandIndex() + tail.size() - 1] =
                  DimRole::Feature;
            layout.results.assign(op->getNumResults(), DimRole::Value);
            layout.valueOperand = merge.getOutMutable().getOperandNumber();
            return true;
          })
          .Default([](Operation *) { return false; });
  if (!ok)
    return failure();
  if (auto dps = dyn_cast<DestinationStyleOpInterface>(op))
    for (OpOperand &init : dps.getDpsInitsMutable())
      layout.operands[init.getOperandNumber()] =
          layout.results[dps.getTiedOpResult(&init).getResultNumber()];
  return layout;
}
