//===- GradKernelHelpers.cpp - backward kernels' shared pieces ------------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "GradKernelHelpers.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

std::pair<Value, Value> grad::ctaTokenRange(OpBuilder &b, Location loc,
                                            Value numTokens) {
  Value cta = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value grid = gpu::GridDimOp::create(b, loc, gpu::Dimension::x);
  Value chunk = arith::CeilDivUIOp::create(b, loc, numTokens, grid);
  Value begin = arith::MinUIOp::create(
      b, loc, arith::MulIOp::create(b, loc, cta, chunk), numTokens);
  Value end = arith::MinUIOp::create(
      b, loc, arith::AddIOp::create(b, loc, begin, chunk), numTokens);
  return {begin, end};
}

void grad::storeF32Row(RowEmitter &em, ArrayRef<Value> vals, Value ws,
                       Value row, Value base) {
  OpBuilder &b = em.b;
  uint64_t align = std::min<uint64_t>(16, 4 * em.layout.vectorWidth);
  for (unsigned j = 0; j < vals.size(); ++j) {
    Value v = vals[j];
    Value col = em.offset(j);
    if (base)
      col = arith::AddIOp::create(b, em.loc, col, base);
    buildIf(b, em.loc, em.valid(j), [&]() {
      vector::StoreOp::create(b, em.loc, v, ws, ValueRange{row, col},
                              /*nontemporal=*/false, llvm::MaybeAlign(align));
    });
  }
}

Value grad::splatNeg(RowEmitter &em, Value scalar) {
  return em.splat(arith::NegFOp::create(em.b, em.loc, scalar));
}

void grad::sourceDots(RowEmitter &em, ArrayRef<Value> sources, ValueRange tk,
                      unsigned lo, unsigned hi, unsigned depth, bool keep,
                      MutableArrayRef<SmallVector<Value>> rowsIn,
                      ArrayRef<Value> wg, ArrayRef<Value> other,
                      SmallVectorImpl<Value> &partials, Value stash) {
  unsigned n = sources.size();
  for (unsigned i = lo; i < hi; ++i) {
    if (depth && i + depth < n)
      rowsIn[i + depth] = em.loadRow(sources[i + depth], tk);
    Value pw = em.zeroF32Vec(), pd = em.zeroF32Vec();
    for (unsigned j = 0; j < wg.size(); ++j) {
      Value x = em.toF32(rowsIn[i][j]);
      pw = em.fma(wg[j], x, pw);
      pd = em.fma(x, other[j], pd);
    }
    if (stash && int64_t(i) < cast<MemRefType>(stash.getType()).getDimSize(0)) {
      Value row = em.idx(i);
      for (unsigned j = 0; j < rowsIn[i].size(); ++j)
        em.storeRaw(rowsIn[i][j], stash, ValueRange{row}, j);
    }
    if (!keep)
      rowsIn[i].clear();
    partials.push_back(em.hsum(pw));
    partials.push_back(em.hsum(pd));
  }
}

// NVPTX demotes the dynamic-shared-memory symbol of a kernel that also has
// static shared variables to a static variable, whose accesses past its
// first byte then overlap them (run 32): with shared rows all of a kernel's
// shared memory is this one allocation.
Value grad::viewSharedRows(OpBuilder &b, Location loc, Type e, int64_t k,
                           int64_t stride, ArrayRef<Type> regionTypes,
                           SmallVectorImpl<Value> &regions) {
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  Value dynSm = gpu::DynamicSharedMemoryOp::create(
      b, loc,
      MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                      MemRefLayoutAttrInterface(), workgroup));
  auto view = [&](int64_t offset, Type type) -> Value {
    Value at = arith::ConstantIndexOp::create(b, loc, offset);
    return memref::ViewOp::create(b, loc, cast<MemRefType>(type), dynSm, at,
                                  ValueRange{});
  };
  Value rows = view(0, MemRefType::get({k, stride}, e,
                                       MemRefLayoutAttrInterface(), workgroup));
  int64_t offset = k * stride * (e.getIntOrFloatBitWidth() / 8);
  for (Type t : regionTypes) {
    offset = llvm::alignTo(offset, 16);
    regions.push_back(view(offset, t));
    offset += 4 * cast<MemRefType>(t).getNumElements();
  }
  return rows;
}

SmallVector<Type> grad::blockScoreGradArgTypes(OpBuilder &b, Type e, int64_t d,
                                               unsigned s, unsigned n,
                                               bool accumulate) {
  Type f32 = b.getF32Type();
  int64_t dyn = ShapedType::kDynamic;
  Type params = MemRefType::get({int64_t(s), d}, e), rows = rowsType(e, d);
  Type stat = MemRefType::get({dyn}, f32);
  Type stackedStat = MemRefType::get({int64_t(s), dyn}, f32);
  SmallVector<Type> args{params, params};
  args.append(n, rows);
  args.push_back(stackedStat);
  args.append(n, stat);
  args.push_back(MemRefType::get({int64_t(s), dyn, d}, e));
  args.push_back(stackedStat);
  if (accumulate)
    args.append(n, rows);
  args.append(n, rows);
  args.push_back(MemRefType::get({dyn, int64_t(s * n)}, f32));
  args.push_back(b.getIndexType());
  return args;
}

grad::BlockScoreGradArgs::BlockScoreGradArgs(Block &entry, unsigned n,
                                             bool accumulate) {
  unsigned a = 0;
  queries = entry.getArgument(a++);
  gains = entry.getArgument(a++);
  for (unsigned i = 0; i < n; ++i)
    sources.push_back(entry.getArgument(a++));
  lse = entry.getArgument(a++);
  for (unsigned i = 0; i < n; ++i)
    invRms.push_back(entry.getArgument(a++));
  dout = entry.getArgument(a++);
  dlse = entry.getArgument(a++);
  if (accumulate)
    for (unsigned i = 0; i < n; ++i)
      accs.push_back(entry.getArgument(a++));
  for (unsigned i = 0; i < n; ++i)
    grads.push_back(entry.getArgument(a++));
  coefOut = entry.getArgument(a++);
  numTokens = entry.getArgument(a++);
}
