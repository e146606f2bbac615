//===- ChainAnalysis.cpp - AttnRes residual chains ------------------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::attnres;

//===----------------------------------------------------------------------===//
// Chain
//===----------------------------------------------------------------------===//

unsigned Chain::getBlockSize() const {
  unsigned s = 0;
  for (unsigned b : blockSizes)
    s = std::max(s, b);
  return s;
}

RankedTensorType Chain::getSourceType() const {
  return cast<RankedTensorType>(getEmbedding().getType());
}

std::optional<float> Chain::getUniformEpsilon() const {
  AggregateOp fin = final;
  float eps = fin.getEpsilon().convertToFloat();
  for (const ChainSublayer &s : sublayers) {
    AggregateOp agg = s.aggregate;
    if (agg && agg.getEpsilon().convertToFloat() != eps)
      return std::nullopt;
  }
  return eps;
}

SmallVector<unsigned> Chain::getSourceCounts() const {
  SmallVector<unsigned> counts;
  for (const ChainSublayer &s : sublayers)
    counts.push_back(s.block + (s.partial ? 1 : 0));
  counts.push_back(summaries.size());
  return counts;
}

//===----------------------------------------------------------------------===//
// Dependences
//===----------------------------------------------------------------------===//

bool mlir::attnres::dependsOn(Value value, Value from) {
  if (value == from)
    return true;
  SmallVector<Value> worklist{value};
  llvm::DenseSet<Value> seenValues{value};
  llvm::DenseSet<Operation *> seenOps;
  auto push = [&](Value v) {
    if (seenValues.insert(v).second)
      worklist.push_back(v);
  };
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    if (v == from)
      return true;
    Operation *def = v.getDefiningOp();
    if (!def || !seenOps.insert(def).second)
      continue;
    // Operands of the op and of every op nested in it (values captured from
    // above by its regions).
    def->walk([&](Operation *op) {
      for (Value operand : op->getOperands())
        push(operand);
    });
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Chain detection
//===----------------------------------------------------------------------===//

namespace {
/// A node of a candidate chain: an aggregation, or the folded first one.
struct Node {
  AggregateOp op; // null for the virtual first node
  SmallVector<Value> sources;
  Value result;
};
} // namespace

/// Whether `v` is a sum of tensors: `attnres.block_sum` of two or more
/// inputs, or a tensor `arith.addf`.
static Operation *getSumOp(Value v) {
  if (auto sum = v.getDefiningOp<BlockSumOp>())
    return sum.getInputs().size() >= 2 ? sum.getOperation() : nullptr;
  if (auto add = v.getDefiningOp<arith::AddFOp>())
    return isa<RankedTensorType>(add.getType()) ? add.getOperation() : nullptr;
  return nullptr;
}

/// The summands of `v` along the left spine of its sums: a sum's first
/// operand is flattened recursively, the others are kept as they are. So
/// `block_sum(block_sum(a, b), c)`, `block_sum(a, b, c)` and
/// `addf(addf(a, b), c)` all give `[a, b, c]`, in the order of the additions.
static void collectSummands(Value v, SmallVectorImpl<Value> &out) {
  Operation *sum = getSumOp(v);
  if (!sum) {
    out.push_back(v);
    return;
  }
  collectSummands(sum->getOperand(0), out);
  llvm::append_range(out, sum->getOperands().drop_front());
}

/// If `v` is the sum of `partial` and one more value, returns that value:
/// `block_sum(partial, y)` or `block_sum(y, partial)`, or any sum whose
/// summands (collectSummands) are those of `partial` followed by `y` (a
/// partial sum written as one n-input `block_sum` or as a chain of adds).
static Value getOtherSummand(Value v, Value partial) {
  Operation *sum = getSumOp(v);
  if (!sum)
    return {};
  if (sum->getNumOperands() == 2) {
    Value a = sum->getOperand(0), b = sum->getOperand(1);
    if (a == partial)
      return b;
    if (b == partial)
      return a;
  }
  SmallVector<Value> all, prefix;
  collectSummands(v, all);
  collectSummands(partial, prefix);
  if (all.size() != prefix.size() + 1 ||
      !llvm::equal(ArrayRef<Value>(all).drop_back(), prefix))
    return {};
  return all.back();
}

/// Whether aggregation `next` follows `prev` in a chain: its sources are
/// `prev`'s (all of them, or all but a trailing partial sum) plus one new
/// source computed from `prev`'s result.
static bool follows(const Node &prev, AggregateOp next) {
  ValueRange t = next.getSources();
  ArrayRef<Value> s = prev.sources;
  if (t.size() == s.size() + 1) {
    if (!llvm::equal(t.take_front(s.size()), s))
      return false;
  } else if (t.size() == s.size() && s.size() >= 2) {
    if (!llvm::equal(t.take_front(s.size() - 1), s.drop_back()))
      return false;
    // The trailing partial sum is updated: b^{i+1} = block_sum(b^i, y).
    if (t.back() == s.back() || !getOtherSummand(t.back(), s.back()))
      return false;
  } else {
    return false;
  }
  if (llvm::is_contained(s, t.back()))
    return false;
  return dependsOn(t.back(), prev.result);
}

static Node makeNode(AggregateOp op) {
  Node n;
  n.op = op;
  n.sources = llvm::to_vector(op.getSources());
  n.result = op.getResult();
  return n;
}

/// Classifies the nodes of a linked candidate into sublayers and blocks.
/// Returns failure with a reason when the structure is not Block AttnRes.
static LogicalResult buildChain(ArrayRef<Node> nodes, Chain &chain,
                                std::string &reason) {
  const Node &last = nodes.back();
  chain.final = last.op;
  chain.summaries = last.sources;
  ArrayRef<Value> summaries = chain.summaries;
  unsigned numSublayers = nodes.size() - 1;

  // Sources of each sublayer: [b_0 .. b_{c-1}] or [b_0 .. b_{c-1}, b_n^i].
  unsigned blocks = 0, index = 0;
  for (unsigned k = 0; k < numSublayers; ++k) {
    const Node &node = nodes[k];
    ArrayRef<Value> src = node.sources;
    ChainSublayer sub;
    sub.aggregate = node.op;
    sub.input = node.result;
    bool isPrefix = src.size() <= summaries.size() &&
                    llvm::equal(src, summaries.take_front(src.size()));
    if (isPrefix) {
      // i = 0: a new block starts after the `src.size()` completed ones.
      if (src.size() != blocks + 1) {
        reason = llvm::formatv("sublayer {0} reads {1} completed block "
                               "representations, expected {2}",
                               k, src.size(), blocks + 1);
        return failure();
      }
      ++blocks;
      index = 0;
    } else {
      unsigned c = src.size() - 1;
      if (c != blocks ||
          !llvm::equal(src.drop_back(), summaries.take_front(c))) {
        reason = llvm::formatv("sources of sublayer {0} are not the "
                               "completed block representations followed "
                               "by one partial sum",
                               k);
        return failure();
      }
      ++index;
      sub.partial = src.back();
    }
    sub.block = blocks;
    sub.index = index;
    chain.sublayers.push_back(sub);
  }
  if (summaries.size() != blocks + 1) {
    reason = llvm::formatv("the final aggregation reads {0} sources, expected "
                           "the {1} block representations",
                           summaries.size(), blocks + 1);
    return failure();
  }

  // Outputs y_k: what the next aggregation adds to the depth sources.
  for (unsigned k = 0; k < numSublayers; ++k) {
    ChainSublayer &sub = chain.sublayers[k];
    bool blockEnds =
        k + 1 == numSublayers || chain.sublayers[k + 1].block != sub.block;
    Value added =
        blockEnds ? summaries[sub.block] : chain.sublayers[k + 1].partial;
    Value y = sub.index == 0 ? added : getOtherSummand(added, sub.partial);
    if (!y || !dependsOn(y, sub.input)) {
      reason = llvm::formatv("the output of sublayer {0} is not summed into "
                             "its block",
                             k);
      return failure();
    }
    sub.output = y;
    if (sub.index == 0)
      chain.blockSizes.push_back(1);
    else
      ++chain.blockSizes.back();
  }
  return success();
}

static void findChainsInBlock(Block &block, SmallVectorImpl<Chain> &chains,
                              ChainRefusalFn onRefuse) {
  SmallVector<AggregateOp> aggs;
  for (Operation &op : block)
    if (auto agg = dyn_cast<AggregateOp>(op))
      aggs.push_back(agg);
  if (aggs.empty())
    return;

  // Link every aggregation to the nearest later one that follows it. (In
  // block form a summary depends on every earlier aggregation, so later
  // aggregations can follow too; the nearest is the next sublayer.)
  llvm::DenseMap<Operation *, SmallVector<AggregateOp>> succ, pred;
  for (unsigned a = 0; a < aggs.size(); ++a) {
    Node na = makeNode(aggs[a]);
    for (unsigned b = a + 1; b < aggs.size(); ++b)
      if (follows(na, aggs[b])) {
        succ[aggs[a]].push_back(aggs[b]);
        pred[aggs[b]].push_back(aggs[a]);
        break;
      }
  }

  for (AggregateOp start : aggs) {
    if (pred.count(start))
      continue;
    SmallVector<Node> nodes;
    ValueRange s = start.getSources();
    if (s.size() == 2 && dependsOn(s[1], s[0])) {
      // The first sublayer's one-source aggregation was folded: h_0 = b_0.
      Node virt;
      virt.sources.push_back(s[0]);
      virt.result = s[0];
      nodes.push_back(virt);
    } else if (s.size() != 1) {
      // Not the start of a chain: a lone aggregation, or one whose first
      // sources come from elsewhere.
      if (succ.count(start) && onRefuse)
        onRefuse(start, "aggregation chain does not start at the embedding "
                        "(its first aggregation reads more than [b_0] or "
                        "[b_0, y_0])");
      continue;
    }
    nodes.push_back(makeNode(start));
    bool ambiguous = false;
    AggregateOp cur = start;
    while (succ.count(cur)) {
      auto &next = succ[cur];
      if (next.size() != 1 || pred[next.front()].size() != 1) {
        ambiguous = true;
        break;
      }
      cur = next.front();
      nodes.push_back(makeNode(cur));
    }
    if (ambiguous) {
      if (onRefuse)
        onRefuse(cur, "aggregation chain is ambiguous: several aggregations "
                      "extend the same aggregation");
      continue;
    }
    // At least one sublayer and the final aggregation; a lone aggregation
    // over [a, f(a)] is not taken for a one-sublayer chain.
    if (nodes.size() < 2 || (!nodes.front().op && nodes.size() < 3))
      continue;
    Chain chain;
    std::string reason;
    if (failed(buildChain(nodes, chain, reason))) {
      if (onRefuse)
        onRefuse(nodes.back().op, "not a Block AttnRes chain: " + reason);
      continue;
    }
    chains.push_back(std::move(chain));
  }
}

SmallVector<Chain> mlir::attnres::findChains(Operation *root,
                                             ChainRefusalFn onRefuse) {
  SmallVector<Chain> chains;
  root->walk<WalkOrder::PreOrder>(
      [&](Block *block) { findChainsInBlock(*block, chains, onRefuse); });
  return chains;
}

//===----------------------------------------------------------------------===//
// Liveness of depth sources
//===----------------------------------------------------------------------===//

/// The values some aggregation reads as a depth source, or that carry a sum
/// of sublayer outputs forward.
static void collectDepthSources(Operation *root,
                                llvm::SetVector<Value> &values) {
  root->walk([&](Operation *op) {
    if (auto agg = dyn_cast<AggregateOp>(op))
      values.insert(agg.getSources().begin(), agg.getSources().end());
    else if (auto score = dyn_cast<BlockScoreOp>(op))
      values.insert(score.getSources().begin(), score.getSources().end());
    else if (auto merge = dyn_cast<MergeOp>(op)) {
      if (merge.getPartial())
        values.insert(merge.getPartial());
      if (!merge.getNewPartial().use_empty())
        values.insert(merge.getNewPartial());
    } else if (auto sum = dyn_cast<BlockSumOp>(op))
      values.insert(sum.getResult());
  });
}

unsigned mlir::attnres::computeMaxLiveDepthSources(Operation *root) {
  llvm::SetVector<Value> values;
  collectDepthSources(root, values);
  unsigned best = 0;
  root->walk([&](Block *block) {
    llvm::DenseMap<Operation *, int> position;
    int n = 0;
    for (Operation &op : *block)
      position[&op] = n++;
    // live after position p for p in [def, lastUse).
    SmallVector<int> delta(n + 2, 0);
    for (Value v : values) {
      int def;
      if (auto arg = dyn_cast<BlockArgument>(v)) {
        if (arg.getOwner() != block)
          continue;
        def = -1;
      } else {
        Operation *d = v.getDefiningOp();
        if (d->getBlock() != block)
          continue;
        def = position[d];
      }
      int last = def;
      for (OpOperand &use : v.getUses()) {
        Operation *user = block->findAncestorOpInBlock(*use.getOwner());
        if (user)
          last = std::max(last, position[user]);
      }
      // Live after ops def .. last-1 (index shifted by one for def = -1).
      delta[def + 1] += 1;
      delta[last + 1] -= 1;
    }
    int live = 0;
    for (int p = 0; p <= n; ++p) {
      live += delta[p];
      best = std::max<unsigned>(best, live);
    }
  });
  return best;
}

//===----------------------------------------------------------------------===//
// Block size
//===----------------------------------------------------------------------===//

LogicalResult
mlir::attnres::verifyBlockingRequest(const BlockingRequest &request,
                                     StringRef passName, bool required,
                                     Location loc) {
  auto bad = [&](StringRef option, int64_t value) {
    emitError(loc) << passName << ": " << option
                   << " must be a positive integer, got " << option << "="
                   << value;
    return failure();
  };
  if (request.blockSize < 0 || (request.blockSizeGiven && !request.blockSize))
    return bad("block-size", request.blockSize);
  if (request.numBlocks < 0 || (request.numBlocksGiven && !request.numBlocks))
    return bad("num-blocks", request.numBlocks);
  if (required && !request.isSet()) {
    emitError(loc) << passName
                   << " needs block-size=S or num-blocks=N (for example "
                   << passName << "{block-size=4})";
    return failure();
  }
  return success();
}

Location mlir::attnres::getOptionsLoc(Operation *root, ArrayRef<Chain> chains) {
  if (!chains.empty())
    return AggregateOp(chains.front().final).getLoc();
  Location loc = root->getLoc();
  root->walk([&](FunctionOpInterface fn) {
    if (fn.isExternal())
      return WalkResult::advance();
    loc = fn.getLoc();
    return WalkResult::interrupt();
  });
  return loc;
}

Blocking mlir::attnres::resolveBlocking(const BlockingRequest &request,
                                        unsigned numSublayers,
                                        StringRef passName, Location loc) {
  assert(request.isSet() && numSublayers > 0 && "unverified request");
  int64_t l = numSublayers;
  int64_t s = request.blockSize > 0
                  ? request.blockSize
                  : (l + request.numBlocks - 1) / request.numBlocks;
  Blocking result;
  result.blockSize = static_cast<unsigned>(std::min(s, l));
  result.numBlocks = (numSublayers + result.blockSize - 1) / result.blockSize;
  if (request.blockSize > l)
    emitWarning(loc) << passName << ": block-size=" << request.blockSize
                     << " is larger than the chain's " << l
                     << " sublayers; using S = " << l << " (one block)";
  else if (request.blockSize <= 0 && request.numBlocks > l)
    emitWarning(loc) << passName << ": num-blocks=" << request.numBlocks
                     << " is more than the chain's " << l
                     << " sublayers; using N = " << l
                     << " (S = 1, Full AttnRes)";
  return result;
}

//===----------------------------------------------------------------------===//
// I/O model
//===----------------------------------------------------------------------===//

unsigned mlir::attnres::getElementBytes(Type elementType) {
  return elementType.isF32() ? 4 : 2;
}

ChainIOModel mlir::attnres::computeIOModel(unsigned numSublayers,
                                           unsigned blockSize,
                                           unsigned numBlocks, int64_t dim,
                                           unsigned elementBytes) {
  ChainIOModel m;
  double row = double(dim) * elementBytes;
  double L = numSublayers, S = blockSize, N = numBlocks;
  // Full: sublayer l reads its l+1 sources and writes h_l; the average of
  // (l + 2) over l = 0 .. L-1 is (L + 3) / 2.
  m.full = (L + 3) / 2 * row;
  m.block = (S + N + 1) * row;
  m.twoPhase = (N / S + 5) * row;
  m.residual = 3 * row;
  return m;
}

/// Prints a byte count without a fraction when it is whole.
static void printBytes(llvm::raw_ostream &os, double bytes) {
  if (bytes == static_cast<double>(static_cast<int64_t>(bytes)))
    os << static_cast<int64_t>(bytes) << " B";
  else
    os << llvm::formatv("{0:F1}", bytes) << " B";
}

std::string mlir::attnres::describeChain(const Chain &chain, unsigned blockSize,
                                         unsigned numBlocks) {
  std::string str;
  llvm::raw_string_ostream os(str);
  RankedTensorType type = chain.getSourceType();
  int64_t dim = type.getShape().back();
  unsigned bytes = getElementBytes(type.getElementType());
  unsigned numSublayers = chain.getNumSublayers();
  unsigned last = numSublayers - (numBlocks - 1) * blockSize;
  os << "L = " << numSublayers << " sublayers, S = " << blockSize
     << ", N = " << numBlocks << " blocks";
  if (last != blockSize)
    os << " (last block " << last << ")";
  os << ", D = ";
  if (ShapedType::isDynamic(dim)) {
    os << "? (bytes not computed)";
    return str;
  }
  ChainIOModel m =
      computeIOModel(numSublayers, blockSize, numBlocks, dim, bytes);
  os << dim << " " << type.getElementType() << " (" << bytes
     << " B/element); bytes moved per token per sublayer: Full ";
  printBytes(os, m.full);
  os << ", naive block ";
  printBytes(os, m.block);
  os << ", two-phase ";
  printBytes(os, m.twoPhase);
  os << " (standard residual ";
  printBytes(os, m.residual);
  os << ")";
  return str;
}

SmallVector<unsigned> mlir::attnres::getBlockSourceCounts(unsigned numSublayers,
                                                          unsigned blockSize) {
  SmallVector<unsigned> counts;
  for (unsigned l = 0; l < numSublayers; ++l)
    counts.push_back(l / blockSize + 1 + (l % blockSize ? 1 : 0));
  counts.push_back((numSublayers + blockSize - 1) / blockSize + 1);
  return counts;
}

std::string mlir::attnres::formatSourceCounts(ArrayRef<unsigned> counts) {
  std::string str;
  llvm::raw_string_ostream os(str);
  for (auto [i, c] : llvm::enumerate(counts)) {
    if (i + 1 == counts.size())
      os << ", final ";
    else if (i)
      os << " ";
    os << c;
  }
  return str;
}
