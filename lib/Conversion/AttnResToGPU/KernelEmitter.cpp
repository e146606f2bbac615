//===- KernelEmitter.cpp - Shared emitters of the attnres kernels ---------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

unsigned gpu_kernels::ctaThreadsFor(int64_t columns, int64_t elements,
                                    unsigned maxThreads) {
  int64_t t = llvm::alignTo(llvm::divideCeil(columns, elements), 32);
  return unsigned(std::clamp<int64_t>(t, 32, maxThreads));
}

unsigned gpu_kernels::defaultRowElements(Type elementType, int64_t d) {
  // Measured on H100 (docs/gpu.md): one vector per thread with three sources
  // in flight beat two vectors per thread; more threads per token give more
  // loads in flight per SM.
  unsigned vectorWidth = 16 / (elementType.getIntOrFloatBitWidth() / 8);
  return d <= int64_t(512 * vectorWidth) ? 8 : 16;
}

RowLayout gpu_kernels::computeRowLayout(Type elementType, int64_t d,
                                        unsigned targetElements) {
  RowLayout l;
  l.d = d;
  unsigned bytes = elementType.getIntOrFloatBitWidth() / 8;
  // 16-byte accesses need every row to start 16-byte aligned: the vector
  // width must divide D. Otherwise fall back to the widest width that does.
  unsigned vw = 16 / bytes;
  while (vw > 1 && d % vw != 0)
    vw /= 2;
  l.vectorWidth = vw;
  l.numVectors = d / vw;
  int64_t perThread = std::max<int64_t>(1, targetElements / vw);
  int64_t tpt = llvm::divideCeil(l.numVectors, perThread);
  tpt = llvm::alignTo(tpt, 32);
  tpt = std::clamp<int64_t>(tpt, 32, 1024);
  l.threadsPerToken = tpt;
  l.vectorsPerThread = llvm::divideCeil(l.numVectors, tpt);
  // A token that fits in one warp: pack 4 tokens (warps) per CTA so that an
  // SM can hold enough of them.
  l.tokensPerCta = tpt == 32 ? 4 : 1;
  return l;
}

std::string gpu_kernels::typeSuffix(Type t) {
  if (t.isF32())
    return "f32";
  if (t.isF16())
    return "f16";
  return "bf16";
}

void RowEmitter::emitIndices(unsigned groupCount) {
  tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value c32 = idx(32);
  lane = arith::RemUIOp::create(b, loc, tid, c32);
  warp = arith::DivUIOp::create(b, loc, tid, c32);
  Value tokenBlock = bid;
  group = idx(0);
  if (groupCount > 1) {
    Value g = idx(groupCount);
    group = arith::RemUIOp::create(b, loc, bid, g);
    tokenBlock = arith::DivUIOp::create(b, loc, bid, g);
  }
  if (layout.tokensPerCta > 1) {
    token = arith::AddIOp::create(
        b, loc,
        arith::MulIOp::create(b, loc, tokenBlock, idx(layout.tokensPerCta)),
        warp);
    tpos = lane;
    warpInToken = idx(0);
  } else {
    token = tokenBlock;
    tpos = tid;
    warpInToken = warp;
  }
}

SmallVector<Value> RowEmitter::tokenSum(ArrayRef<Value> values, Value scratch,
                                        Value parity) {
  SmallVector<Value> r;
  for (Value v : values)
    r.push_back(warpXorSum(v, 32));
  unsigned w = layout.warpsPerToken();
  if (w == 1)
    return r;
  Value par = parity;
  Value isLane0 =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, lane, idx(0));
  auto ifOp = scf::IfOp::create(b, loc, isLane0, /*withElse=*/false);
  {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(ifOp.getThenRegion().front().getTerminator());
    for (auto [k, v] : llvm::enumerate(r))
      memref::StoreOp::create(b, loc, v, scratch,
                              ValueRange{par, idx(k), warpInToken});
  }
  gpu::BarrierOp::create(b, loc);
  // Lanes of every group of p2 lanes read the W warp totals, so that the
  // xor tree leaves the total in every lane.
  unsigned p2 = llvm::PowerOf2Ceil(w);
  Value slot = arith::RemUIOp::create(b, loc, lane, idx(p2));
  Value has =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, slot, idx(w));
  SmallVector<Type> types(r.size(), f32);
  auto rd = buildIfElse(
      b, loc, has,
      [&](Location l) {
        SmallVector<Value> vals;
        for (unsigned k = 0; k < r.size(); ++k)
          vals.push_back(memref::LoadOp::create(b, l, scratch,
                                                ValueRange{par, idx(k), slot}));
        return vals;
      },
      [&](Location) { return SmallVector<Value>(r.size(), f32c(0.0)); });
  SmallVector<Value> out;
  for (Value v : rd.getResults())
    out.push_back(warpXorSum(v, p2));
  return out;
}

gpu::GPUFuncOp gpu_kernels::createKernel(OpBuilder &b, Location loc,
                                         StringRef name,
                                         ArrayRef<Type> argTypes,
                                         ArrayRef<Type> workgroupTypes,
                                         const RowLayout &layout) {
  auto fnType = b.getFunctionType(argTypes, {});
  auto fn = gpu::GPUFuncOp::create(b, loc, name, fnType, workgroupTypes);
  fn->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  fn.setKnownBlockSizeAttr(
      b.getDenseI32ArrayAttr({int32_t(layout.ctaThreads()), 1, 1}));
  // Ask ptxas for a register budget that lets this many CTAs share an SM.
  if (layout.minCtasPerSM > 1)
    fn->setAttr("nvvm.minctasm", b.getI32IntegerAttr(layout.minCtasPerSM));
  Block &entry = fn.getBody().front();
  b.setInsertionPointToStart(&entry);
  auto ret = gpu::ReturnOp::create(b, loc);
  b.setInsertionPoint(ret);
  return fn;
}

MemRefType gpu_kernels::rowsType(Type e, int64_t d) {
  return MemRefType::get({ShapedType::kDynamic, d}, e);
}

SmallVector<Type> gpu_kernels::mergeInputArgTypes(OpBuilder &b, Type e,
                                                  int64_t d, bool hasPartial,
                                                  bool hasNorm) {
  Type rows = rowsType(e, d), vec = MemRefType::get({d}, e);
  SmallVector<Type> args{
      rows, MemRefType::get({ShapedType::kDynamic}, b.getF32Type()), vec, vec,
      rows};
  if (hasPartial)
    args.push_back(rows);
  if (hasNorm)
    args.push_back(vec);
  return args;
}

SmallVector<Type> gpu_kernels::scoreArgTypes(OpBuilder &b, Type e, int64_t d,
                                             unsigned n, unsigned s,
                                             bool stacked, bool hasInvRms,
                                             bool withStats) {
  int64_t dyn = ShapedType::kDynamic;
  Type f32 = b.getF32Type();
  SmallVector<Type> args;
  Type vecType = stacked ? MemRefType::get({s, d}, e) : MemRefType::get({d}, e);
  args.push_back(vecType);
  args.push_back(vecType);
  for (unsigned i = 0; i < n; ++i)
    args.push_back(rowsType(e, d));
  if (hasInvRms)
    for (unsigned i = 0; i < n; ++i)
      args.push_back(MemRefType::get({dyn}, f32));
  args.push_back(stacked ? MemRefType::get({s, dyn, d}, e) : rowsType(e, d));
  if (stacked)
    args.push_back(MemRefType::get({s, dyn}, f32));
  if (withStats)
    for (unsigned i = 0; i < n + 1; ++i)
      args.push_back(MemRefType::get({dyn}, f32));
  args.push_back(b.getIndexType());
  args.push_back(f32);
  return args;
}
