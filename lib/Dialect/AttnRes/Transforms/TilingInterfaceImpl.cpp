//===- TilingInterfaceImpl.cpp - TilingInterface for attnres ops ----------===//
//
// Part of the attnres project.
//
// External models of the TilingInterface for every attnres op, and of the
// PartialReductionOpInterface for the gradient ops. The loops are
// `[S] T_1 .. T_k D` (InterfaceLayout.h). A tile of the loops is computed by
// the same op on slices of its operands: every op is token-local (spec 0.1)
// and the S queries of block_score are independent (spec D.1), so a token or
// query tile needs nothing from the other tiles.
//
// D is a reduction for aggregate, inv_rms, block_score and merge: a tile of
// their output needs the logits and the sums of squares over *all* of D.
// Tiling D would either be wrong or recompute the full-D reductions once per
// D tile, so it is refused with a diagnostic (getTiledImplementation) or,
// for fusion, by returning failure without a diagnostic (fusion drivers try
// and move on). block_sum is elementwise: all its loops tile, D included.
//
// The gradient ops (aggregate_grad, block_score_grad, merge_grad) sum their
// parameter gradients over the tokens, so for them the token loops are
// reductions too (and S for block_score_grad, whose source gradients sum over
// the queries). A tile of their tokens is computed by the same op on token
// slices, but its parameter gradients are the tile's share of the sum: such
// tiles go through the PartialReductionOpInterface
// (`transform.structured.tile_reduction_using_for` / `_forall`), which keeps
// one partial sum per tile and adds them up after the loop (mergeReductions).
// Plain tiling (`tile_using_for`) of a reduction loop is refused with a
// diagnostic; fusing a tile of a per-token result (a source gradient) into a
// consumer is allowed, as for the forward ops.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/TilingInterfaceImpl.h"

#include "InterfaceLayout.h"
#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Interfaces/TilingInterface.h"

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::detail;

/// The full iteration domain `[S] T.. D` of `op`.
static SmallVector<Range> getDomain(Operation *op, const OpLayout &layout,
                                    OpBuilder &b) {
  Location loc = op->getLoc();
  OpFoldResult zero = b.getIndexAttr(0);
  OpFoldResult one = b.getIndexAttr(1);
  SmallVector<Range> domain;
  if (layout.stacked)
    domain.push_back(
        {zero,
         tensor::getMixedSize(b, loc, op->getOperand(layout.rowsOperand), 0),
         one});
  Value value = op->getOperand(layout.valueOperand);
  for (unsigned i = 0; i <= layout.numTokenDims; ++i)
    domain.push_back({zero, tensor::getMixedSize(b, loc, value, i), one});
  return domain;
}

/// Whether the D tile `[offset, offset + size)` is provably all of D.
static bool isFullFeatureTile(Operation *op, const OpLayout &layout,
                              OpFoldResult offset, OpFoldResult size) {
  if (!isConstantIntValue(offset, 0))
    return false;
  auto valueType =
      cast<RankedTensorType>(op->getOperand(layout.valueOperand).getType());
  int64_t d = valueType.getShape().back();
  if (!ShapedType::isDynamic(d))
    return isConstantIntValue(size, d);
  // Dynamic D: the size must be `tensor.dim` of the last dimension of one of
  // the op's operands of role Value (what getDomain produces).
  auto sizeValue = dyn_cast<Value>(size);
  if (!sizeValue)
    return false;
  auto dim = sizeValue.getDefiningOp<tensor::DimOp>();
  if (!dim)
    return false;
  std::optional<int64_t> index = dim.getConstantIndex();
  for (auto [operand, role] : llvm::zip(op->getOperands(), layout.operands))
    if (role == DimRole::Value && operand == dim.getSource() && index &&
        *index == valueType.getRank() - 1)
      return true;
  return false;
}

/// Whether the tile `[offset, offset + size)` of loop `loop` is provably the
/// whole loop: D (isFullFeatureTile), a token loop or S.
static bool isFullLoopTile(Operation *op, const OpLayout &layout, unsigned loop,
                           OpFoldResult offset, OpFoldResult size) {
  if (loop == layout.featureLoop())
    return isFullFeatureTile(op, layout, offset, size);
  if (!isConstantIntValue(offset, 0))
    return false;
  bool isQueryLoop = layout.stacked && loop == 0;
  Value full =
      op->getOperand(isQueryLoop ? layout.rowsOperand : layout.valueOperand);
  int64_t dim = isQueryLoop ? 0 : loop - (layout.stacked ? 1 : 0);
  int64_t extent = cast<RankedTensorType>(full.getType()).getShape()[dim];
  if (!ShapedType::isDynamic(extent))
    return isConstantIntValue(size, extent);
  // Dynamic: `tensor.dim` of that dimension of an operand of the same role
  // (what getDomain produces).
  auto sizeValue = dyn_cast<Value>(size);
  auto dimOp = sizeValue ? sizeValue.getDefiningOp<tensor::DimOp>() : nullptr;
  if (!dimOp || dimOp.getConstantIndex() != dim)
    return false;
  DimRole role = isQueryLoop ? DimRole::Rows : DimRole::Value;
  for (auto [operand, r] : llvm::zip(op->getOperands(), layout.operands))
    if (r == role && operand == dimOp.getSource())
      return true;
  return false;
}

/// The loops that are reductions for some result but that a tile cannot
/// split by itself: the token loops of the gradient ops and S of
/// block_score_grad (D is checked separately).
static SmallVector<unsigned> getSummedLoops(const OpLayout &layout) {
  SmallVector<unsigned> loops;
  unsigned first = layout.stacked ? 1 : 0;
  if (layout.stacked && layout.queriesAreReduction)
    loops.push_back(0);
  if (layout.tokensAreReduction)
    for (unsigned i = 0; i < layout.numTokenDims; ++i)
      loops.push_back(first + i);
  return loops;
}

/// The type of a tile of a tensor of `role` (element type `elt`).
static RankedTensorType getTileType(const OpLayout &layout, DimRole role,
                                    ArrayRef<OpFoldResult> sizes, Type elt) {
  SmallVector<int64_t> shape;
  for (unsigned loop : layout.loopsOf(role)) {
    std::optional<int64_t> c = getConstantIntValue(sizes[loop]);
    shape.push_back(c ? *c : ShapedType::kDynamic);
  }
  return RankedTensorType::get(shape, elt);
}

/// Computes the domain tile `offsets`/`sizes` of `op` with a clone of `op` on
/// slices of its operands. D must be full unless it is parallel.
static TilingResult tileOp(Operation *op, const OpLayout &layout, OpBuilder &b,
                           ArrayRef<OpFoldResult> offsets,
                           ArrayRef<OpFoldResult> sizes) {
  Location loc = op->getLoc();
  TilingResult result;
  SmallVector<Value> operands;
  for (auto [operand, role] : llvm::zip(op->getOperands(), layout.operands)) {
    // Pseudo-queries and gains are read whole by every tile of an op that
    // reduces over D.
    if (role == DimRole::Feature && layout.featureIsReduction) {
      operands.push_back(operand);
      continue;
    }
    SmallVector<OpFoldResult> sliceOffsets, sliceSizes;
    for (unsigned loop : layout.loopsOf(role)) {
      sliceOffsets.push_back(offsets[loop]);
      sliceSizes.push_back(sizes[loop]);
    }
    SmallVector<OpFoldResult> strides(sliceOffsets.size(), b.getIndexAttr(1));
    auto slice = tensor::ExtractSliceOp::create(b, loc, operand, sliceOffsets,
                                                sliceSizes, strides);
    operands.push_back(slice.getResult());
    result.generatedSlices.push_back(slice);
  }
  SmallVector<Type> resultTypes;
  for (auto [res, role] : llvm::zip(op->getResults(), layout.results))
    resultTypes.push_back(
        getTileType(layout, role, sizes,
                    cast<RankedTensorType>(res.getType()).getElementType()));
  Operation *tiled = clone(b, op, resultTypes, operands);
  result.tiledOps.push_back(tiled);
  llvm::append_range(result.tiledValues, tiled->getResults());
  return result;
}

/// Maps a tile of result `resultNumber` to the domain tile that computes it:
/// the loops the result does not follow are taken whole.
static void resultTileToDomainTile(Operation *op, const OpLayout &layout,
                                   OpBuilder &b, unsigned resultNumber,
                                   ArrayRef<OpFoldResult> offsets,
                                   ArrayRef<OpFoldResult> sizes,
                                   SmallVectorImpl<OpFoldResult> &domOffsets,
                                   SmallVectorImpl<OpFoldResult> &domSizes) {
  domOffsets.clear();
  domSizes.clear();
  for (Range r : getDomain(op, layout, b)) {
    domOffsets.push_back(r.offset);
    domSizes.push_back(r.size);
  }
  for (auto [i, loop] :
       llvm::enumerate(layout.loopsOf(layout.results[resultNumber]))) {
    domOffsets[loop] = offsets[i];
    domSizes[loop] = sizes[i];
  }
}

namespace {

template <typename OpTy>
struct AttnResTilingModel
    : public TilingInterface::ExternalModel<AttnResTilingModel<OpTy>, OpTy> {
  SmallVector<utils::IteratorType> getLoopIteratorTypes(Operation *op) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    SmallVector<utils::IteratorType> types(layout->numLoops(),
                                           utils::IteratorType::parallel);
    if (layout->featureIsReduction)
      types.back() = utils::IteratorType::reduction;
    for (unsigned loop : getSummedLoops(*layout))
      types[loop] = utils::IteratorType::reduction;
    return types;
  }

  SmallVector<Range> getIterationDomain(Operation *op, OpBuilder &b) const {
    return getDomain(op, *getOpLayout(op), b);
  }

  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    unsigned d = layout->featureLoop();
    if (layout->featureIsReduction &&
        !isFullFeatureTile(op, *layout, offsets[d], sizes[d]))
      return op->emitOpError()
             << "cannot be tiled along the feature dimension D (loop " << d
             << "): D is a reduction for the logits and the sum of squares, "
                "so every tile needs all of D; use tile size 0 for D and tile "
                "the token"
             << (layout->stacked ? " and query" : "")
             << " dimensions (docs/interfaces-tiling-sharding.md)";
    for (unsigned loop : getSummedLoops(*layout))
      if (!isFullLoopTile(op, *layout, loop, offsets[loop], sizes[loop]))
        return op->emitOpError()
               << "cannot be tiled along loop " << loop << " by "
               << "tile_using_for/forall: the "
               << (layout->stacked && loop == 0 ? "source" : "parameter")
               << " gradients are sums over it, so a tile computes only "
                  "its share; tile it with "
                  "transform.structured.tile_reduction_using_for or "
                  "tile_reduction_using_forall, which add the tiles' partial "
                  "sums (docs/interfaces-tiling-sharding.md)";
    return tileOp(op, *layout, b, offsets, sizes);
  }

  LogicalResult
  getResultTilePosition(Operation *op, OpBuilder &b, unsigned resultNumber,
                        ArrayRef<OpFoldResult> offsets,
                        ArrayRef<OpFoldResult> sizes,
                        SmallVector<OpFoldResult> &resultOffsets,
                        SmallVector<OpFoldResult> &resultSizes) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    resultOffsets.clear();
    resultSizes.clear();
    for (unsigned loop : layout->loopsOf(layout->results[resultNumber])) {
      resultOffsets.push_back(offsets[loop]);
      resultSizes.push_back(sizes[loop]);
    }
    return success();
  }

  LogicalResult getIterationDomainTileFromResultTile(
      Operation *op, OpBuilder &b, unsigned resultNumber,
      ArrayRef<OpFoldResult> offsets, ArrayRef<OpFoldResult> sizes,
      SmallVectorImpl<OpFoldResult> &domOffsets,
      SmallVectorImpl<OpFoldResult> &domSizes) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    resultTileToDomainTile(op, *layout, b, resultNumber, offsets, sizes,
                           domOffsets, domSizes);
    unsigned d = layout->featureLoop();
    if (layout->featureIsReduction &&
        !isFullFeatureTile(op, *layout, domOffsets[d], domSizes[d]))
      return failure();
    return success();
  }

  FailureOr<TilingResult>
  generateResultTileValue(Operation *op, OpBuilder &b, unsigned resultNumber,
                          ArrayRef<OpFoldResult> offsets,
                          ArrayRef<OpFoldResult> sizes) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    SmallVector<OpFoldResult> domOffsets, domSizes;
    if (failed(getIterationDomainTileFromResultTile(
            op, b, resultNumber, offsets, sizes, domOffsets, domSizes)))
      return failure();
    return tileOp(op, *layout, b, domOffsets, domSizes);
  }

  bool isOpFusableWithConsumerSlice(Operation *op, unsigned resultNumber,
                                    ArrayRef<OpFoldResult> offsets,
                                    ArrayRef<OpFoldResult> sizes) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    SmallVector<unsigned> loops =
        layout->loopsOf(layout->results[resultNumber]);
    if (!layout->featureIsReduction || loops.back() != layout->featureLoop())
      return true;
    return isFullFeatureTile(op, *layout, offsets.back(), sizes.back());
  }
};

/// The tiled reduction loops that result `resultNumber` sums over (does not
/// follow), in the order of `reductionDims`: one leading dimension each in
/// the result's partial-sum tensor.
static SmallVector<unsigned>
getPartialDims(const OpLayout &layout, unsigned resultNumber,
               const SetVector<unsigned> &reductionDims) {
  SmallVector<unsigned> followed = layout.loopsOf(layout.results[resultNumber]);
  SmallVector<unsigned> dims;
  for (unsigned dim : reductionDims)
    if (!llvm::is_contained(followed, dim))
      dims.push_back(dim);
  return dims;
}

static Value createZeros(OpBuilder &b, Location loc,
                         ArrayRef<OpFoldResult> shape, Type elt) {
  Value empty = tensor::EmptyOp::create(b, loc, shape, elt);
  Value zero = arith::ConstantOp::create(b, loc, b.getZeroAttr(elt));
  return linalg::FillOp::create(b, loc, zero, empty).getResult(0);
}

/// Partial reductions of the gradient ops along their token loops (and S of
/// block_score_grad is refused: its source gradients would sum bf16 tiles).
///
/// Each result gets a partial-sum tensor: the result's own shape, behind one
/// leading dimension per tiled reduction loop it sums over (for
/// aggregate_grad tiled along T: `dquery` and `dgain` get [K, D], the source
/// gradients, which follow T, get their own shape and no leading
/// dimension). K is the size upstream passes: the number of tiles for
/// PartialReductionOuterParallel (tile_reduction_using_forall), where tile i
/// writes its sums into row i; the tile size for
/// PartialReductionOuterReduction (tile_reduction_using_for), where every
/// tile adds its sums into row 0 (linalg.add) and the other rows stay zero
/// (the slot of a tile cannot be told from its offset alone). A result that
/// follows every tiled loop is written tile by tile and needs no merge;
/// mergeReductions adds the rows of the others (one linalg.reduce per
/// partial shape).
template <typename OpTy>
struct AttnResPartialReductionModel
    : public PartialReductionOpInterface::ExternalModel<
          AttnResPartialReductionModel<OpTy>, OpTy> {
  FailureOr<SmallVector<Value>> generateInitialTensorForPartialReduction(
      Operation *op, OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes,
      const SetVector<unsigned> &reductionDims) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    SmallVector<Range> domain = getDomain(op, *layout, b);
    SmallVector<Value> inits;
    for (OpResult result : op->getResults()) {
      unsigned r = result.getResultNumber();
      SmallVector<OpFoldResult> shape;
      SmallVector<unsigned> partialDims =
          getPartialDims(*layout, r, reductionDims);
      for (unsigned dim : partialDims)
        shape.push_back(sizes[dim]);
      // The result's own dimensions are whole (upstream passes the tile
      // size or the tile count for the reduction loops in `sizes`).
      for (unsigned loop : layout->loopsOf(layout->results[r]))
        shape.push_back(domain[loop].size);
      Type elt = cast<RankedTensorType>(result.getType()).getElementType();
      if (partialDims.empty())
        inits.push_back(tensor::EmptyOp::create(b, loc, shape, elt));
      else
        inits.push_back(createZeros(b, loc, shape, elt));
    }
    return inits;
  }

  FailureOr<TilingResult>
  tileToPartialReduction(Operation *op, OpBuilder &b, Location loc,
                         ReductionTilingStrategy strategy, ValueRange init,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes,
                         const SetVector<unsigned> &reductionDims,
                         ArrayRef<OpFoldResult> splitReductionIvs) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    unsigned d = layout->featureLoop();
    if (!isFullFeatureTile(op, *layout, offsets[d], sizes[d]))
      return op->emitOpError()
             << "cannot be tiled along the feature dimension D (loop " << d
             << "): every token's gradient needs its logits and sums of "
                "squares over all of D (docs/interfaces-tiling-sharding.md)";
    if (layout->stacked && reductionDims.contains(0))
      return op->emitOpError()
             << "cannot be split along the queries S (loop 0): the source "
                "gradients would be summed over S tiles in their own element "
                "type; split the token loops "
                "(docs/interfaces-tiling-sharding.md)";
    TilingResult tiled = tileOp(op, *layout, b, offsets, sizes);
    if (strategy != ReductionTilingStrategy::PartialReductionOuterReduction)
      return tiled;
    // Every tile adds its sums into row 0 of the partial tensors.
    for (OpResult result : op->getResults()) {
      unsigned r = result.getResultNumber();
      size_t numPartialDims = getPartialDims(*layout, r, reductionDims).size();
      if (numPartialDims == 0)
        continue;
      SmallVector<OpFoldResult> accOffsets, accSizes;
      getPartialTile(*layout, r, strategy, offsets, sizes, reductionDims,
                     splitReductionIvs, b, accOffsets, accSizes);
      SmallVector<OpFoldResult> strides(accOffsets.size(), b.getIndexAttr(1));
      auto tileType = cast<RankedTensorType>(tiled.tiledValues[r].getType());
      Value acc = tensor::ExtractSliceOp::create(b, loc, tileType, init[r],
                                                 accOffsets, accSizes, strides);
      tiled.tiledValues[r] =
          linalg::AddOp::create(b, loc, ValueRange{acc, tiled.tiledValues[r]},
                                ValueRange{acc})
              .getResult(0);
    }
    return tiled;
  }

  FailureOr<MergeResult>
  mergeReductions(Operation *op, OpBuilder &b, Location loc,
                  ValueRange partialReduce,
                  const SetVector<unsigned> &reductionDims) const {
    FailureOr<OpLayout> layout = getOpLayout(op);
    MergeResult merged;
    merged.replacements.assign(partialReduce.begin(), partialReduce.end());
    // Results with the same partial type are reduced by one linalg.reduce.
    llvm::MapVector<Type, SmallVector<unsigned>> groups;
    for (auto [r, partial] : llvm::enumerate(partialReduce))
      if (!getPartialDims(*layout, r, reductionDims).empty())
        groups[partial.getType()].push_back(r);
    for (auto &[type, results] : groups) {
      unsigned r0 = results.front();
      int64_t numPartialDims =
          getPartialDims(*layout, r0, reductionDims).size();
      auto partialType = cast<RankedTensorType>(type);
      SmallVector<OpFoldResult> shape;
      for (int64_t i = numPartialDims; i < partialType.getRank(); ++i)
        shape.push_back(tensor::getMixedSize(b, loc, partialReduce[r0], i));
      SmallVector<Value> inputs, inits;
      for (unsigned r : results) {
        inputs.push_back(partialReduce[r]);
        inits.push_back(
            createZeros(b, loc, shape, partialType.getElementType()));
      }
      auto reduce = linalg::ReduceOp::create(
          b, loc, inputs, inits,
          llvm::to_vector(llvm::seq<int64_t>(0, numPartialDims)),
          [&](OpBuilder &nb, Location nloc, ValueRange args) {
            SmallVector<Value> sums;
            size_t n = args.size() / 2;
            for (size_t i = 0; i < n; ++i)
              sums.push_back(
                  arith::AddFOp::create(nb, nloc, args[i], args[n + i]));
            linalg::YieldOp::create(nb, nloc, sums);
          });
      merged.mergeOps.push_back(reduce);
      for (auto [i, r] : llvm::enumerate(results))
        merged.replacements[r] = reduce.getResult(i);
    }
    return merged;
  }

  LogicalResult getPartialResultTilePosition(
      Operation *op, OpBuilder &b, unsigned resultNumber,
      ReductionTilingStrategy strategy, ArrayRef<OpFoldResult> offsets,
      ArrayRef<OpFoldResult> sizes, const SetVector<unsigned> &reductionDims,
      ArrayRef<OpFoldResult> splitReductionIvs,
      SmallVector<OpFoldResult> &resultOffsets,
      SmallVector<OpFoldResult> &resultSizes) const {
    getPartialTile(*getOpLayout(op), resultNumber, strategy, offsets, sizes,
                   reductionDims, splitReductionIvs, b, resultOffsets,
                   resultSizes);
    return success();
  }

  /// Where a tile's value of result `r` goes in its partial tensor: row
  /// `splitReductionIvs` (outer parallel) or row 0 (outer reduction) of the
  /// leading dimensions, then the result's own tile.
  static void getPartialTile(const OpLayout &layout, unsigned r,
                             ReductionTilingStrategy strategy,
                             ArrayRef<OpFoldResult> offsets,
                             ArrayRef<OpFoldResult> sizes,
                             const SetVector<unsigned> &reductionDims,
                             ArrayRef<OpFoldResult> splitReductionIvs,
                             OpBuilder &b,
                             SmallVectorImpl<OpFoldResult> &tileOffsets,
                             SmallVectorImpl<OpFoldResult> &tileSizes) {
    tileOffsets.clear();
    tileSizes.clear();
    for (unsigned dim : getPartialDims(layout, r, reductionDims)) {
      bool parallel =
          strategy == ReductionTilingStrategy::PartialReductionOuterParallel;
      size_t pos = llvm::find(reductionDims.getArrayRef(), dim) -
                   reductionDims.getArrayRef().begin();
      tileOffsets.push_back(parallel ? splitReductionIvs[pos]
                                     : OpFoldResult(b.getIndexAttr(0)));
      tileSizes.push_back(b.getIndexAttr(1));
    }
    for (unsigned loop : layout.loopsOf(layout.results[r])) {
      tileOffsets.push_back(offsets[loop]);
      tileSizes.push_back(sizes[loop]);
    }
  }
};

template <typename... OpTys> static void attachTiling(MLIRContext *ctx) {
  (OpTys::template attachInterface<AttnResTilingModel<OpTys>>(*ctx), ...);
}

template <typename... OpTys>
static void attachPartialReduction(MLIRContext *ctx) {
  (OpTys::template attachInterface<AttnResPartialReductionModel<OpTys>>(*ctx),
   ...);
}

} // namespace

void mlir::attnres::registerTilingInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, AttnResDialect *) {
    // The tiled code is made of these dialects' ops.
    ctx->loadDialect<affine::AffineDialect, arith::ArithDialect,
                     scf::SCFDialect, tensor::TensorDialect>();
    ctx->loadDialect<linalg::LinalgDialect>();
    attachTiling<AggregateOp, AggregateStatsOp, BlockSumOp, InvRmsOp,
                 BlockScoreOp, MergeOp, AggregateGradOp, BlockScoreGradOp,
                 MergeGradOp>(ctx);
    attachPartialReduction<AggregateGradOp, BlockScoreGradOp, MergeGradOp>(ctx);
  });
}
