//===- BufferizableOpInterfaceImpl.cpp - Bufferization of attnres ops -----===//
//
// Part of the attnres project.
//
// External models of bufferization::BufferizableOpInterface for every
// attnres op, so that upstream `one-shot-bufferize` bufferizes them with no
// attnres pass (docs/interfaces-tiling-sharding.md, "Bufferization").
//
// The ops have no memref form. `bufferize` replaces an op by its
// decomposition into linalg on tensors (linalg::AggregatedOpInterface,
// DecompositionInterfaceImpl.cpp: the one description of each op's math),
// and bufferizes the new ops at once with their own models (the
// bufferization driver accepts tensor ops created during `bufferize`).
//
// What One-Shot Analysis sees is the op itself: which operands it reads,
// which it writes (block_score's `outs`, aggregate_grad's and
// block_score_grad's accumulators) and which results alias them. The
// decomposition then must not write anywhere else. One-Shot Analysis ran before
// the decomposition existed, so the new ops have no in-place decisions and the
// driver lets each of them write into the buffer of its init. A new op may
// therefore write in place into its init only if
//   * the init is a destination of the decomposed op (One-Shot Analysis
//     checked that write, and copy insertion gave the op a copy where it
//     conflicts) that no other new op uses, or
//   * the init has no other use and is a new tensor.empty or the result of a
//     new destination-style op (a chain tensor.empty -> linalg.fill ->
//     linalg.generic, whose values nothing else reads).
// Every other init is first copied (bufferization.alloc_tensor with `copy`):
// the decomposition never writes into a buffer the analysis did not see
// being written.
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

//===----------------------------------------------------------------------===//
// Which operands an op writes
//===----------------------------------------------------------------------===//

/// The operands an op writes, each tied to the result that is (equivalent
/// to) its buffer: block_score's `outs` (spec D.4: written, never read) and
/// aggregate_grad's and block_score_grad's accumulators (spec I: read and
/// written, result i is accumulator i). Every other operand is only read, and
/// every other result is a new buffer.
static OpOperand *tiedOperand(Operation *op, OpResult result) {
  if (auto dps = dyn_cast<DestinationStyleOpInterface>(op))
    return dps.getTiedOpOperand(result);
  auto accumulator = [&](MutableOperandRange accs) -> OpOperand * {
    if (result.getResultNumber() < accs.size())
      return &accs[result.getResultNumber()];
    return nullptr;
  };
  if (auto grad = dyn_cast<AggregateGradOp>(op))
    return accumulator(grad.getAccumulatorsMutable());
  if (auto grad = dyn_cast<BlockScoreGradOp>(op))
    return accumulator(grad.getAccumulatorsMutable());
  return nullptr;
}

static OpResult tiedResult(Operation *op, OpOperand &operand) {
  for (OpResult result : op->getResults())
    if (tiedOperand(op, result) == &operand)
      return result;
  return {};
}

//===----------------------------------------------------------------------===//
// Bufferization by decomposition
//===----------------------------------------------------------------------===//

/// Whether a new op may write in place into `init` (see the file comment).
/// `newOps` are the ops the decomposition created, `dests` the decomposed
/// op's written operands.
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

/// Whether `v` is `dest` written in place: `dest` itself, or the result of a
/// chain of destination-style ops (and casts) that starts at `dest`.
static bool isWrittenInto(Value v, Value dest) {
  while (v != dest) {
    Operation *def = v.getDefiningOp();
    if (auto cast = dyn_cast_or_null<tensor::CastOp>(def)) {
      v = cast.getSource();
      continue;
    }
    auto dps = dyn_cast_or_null<DestinationStyleOpInterface>(def);
    if (!dps)
      return false;
    v = dps.getTiedOpOperand(cast<OpResult>(v))->get();
  }
  return true;
}

/// A new buffer holding a copy of `v` (the sizes come from `v`).
static Value copyTensor(OpBuilder &b, Location loc, Value v) {
  return AllocTensorOp::create(b, loc, cast<RankedTensorType>(v.getType()),
                               /*dynamicSizes=*/ValueRange(), v);
}

static bool hasTensorOperandOrResult(Operation *op) {
  auto isTensor = [](Type t) { return isa<TensorType>(t); };
  return llvm::any_of(op->getOperandTypes(), isTensor) ||
         llvm::any_of(op->getResultTypes(), isTensor);
}

/// Replaces `op` by its decomposition and bufferizes the new ops at once, in
/// order. (The driver would bufferize them too, but only after every op that
/// was in the IR before, whose buffers of the new values would then get a
/// fully dynamic layout, and copies to the identity layout at function
/// boundaries.) Ops that the new ops create in turn (the
/// bufferization.alloc_tensor of a tensor.empty) are left to the driver.
static LogicalResult
bufferizeByDecomposition(Operation *op, RewriterBase &rewriter,
                         const BufferizationOptions &options,
                         BufferizationState &state) {
  auto decomposable = dyn_cast<linalg::AggregatedOpInterface>(op);
  if (!decomposable)
    return op->emitOpError(
        "cannot be bufferized: its decomposition into linalg "
        "(registerDecompositionInterfaceExternalModels) is not registered");
  SmallVector<Value> dests(op->getNumResults());
  for (OpResult result : op->getResults())
    if (OpOperand *operand = tiedOperand(op, result))
      dests[result.getResultNumber()] = operand->get();

  Operation *before = op->getPrevNode();
  FailureOr<SmallVector<Value>> values =
      decomposable.decomposeOperation(rewriter);
  if (failed(values))
    return failure();
  DenseSet<Operation *> newOps;
  SmallVector<Operation *> toBufferize;
  Operation *first = before ? before->getNextNode() : &op->getBlock()->front();
  for (Operation *it = first; it != op; it = it->getNextNode()) {
    toBufferize.push_back(it);
    it->walk([&](Operation *nested) { newOps.insert(nested); });
  }

  // A result is either its destination written in place (what the analysis
  // was told) or a new buffer. A value the decomposition did not create (an
  // operand passed through, such as `update` for the new partial sum of a
  // merge without `partial`) must not become a new result's buffer, so it is
  // copied.
  for (unsigned i = 0, e = values->size(); i < e; ++i) {
    Value &v = (*values)[i];
    if (dests[i]) {
      if (!isWrittenInto(v, dests[i]))
        return op->emitOpError("decomposition does not write result #")
               << i << " into its destination";
      continue;
    }
    Operation *def = v.getDefiningOp();
    if (def && newOps.contains(def) && !llvm::is_contained(dests, v))
      continue;
    v = copyTensor(rewriter, op->getLoc(), v);
  }
  SmallVector<Value> writtenDests;
  for (Value dest : dests)
    if (dest)
      writtenDests.push_back(dest);
  for (Operation *newOp : newOps) {
    auto dps = dyn_cast<DestinationStyleOpInterface>(newOp);
    if (!dps)
      continue;
    for (OpOperand &init : dps.getDpsInitsMutable()) {
      if (!isa<RankedTensorType>(init.get().getType()))
        continue;
      if (mayWriteInPlace(init.get(), newOps, writtenDests))
        continue;
      if (llvm::is_contained(writtenDests, init.get()))
        return op->emitOpError(
            "decomposition uses a destination more than once");
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPoint(newOp);
      Value copy = copyTensor(rewriter, newOp->getLoc(), init.get());
      rewriter.modifyOpInPlace(newOp, [&] { init.set(copy); });
    }
  }
  rewriter.replaceOp(op, *values);

  for (Operation *newOp : toBufferize) {
    auto bufferizable = options.dynCastBufferizableOp(newOp);
    if (!bufferizable || !hasTensorOperandOrResult(newOp))
      continue;
    rewriter.setInsertionPoint(newOp);
    if (failed(bufferizable.bufferize(rewriter, options, state)))
      return newOp->emitError("failed to bufferize op");
  }
  return success();
}

//===----------------------------------------------------------------------===//
// External model
//===----------------------------------------------------------------------===//

namespace {
/// One model for every attnres op: operands are read except block_score's
/// `outs` (written only); aggregate_grad's accumulators are read and
/// written; a written operand's buffer is its tied result's, every other
/// result is a new buffer.
template <typename OpTy>
struct AttnResBufferizationModel
    : public BufferizableOpInterface::ExternalModel<
          AttnResBufferizationModel<OpTy>, OpTy> {
  bool bufferizesToAllocation(Operation *op, Value value) const {
    auto result = dyn_cast<OpResult>(value);
    return result && !tiedOperand(op, result);
  }
  bool bufferizesToMemoryRead(Operation *op, OpOperand &operand,
                              const AnalysisState &) const {
    return !isa<DestinationStyleOpInterface>(op) ||
           !cast<DestinationStyleOpInterface>(op).isDpsInit(&operand);
  }
  bool bufferizesToMemoryWrite(Operation *op, OpOperand &operand,
                               const AnalysisState &) const {
    return static_cast<bool>(tiedResult(op, operand));
  }
  AliasingValueList getAliasingValues(Operation *op, OpOperand &operand,
                                      const AnalysisState &) const {
    if (OpResult result = tiedResult(op, operand))
      return {{result, BufferRelation::Equivalent}};
    return {};
  }
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    return bufferizeByDecomposition(op, rewriter, options, state);
  }
};

template <typename... OpTys> static void attachModels(MLIRContext *ctx) {
  (OpTys::template attachInterface<AttnResBufferizationModel<OpTys>>(*ctx),
   ...);
}
} // namespace

void mlir::attnres::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, AttnResDialect *) {
    ctx->loadDialect<bufferization::BufferizationDialect>();
    attachModels<AggregateOp, BlockSumOp, InvRmsOp, BlockScoreOp, MergeOp,
                 AggregateStatsOp, AggregateGradOp, BlockScoreGradOp,
                 MergeGradOp>(ctx);
  });
}
