//===- TilingInterfaceImpl.cpp - TilingInterface for attnres ops ----------===//
//
// Part of the attnres project.
//
// External models of the TilingInterface for the forward attnres ops
// (aggregate_stats included). The loops are
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
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/TilingInterfaceImpl.h"

#include "InterfaceLayout.h"
#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
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

template <typename... OpTys> static void attachTiling(MLIRContext *ctx) {
  (OpTys::template attachInterface<AttnResTilingModel<OpTys>>(*ctx), ...);
}

} // namespace

void mlir::attnres::registerTilingInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, AttnResDialect *) {
    // The tiled code is made of these dialects' ops.
    ctx->loadDialect<affine::AffineDialect, arith::ArithDialect,
                     scf::SCFDialect, tensor::TensorDialect>();
    attachTiling<AggregateOp, AggregateStatsOp, BlockSumOp, InvRmsOp,
                 BlockScoreOp, MergeOp>(ctx);
  });
}
