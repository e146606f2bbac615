//===- SplitFreshDeallocs.cpp - free fresh buffers after their last use ---===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// The ownership-based deallocation pass frees everything a block allocated
// with one bufferization.dealloc at the block's end. A deep model's body is
// one block, so that op lists every temporary of the function: the
// simplification pass that follows compares its memrefs pairwise (quadratic
// in the number of sublayers) and every temporary stays allocated until the
// function returns. This pass takes the buffers that provably need nothing
// of the ownership machinery (fresh allocations of the same block, freed
// unconditionally, aliasing no retained value) out of the dealloc and frees
// each one after its last use. See docs/depth.md.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/IR/Matchers.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_SPLITFRESHDEALLOCS
#include "attnres/Dialect/AttnRes/Transforms/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;

/// Values that may alias a buffer are memrefs and the tensors that wrap them.
static bool mayCarryBuffer(Type type) {
  return isa<BaseMemRefType, TensorType>(type);
}

/// The op of `block` after which `alloc` can be freed: the last op of the
/// block, other than `dealloc` and `listingOp` (the op that gives `dealloc`
/// the buffer), that uses the buffer or any value that may alias it (every
/// memref- or tensor-typed result of an op that uses an alias, and of the op of
/// `block` that contains such a use). Returns null when the buffer must stay
/// with `dealloc`: an alias is retained by it, listed in it a second time,
/// reaches the block's terminator or another block, or is freed elsewhere.
static Operation *findLastUse(memref::AllocOp alloc,
                              bufferization::DeallocOp dealloc,
                              Operation *listingOp,
                              const DenseSet<Value> &retained,
                              const DenseMap<Value, unsigned> &listed) {
  Block *block = dealloc->getBlock();
  Operation *last = alloc;
  SmallVector<Value> worklist{alloc.getResult()};
  DenseSet<Value> aliases{alloc.getResult()};
  auto addAlias = [&](Value v) {
    if (mayCarryBuffer(v.getType()) && aliases.insert(v).second)
      worklist.push_back(v);
  };
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    if (retained.contains(v))
      return nullptr;
    if (v != alloc.getResult() && listed.contains(v))
      return nullptr;
    for (OpOperand &use : v.getUses()) {
      Operation *user = use.getOwner();
      if (user == dealloc || user == listingOp)
        continue;
      if (isa<memref::DeallocOp, bufferization::DeallocOp>(user))
        return nullptr;
      Operation *inBlock = block->findAncestorOpInBlock(*user);
      if (!inBlock || inBlock == block->getTerminator() ||
          dealloc->isBeforeInBlock(inBlock))
        return nullptr;
      for (Value r : user->getResults())
        addAlias(r);
      if (inBlock != user)
        for (Value r : inBlock->getResults())
          addAlias(r);
      if (last->isBeforeInBlock(inBlock))
        last = inBlock;
    }
  }
  return last;
}

namespace {
struct SplitFreshDeallocsPass
    : public attnres::impl::SplitFreshDeallocsBase<SplitFreshDeallocsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<bufferization::DeallocOp> deallocs;
    getOperation()->walk(
        [&](bufferization::DeallocOp op) { deallocs.push_back(op); });
    for (bufferization::DeallocOp dealloc : deallocs)
      split(dealloc);
  }

  void split(bufferization::DeallocOp dealloc) {
    DenseSet<Value> retained(dealloc.getRetained().begin(),
                             dealloc.getRetained().end());
    // How often each memref is listed: a buffer listed twice stays (freeing
    // one entry early would free it twice).
    DenseMap<Value, unsigned> listed;
    for (Value memref : dealloc.getMemrefs())
      ++listed[memref];
    SmallVector<Value> keptMemrefs, keptConditions;
    SmallVector<std::pair<Value, Operation *>> freed;
    for (auto [memref, condition] :
         llvm::zip_equal(dealloc.getMemrefs(), dealloc.getConditions())) {
      Operation *last = nullptr;
      // The ownership-based pass lists a buffer as the base buffer of a
      // memref.extract_strided_metadata of it, placed before the dealloc.
      Operation *listingOp = nullptr;
      auto alloc = memref.getDefiningOp<memref::AllocOp>();
      if (auto md = memref.getDefiningOp<memref::ExtractStridedMetadataOp>()) {
        if (md.getBaseBuffer() == memref &&
            md->getBlock() == dealloc->getBlock()) {
          alloc = md.getSource().getDefiningOp<memref::AllocOp>();
          listingOp = md;
        }
      }
      if (alloc && alloc->getBlock() == dealloc->getBlock() &&
          matchPattern(condition, m_One()) && listed.lookup(memref) == 1)
        last = findLastUse(alloc, dealloc, listingOp, retained, listed);
      if (!last) {
        keptMemrefs.push_back(memref);
        keptConditions.push_back(condition);
        continue;
      }
      freed.emplace_back(alloc.getResult(), last);
    }
    if (freed.empty())
      return;
    OpBuilder b(dealloc);
    for (auto [memref, last] : freed) {
      b.setInsertionPointAfter(last);
      memref::DeallocOp::create(b, dealloc.getLoc(), memref);
    }
    dealloc.getMemrefsMutable().assign(keptMemrefs);
    dealloc.getConditionsMutable().assign(keptConditions);
  }
};
} // namespace
