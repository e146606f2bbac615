//===- RowKernels.cpp - block_sum / inv_rms kernels -----------------------===//
//
// Part of the attnres project.
//
// The single-pass row kernels: attnres.block_sum and attnres.inv_rms.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

std::string RowKernelSpec::getName() const {
  if (kind == InvRms)
    return "inv_rms_" + typeSuffix(elementType) + "_d" + std::to_string(d);
  return "block_sum_" + typeSuffix(elementType) + "_d" + std::to_string(d) +
         "_n" + std::to_string(numInputs);
}

gpu::GPUFuncOp gpu_kernels::buildRowKernel(OpBuilder &b, Location loc,
                                           const RowKernelSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  const RowLayout &layout = spec.layout;
  Type e = spec.elementType;
  Type f32 = b.getF32Type();
  Type rows = rowsType(e, spec.d);
  bool isInvRms = spec.kind == RowKernelSpec::InvRms;
  unsigned numIn = isInvRms ? 1 : spec.numInputs;

  SmallVector<Type> args(numIn, rows);
  args.push_back(isInvRms ? Type(MemRefType::get({ShapedType::kDynamic}, f32))
                          : rows);
  args.push_back(b.getIndexType());
  if (isInvRms)
    args.push_back(f32);

  RowEmitter em(b, loc, layout, e);
  SmallVector<Type> wgTypes;
  if (isInvRms && layout.warpsPerToken() > 1)
    wgTypes.push_back(em.scratchType(1));
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args, wgTypes, layout);
  Block &entry = fn.getBody().front();
  SmallVector<Value> ins;
  for (unsigned i = 0; i < numIn; ++i)
    ins.push_back(entry.getArgument(i));
  Value out = entry.getArgument(numIn);
  Value numTokens = entry.getArgument(numIn + 1);
  Value scratch =
      wgTypes.empty() ? Value() : Value(fn.getWorkgroupAttributions()[0]);

  em.emitIndices(1);
  em.guardTokens(numTokens);
  unsigned c = layout.vectorsPerThread;
  ValueRange tok(em.token);

  SmallVector<SmallVector<Value>> rowsIn;
  for (Value in : ins)
    rowsIn.push_back(em.loadRow(in, tok));
  if (!isInvRms) {
    for (unsigned j = 0; j < c; ++j) {
      Value acc = em.toF32(rowsIn[0][j]);
      for (unsigned i = 1; i < numIn; ++i)
        acc = arith::AddFOp::create(b, loc, acc, em.toF32(rowsIn[i][j]));
      em.storeVector(acc, out, tok, j);
    }
    return fn;
  }
  Value eps = entry.getArgument(numIn + 2);
  Value ss = em.zeroF32Vec();
  for (unsigned j = 0; j < c; ++j) {
    Value x = em.toF32(rowsIn[0][j]);
    ss = em.fma(x, x, ss);
  }
  SmallVector<Value> tot = em.tokenSum({em.hsum(ss)}, scratch, 0);
  Value r = em.invRms(tot[0], eps);
  Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, em.tpos,
                                      em.idx(0));
  auto ifOp = scf::IfOp::create(b, loc, first, /*withElse=*/false);
  b.setInsertionPoint(ifOp.getThenRegion().front().getTerminator());
  memref::StoreOp::create(b, loc, r, out, tok);
  return fn;
}
