//===- FuseSummaries.cpp - Block AttnRes to the two-phase form ------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// Rewrites every Block AttnRes chain into the two-phase computation of
// section 5 of the semantics (docs/block-form.md): per block, one batched
// phase-1 `attnres.block_score` of all its pseudo-queries over the completed
// summaries, whose inverse RMS is computed once by `attnres.inv_rms` when
// each summary completes, then one phase-2 `attnres.merge` per later
// sublayer, fused with the update of the partial sum.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"
#include "attnres/Dialect/AttnRes/Analysis/NormMatch.h"
#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Dominance.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_FUSESUMMARIES
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

namespace {
/// Rewrites one chain. The structure comes from the chain analysis.
class ChainFuser {
public:
  ChainFuser(Chain &chain, float epsilon)
      : chain(chain), builder(chain.final->getContext()),
        type(chain.getSourceType()), epsilon(builder.getF32FloatAttr(epsilon)) {
  }

  /// Makes the pseudo-queries and gains of every block available where the
  /// block starts (phase 1 scores them all there), hoisting their side-effect
  /// free definitions (and loads of parameters that nothing stores to) when
  /// they come later, e.g. the `ml_program.global_load` that the detection
  /// pass puts before each aggregation. Fails when that is not possible.
  LogicalResult prepare(DominanceInfo &dom, std::string &reason) {
    for (auto [block, rows] : llvm::enumerate(getRows())) {
      if (rows.empty())
        continue;
      Operation *start = rows.front()->aggregate;
      SmallVector<Operation *> toMove;
      for (ChainSublayer *sub : rows)
        for (Value v :
             {sub->aggregate.getQuery(), sub->aggregate.getNormWeight()})
          if (!collectHoist(v, start, dom, toMove)) {
            reason = "the pseudo-query or gain of a sublayer of block " +
                     std::to_string(block + 1) +
                     " is computed after the block starts and cannot be "
                     "moved there";
            return failure();
          }
      for (Operation *op : toMove)
        op->moveBefore(start);
    }
    return success();
  }

  void run() {
    SmallVector<SmallVector<ChainSublayer *>> rowsPerBlock = getRows();
    unsigned numBlocks = chain.getNumBlocks();
    invRms.assign(numBlocks + 1, Value());
    SmallVector<Operation *> dead;

    Value newPartial;
    for (unsigned n = 1; n <= numBlocks; ++n) {
      ArrayRef<ChainSublayer *> rows = rowsPerBlock[n - 1];
      if (rows.empty())
        continue; // Only the folded first sublayer: h_0 = b_0.
      SmallVector<Value> queries, gains;
      for (ChainSublayer *sub : rows) {
        queries.push_back(sub->aggregate.getQuery());
        gains.push_back(sub->aggregate.getNormWeight());
      }
      Operation *start = rows.front()->aggregate;
      auto [out, lse] = createBlockScore(start, queries, gains, n);

      for (auto [row, sub] : llvm::enumerate(rows)) {
        AggregateOp agg = sub->aggregate;
        builder.setInsertionPoint(agg);
        Location loc = agg.getLoc();
        Value outRow = extractRow(loc, out, row);
        Value h;
        if (sub->index == 0) {
          h = outRow;
          newPartial = {};
        } else {
          // h = merge over [b_0 .. b_{n-1}] (phase 1) and b_n^i, with
          // b_n^i = b_n^{i-1} + y_{i-1} computed by the same op.
          ChainSublayer &prev =
              chain.sublayers[sub - chain.sublayers.data() - 1];
          Value lseRow = extractRow(loc, lse, row);
          Value partial = sub->index >= 2 ? newPartial : Value();
          // The sublayer's own RMSNorm of h, fused into the merge when it
          // reads h directly and its gain can be made available here.
          std::optional<RMSNormMatch> norm = findFusableNorm(agg);
          MergeOp merge;
          if (norm) {
            builder.setInsertionPoint(agg);
            Value gain = norm->gain;
            auto vecType = RankedTensorType::get({type.getShape().back()},
                                                 type.getElementType());
            if (gain.getType() != vecType)
              gain = tensor::CastOp::create(builder, loc, vecType, gain);
            merge = MergeOp::create(
                builder, loc, outRow, lseRow, agg.getQuery(),
                agg.getNormWeight(), prev.output, partial, gain,
                epsilon.getValueAsDouble(), static_cast<float>(norm->epsilon));
          } else {
            merge = MergeOp::create(builder, loc, type, type, outRow, lseRow,
                                    agg.getQuery(), agg.getNormWeight(),
                                    prev.output, partial, epsilon);
          }
          h = merge.getResult();
          newPartial = merge.getNewPartial();
          if (norm) {
            norm->result.replaceAllUsesWith(merge.getNormed());
            eraseDeadOps(norm->ops);
            ++numFusedNorms;
          }
          // The next sum of the block (partial or summary) continues from
          // the merge's partial sum, and the block form's own partial-sum op
          // becomes dead.
          Value old = sub->partial;
          unsigned k = sub - chain.sublayers.data();
          Value next = k + 1 < chain.sublayers.size() &&
                               chain.sublayers[k + 1].block == sub->block
                           ? chain.sublayers[k + 1].partial
                           : chain.summaries[sub->block];
          if (auto sum = next.getDefiningOp<BlockSumOp>())
            for (OpOperand &operand : sum->getOpOperands())
              if (operand.get() == old)
                operand.set(newPartial);
          if (old != prev.output) {
            old.replaceUsesWithIf(newPartial, [&](OpOperand &use) {
              return use.getOwner() != merge &&
                     dominance->properlyDominates(merge, use.getOwner());
            });
            if (old.use_empty() || llvm::all_of(old.getUsers(), [&](auto *u) {
                  return u == agg.getOperation();
                }))
              dead.push_back(old.getDefiningOp());
          }
        }
        agg.getResult().replaceAllUsesWith(h);
        agg.erase();
      }
      completeSummary(n, rows.back(), newPartial);
    }

    // The final aggregation: one query over [b_0 .. b_N], reusing the
    // inverse RMS of every summary.
    AggregateOp fin = chain.final;
    auto [out, lse] = createBlockScore(fin, {fin.getQuery()},
                                       {fin.getNormWeight()}, numBlocks + 1);
    (void)lse;
    builder.setInsertionPoint(fin);
    Value h = extractRow(fin.getLoc(), out, 0);
    fin.getResult().replaceAllUsesWith(h);
    fin.erase();
    for (Operation *op : dead)
      if (op && op->use_empty())
        op->erase();
  }

  DominanceInfo *dominance = nullptr;
  /// Number of sublayer RMSNorms fused into merges by run().
  unsigned numFusedNorms = 0;

private:
  /// The RMSNorm that reads the result of `agg` (the sublayer's input h)
  /// directly, when its gain is or can be made available before `agg`.
  std::optional<RMSNormMatch> findFusableNorm(AggregateOp agg) {
    for (RMSNormMatch &norm : findRMSNormsOf(agg.getResult())) {
      SmallVector<Operation *> toMove;
      if (!collectHoist(norm.gain, agg, *dominance, toMove))
        continue;
      for (Operation *op : toMove)
        op->moveBefore(agg);
      return norm;
    }
    return std::nullopt;
  }

  /// Erases the ops of a replaced norm, last first, with the tensor.empty,
  /// linalg.fill and constants defining their operands when those become
  /// dead.
  static void eraseDeadOps(ArrayRef<Operation *> ops) {
    SmallVector<Operation *> worklist(ops.rbegin(), ops.rend());
    llvm::SmallPtrSet<Operation *, 16> erased;
    for (unsigned i = 0; i < worklist.size(); ++i) {
      Operation *op = worklist[i];
      if (erased.count(op) || !op->use_empty())
        continue;
      bool mine = llvm::is_contained(ops, op);
      if (!mine && !isa<tensor::EmptyOp, linalg::FillOp, arith::ConstantOp>(op))
        continue;
      // Operands, also those captured by the op's body (an epsilon constant).
      op->walk([&](Operation *inner) {
        for (Value operand : inner->getOperands())
          if (Operation *def = operand.getDefiningOp())
            if (!op->isAncestor(def))
              worklist.push_back(def);
      });
      erased.insert(op);
      op->erase();
    }
  }

  /// Makes summary `b_n` the sum of the partial sum of the block's last
  /// merge and the block's last output (spec H.6). The block form may have
  /// written it as one n-input block_sum (or nested sums) of all the block's
  /// outputs; run() patches only the two-input form.
  void completeSummary(unsigned n, ChainSublayer *last, Value partial) {
    Value b = chain.summaries[n];
    Operation *def = b.getDefiningOp();
    if (last->index == 0 || !partial || !def)
      return;
    Value y = last->output;
    if (def->getNumOperands() == 2 && def->getOperand(0) == partial &&
        def->getOperand(1) == y)
      return;
    builder.setInsertionPointAfter(def);
    auto sum = BlockSumOp::create(builder, b.getLoc(), ValueRange{partial, y});
    b.replaceAllUsesExcept(sum.getResult(), sum);
    chain.summaries[n] = sum.getResult();
    if (def->use_empty() && isMemoryEffectFree(def))
      def->erase();
  }

  /// Whether `op` may move up within its block: no regions, and no memory
  /// effects other than loading an ml_program global that is never stored.
  bool isHoistable(Operation *op) {
    if (op->getNumRegions())
      return false;
    if (isMemoryEffectFree(op))
      return true;
    auto load = dyn_cast<ml_program::GlobalLoadOp>(op);
    if (!load)
      return false;
    Operation *module = op->getParentOfType<ModuleOp>();
    SymbolRefAttr global = load.getGlobalAttr();
    WalkResult stored = module->walk([&](Operation *other) {
      if (auto store = dyn_cast<ml_program::GlobalStoreOp>(other))
        if (store.getGlobalAttr() == global)
          return WalkResult::interrupt();
      if (auto store = dyn_cast<ml_program::GlobalStoreGraphOp>(other))
        if (store.getGlobalAttr() == global)
          return WalkResult::interrupt();
      return WalkResult::advance();
    });
    return !stored.wasInterrupted();
  }

  /// Collects (operands first) the ops to move before `point` so that `v`
  /// dominates it.
  bool collectHoist(Value v, Operation *point, DominanceInfo &dom,
                    SmallVectorImpl<Operation *> &toMove) {
    if (dom.properlyDominates(v, point))
      return true;
    Operation *def = v.getDefiningOp();
    if (!def || def->getBlock() != point->getBlock() || !isHoistable(def))
      return false;
    if (llvm::is_contained(toMove, def))
      return true;
    for (Value operand : def->getOperands())
      if (!collectHoist(operand, point, dom, toMove))
        return false;
    toMove.push_back(def);
    return true;
  }

  /// The sublayers with an aggregation, grouped by block.
  SmallVector<SmallVector<ChainSublayer *>> getRows() {
    SmallVector<SmallVector<ChainSublayer *>> rows(chain.getNumBlocks());
    for (ChainSublayer &sub : chain.sublayers)
      if (sub.aggregate)
        rows[sub.block - 1].push_back(&sub);
    return rows;
  }

  /// The inverse RMS of summary `j`, computed once right after it completes.
  Value getInvRms(unsigned j) {
    if (invRms[j])
      return invRms[j];
    Value b = chain.summaries[j];
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointAfterValue(b);
    SmallVector<int64_t> shape(type.getShape().drop_back());
    auto rType = RankedTensorType::get(shape, builder.getF32Type());
    invRms[j] = InvRmsOp::create(builder, b.getLoc(), rType, b, epsilon);
    return invRms[j];
  }

  /// Sizes of `v` (a tensor) as OpFoldResults, prefixed with `rows`.
  SmallVector<OpFoldResult> getSizes(Location loc, Value v, int64_t rows,
                                     bool dropLast) {
    SmallVector<OpFoldResult> sizes{builder.getIndexAttr(rows)};
    SmallVector<OpFoldResult> dims = tensor::getMixedSizes(builder, loc, v);
    if (dropLast)
      dims.pop_back();
    llvm::append_range(sizes, dims);
    return sizes;
  }

  /// Stacks vectors `tensor<DxE>` into `tensor<RxDxE>`.
  Value stack(Location loc, ArrayRef<Value> vectors) {
    int64_t d = type.getShape().back();
    auto vecType = RankedTensorType::get({d}, type.getElementType());
    SmallVector<OpFoldResult> sizes{builder.getIndexAttr(vectors.size())};
    sizes.push_back(tensor::getMixedSize(builder, loc, vectors.front(), 0));
    Value dest =
        tensor::EmptyOp::create(builder, loc, sizes, type.getElementType());
    for (auto [r, v] : llvm::enumerate(vectors)) {
      Value src = v;
      if (src.getType() != vecType && !ShapedType::isDynamic(d))
        src = tensor::CastOp::create(builder, loc, vecType, src);
      SmallVector<OpFoldResult> offsets{builder.getIndexAttr(r),
                                        builder.getIndexAttr(0)};
      SmallVector<OpFoldResult> rowSizes{builder.getIndexAttr(1), sizes[1]};
      SmallVector<OpFoldResult> strides(2, builder.getIndexAttr(1));
      dest = tensor::InsertSliceOp::create(builder, loc, src, dest, offsets,
                                           rowSizes, strides);
    }
    return dest;
  }

  /// Phase 1 of the queries over summaries b_0 .. b_{n-1}, before `before`.
  std::pair<Value, Value> createBlockScore(Operation *before,
                                           ArrayRef<Value> queries,
                                           ArrayRef<Value> gains, unsigned n) {
    SmallVector<Value> sources(chain.summaries.begin(),
                               chain.summaries.begin() + n);
    SmallVector<Value> rms;
    for (unsigned j = 0; j < n; ++j)
      rms.push_back(getInvRms(j));
    builder.setInsertionPoint(before);
    Location loc = before->getLoc();
    Value w = stack(loc, queries);
    Value g = stack(loc, gains);
    int64_t rows = queries.size();
    Value b0 = chain.getEmbedding();
    Value outInit = tensor::EmptyOp::create(
        builder, loc, getSizes(loc, b0, rows, false), type.getElementType());
    Value lseInit = tensor::EmptyOp::create(
        builder, loc, getSizes(loc, b0, rows, true), builder.getF32Type());
    auto score =
        BlockScoreOp::create(builder, loc, outInit.getType(), lseInit.getType(),
                             w, g, sources, rms, outInit, lseInit, epsilon);
    return {score.getOut(), score.getLse()};
  }

  /// Row `row` of a phase-1 result (`tensor<Rx...>`), rank-reduced.
  Value extractRow(Location loc, Value stacked, int64_t row) {
    auto st = cast<RankedTensorType>(stacked.getType());
    SmallVector<OpFoldResult> sizes =
        tensor::getMixedSizes(builder, loc, stacked);
    sizes[0] = builder.getIndexAttr(1);
    SmallVector<OpFoldResult> offsets(st.getRank(), builder.getIndexAttr(0));
    offsets[0] = builder.getIndexAttr(row);
    SmallVector<OpFoldResult> strides(st.getRank(), builder.getIndexAttr(1));
    auto resultType =
        RankedTensorType::get(st.getShape().drop_front(), st.getElementType());
    return tensor::ExtractSliceOp::create(builder, loc, resultType, stacked,
                                          offsets, sizes, strides);
  }

  Chain &chain;
  OpBuilder builder;
  RankedTensorType type;
  FloatAttr epsilon;
  SmallVector<Value> invRms;
};

struct FuseSummariesPass
    : public attnres::impl::FuseSummariesBase<FuseSummariesPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto refuse = [&](Operation *op, const Twine &why) {
      if (report)
        emitRemark(op->getLoc()) << "attnres-fuse-summaries: " << why;
    };
    DominanceInfo dom(module);
    llvm::MapVector<Operation *, unsigned> liveBefore;
    SmallVector<std::pair<Location, std::string>> remarks;
    llvm::DenseSet<Operation *> leftAlone;
    // One chain at a time, found again after each rewrite: a later chain may
    // read an earlier chain's result (its embedding), which the rewrite
    // replaces.
    for (bool first = true;; first = false) {
      SmallVector<Chain> chains =
          first ? findChains(module, refuse) : findChains(module);
      if (first && report)
        for (Chain &chain : chains) {
          Operation *parent = chain.final->getParentOp();
          if (!liveBefore.count(parent))
            liveBefore[parent] = computeMaxLiveDepthSources(parent);
        }
      Chain *next = nullptr;
      for (Chain &chain : chains)
        if (!leftAlone.count(chain.final)) {
          next = &chain;
          break;
        }
      if (!next)
        break;
      Chain &chain = *next;
      leftAlone.insert(chain.final);
      std::optional<float> eps = chain.getUniformEpsilon();
      if (!eps) {
        emitWarning(chain.final.getLoc())
            << "attnres-fuse-summaries: the aggregations of this chain use "
               "different epsilons; the inverse RMS of a summary cannot be "
               "shared, chain left in block form";
        continue;
      }
      ChainFuser fuser(chain, *eps);
      fuser.dominance = &dom;
      std::string reason;
      if (failed(fuser.prepare(dom, reason))) {
        emitWarning(chain.final.getLoc())
            << "attnres-fuse-summaries: " << reason
            << "; chain left in block form";
        continue;
      }
      if (report) {
        unsigned s = chain.getBlockSize(), n = chain.getNumBlocks();
        unsigned l = chain.getNumSublayers();
        // Block 1 has no phase 1 when it only holds a folded sublayer 0.
        bool emptyFirst =
            !chain.sublayers.front().aggregate && chain.blockSizes.front() == 1;
        unsigned scores = n + 1 - (emptyFirst ? 1 : 0);
        remarks.emplace_back(
            chain.final.getLoc(),
            "attnres-fuse-summaries: " + describeChain(chain, s, n) +
                "; sources per aggregation: " +
                formatSourceCounts(chain.getSourceCounts()) +
                "; two-phase form: " + std::to_string(n + 1) + " inv_rms, " +
                std::to_string(scores) + " block_score, " +
                std::to_string(l - n) + " merge");
      }
      fuser.run();
      if (report && fuser.numFusedNorms)
        remarks.back().second += " (" + std::to_string(fuser.numFusedNorms) +
                                 " with the sublayer's RMSNorm fused)";
    }
    if (!report)
      return;
    for (auto &[loc, text] : remarks)
      emitRemark(loc) << text;
    for (auto [parent, before] : liveBefore)
      emitRemark(parent->getLoc())
          << "attnres-fuse-summaries: max live depth sources " << before
          << " -> " << computeMaxLiveDepthSources(parent);
  }
};
} // namespace
