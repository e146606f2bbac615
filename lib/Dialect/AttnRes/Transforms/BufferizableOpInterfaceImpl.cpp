//===- BufferizableOpInterfaceImpl.cpp - Bufferization of attnres ops -----===//
//
// Part of the attnres project.
//
// External models of bufferization::BufferizableOpInterface for every
// attnres op. The ops have no memref form: `bufferize` replaces an op by its
// decomposition into linalg on tensors (linalg::AggregatedOpInterface, the
// one description of each op's math), and the bufferization driver then
// bufferizes the ops that the decomposition created, as it does every op
// inserted while it runs.
//
// One-Shot Analysis ran before the decomposition existed, so the new ops
// have no in-place decisions; without a copy they would all write in place.
// That is safe along a chain (tensor.empty -> linalg.fill -> linalg.generic)
// where each value has one use, so a new op writes in place into a value
// only if that value has no other use and is a new tensor.empty, the result
// of a new destination-style op, or a destination of the decomposed op
// (whose in-place write One-Shot Analysis has checked, inserting a copy
// where it conflicts). Every other destination is first copied
// (bufferization.alloc_tensor with `copy`).
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/BufferizableOpInterfaceImpl.h"

#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::bufferization;

/// Whether a new op may write in place into `init` (see the file comment).
/// `newOps` are the ops the decomposition created, `dests` the decomposed
/// op's destination operands.
static bool mayWriteInPlace(Value init, const DenseSet<Operation *> &newOps,
                            ArrayRef<Value> dests) {
  if (llvm::is_contained(dests, init))
    return llvm::count(dests, init) == 1 &&
           llvm::count_if(init.getUses(), [&](OpOperand &use) {
             return newOps.contains(use.getOwner());
           }) == 1;
  if (!init.hasOneUse())
    return false;
  Operation *def = init.getDefiningOp();
  return def && newOps.contains(def) &&
         (isa<tensor::EmptyOp>(def) || isa<DestinationStyleOpInterface>(def));
}

/// A new buffer holding a copy of `v` (the sizes come from `v`).
static Value copyTensor(OpBuilder &b, Location loc, Value v) {
  return AllocTensorOp::create(b, loc, cast<RankedTensorType>(v.getType()),
                               /*dynamicSizes=*/ValueRange(), v);
}

/// Replaces `op` by its decomposition; the driver bufferizes the new ops.
static LogicalResult bufferizeByDecomposition(Operation *op,
                                              RewriterBase &rewriter) {
  SmallVector<Value> dests;
  if (auto dps = dyn_cast<DestinationStyleOpInterface>(op))
    llvm::append_range(dests, dps.getDpsInits());
  Operation *before = op->getPrevNode();
  FailureOr<SmallVector<Value>> values =
      cast<linalg::AggregatedOpInterface>(op).decomposeOperation(rewriter);
  if (failed(values))
    return failure();
  DenseSet<Operation *> newOps;
  Operation *first = before ? before->getNextNode() : &op->getBlock()->front();
  for (Operation *it = first; it != op; it = it->getNextNode())
    it->walk([&](Operation *nested) { newOps.insert(nested); });
  // A value the decomposition did not create (an operand passed through,
  // such as `update` for the new partial sum of a merge without `partial`)
  // must not become the result's buffer: the result is a new buffer to
  // One-Shot Analysis, so it is copied.
  for (Value &v : *values) {
    Operation *def = v.getDefiningOp();
    if (def && newOps.contains(def))
      continue;
    v = copyTensor(rewriter, op->getLoc(), v);
  }
  for (Operation *newOp : newOps) {
    auto dps = dyn_cast<DestinationStyleOpInterface>(newOp);
    if (!dps)
      continue;
    for (OpOperand &init : dps.getDpsInitsMutable()) {
      auto type = dyn_cast<RankedTensorType>(init.get().getType());
      if (!type || mayWriteInPlace(init.get(), newOps, dests))
        continue;
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPoint(newOp);
      Value copy = copyTensor(rewriter, newOp->getLoc(), init.get());
      rewriter.modifyOpInPlace(newOp, [&] { init.set(copy); });
    }
  }
  rewriter.replaceOp(op, *values);
  return success();
}

namespace {
/// The value forms: every operand is read, none is written, and every
/// result is a new buffer.
template <typename OpTy>
struct ValueFormBufferizationModel
    : public BufferizableOpInterface::ExternalModel<
          ValueFormBufferizationModel<OpTy>, OpTy> {
  bool bufferizesToAllocation(Operation *, Value) const { return true; }
  bool bufferizesToMemoryRead(Operation *, OpOperand &,
                              const AnalysisState &) const {
    return true;
  }
  bool bufferizesToMemoryWrite(Operation *, OpOperand &,
                               const AnalysisState &) const {
    return false;
  }
  AliasingValueList getAliasingValues(Operation *, OpOperand &,
                                      const AnalysisState &) const {
    return {};
  }
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &,
                          BufferizationState &) const {
    return bufferizeByDecomposition(op, rewriter);
  }
};

/// block_score: its `outs` are written, never read (spec D.4), and each
/// result is its destination.
struct BlockScoreBufferizationModel
    : public BufferizableOpInterface::ExternalModel<
          BlockScoreBufferizationModel, BlockScoreOp> {
  bool bufferizesToMemoryRead(Operation *op, OpOperand &operand,
                              const AnalysisState &) const {
    return !cast<DestinationStyleOpInterface>(op).isDpsInit(&operand);
  }
  bool bufferizesToMemoryWrite(Operation *op, OpOperand &operand,
                               const AnalysisState &) const {
    return cast<DestinationStyleOpInterface>(op).isDpsInit(&operand);
  }
  AliasingValueList getAliasingValues(Operation *op, OpOperand &operand,
                                      const AnalysisState &) const {
    auto dps = cast<DestinationStyleOpInterface>(op);
    if (dps.isDpsInit(&operand))
      return {{dps.getTiedOpResult(&operand), BufferRelation::Equivalent}};
    return {};
  }
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &,
                          BufferizationState &) const {
    return bufferizeByDecomposition(op, rewriter);
  }
};

template <typename... OpTys> static void attachValueForms(MLIRContext *ctx) {
  (OpTys::template attachInterface<ValueFormBufferizationModel<OpTys>>(*ctx),
   ...);
}
} // namespace

void mlir::attnres::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, AttnResDialect *) {
    ctx->loadDialect<bufferization::BufferizationDialect>();
    attachValueForms<AggregateOp, BlockSumOp, InvRmsOp, MergeOp>(ctx);
    BlockScoreOp::attachInterface<BlockScoreBufferizationModel>(*ctx);
  });
}
