//===- AttnResToGPU.cpp - attnres to GPU kernels --------------------------===//
//
// Part of the attnres project.
//
// convert-attnres-to-gpu: every attnres op on tensors becomes
//   bufferization.to_buffer of its operands (token dims collapsed to one),
//   memref.alloc of its results, a gpu.launch_func of a kernel generated
//   into `gpu.module @attnres_kernels` (Kernels.h; one file per kernel
//   family, docs/gpu.md "Source layout"), and
//   bufferization.to_tensor restrict of the results.
// One kernel is generated per specialisation (op, element type, D, source
// count, S); D must be static, the token dims may be dynamic (T is a kernel
// argument).
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"
#include "attnres/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir {
namespace attnres {
#define GEN_PASS_DEF_CONVERTATTNRESTOGPU
#include "attnres/Conversion/Passes.h.inc"
} // namespace attnres
} // namespace mlir

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

static constexpr StringLiteral kKernelModuleName = "attnres_kernels";

namespace {

/// Host-side helpers shared by the op lowerings.
struct HostBuilder {
  HostBuilder(RewriterBase &b, Location loc) : b(b), loc(loc) {}

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }

  /// memref with identity layout for a tensor operand, read only.
  Value toBuffer(Value tensor) {
    auto tt = cast<RankedTensorType>(tensor.getType());
    auto mt = MemRefType::get(tt.getShape(), tt.getElementType());
    return bufferization::ToBufferOp::create(b, loc, mt, tensor,
                                             /*read_only=*/true);
  }

  /// Collapses the token dims of `m` (all but `front` leading and `back`
  /// trailing dims) into one. Requires at least one token dim.
  Value collapseTokens(Value m, unsigned front, unsigned back) {
    auto mt = cast<MemRefType>(m.getType());
    unsigned rank = mt.getRank();
    if (rank - front - back != 1) {
      SmallVector<ReassociationIndices> re;
      for (unsigned k = 0; k < front; ++k)
        re.push_back({int64_t(k)});
      ReassociationIndices mid;
      for (unsigned k = front; k < rank - back; ++k)
        mid.push_back(k);
      re.push_back(mid);
      for (unsigned k = rank - back; k < rank; ++k)
        re.push_back({int64_t(k)});
      m = memref::CollapseShapeOp::create(b, loc, m, re);
      mt = cast<MemRefType>(m.getType());
    }
    // The kernels take the token count as a run-time value: make the token
    // dim dynamic.
    SmallVector<int64_t> shape(mt.getShape());
    shape[front] = ShapedType::kDynamic;
    auto dynType = MemRefType::get(shape, mt.getElementType());
    if (dynType != mt)
      m = memref::CastOp::create(b, loc, dynType, m);
    return m;
  }

  /// Appends the buffers of `tensors`, token dims collapsed, to `operands`;
  /// returns the first buffer (before the collapse).
  Value addRows(ValueRange tensors, SmallVectorImpl<Value> &operands) {
    Value first;
    for (Value t : tensors) {
      Value buf = toBuffer(t);
      if (!first)
        first = buf;
      operands.push_back(collapseTokens(buf, 0, 1));
    }
    return first;
  }

  /// memref<d x e> of a vector operand (a query or a gain). A dynamic D,
  /// which the verifiers allow when the rows' D is static, is cast to the
  /// kernel's static one.
  Value vectorBuffer(Value tensor, int64_t d, Type e) {
    Value buf = toBuffer(tensor);
    auto staticType = MemRefType::get({d}, e);
    if (buf.getType() != staticType)
      buf = memref::CastOp::create(b, loc, staticType, buf);
    return buf;
  }

  /// Allocates a buffer of `type`; its dynamic dims k are dim k - front of
  /// `like`.
  Value alloc(RankedTensorType type, Value like, unsigned front) {
    auto mt = MemRefType::get(type.getShape(), type.getElementType());
    SmallVector<Value> dyn;
    for (int64_t k = 0; k < mt.getRank(); ++k)
      if (mt.isDynamicDim(k))
        dyn.push_back(memref::DimOp::create(b, loc, like, k - front));
    return memref::AllocOp::create(b, loc, mt, dyn);
  }

  Value toTensor(Value m, Type tensorType) {
    return bufferization::ToTensorOp::create(b, loc, tensorType, m,
                                             /*restrict=*/true,
                                             /*writable=*/true);
  }

  void launch(gpu::GPUFuncOp kernel, const RowLayout &layout, Value numTokens,
              unsigned ctasPerToken, ValueRange operands,
              int64_t dynamicSharedBytes = 0) {
    Value grid = numTokens;
    if (layout.tokensPerCta > 1)
      grid = arith::CeilDivUIOp::create(b, loc, numTokens,
                                        idx(layout.tokensPerCta));
    if (ctasPerToken > 1)
      grid = arith::MulIOp::create(b, loc, grid, idx(ctasPerToken));
    Value one = idx(1);
    Value blockSize = idx(layout.ctaThreads());
    Value sharedBytes;
    if (dynamicSharedBytes)
      sharedBytes = arith::ConstantOp::create(
          b, loc, b.getI32IntegerAttr(int32_t(dynamicSharedBytes)));
    gpu::LaunchFuncOp::create(b, loc, kernel, gpu::KernelDim3{grid, one, one},
                              gpu::KernelDim3{blockSize, one, one},
                              /*dynamicSharedMemorySize=*/sharedBytes,
                              operands);
  }

  /// `small()` when numTokens <= limit, else `large()`: a run-time branch
  /// (`arith.cmpi ule` + `scf.if`) around what each emits, e.g. the two
  /// launches of an op's latency and throughput kernels.
  void branchOnTokens(Value numTokens, unsigned limit,
                      function_ref<void()> small, function_ref<void()> large) {
    Value bound = arith::ConstantIndexOp::create(b, loc, int64_t(limit));
    Value isSmall = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule,
                                          numTokens, bound);
    auto branch = scf::IfOp::create(b, loc, isSmall, /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(branch.thenBlock()->getTerminator());
    small();
    b.setInsertionPoint(branch.elseBlock()->getTerminator());
    large();
  }

  RewriterBase &b;
  Location loc;
};

struct ConvertAttnResToGPUPass
    : public attnres::impl::ConvertAttnResToGPUBase<ConvertAttnResToGPUPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  LogicalResult resolveTarget();
  gpu::GPUModuleOp getKernelModule();
  template <typename Spec>
  gpu::GPUFuncOp getOrBuild(const Spec &spec, Location loc,
                            gpu::GPUFuncOp (*build)(OpBuilder &, Location,
                                                    const Spec &));
  unsigned oneQueryElements(Type elementType, int64_t d);
  ScoreKernelSpec aggregateThroughputSpec(RankedTensorType type, unsigned n,
                                          bool withStats);
  /// P = min(T, grad-ctas): the CTAs (token chunks) of a backward kernel,
  /// one f32 partial of the parameter gradients each.
  Value gradPartialCount(HostBuilder &hb, Value numTokens) {
    return arith::MinUIOp::create(
        hb.b, hb.loc, numTokens,
        hb.idx(std::max<int64_t>(1, int64_t(gradCtas))));
  }

  LogicalResult checkSourceType(Operation *op, RankedTensorType type);
  /// split-query-gains: launches the split of w*g of `queries` and `gains`
  /// (buffers of S x D elements of `e`) into two new bf16 buffers and
  /// returns them (hi, lo). The kernel is built on first use, after the
  /// op's other kernels.
  std::pair<Value, Value> launchQueryGainSplit(HostBuilder &hb, Value queries,
                                               Value gains, int64_t s,
                                               int64_t d, Type e);
  std::optional<BlockScoreTCSpec>
  pickTensorCoreKernel(const ScoreKernelSpec &spec);
  std::optional<ScoreKernelSpec>
  pickSmallTokenKernel(const ScoreKernelSpec &spec);
  LogicalResult lower(AggregateOp op);
  LogicalResult lower(AggregateStatsOp op);
  LogicalResult lower(AggregateGradOp op);
  LogicalResult lower(MergeGradOp op);
  LogicalResult lower(BlockScoreGradOp op);
  LogicalResult lower(BlockScoreOp op);
  LogicalResult lower(MergeOp op);
  LogicalResult lower(BlockSumOp op);
  LogicalResult lower(InvRmsOp op);

  gpu::GPUModuleOp kernelModule;
  /// The kernels' target, parsed once per run (resolveTarget).
  NVVMTargetInfo target;
};

} // namespace

/// Parses the target once: the first #nvvm.target of an existing kernel
/// module, else the pass options (attached to the kernel module when it is
/// created, or to an existing one without targets).
LogicalResult ConvertAttnResToGPUPass::resolveTarget() {
  ModuleOp module = getOperation();
  std::string chipName = chip, featureList = features;
  auto existing = module.lookupSymbol<gpu::GPUModuleOp>(kKernelModuleName);
  if (existing && existing.getTargetsAttr() &&
      !existing.getTargetsAttr().empty()) {
    auto nvvm = llvm::find_if(existing.getTargetsAttr(), [](Attribute a) {
      return isa<NVVM::NVVMTargetAttr>(a);
    });
    if (nvvm == existing.getTargetsAttr().end())
      return existing.emitError(
          "convert-attnres-to-gpu emits NVVM kernels, but the kernel module "
          "has no #nvvm.target");
    auto attr = cast<NVVM::NVVMTargetAttr>(*nvvm);
    chipName = attr.getChip().str();
    featureList = attr.getFeatures().str();
  }
  std::string error;
  std::optional<NVVMTargetInfo> info =
      NVVMTargetInfo::parse(chipName, featureList, error);
  if (!info) {
    Operation *at = existing ? existing.getOperation() : module.getOperation();
    return at->emitError("convert-attnres-to-gpu: ") << error;
  }
  target = *info;
  return success();
}

gpu::GPUModuleOp ConvertAttnResToGPUPass::getKernelModule() {
  if (kernelModule)
    return kernelModule;
  ModuleOp module = getOperation();
  kernelModule = module.lookupSymbol<gpu::GPUModuleOp>(kKernelModuleName);
  OpBuilder b(module.getBodyRegion());
  if (!kernelModule) {
    b.setInsertionPointToEnd(module.getBody());
    kernelModule =
        gpu::GPUModuleOp::create(b, module.getLoc(), kKernelModuleName);
  }
  if (!kernelModule.getTargetsAttr() || kernelModule.getTargetsAttr().empty()) {
    auto attr = NVVM::NVVMTargetAttr::get(&getContext(), optLevel,
                                          "nvptx64-nvidia-cuda", target.chip,
                                          target.features);
    kernelModule.setTargetsAttr(b.getArrayAttr({attr}));
  }
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  b.getUnitAttr());
  return kernelModule;
}

/// The kernel of `spec` in the kernel module, built by `build` on first use.
template <typename Spec>
gpu::GPUFuncOp ConvertAttnResToGPUPass::getOrBuild(
    const Spec &spec, Location loc,
    gpu::GPUFuncOp (*build)(OpBuilder &, Location, const Spec &)) {
  gpu::GPUModuleOp km = getKernelModule();
  if (auto fn = km.lookupSymbol<gpu::GPUFuncOp>(spec.getName()))
    return fn;
  OpBuilder b(km.getBodyRegion());
  b.setInsertionPointToEnd(km.getBody());
  return build(b, loc, spec);
}

std::pair<Value, Value> ConvertAttnResToGPUPass::launchQueryGainSplit(
    HostBuilder &hb, Value queries, Value gains, int64_t s, int64_t d, Type e) {
  QueryGainSplitSpec spec;
  spec.elementType = e;
  spec.numQueries = s;
  spec.d = d;
  gpu::GPUFuncOp kernel = getOrBuild(spec, hb.loc, buildQueryGainSplitKernel);
  auto inType = MemRefType::get({s, d}, e);
  auto outType = MemRefType::get({s, d}, hb.b.getBF16Type());
  auto staticBuffer = [&](Value m) -> Value {
    if (m.getType() != inType)
      m = memref::CastOp::create(hb.b, hb.loc, inType, m);
    return m;
  };
  Value w = staticBuffer(queries);
  Value g = staticBuffer(gains);
  Value hi = memref::AllocOp::create(hb.b, hb.loc, outType);
  Value lo = memref::AllocOp::create(hb.b, hb.loc, outType);
  RowLayout layout;
  layout.threadsPerToken = QueryGainSplitSpec::kThreads;
  hb.launch(kernel, layout, hb.idx(spec.numCtas()), 1,
            ValueRange{w, g, hi, lo});
  return {hi, lo};
}

LogicalResult ConvertAttnResToGPUPass::checkSourceType(Operation *op,
                                                       RankedTensorType type) {
  if (ShapedType::isDynamic(type.getShape().back()))
    return op->emitOpError(
        "convert-attnres-to-gpu needs a static feature dimension D");
  if (type.getRank() < 2)
    return op->emitOpError("convert-attnres-to-gpu needs at least one token "
                           "dimension before D (rank >= 2), got ")
           << type;
  return success();
}

/// Whether `v` is known to be all zeros: a zero splat constant or a
/// `linalg.fill` of a zero constant (either sign). Such an operand need not
/// be read (merge_grad's `grad` when `h` has no other user).
static bool isKnownZero(Value v) {
  if (matchPattern(v, m_AnyZeroFloat()))
    return true;
  auto fill = v.getDefiningOp<linalg::FillOp>();
  return fill && fill.getInputs().size() == 1 &&
         matchPattern(fill.getInputs()[0], m_AnyZeroFloat());
}

/// The number of tokens (the product of every dimension but D) when it is
/// static.
static std::optional<int64_t> staticTokenCount(RankedTensorType type) {
  int64_t tokens = 1;
  for (int64_t dim : type.getShape().drop_back()) {
    if (ShapedType::isDynamic(dim))
      return std::nullopt;
    tokens *= dim;
  }
  return tokens;
}

/// Sources per reduction step: the option, or 1 when a thread holds one
/// 16-byte vector (the kernel then fits 64 registers, two 512-thread CTAs
/// per SM), else 2 (halves the barriers of the large-D single-CTA case).
static unsigned pickStep(unsigned option, const RowLayout &layout) {
  if (option)
    return option;
  return layout.vectorsPerThread * layout.vectorWidth <= 8 ? 1 : 2;
}

/// Prefetch depth: the option, or 3 sources ahead when a thread holds one
/// 16-byte vector per source, 2 when it holds more (register budget).
static unsigned pickDepth(unsigned option, const RowLayout &layout) {
  if (option)
    return option;
  return layout.vectorsPerThread * layout.vectorWidth <= 8 ? 3 : 2;
}

/// Elements per thread for the one-query kernels: the option, else the
/// default above.
unsigned ConvertAttnResToGPUPass::oneQueryElements(Type elementType,
                                                   int64_t d) {
  return elementsPerThread.getValue() ? unsigned(elementsPerThread)
                                      : defaultRowElements(elementType, d);
}

/// The throughput kernel of aggregate over `n` sources of `type` (and of
/// aggregate_stats with `withStats`): layout, prefetch depth, sources per
/// reduction and w*g placement from the pass options or the defaults.
ScoreKernelSpec
ConvertAttnResToGPUPass::aggregateThroughputSpec(RankedTensorType type,
                                                 unsigned n, bool withStats) {
  ScoreKernelSpec spec;
  spec.elementType = type.getElementType();
  spec.d = type.getShape().back();
  spec.numSources = n;
  spec.withStats = withStats;
  spec.layout = computeRowLayout(spec.elementType, spec.d,
                                 oneQueryElements(spec.elementType, spec.d));
  // Two 16-byte vectors of 16-bit elements per thread in at most 448
  // threads (4096 < D <= 7168): w*g in workgroup memory with one source in
  // flight and one per reduction fits 72 registers, so two CTAs share an
  // SM: 1.06-1.16x faster at D = 7168 than w*g in registers (128
  // registers, one CTA per SM; bench/NOTES.md run 11).
  bool twoPerSM = spec.elementType.getIntOrFloatBitWidth() == 16 &&
                  spec.layout.vectorsPerThread == 2 &&
                  spec.layout.tokensPerCta == 1 &&
                  spec.layout.threadsPerToken <= 448;
  spec.wgInShared = wgInShared >= 0 ? wgInShared > 0 : twoPerSM;
  spec.prefetchDepth =
      prefetchDepth || !twoPerSM ? pickDepth(prefetchDepth, spec.layout) : 1;
  spec.sourcesPerStep =
      sourcesPerStep || !twoPerSM ? pickStep(sourcesPerStep, spec.layout) : 1;
  spec.layout.minCtasPerSM = pickMinCtas(minCtasPerSM);
  return spec;
}

LogicalResult ConvertAttnResToGPUPass::lower(AggregateOp op) {
  RankedTensorType type = op.getSourceType();
  if (failed(checkSourceType(op, type)))
    return failure();
  IRRewriter rw(op);
  HostBuilder hb(rw, op.getLoc());
  ScoreKernelSpec spec =
      aggregateThroughputSpec(type, op.getNumSources(), /*withStats=*/false);
  std::optional<ScoreKernelSpec> small = pickSmallTokenKernel(spec);
  // Static token count: one of the two kernels, chosen now.
  std::optional<int64_t> staticTokens = staticTokenCount(type);
  if (small && staticTokens) {
    if (*staticTokens <= int64_t(smallTokens))
      spec = *small;
    small.reset();
  }
  // The throughput kernel is built first: it comes first in the module.
  gpu::GPUFuncOp kernel = getOrBuild(spec, op.getLoc(), buildScoreKernel);
  gpu::GPUFuncOp smallKernel;
  if (small)
    smallKernel = getOrBuild(*small, op.getLoc(), buildScoreKernel);

  SmallVector<Value> operands{hb.toBuffer(op.getQuery()),
                              hb.toBuffer(op.getNormWeight())};
  Value firstBuf = hb.addRows(op.getSources(), operands);
  Value numTokens = memref::DimOp::create(rw, op.getLoc(), operands[2], 0);
  Value out = hb.alloc(type, firstBuf, 0);
  operands.push_back(hb.collapseTokens(out, 0, 1));
  operands.push_back(numTokens);
  operands.push_back(
      arith::ConstantOp::create(rw, op.getLoc(), op.getEpsilonAttr()));
  if (!small) {
    hb.launch(kernel, spec.layout, numTokens, 1, operands);
  } else {
    // T <= small-tokens: the latency kernel; else the throughput kernel.
    hb.branchOnTokens(
        numTokens, smallTokens,
        [&] { hb.launch(smallKernel, small->layout, numTokens, 1, operands); },
        [&] { hb.launch(kernel, spec.layout, numTokens, 1, operands); });
  }
  rw.replaceOp(op, hb.toTensor(out, type));
  return success();
}

/// The latency-oriented aggregation kernel for `spec` at small token counts,
/// when the option allows it and it was measured faster (bench/NOTES.md run
/// 16, H100, T = 1..64, CUDA graphs): 16-bit rows with 2048 < D <= 8192, two
/// 16-byte vectors per thread (fewer warps to reduce over: 256 threads at
/// D = 4096), w*g in registers, four sources in flight and two per
/// reduction. N=9 D=4096: 3.5 vs 4.6 us at T = 1; N=10 D=7168: 6.6 vs
/// 7.6 us (slower than the throughput kernel at T = 256 there).
std::optional<ScoreKernelSpec>
ConvertAttnResToGPUPass::pickSmallTokenKernel(const ScoreKernelSpec &spec) {
  if (!smallTokens || elementsPerThread.getValue() ||
      spec.elementType.getIntOrFloatBitWidth() != 16 || spec.d <= 2048 ||
      spec.d > 8192 || spec.numSources < 2)
    return std::nullopt;
  ScoreKernelSpec small = spec;
  small.smallTokens = true;
  small.layout = computeRowLayout(spec.elementType, spec.d, 16);
  if (small.layout.vectorsPerThread != 2 || small.layout.tokensPerCta != 1)
    return std::nullopt;
  small.wgInShared = false;
  small.prefetchDepth = 4;
  small.sourcesPerStep = 2;
  small.layout.minCtasPerSM = 0;
  return small;
}

/// Queries per CTA for phase 1: all S accumulators and S w*g vectors of a
/// thread live in registers (2 * G * elements f32), so G is the largest
/// divisor of S that keeps them under about 80 registers; the S / G CTAs of
/// one token run next to each other and re-read its sources from L2.
static unsigned pickQueriesPerCta(unsigned s, unsigned elementsPerThread) {
  unsigned best = 1;
  for (unsigned g = 1; g <= s; ++g)
    if (s % g == 0 && 2 * g * elementsPerThread <= 80)
      best = g;
  return best;
}

/// The tensor-core phase-1 kernel for `spec` when it applies: bf16 rows
/// with D a multiple of 8 (16-byte fragments), the option on, and the
/// workgroup memory (per-warp partial logits) within 40 KB.
std::optional<BlockScoreTCSpec>
ConvertAttnResToGPUPass::pickTensorCoreKernel(const ScoreKernelSpec &spec) {
  if (!tensorCores || !target.hasBF16MMA() || !spec.elementType.isBF16() ||
      spec.d % 8 != 0)
    return std::nullopt;
  BlockScoreTCSpec tc;
  tc.elementType = spec.elementType;
  tc.d = spec.d;
  tc.numSources = spec.numSources;
  tc.numQueries = spec.numQueries;
  tc.hasInvRms = spec.hasInvRms;
  // Bulk copies of the rows into shared memory (sm_90+), measured on H100
  // (bench/NOTES.md run 8): faster than the L2 path for 4096 < D < 8192,
  // not at D = 2048, 4096 and 8192. One CTA per token when its
  // rows fit 100 KB (two CTAs per SM), else a cluster of two CTAs with half
  // of the columns each when the halves fit (D = 7168 with 9 sources:
  // 1.11-1.16x the L2 path). cluster-split=1 never splits, 2 or 4 split
  // into that many CTAs whenever the parts fit.
  // Bulk copies and clusters only where the target has them (sm_90+).
  bool useBulk = bulkCopy && target.hasBulkCopy();
  bool bulkFaster = spec.d > 4096 && spec.d < 8192;
  // Whether the rows of one of `parts` CTAs fit 100 KB of shared memory.
  auto partsFit = [&](unsigned parts) {
    BlockScoreTCSpec part = tc;
    part.clusterSplit = parts;
    return useBulk && (parts == 1 || target.hasClusters()) &&
           spec.d % (8 * parts) == 0 && part.sharedRowsBytes() <= 100 * 1024;
  };
  tc.bulkCopy = useBulk && bulkFaster && partsFit(1);
  if (clusterSplit == 2 || clusterSplit == 4) {
    if (partsFit(clusterSplit)) {
      tc.bulkCopy = true;
      tc.clusterSplit = clusterSplit;
    }
  } else if (clusterSplit == 0 && bulkFaster && !tc.bulkCopy && partsFit(2)) {
    tc.bulkCopy = true;
    tc.clusterSplit = 2;
  }
  // Elements per thread, measured on H100 (bench/kernels_check,
  // docs/gpu.md, bench/NOTES.md runs 6-8): with bulk copies 16 (D = 7168:
  // 448 threads, or 224 per CTA of a cluster). Without, 16 (two 16-byte
  // fragment rows, 8 blocks per warp, so two or more CTAs share an SM) with
  // 4 blocks of loads ahead up to D = 4096, except 8 for D <= 2048 with
  // more than 6 sources (256 threads at D = 2048: 1.10-1.19x faster with 9
  // sources); beyond D = 4096, 8 up to D = 7168 (896 threads) and for
  // D = 8192 with at most 8 sources, with 2 blocks ahead (at 1024 threads
  // ptxas must fit 64 registers and spills).
  // (With score-mma-sweep, sweep 2 does not depend on the elements per
  // thread: 16, so that the mma sweep's registers need not fit the 64 of
  // 1024 threads.)
  bool eightElements =
      !tc.bulkCopy && !scoreMmaSweep &&
      ((spec.d > 4096 &&
        (spec.d <= 7168 || (spec.d <= 8192 && tc.numSources <= 8))) ||
       (spec.d <= 2048 && tc.numSources > 6));
  // Bulk copies in one CTA with S <= 6: 32 (D = 7168: 224 threads, three
  // CTAs per SM; 1.05-1.09x faster with 5 sources, slower at S = 8).
  bool manyElements = tc.bulkCopy && tc.clusterSplit == 1 && tc.numQueries <= 6;
  int64_t elems = elementsPerThread.getValue() ? int64_t(elementsPerThread)
                  : eightElements              ? 8
                  : manyElements               ? 32
                                               : 16;
  tc.threads = ctaThreadsFor(tc.localColumns(), elems);
  tc.prefetchBlocks =
      prefetchDepth ? unsigned(prefetchDepth) : (spec.d <= 4096 ? 4 : 2);
  // Second sweep: 2 elements wide for D > 4096 when S n is large (register
  // pressure), measured: without bulk copies more than 6 sources; with bulk
  // copies (at most 448 threads) S n > 54 (9 sources and S = 6: 4 wide is
  // 1.13x faster, S = 8: 2 wide is 1.14x faster).
  bool narrow =
      spec.d > 4096 &&
      (tc.bulkCopy ? tc.numSources * tc.numQueries > 54 : tc.numSources > 6);
  unsigned sw = sweepWidth ? unsigned(sweepWidth) : (narrow ? 2 : 4);
  while (sw & (sw - 1))
    sw &= sw - 1;
  sw = std::clamp(sw, 2u, 8u);
  while (spec.d % sw != 0)
    sw /= 2;
  tc.sweepWidth = sw;
  tc.minCtasPerSM = minCtasPerSM > 1 ? unsigned(minCtasPerSM) : 0;
  // The L2 prefetch of the token's rows: measured +5 to +9% at D = 4096 and
  // 8192, -5% at D = 7168 (896-thread CTAs, one per SM).
  tc.prefetchL2 =
      l2Prefetch && target.hasL2Prefetch() && !(spec.d > 4096 && spec.d < 8192);
  unsigned warps = tc.threads / 32, n = tc.numSources, s = tc.numQueries;
  int64_t bytes = 4 * (int64_t(warps) * n * s + warps * n + n * s +
                       n * llvm::alignTo(s, 4));
  if (bytes > 40 * 1024)
    return std::nullopt;
  // All of the kernel's shared memory must fit the 227 KB a CTA may use.
  if (tc.bulkCopy && tc.dynamicSharedBytes() > 227 * 1024) {
    tc.bulkCopy = false;
    tc.clusterSplit = 1;
  }
  tc.splitQueries = splitQueryGains;
  tc.mmaSweep = scoreMmaSweep;
  // The mma sweep with no occupancy hint: ptxas 13.0 keeps some shapes at
  // 56 registers and spills, although nothing caps them, and with
  // `.minnctapersm 1` it takes up to 214 (n = 9, S = 8, D = 7168: one CTA
  // per SM). The hint asks for the CTAs per SM that both 128 registers per
  // thread and the CTA's shared memory allow (ptxas sm_90a: no spills at
  // the twelve phase-1 shapes and D = 7168; two CTAs of 224 threads per SM
  // at n = 9, S = 8, D = 7168, where the default kernel's 64 registers and
  // 68 KB allow three).
  if (tc.mmaSweep && tc.minCtasPerSM == 0) {
    int64_t byRegisters =
        std::max<int64_t>(1, 65536 / (int64_t(tc.threads) * 128));
    int64_t bySharedMemory = tc.bulkCopy ? target.sharedBytesPerSM() /
                                               (tc.dynamicSharedBytes() + 1024)
                                         : byRegisters;
    tc.minCtasPerSM =
        unsigned(std::max<int64_t>(1, std::min(byRegisters, bySharedMemory)));
  }
  return tc;
}

LogicalResult ConvertAttnResToGPUPass::lower(BlockScoreOp op) {
  RankedTensorType type = op.getSourceType();
  if (failed(checkSourceType(op, type)))
    return failure();
  auto outType = cast<RankedTensorType>(op.getOut().getType());
  auto lseType = cast<RankedTensorType>(op.getLse().getType());
  int64_t s = op.getNumQueries();
  if (ShapedType::isDynamic(s))
    return op.emitOpError(
        "convert-attnres-to-gpu needs a static number of queries S");
  IRRewriter rw(op);
  Location loc = op.getLoc();
  HostBuilder hb(rw, loc);
  ScoreKernelSpec spec;
  spec.elementType = type.getElementType();
  spec.d = type.getShape().back();
  spec.numSources = op.getSources().size();
  spec.numQueries = s;
  spec.stacked = true;
  spec.hasInvRms = !op.getInvRms().empty();
  std::optional<BlockScoreTCSpec> tcSpec = pickTensorCoreKernel(spec);
  // Phase 1 holds S accumulators per element: 8 elements (one 16-byte
  // vector of bf16) per thread while the token fits 512 threads, else 16.
  unsigned bytes = spec.elementType.getIntOrFloatBitWidth() / 8;
  unsigned elems = elementsPerThread.getValue()
                       ? unsigned(elementsPerThread)
                       : (spec.d * bytes <= 512 * 16 ? 16 / bytes : 32 / bytes);
  spec.layout = computeRowLayout(spec.elementType, spec.d, elems);
  unsigned perThread = spec.layout.vectorsPerThread * spec.layout.vectorWidth;
  spec.queriesPerCta =
      queriesPerCta.getValue() && s % int64_t(queriesPerCta) == 0
          ? unsigned(queriesPerCta)
          : pickQueriesPerCta(s, perThread);
  spec.prefetchDepth = prefetchDepth ? unsigned(prefetchDepth) : 2;
  spec.sourcesPerStep = pickStep(sourcesPerStep, spec.layout);
  spec.layout.minCtasPerSM = pickMinCtas(minCtasPerSM);
  // T <= score-small-tokens: the CUDA-core kernel with one query per CTA
  // (grid T x S), chosen at run time, or now when T is static. Nothing to
  // choose when that is the large-T kernel already.
  std::optional<ScoreKernelSpec> small;
  if (scoreSmallTokens && (tcSpec || spec.queriesPerCta != 1)) {
    small = spec;
    small->queriesPerCta = 1;
  }
  bool onlySmall = false;
  if (std::optional<int64_t> staticTokens = staticTokenCount(type);
      small && staticTokens) {
    onlySmall = *staticTokens <= int64_t(scoreSmallTokens);
    if (!onlySmall)
      small.reset();
  }
  // The large-T kernel is built first: it comes first in the module.
  gpu::GPUFuncOp kernel;
  if (!onlySmall)
    kernel = tcSpec ? getOrBuild(*tcSpec, loc, buildBlockScoreTCKernel)
                    : getOrBuild(spec, loc, buildScoreKernel);
  gpu::GPUFuncOp smallKernel;
  if (small)
    smallKernel = getOrBuild(*small, loc, buildScoreKernel);

  SmallVector<Value> operands{hb.toBuffer(op.getQueries()),
                              hb.toBuffer(op.getNormWeights())};
  Value firstBuf = hb.addRows(op.getSources(), operands);
  Value numTokens = memref::DimOp::create(rw, loc, operands[2], 0);
  for (Value r : op.getInvRms())
    operands.push_back(hb.collapseTokens(hb.toBuffer(r), 0, 0));
  Value out = hb.alloc(outType, firstBuf, 1);
  Value lse = hb.alloc(lseType, firstBuf, 1);
  operands.push_back(hb.collapseTokens(out, 1, 1));
  operands.push_back(hb.collapseTokens(lse, 1, 0));
  operands.push_back(numTokens);
  operands.push_back(arith::ConstantOp::create(rw, loc, op.getEpsilonAttr()));
  auto launchLarge = [&]() {
    if (tcSpec) {
      // One CTA per token, or a cluster of clusterSplit CTAs; with
      // split-query-gains the halves of w*g in place of the queries and
      // gains.
      SmallVector<Value> tcOperands(operands);
      if (tcSpec->splitQueries)
        std::tie(tcOperands[0], tcOperands[1]) = launchQueryGainSplit(
            hb, operands[0], operands[1], s, spec.d, spec.elementType);
      RowLayout l;
      l.threadsPerToken = tcSpec->threads;
      hb.launch(kernel, l, numTokens, tcSpec->clusterSplit, tcOperands,
                tcSpec->dynamicSharedBytes());
    } else {
      hb.launch(kernel, spec.layout, numTokens, s / spec.queriesPerCta,
                operands);
    }
  };
  if (onlySmall) {
    hb.launch(smallKernel, small->layout, numTokens, s, operands);
  } else if (!small) {
    launchLarge();
  } else {
    hb.branchOnTokens(
        numTokens, scoreSmallTokens,
        [&] { hb.launch(smallKernel, small->layout, numTokens, s, operands); },
        launchLarge);
  }
  rw.replaceOp(op, {hb.toTensor(out, outType), hb.toTensor(lse, lseType)});
  return success();
}

/// The operands the merge and merge_grad kernels start with, in order: out,
/// lse (tokens collapsed), query, norm_weight, update, [partial],
/// [norm_gain]; `outBuf` is `out`'s buffer.
template <typename MergeLikeOp>
static SmallVector<Value> mergeInputs(HostBuilder &hb, MergeLikeOp op,
                                      Value outBuf, int64_t d, Type e) {
  SmallVector<Value> operands;
  operands.push_back(hb.collapseTokens(outBuf, 0, 1));
  operands.push_back(hb.collapseTokens(hb.toBuffer(op.getLse()), 0, 0));
  operands.push_back(hb.vectorBuffer(op.getQuery(), d, e));
  operands.push_back(hb.vectorBuffer(op.getNormWeight(), d, e));
  operands.push_back(hb.collapseTokens(hb.toBuffer(op.getUpdate()), 0, 1));
  if (op.getPartial())
    operands.push_back(hb.collapseTokens(hb.toBuffer(op.getPartial()), 0, 1));
  if (op.hasNorm())
    operands.push_back(hb.vectorBuffer(op.getNormGain(), d, e));
  return operands;
}

LogicalResult ConvertAttnResToGPUPass::lower(MergeOp op) {
  auto type = cast<RankedTensorType>(op.getResult().getType());
  if (failed(checkSourceType(op, type)))
    return failure();
  IRRewriter rw(op);
  Location loc = op.getLoc();
  HostBuilder hb(rw, loc);
  MergeKernelSpec spec;
  spec.elementType = type.getElementType();
  spec.d = type.getShape().back();
  spec.hasPartial = bool(op.getPartial());
  spec.hasNorm = op.hasNorm();
  // With the fused norm, an unused h is not stored (spec E-C2).
  spec.writeH = !spec.hasNorm || !op.getResult().use_empty();
  spec.layout = computeRowLayout(spec.elementType, spec.d,
                                 oneQueryElements(spec.elementType, spec.d));
  spec.layout.minCtasPerSM = pickMinCtas(minCtasPerSM);
  gpu::GPUFuncOp kernel = getOrBuild(spec, loc, buildMergeKernel);
  Value outBuf = hb.toBuffer(op.getOut());
  SmallVector<Value> operands =
      mergeInputs(hb, op, outBuf, spec.d, spec.elementType);
  Value numTokens = memref::DimOp::create(rw, loc, operands[0], 0);
  Value h;
  if (spec.writeH) {
    h = hb.alloc(type, outBuf, 0);
    operands.push_back(hb.collapseTokens(h, 0, 1));
  }
  Value p;
  if (spec.hasPartial) {
    p = hb.alloc(type, outBuf, 0);
    operands.push_back(hb.collapseTokens(p, 0, 1));
  }
  Value hn;
  if (spec.hasNorm) {
    hn = hb.alloc(type, outBuf, 0);
    operands.push_back(hb.collapseTokens(hn, 0, 1));
  }
  operands.push_back(numTokens);
  operands.push_back(arith::ConstantOp::create(rw, loc, op.getEpsilonAttr()));
  if (spec.hasNorm)
    operands.push_back(
        arith::ConstantOp::create(rw, loc, op.getNormEpsilonAttr()));
  hb.launch(kernel, spec.layout, numTokens, 1, operands);
  // Without a partial sum the new partial sum is the update itself.
  Value newPartial = spec.hasPartial ? hb.toTensor(p, type) : op.getUpdate();
  if (!spec.hasNorm) {
    rw.replaceOp(op, {hb.toTensor(h, type), newPartial});
    return success();
  }
  Value normed = hb.toTensor(hn, type);
  // An unused h is not computed into memory; its (absent) uses get `normed`.
  rw.replaceOp(
      op, {spec.writeH ? hb.toTensor(h, type) : normed, newPartial, normed});
  return success();
}

LogicalResult ConvertAttnResToGPUPass::lower(AggregateStatsOp op) {
  RankedTensorType type = op.getSourceType();
  if (failed(checkSourceType(op, type)))
    return failure();
  IRRewriter rw(op);
  Location loc = op.getLoc();
  HostBuilder hb(rw, loc);
  // The throughput kernel of aggregate (same layout, depths and w*g
  // placement) that also stores lse and the n inverse RMS; no small-T
  // variant.
  ScoreKernelSpec spec =
      aggregateThroughputSpec(type, op.getNumSources(), /*withStats=*/true);
  gpu::GPUFuncOp kernel = getOrBuild(spec, loc, buildScoreKernel);

  SmallVector<Value> operands{hb.toBuffer(op.getQuery()),
                              hb.toBuffer(op.getNormWeight())};
  Value firstBuf = hb.addRows(op.getSources(), operands);
  Value numTokens = memref::DimOp::create(rw, loc, operands[2], 0);
  Value out = hb.alloc(type, firstBuf, 0);
  operands.push_back(hb.collapseTokens(out, 0, 1));
  auto statType = cast<RankedTensorType>(op.getLse().getType());
  SmallVector<Value> stats;
  for (unsigned i = 0; i < spec.numSources + 1; ++i) {
    stats.push_back(hb.alloc(statType, firstBuf, 0));
    operands.push_back(hb.collapseTokens(stats.back(), 0, 0));
  }
  operands.push_back(numTokens);
  operands.push_back(arith::ConstantOp::create(rw, loc, op.getEpsilonAttr()));
  hb.launch(kernel, spec.layout, numTokens, 1, operands);
  SmallVector<Value> results{hb.toTensor(out, type)};
  for (Value st : stats)
    results.push_back(hb.toTensor(st, statType));
  rw.replaceOp(op, results);
  return success();
}

/// Launches the deterministic reduction of `partials` (memref<P x K x f32>)
/// into dquery = dwg * gain and dgain = dwg * query (memref<K x f32>).
static void launchParamReduce(HostBuilder &hb, gpu::GPUFuncOp kernel, int64_t k,
                              Value partials, Value numPartials, Value query,
                              Value gain, Value dquery, Value dgain,
                              Value plainOut = Value(), int64_t plain = 0) {
  RowLayout l;
  l.threadsPerToken = ParamReduceSpec::kColumns * ParamReduceSpec::kSlices;
  Value grid = hb.idx(llvm::divideCeil(k + plain, ParamReduceSpec::kColumns));
  SmallVector<Value> operands{partials, numPartials, query,
                              gain,     dquery,      dgain};
  if (plainOut)
    operands.push_back(plainOut);
  hb.launch(kernel, l, grid, 1, operands);
}

LogicalResult ConvertAttnResToGPUPass::lower(AggregateGradOp op) {
  RankedTensorType type = op.getSourceType();
  if (failed(checkSourceType(op, type)))
    return failure();
  IRRewriter rw(op);
  Location loc = op.getLoc();
  HostBuilder hb(rw, loc);
  AggregateGradSpec spec;
  spec.elementType = type.getElementType();
  spec.d = type.getShape().back();
  spec.numSources = op.getNumSources();
  spec.accumulate = op.isAccumulating();
  AggregateGradOptions options;
  options.elementsPerThread = elementsPerThread;
  options.minCtasPerSM = minCtasPerSM;
  options.rowsInShared = gradRowsInShared;
  chooseAggregateGradLayout(spec, options, target);
  gpu::GPUFuncOp kernel = getOrBuild(spec, loc, buildAggregateGradKernel);
  ParamReduceSpec red;
  red.elementType = spec.elementType;
  red.k = spec.d;
  gpu::GPUFuncOp reduce = getOrBuild(red, loc, buildParamReduceKernel);

  Value query = hb.vectorBuffer(op.getQuery(), spec.d, spec.elementType);
  Value gain = hb.vectorBuffer(op.getNormWeight(), spec.d, spec.elementType);
  SmallVector<Value> operands{query, gain};
  Value firstBuf = hb.addRows(op.getSources(), operands);
  Value numTokens = memref::DimOp::create(rw, loc, operands[2], 0);
  operands.push_back(hb.collapseTokens(hb.toBuffer(op.getLse()), 0, 0));
  for (Value r : op.getInvRms())
    operands.push_back(hb.collapseTokens(hb.toBuffer(r), 0, 0));
  hb.addRows(op.getGrad(), operands);
  hb.addRows(op.getAccumulators(), operands);
  SmallVector<Value> grads;
  for (unsigned i = 0; i < spec.numSources; ++i) {
    grads.push_back(hb.alloc(type, firstBuf, 0));
    operands.push_back(hb.collapseTokens(grads.back(), 0, 1));
  }
  // One f32 partial row per CTA: min(T, grad-ctas) CTAs.
  Value numPartials = gradPartialCount(hb, numTokens);
  auto wsType =
      MemRefType::get({ShapedType::kDynamic, spec.d}, rw.getF32Type());
  Value ws = memref::AllocOp::create(rw, loc, wsType, ValueRange{numPartials});
  operands.push_back(ws);
  operands.push_back(numTokens);
  hb.launch(kernel, spec.layout, numPartials, 1, operands,
            spec.dynamicSharedBytes());

  auto paramType = cast<RankedTensorType>(op.getQueryGrad().getType());
  auto paramBuf = MemRefType::get({spec.d}, rw.getF32Type());
  Value dquery = memref::AllocOp::create(rw, loc, paramBuf);
  Value dgain = memref::AllocOp::create(rw, loc, paramBuf);
  launchParamReduce(hb, reduce, spec.d, ws, numPartials, query, gain, dquery,
                    dgain);
  SmallVector<Value> results;
  for (Value g : grads)
    results.push_back(hb.toTensor(g, type));
  // (C12): exactly tensor<D x f32>, D static here.
  for (Value p : {dquery, dgain})
    results.push_back(hb.toTensor(p, paramType));
  rw.replaceOp(op, results);
  return success();
}

LogicalResult ConvertAttnResToGPUPass::lower(MergeGradOp op) {
  auto type = cast<RankedTensorType>(op.getUpdate().getType());
  if (failed(checkSourceType(op, type)))
    return failure();
  IRRewriter rw(op);
  Location loc = op.getLoc();
  HostBuilder hb(rw, loc);
  MergeGradSpec spec;
  spec.elementType = type.getElementType();
  spec.d = type.getShape().back();
  spec.hasPartial = bool(op.getPartial());
  spec.hasNorm = op.hasNorm();
  spec.zeroGrad = isKnownZero(op.getGrad());
  spec.layout = computeRowLayout(spec.elementType, spec.d,
                                 oneQueryElements(spec.elementType, spec.d));
  spec.layout.tokensPerCta = 1;
  spec.layout.minCtasPerSM = pickMinCtas(minCtasPerSM);
  spec.prefetchNext = gradPrefetchTokens && mergeGradCanPrefetch(spec);
  gpu::GPUFuncOp kernel = getOrBuild(spec, loc, buildMergeGradKernel);
  ParamReduceSpec red;
  red.elementType = spec.elementType;
  red.k = spec.d;
  red.plain = spec.hasNorm ? spec.d : 0;
  gpu::GPUFuncOp reduce = getOrBuild(red, loc, buildParamReduceKernel);

  Value outBuf = hb.toBuffer(op.getOut());
  SmallVector<Value> operands =
      mergeInputs(hb, op, outBuf, spec.d, spec.elementType);
  Value query = operands[2], gain = operands[3];
  Value numTokens = memref::DimOp::create(rw, loc, operands[0], 0);
  if (!spec.zeroGrad)
    hb.addRows(op.getGrad(), operands);
  hb.addRows(op.getNewPartialGrad(), operands);
  if (spec.hasNorm)
    hb.addRows(op.getNormedGrad(), operands);
  auto lseType = cast<RankedTensorType>(op.getLseGrad().getType());
  Value dout = hb.alloc(type, outBuf, 0);
  Value dlse = hb.alloc(lseType, outBuf, 0);
  Value dp = hb.alloc(type, outBuf, 0);
  operands.push_back(hb.collapseTokens(dout, 0, 1));
  operands.push_back(hb.collapseTokens(dlse, 0, 0));
  operands.push_back(hb.collapseTokens(dp, 0, 1));
  Value numPartials = gradPartialCount(hb, numTokens);
  int64_t wsCols = spec.hasNorm ? 2 * spec.d : spec.d;
  auto wsType =
      MemRefType::get({ShapedType::kDynamic, wsCols}, rw.getF32Type());
  Value ws = memref::AllocOp::create(rw, loc, wsType, ValueRange{numPartials});
  operands.push_back(ws);
  operands.push_back(numTokens);
  operands.push_back(arith::ConstantOp::create(rw, loc, op.getEpsilonAttr()));
  if (spec.hasNorm)
    operands.push_back(
        arith::ConstantOp::create(rw, loc, op.getNormEpsilonAttr()));
  hb.launch(kernel, spec.layout, numPartials, 1, operands);

  auto paramType = cast<RankedTensorType>(op.getQueryGrad().getType());
  auto paramBuf = MemRefType::get({spec.d}, rw.getF32Type());
  Value dquery = memref::AllocOp::create(rw, loc, paramBuf);
  Value dgain = memref::AllocOp::create(rw, loc, paramBuf);
  Value dgn =
      spec.hasNorm ? memref::AllocOp::create(rw, loc, paramBuf) : Value();
  launchParamReduce(hb, reduce, spec.d, ws, numPartials, query, gain, dquery,
                    dgain, dgn, red.plain);
  SmallVector<Value> results{
      hb.toTensor(dout, type), hb.toTensor(dlse, lseType),
      hb.toTensor(dquery, paramType), hb.toTensor(dgain, paramType),
      hb.toTensor(dp, type)};
  if (spec.hasNorm)
    results.push_back(hb.toTensor(dgn, paramType));
  rw.replaceOp(op, results);
  return success();
}

LogicalResult ConvertAttnResToGPUPass::lower(BlockScoreGradOp op) {
  RankedTensorType type = op.getSourceType();
  if (failed(checkSourceType(op, type)))
    return failure();
  auto queriesType = cast<RankedTensorType>(op.getQueries().getType());
  int64_t s = queriesType.getShape().front();
  if (ShapedType::isDynamic(s))
    return op.emitOpError(
        "convert-attnres-to-gpu needs a static number of queries S");
  IRRewriter rw(op);
  Location loc = op.getLoc();
  HostBuilder hb(rw, loc);
  BlockScoreGradSpec spec;
  spec.elementType = type.getElementType();
  spec.d = type.getShape().back();
  spec.numQueries = unsigned(s);
  spec.numSources = op.getNumSources();
  spec.accumulate = op.isAccumulating();
  spec.layout = computeRowLayout(spec.elementType, spec.d,
                                 oneQueryElements(spec.elementType, spec.d));
  // One token per CTA: the coefficients of a token live in workgroup memory.
  spec.layout.tokensPerCta = 1;
  spec.layout.minCtasPerSM = pickMinCtas(minCtasPerSM);
  // The tensor-core kernel (option grad-tensor-cores): bf16 rows with D a
  // multiple of 8 (16-byte fragments) on targets with bf16 mma. Same
  // arguments and outputs; one CTA of tc.threads per token.
  std::optional<BlockScoreGradTCSpec> tc;
  if (gradTensorCores && target.hasBF16MMA() && spec.elementType.isBF16() &&
      spec.d % 8 == 0) {
    tc.emplace();
    tc->elementType = spec.elementType;
    tc->d = spec.d;
    tc->numQueries = spec.numQueries;
    tc->numSources = spec.numSources;
    tc->accumulate = spec.accumulate;
    // elements-per-thread sets the CTA size as for the forward tensor-core
    // kernel (fewer threads: more CTAs, so more tokens' rows in flight, per
    // SM; the kernel name gets `_t<threads>`).
    tc->threads =
        elementsPerThread.getValue()
            ? ctaThreadsFor(spec.d, int64_t(elementsPerThread.getValue()))
            : BlockScoreGradTCSpec::defaultThreads(spec.d);
    tc->prefetchL2 = l2Prefetch && target.hasBulkCopy();
    if (sweepWidth == 8)
      tc->sweepWidth = 8;
    if (minCtasPerSM > 1)
      tc->minCtasPerSM = unsigned(minCtasPerSM);
    tc->persistent = scoreGradPersistent;
    tc->splitQueries = splitQueryGains || scoreGradMmaSweep;
    tc->mmaSweep = scoreGradMmaSweep;
    // Loading the halves of w*g lets ptxas keep more loads in flight: at
    // 256 threads it then takes 140 registers (n = 9 S = 8, D = 4096 and
    // 7168), one CTA per SM where the default kernel (122) has two. The
    // hint keeps two, at 128 registers without spills.
    if (tc->splitQueries && minCtasPerSM < 0 && tc->threads == 256)
      tc->minCtasPerSM = 2;
    // The mma sweep reads its rows from L1 / L2 (no shared rows).
    tc->sharedRows =
        tc->mmaSweep
            ? 0
            : chooseBlockScoreGradSharedRows(*tc, scoreGradSharedRows, target);
    if (tc->dynamicSharedBytes() > target.maxSharedBytesPerCta())
      return op.emitOpError("score-grad-shared-rows=")
             << int(scoreGradSharedRows) << " needs "
             << tc->dynamicSharedBytes()
             << " bytes of shared memory per CTA; the target allows "
             << target.maxSharedBytesPerCta();
  }
  gpu::GPUFuncOp kernel = tc ? getOrBuild(*tc, loc, buildBlockScoreGradTCKernel)
                             : getOrBuild(spec, loc, buildBlockScoreGradKernel);
  RowLayout kernelLayout = tc ? tc->layout() : spec.layout;
  BlockScoreParamGradSpec pspec;
  pspec.elementType = spec.elementType;
  pspec.d = spec.d;
  pspec.numQueries = spec.numQueries;
  pspec.numSources = spec.numSources;
  pspec.vectorWidth = spec.layout.vectorWidth;
  gpu::GPUFuncOp params =
      getOrBuild(pspec, loc, buildBlockScoreParamGradKernel);
  ParamReduceSpec red;
  red.elementType = spec.elementType;
  red.k = s * spec.d;
  gpu::GPUFuncOp reduce = getOrBuild(red, loc, buildParamReduceKernel);

  auto paramsBuffer = MemRefType::get({s, spec.d}, spec.elementType);
  auto stackBuffer = [&](Value v) -> Value {
    Value buf = hb.toBuffer(v);
    if (buf.getType() != paramsBuffer)
      buf = memref::CastOp::create(rw, loc, paramsBuffer, buf);
    return buf;
  };
  Value queries = stackBuffer(op.getQueries());
  Value gains = stackBuffer(op.getNormWeights());
  SmallVector<Value> operands{queries, gains};
  Value firstBuf = hb.addRows(op.getSources(), operands);
  Value numTokens = memref::DimOp::create(rw, loc, operands[2], 0);
  operands.push_back(hb.collapseTokens(hb.toBuffer(op.getLse()), 1, 0));
  for (Value r : op.getInvRms())
    operands.push_back(hb.collapseTokens(hb.toBuffer(r), 0, 0));
  operands.push_back(hb.collapseTokens(hb.toBuffer(op.getOutGrad()), 1, 1));
  operands.push_back(hb.collapseTokens(hb.toBuffer(op.getLseGrad()), 1, 0));
  hb.addRows(op.getAccumulators(), operands);
  SmallVector<Value> grads, gradRows;
  for (unsigned i = 0; i < spec.numSources; ++i) {
    grads.push_back(hb.alloc(type, firstBuf, 0));
    gradRows.push_back(hb.collapseTokens(grads.back(), 0, 1));
  }
  operands.append(gradRows);
  int64_t sn = s * int64_t(spec.numSources);
  Value coef = memref::AllocOp::create(
      rw, loc, MemRefType::get({ShapedType::kDynamic, sn}, rw.getF32Type()),
      ValueRange{numTokens});
  operands.push_back(coef);
  operands.push_back(numTokens);
  // Persistent: min(T, grad-ctas / 2) CTAs (two per SM at the default 528 =
  // 4 x 132), each a chunk of tokens.
  Value ctas = numTokens;
  if (tc && tc->persistent)
    ctas = arith::MinUIOp::create(
        rw, loc, numTokens,
        hb.idx(std::max<int64_t>(1, int64_t(gradCtas) / 2)));
  // split-query-gains: the per-token kernel takes the halves of w*g in
  // place of the queries and gains (the parameter kernels take w and g).
  SmallVector<Value> tokenOperands(operands);
  if (tc && tc->splitQueries)
    std::tie(tokenOperands[0], tokenOperands[1]) =
        launchQueryGainSplit(hb, queries, gains, s, spec.d, spec.elementType);
  hb.launch(kernel, kernelLayout, ctas, 1, tokenOperands,
            tc ? tc->dynamicSharedBytes() : 0);

  // The parameter gradients: P = min(T, grad-ctas) chunks of tokens, each
  // over the column tiles, then the reduction over the chunks in order.
  Value numPartials = gradPartialCount(hb, numTokens);
  Value ws = memref::AllocOp::create(
      rw, loc,
      MemRefType::get({ShapedType::kDynamic, s * spec.d}, rw.getF32Type()),
      ValueRange{numPartials});
  SmallVector<Value> pOperands;
  for (unsigned i = 0; i < spec.numSources; ++i)
    pOperands.push_back(operands[2 + i]);
  pOperands.append({coef, ws, numTokens});
  RowLayout pLayout;
  pLayout.threadsPerToken = BlockScoreParamGradSpec::kThreads;
  hb.launch(params, pLayout, numPartials, unsigned(pspec.numTiles()),
            pOperands);

  auto flat = [&](Value m) -> Value {
    return memref::CollapseShapeOp::create(
        rw, loc, m, ArrayRef<ReassociationIndices>{{0, 1}});
  };
  auto flatParams = MemRefType::get({s * spec.d}, rw.getF32Type());
  Value dquery = memref::AllocOp::create(rw, loc, flatParams);
  Value dgain = memref::AllocOp::create(rw, loc, flatParams);
  Value flatQueries = flat(queries), flatGains = flat(gains);
  launchParamReduce(hb, reduce, s * spec.d, ws, numPartials, flatQueries,
                    flatGains, dquery, dgain);
  auto paramType = cast<RankedTensorType>(op.getQueriesGrad().getType());
  auto expand = [&](Value m) -> Value {
    return memref::ExpandShapeOp::create(
        rw, loc, MemRefType::get({s, spec.d}, rw.getF32Type()), m,
        ArrayRef<ReassociationIndices>{{0, 1}});
  };
  SmallVector<Value> results;
  for (Value g : grads)
    results.push_back(hb.toTensor(g, type));
  // (C14): exactly tensor<S x D x f32>, S and D static here.
  for (Value p : {dquery, dgain})
    results.push_back(hb.toTensor(expand(p), paramType));
  rw.replaceOp(op, results);
  return success();
}

/// The block_sum / inv_rms kernel of `numInputs` rows of `type`.
static RowKernelSpec rowKernelSpec(RowKernelSpec::Kind kind,
                                   RankedTensorType type, unsigned numInputs) {
  RowKernelSpec spec;
  spec.kind = kind;
  spec.elementType = type.getElementType();
  spec.d = type.getShape().back();
  spec.numInputs = numInputs;
  spec.layout = computeRowLayout(spec.elementType, spec.d,
                                 defaultRowElements(spec.elementType, spec.d));
  return spec;
}

LogicalResult ConvertAttnResToGPUPass::lower(BlockSumOp op) {
  auto type = cast<RankedTensorType>(op.getResult().getType());
  if (failed(checkSourceType(op, type)))
    return failure();
  IRRewriter rw(op);
  Location loc = op.getLoc();
  HostBuilder hb(rw, loc);
  RowKernelSpec spec =
      rowKernelSpec(RowKernelSpec::BlockSum, type, op.getInputs().size());
  gpu::GPUFuncOp kernel = getOrBuild(spec, loc, buildRowKernel);
  SmallVector<Value> operands;
  Value firstBuf = hb.addRows(op.getInputs(), operands);
  Value numTokens = memref::DimOp::create(rw, loc, operands[0], 0);
  Value out = hb.alloc(type, firstBuf, 0);
  operands.push_back(hb.collapseTokens(out, 0, 1));
  operands.push_back(numTokens);
  hb.launch(kernel, spec.layout, numTokens, 1, operands);
  rw.replaceOp(op, hb.toTensor(out, type));
  return success();
}

LogicalResult ConvertAttnResToGPUPass::lower(InvRmsOp op) {
  auto type = cast<RankedTensorType>(op.getInput().getType());
  if (failed(checkSourceType(op, type)))
    return failure();
  auto resultType = cast<RankedTensorType>(op.getResult().getType());
  IRRewriter rw(op);
  Location loc = op.getLoc();
  HostBuilder hb(rw, loc);
  RowKernelSpec spec = rowKernelSpec(RowKernelSpec::InvRms, type, 1);
  gpu::GPUFuncOp kernel = getOrBuild(spec, loc, buildRowKernel);
  Value buf = hb.toBuffer(op.getInput());
  Value in = hb.collapseTokens(buf, 0, 1);
  Value numTokens = memref::DimOp::create(rw, loc, in, 0);
  Value out = hb.alloc(resultType, buf, 0);
  SmallVector<Value> operands{
      in, hb.collapseTokens(out, 0, 0), numTokens,
      arith::ConstantOp::create(rw, loc, op.getEpsilonAttr())};
  hb.launch(kernel, spec.layout, numTokens, 1, operands);
  rw.replaceOp(op, hb.toTensor(out, resultType));
  return success();
}

/// The bytes of PTX kernel parameters that `kernel` takes once its memref
/// arguments are expanded into descriptors (allocated and aligned pointers,
/// offset, sizes and strides, 8 bytes each), scalars at their natural
/// alignment: what ptxas checks against the parameter space.
static int64_t kernelParamBytes(gpu::GPUFuncOp kernel) {
  int64_t bytes = 0;
  for (Type t : kernel.getArgumentTypes()) {
    int64_t size = 8, count = 1;
    if (auto m = dyn_cast<MemRefType>(t))
      count = 3 + 2 * m.getRank();
    else if (t.isIntOrFloat() && !t.isIndex())
      size = std::max<int64_t>(1, t.getIntOrFloatBitWidth() / 8);
    bytes = llvm::alignTo(bytes, size) + size * count;
  }
  return bytes;
}

void ConvertAttnResToGPUPass::runOnOperation() {
  kernelModule = nullptr;
  if (clusterSplit != 0 && clusterSplit != 1 && clusterSplit != 2 &&
      clusterSplit != 4) {
    getOperation()->emitError("convert-attnres-to-gpu: cluster-split must be "
                              "0, 1, 2 or 4, got ")
        << unsigned(clusterSplit);
    return signalPassFailure();
  }
  if (scoreGradSharedRows < -1) {
    getOperation()->emitError("convert-attnres-to-gpu: score-grad-shared-rows "
                              "must be -1 or a row count >= 0, got ")
        << int(scoreGradSharedRows);
    return signalPassFailure();
  }
  SmallVector<Operation *> ops;
  getOperation().walk([&](Operation *op) {
    if (isa<AggregateOp, AggregateStatsOp, AggregateGradOp, MergeGradOp,
            BlockScoreGradOp, BlockScoreOp, MergeOp, BlockSumOp, InvRmsOp>(op))
      ops.push_back(op);
  });
  if (ops.empty())
    return;
  if (failed(resolveTarget()))
    return signalPassFailure();
  bool failed = false;
  for (Operation *op : ops) {
    LogicalResult r =
        llvm::TypeSwitch<Operation *, LogicalResult>(op)
            .Case<AggregateOp, AggregateStatsOp, AggregateGradOp, MergeGradOp,
                  BlockScoreGradOp, BlockScoreOp, MergeOp, BlockSumOp,
                  InvRmsOp>([&](auto o) { return lower(o); })
            .Default([](Operation *) { return success(); });
    failed |= mlir::failed(r);
  }
  // Kernels with many sources (aggregate_grad with accumulators: four
  // descriptors per source) can exceed the parameter space of PTX ISA 8.0;
  // ptxas would reject the module, so say so here, at the op.
  if (kernelModule)
    for (auto kernel : kernelModule.getOps<gpu::GPUFuncOp>()) {
      int64_t bytes = kernelParamBytes(kernel);
      if (bytes <= target.maxKernelParamBytes())
        continue;
      kernel.emitError("convert-attnres-to-gpu: kernel ")
          << kernel.getName() << " takes " << bytes
          << " bytes of parameters, more than the "
          << target.maxKernelParamBytes() << " that PTX ISA "
          << target.ptxVersion / 10 << "." << target.ptxVersion % 10
          << " allows"
          << (target.ptxVersion < 81 && target.sm >= 70
                  ? "; target PTX ISA 8.1 or newer (features=+ptx81: 32764 "
                    "bytes) or split the op's sources"
                  : "; split the op's sources");
      failed = true;
    }
  if (failed)
    signalPassFailure();
}
