//===- ParamReduceKernel.cpp - ordered parameter sums ---------------------===//
//
// Part of the attnres project.
//
// The second kernel of every backward: sums the per-CTA f32 partials of
// the parameter gradients in a fixed order (no float atomics), so that the
// gradients are deterministic (spec I.5).
//
//===----------------------------------------------------------------------===//

#include "GradKernelHelpers.h"

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;
using namespace mlir::attnres::gpu_kernels::grad;

//===----------------------------------------------------------------------===//
// The deterministic reduction of the per-CTA partials
//===----------------------------------------------------------------------===//

std::string ParamReduceSpec::getName() const {
  return "param_grad_reduce_" + typeSuffix(elementType) + "_k" +
         std::to_string(k) + (plain ? "_p" + std::to_string(plain) : "");
}

gpu::GPUFuncOp
gpu_kernels::buildParamReduceKernel(OpBuilder &b, Location loc,
                                    const ParamReduceSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  Type e = spec.elementType, f32 = b.getF32Type();
  int64_t k = spec.k, dyn = ShapedType::kDynamic;
  int64_t cols_total = k + spec.plain;
  const unsigned cols = ParamReduceSpec::kColumns,
                 slices = ParamReduceSpec::kSlices;
  Type vec = MemRefType::get({k}, e), out = MemRefType::get({k}, f32);
  SmallVector<Type> args{MemRefType::get({dyn, cols_total}, f32),
                         b.getIndexType(),
                         vec,
                         vec,
                         out,
                         out};
  if (spec.plain)
    args.push_back(MemRefType::get({spec.plain}, f32));
  auto wsAttr =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  SmallVector<Type> wgTypes{MemRefType::get({int64_t(slices), int64_t(cols)},
                                            f32, MemRefLayoutAttrInterface(),
                                            wsAttr)};
  RowLayout layout;
  layout.threadsPerToken = cols * slices;
  gpu::GPUFuncOp fn =
      createKernel(b, loc, spec.getName(), args, wgTypes, layout);
  Block &entry = fn.getBody().front();
  Value ws = entry.getArgument(0), numPartials = entry.getArgument(1);
  Value query = entry.getArgument(2), gain = entry.getArgument(3);
  Value dquery = entry.getArgument(4), dgain = entry.getArgument(5);
  Value smem = fn.getWorkgroupAttributions()[0];

  auto idx = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0));
  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value lane = arith::RemUIOp::create(b, loc, tid, idx(cols));
  Value slice = arith::DivUIOp::create(b, loc, tid, idx(cols));
  Value col = arith::AddIOp::create(
      b, loc, arith::MulIOp::create(b, loc, bid, idx(cols)), lane);
  Value colOk = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, col,
                                      idx(cols_total));
  // Slice s sums rows [s * per, min((s + 1) * per, P)) in increasing order,
  // four loads in flight per step (a missing row adds +0).
  Value per = arith::CeilDivUIOp::create(b, loc, numPartials, idx(slices));
  Value lo = arith::MinUIOp::create(
      b, loc, arith::MulIOp::create(b, loc, slice, per), numPartials);
  Value hi = arith::MinUIOp::create(
      b, loc, arith::AddIOp::create(b, loc, lo, per), numPartials);
  const int64_t unroll = 4;
  Value sliceSum =
      buildIfElse(
          b, loc, colOk,
          [&](Location) -> SmallVector<Value> {
            auto loop = scf::ForOp::create(b, loc, lo, hi, idx(unroll),
                                           ValueRange{zero});
            OpBuilder::InsertionGuard lg(b);
            b.setInsertionPointToStart(loop.getBody());
            Value row0 = loop.getInductionVar();
            SmallVector<Value> vals;
            for (int64_t u = 0; u < unroll; ++u) {
              Value row =
                  u ? arith::AddIOp::create(b, loc, row0, idx(u)).getResult()
                    : row0;
              Value ok = arith::CmpIOp::create(
                  b, loc, arith::CmpIPredicate::ult, row, hi);
              vals.push_back(
                  buildIfElse(
                      b, loc, ok,
                      [&](Location) -> SmallVector<Value> {
                        return {memref::LoadOp::create(b, loc, ws,
                                                       ValueRange{row, col})};
                      },
                      [&](Location) -> SmallVector<Value> { return {zero}; })
                      .getResult(0));
            }
            Value sum = loop.getRegionIterArgs()[0];
            for (Value v : vals)
              sum = arith::AddFOp::create(b, loc, sum, v);
            scf::YieldOp::create(b, loc, sum);
            b.setInsertionPointAfter(loop);
            return {loop.getResult(0)};
          },
          [&](Location) -> SmallVector<Value> { return {zero}; })
          .getResult(0);
  memref::StoreOp::create(b, loc, sliceSum, smem, ValueRange{slice, lane});
  gpu::BarrierOp::create(b, loc);
  Value first =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, slice, idx(0));
  Value write = arith::AndIOp::create(b, loc, first, colOk);
  buildIf(b, loc, write, [&]() {
    Value total =
        memref::LoadOp::create(b, loc, smem, ValueRange{idx(0), lane});
    for (unsigned s = 1; s < slices; ++s)
      total = arith::AddFOp::create(
          b, loc, total,
          memref::LoadOp::create(b, loc, smem, ValueRange{idx(s), lane}));
    auto toF32 = [&](Value v) -> Value {
      return e.isF32() ? v : arith::ExtFOp::create(b, loc, f32, v).getResult();
    };
    auto scaled = [&]() {
      Value q = toF32(memref::LoadOp::create(b, loc, query, ValueRange{col}));
      Value g = toF32(memref::LoadOp::create(b, loc, gain, ValueRange{col}));
      memref::StoreOp::create(b, loc, arith::MulFOp::create(b, loc, total, g),
                              dquery, ValueRange{col});
      memref::StoreOp::create(b, loc, arith::MulFOp::create(b, loc, total, q),
                              dgain, ValueRange{col});
    };
    if (!spec.plain)
      return scaled();
    Value isScaled =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, col, idx(k));
    auto ifOp = scf::IfOp::create(b, loc, isScaled, /*withElse=*/true);
    OpBuilder::InsertionGuard ig(b);
    b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
    scaled();
    b.setInsertionPoint(ifOp.elseBlock()->getTerminator());
    memref::StoreOp::create(
        b, loc, total, entry.getArgument(6),
        ValueRange{arith::SubIOp::create(b, loc, col, idx(k))});
  });
  return fn;
}
