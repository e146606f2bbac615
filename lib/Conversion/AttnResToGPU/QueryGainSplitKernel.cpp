//===- QueryGainSplitKernel.cpp - w*g split into bf16 halves, once --------===//
//
// Part of the attnres project.
//
// With split-query-gains, the tensor-core kernels of block_score and
// block_score_grad read w*g of their S queries as two bf16 operands (hi,
// lo) instead of computing and splitting the product for every token and
// 32-column block (docs/gpu.md "Kernel design"). This kernel computes the
// split once per call: one thread per 16-byte vector of the S x D
// queries. The split is TCEmitter::splitBF16's, so that the consumers'
// results are bit-identical to the kernels that split in place.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"

using namespace mlir;
using namespace mlir::attnres;
using namespace mlir::attnres::gpu_kernels;

std::string QueryGainSplitSpec::getName() const {
  return "query_gain_split_" + typeSuffix(elementType) + "_s" +
         std::to_string(numQueries) + "_d" + std::to_string(d);
}

int64_t QueryGainSplitSpec::numCtas() const {
  int64_t vectors = numQueries * (d / 8);
  return std::max<int64_t>(1, llvm::divideCeil(vectors, int64_t(kThreads)));
}

gpu::GPUFuncOp
gpu_kernels::buildQueryGainSplitKernel(OpBuilder &b, Location loc,
                                       const QueryGainSplitSpec &spec) {
  OpBuilder::InsertionGuard guard(b);
  Type e = spec.elementType, bf16 = b.getBF16Type(), f32 = b.getF32Type();
  int64_t s = spec.numQueries, d = spec.d;
  Type in = MemRefType::get({s, d}, e), out = MemRefType::get({s, d}, bf16);
  RowLayout layout;
  layout.threadsPerToken = QueryGainSplitSpec::kThreads;
  gpu::GPUFuncOp fn = createKernel(b, loc, spec.getName(), {in, in, out, out},
                                   /*workgroupTypes=*/{}, layout);
  Block &entry = fn.getBody().front();
  Value queries = entry.getArgument(0), gains = entry.getArgument(1);
  Value hiOut = entry.getArgument(2), loOut = entry.getArgument(3);

  TCEmitter tc(b, loc);
  auto v8e = VectorType::get({8}, e);
  auto v8f = VectorType::get({8}, f32);
  auto v8bf = VectorType::get({8}, bf16);
  auto v8i = VectorType::get({8}, tc.i32);
  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  // Vector v of the flattened S x D queries: row v / (D / 8), columns
  // [8 (v % (D / 8)), + 8).
  Value v = tc.add(tc.mul(bid, tc.idx(QueryGainSplitSpec::kThreads)), tid);
  Value perRow = tc.idx(d / 8);
  Value inRange = tc.cmp(arith::CmpIPredicate::ult, v, tc.idx(s * (d / 8)));
  tc.when(inRange, [&]() {
    Value row = arith::DivUIOp::create(b, loc, v, perRow);
    Value inRow = arith::RemUIOp::create(b, loc, v, perRow);
    Value col = tc.mul(inRow, tc.idx(8));
    auto load = [&](Value m) -> Value {
      return vector::LoadOp::create(b, loc, v8e, m, ValueRange{row, col},
                                    /*nontemporal=*/false,
                                    llvm::MaybeAlign(16));
    };
    Value wv = arith::ExtFOp::create(b, loc, v8f, load(queries));
    Value gv = arith::ExtFOp::create(b, loc, v8f, load(gains));
    Value wg = arith::MulFOp::create(b, loc, wv, gv);
    Value hiMask = arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(v8i, b.getI32IntegerAttr(int32_t(0xFFFF0000))));
    std::pair<Value, Value> parts = tc.splitBF16Parts(wg, hiMask);
    Value hi = vector::BitCastOp::create(b, loc, v8bf, parts.first);
    Value lo = arith::TruncFOp::create(b, loc, v8bf, parts.second);
    auto store = [&](Value x, Value m) {
      vector::StoreOp::create(b, loc, x, m, ValueRange{row, col},
                              /*nontemporal=*/false, llvm::MaybeAlign(16));
    };
    store(hi, hiOut);
    store(lo, loOut);
  });
  return fn;
}
