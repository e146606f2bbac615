//===- PointwiseInterpreter.cpp - demand-driven tensor interpreter --------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Analysis/PointwiseInterpreter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::attnres;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// The shape of a ranked tensor type, dynamic dims taken as
/// PointwiseInterpreter::kDynamicSize.
static bool getStaticShape(Type t, SmallVectorImpl<int64_t> &shape) {
  auto rt = dyn_cast<RankedTensorType>(t);
  if (!rt)
    return false;
  shape.clear();
  for (int64_t s : rt.getShape())
    shape.push_back(
        ShapedType::isDynamic(s) ? PointwiseInterpreter::kDynamicSize : s);
  return true;
}

static int64_t linearize(ArrayRef<int64_t> idx, ArrayRef<int64_t> shape) {
  int64_t lin = 0;
  for (auto [i, s] : llvm::zip_equal(idx, shape))
    lin = lin * s + i;
  return lin;
}

static SmallVector<int64_t> delinearize(int64_t lin, ArrayRef<int64_t> shape) {
  SmallVector<int64_t> idx(shape.size());
  for (int64_t k = static_cast<int64_t>(shape.size()) - 1; k >= 0; --k) {
    idx[k] = shape[k] ? lin % shape[k] : 0;
    lin = shape[k] ? lin / shape[k] : 0;
  }
  return idx;
}

static double toDouble(const APFloat &f) {
  APFloat c = f;
  bool lost;
  c.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
  return c.convertToDouble();
}

/// Element `lin` of a dense constant; nullopt for other attributes.
static std::optional<double> readConstant(Attribute attr, int64_t lin) {
  auto dense = dyn_cast<DenseElementsAttr>(attr);
  if (!dense)
    return std::nullopt;
  if (dense.isSplat())
    lin = 0;
  // An index past the constant (a dynamic dim evaluated at kDynamicSize
  // after a cast from a smaller static size) is not read.
  if (lin < 0 || lin >= dense.getNumElements())
    return std::nullopt;
  Type et = dense.getElementType();
  if (isa<FloatType>(et))
    return toDouble(*(dense.value_begin<APFloat>() + lin));
  if (isa<IntegerType, IndexType>(et))
    return static_cast<double>(
        (*(dense.value_begin<APInt>() + lin)).getSExtValue());
  return std::nullopt;
}

FailureOr<double> mlir::attnres::applyScalarOp(Operation *op,
                                               ArrayRef<double> a) {
  return llvm::TypeSwitch<Operation *, FailureOr<double>>(op)
      .Case<arith::AddFOp, arith::AddIOp>(
          [&](auto) -> FailureOr<double> { return a[0] + a[1]; })
      .Case<arith::SubFOp, arith::SubIOp>(
          [&](auto) -> FailureOr<double> { return a[0] - a[1]; })
      .Case<arith::MulFOp, arith::MulIOp>(
          [&](auto) -> FailureOr<double> { return a[0] * a[1]; })
      .Case<arith::DivFOp>(
          [&](auto) -> FailureOr<double> { return a[0] / a[1]; })
      .Case<arith::DivSIOp, arith::DivUIOp>([&](auto) -> FailureOr<double> {
        if (a[1] == 0)
          return failure();
        return std::trunc(a[0] / a[1]);
      })
      .Case<arith::RemSIOp>([&](auto) -> FailureOr<double> {
        if (a[1] == 0)
          return failure();
        return std::fmod(a[0], a[1]);
      })
      .Case<arith::NegFOp>([&](auto) -> FailureOr<double> { return -a[0]; })
      .Case<arith::MaximumFOp, arith::MaxNumFOp, arith::MaxSIOp>(
          [&](auto) -> FailureOr<double> { return std::max(a[0], a[1]); })
      .Case<arith::MinimumFOp, arith::MinNumFOp, arith::MinSIOp>(
          [&](auto) -> FailureOr<double> { return std::min(a[0], a[1]); })
      .Case<arith::ExtFOp, arith::TruncFOp, arith::SIToFPOp, arith::UIToFPOp,
            arith::IndexCastOp, arith::ExtSIOp, arith::TruncIOp,
            arith::BitcastOp>([&](auto) -> FailureOr<double> { return a[0]; })
      .Case<arith::FPToSIOp>(
          [&](auto) -> FailureOr<double> { return std::trunc(a[0]); })
      .Case<arith::SelectOp>(
          [&](auto) -> FailureOr<double> { return a[0] != 0 ? a[1] : a[2]; })
      .Case<arith::CmpFOp>([&](arith::CmpFOp c) -> FailureOr<double> {
        using P = arith::CmpFPredicate;
        double x = a[0], y = a[1];
        switch (c.getPredicate()) {
        case P::OEQ:
        case P::UEQ:
          return x == y;
        case P::ONE:
        case P::UNE:
          return x != y;
        case P::OGT:
        case P::UGT:
          return x > y;
        case P::OGE:
        case P::UGE:
          return x >= y;
        case P::OLT:
        case P::ULT:
          return x < y;
        case P::OLE:
        case P::ULE:
          return x <= y;
        case P::AlwaysTrue:
          return 1.0;
        default:
          return 0.0;
        }
      })
      .Case<arith::CmpIOp>([&](arith::CmpIOp c) -> FailureOr<double> {
        using P = arith::CmpIPredicate;
        double x = a[0], y = a[1];
        switch (c.getPredicate()) {
        case P::eq:
          return x == y;
        case P::ne:
          return x != y;
        case P::sgt:
        case P::ugt:
          return x > y;
        case P::sge:
        case P::uge:
          return x >= y;
        case P::slt:
        case P::ult:
          return x < y;
        case P::sle:
        case P::ule:
          return x <= y;
        }
        return failure();
      })
      .Case<math::ExpOp>(
          [&](auto) -> FailureOr<double> { return std::exp(a[0]); })
      .Case<math::Exp2Op>(
          [&](auto) -> FailureOr<double> { return std::exp2(a[0]); })
      .Case<math::LogOp>(
          [&](auto) -> FailureOr<double> { return std::log(a[0]); })
      .Case<math::RsqrtOp>(
          [&](auto) -> FailureOr<double> { return 1.0 / std::sqrt(a[0]); })
      .Case<math::SqrtOp>(
          [&](auto) -> FailureOr<double> { return std::sqrt(a[0]); })
      .Case<math::TanhOp>(
          [&](auto) -> FailureOr<double> { return std::tanh(a[0]); })
      .Case<math::ErfOp>(
          [&](auto) -> FailureOr<double> { return std::erf(a[0]); })
      .Case<math::AbsFOp>(
          [&](auto) -> FailureOr<double> { return std::fabs(a[0]); })
      .Case<math::PowFOp, math::FPowIOp>(
          [&](auto) -> FailureOr<double> { return std::pow(a[0], a[1]); })
      .Default([&](Operation *) -> FailureOr<double> { return failure(); });
}

//===----------------------------------------------------------------------===//
// PointwiseInterpreter
//===----------------------------------------------------------------------===//

FailureOr<double> PointwiseInterpreter::fail(Operation *op,
                                             const llvm::Twine &why) {
  if (error.empty()) {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << why;
    if (op)
      os << " ('" << op->getName() << "')";
    error = s;
  }
  return failure();
}

double PointwiseInterpreter::randomLeaf(uint64_t seed, int64_t linear,
                                        double scale) const {
  // splitmix64: deterministic, well mixed, independent of evaluation order.
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(linear) +
               0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  double u = static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
  // Uniform in [-1, -0.1] u [0.1, 1]: never (close to) zero.
  double m = 0.1 + 0.9 * std::fmod(u * 2.0, 1.0);
  return scale * (u < 0.5 ? -m : m);
}

uint64_t PointwiseInterpreter::leafSeed(Value v) const {
  return static_cast<uint64_t>(
             reinterpret_cast<uintptr_t>(v.getAsOpaquePointer())) *
             31 +
         7;
}

FailureOr<double> PointwiseInterpreter::eval(unsigned ctx, Value v,
                                             ArrayRef<int64_t> idx) {
  if (++steps > budget)
    return fail(nullptr, "analysis budget exhausted");
  SmallVector<int64_t> shape;
  int64_t lin = 0;
  if (isa<ShapedType>(v.getType())) {
    if (!getStaticShape(v.getType(), shape))
      return fail(v.getDefiningOp(), "dynamic or unranked shape");
    if (shape.size() != idx.size())
      return fail(v.getDefiningOp(), "index rank mismatch");
    lin = linearize(idx, shape);
  }

  // Bound values do not depend on the context.
  auto bit = bindings.find(v);
  if (bit != bindings.end())
    return randomLeaf(bit->second.first, lin, bit->second.second);

  auto key = std::make_pair(std::make_pair(ctx, v.getAsOpaquePointer()), lin);
  auto mit = memo.find(key);
  if (mit != memo.end())
    return mit->second;

  FailureOr<double> r = failure();
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    // An argument of a callee evaluated under a call: the call's operand.
    Operation *parentOp = arg.getOwner()->getParentOp();
    if (ctx != 0 && isa<func::FuncOp>(parentOp) &&
        arg.getOwner() == &cast<func::FuncOp>(parentOp).front()) {
      Operation *call = contexts[ctx].call;
      r = eval(contexts[ctx].parent, call->getOperand(arg.getArgNumber()), idx);
    } else {
      r = randomLeaf(leafSeed(v), lin, 1.0);
    }
  } else {
    Operation *op = v.getDefiningOp();
    r = evalOp(ctx, op, cast<OpResult>(v).getResultNumber(), idx);
    // Parameters computed by ops we do not understand are random data.
    if (failed(r) && !dependent.contains(op) && ctx == 0 &&
        error.find("budget") == std::string::npos) {
      error.clear();
      r = randomLeaf(leafSeed(v), lin, 1.0);
    }
  }
  if (succeeded(r))
    memo[key] = *r;
  return r;
}

FailureOr<double>
PointwiseInterpreter::evalBroadcast(unsigned ctx, Value operand,
                                    ArrayRef<int64_t> resultIdx) {
  SmallVector<int64_t> shape;
  if (!isa<ShapedType>(operand.getType()))
    return eval(ctx, operand, {});
  if (!getStaticShape(operand.getType(), shape))
    return fail(operand.getDefiningOp(), "dynamic shape");
  if (shape.size() != resultIdx.size())
    return fail(operand.getDefiningOp(), "broadcast rank mismatch");
  SmallVector<int64_t> idx(resultIdx);
  for (auto [i, s] : llvm::enumerate(shape))
    if (s == 1)
      idx[i] = 0;
  return eval(ctx, operand, idx);
}

FailureOr<double> PointwiseInterpreter::evalElementwise(unsigned ctx,
                                                        Operation *op,
                                                        ArrayRef<int64_t> idx) {
  SmallVector<double> args;
  for (Value o : op->getOperands()) {
    FailureOr<double> x = evalBroadcast(ctx, o, idx);
    if (failed(x))
      return failure();
    args.push_back(*x);
  }
  FailureOr<double> r = applyScalarOp(op, args);
  if (failed(r))
    return fail(op, "unsupported scalar op");
  return r;
}

FailureOr<double> PointwiseInterpreter::evalLinalg(unsigned ctx, Operation *op,
                                                   unsigned resultNo,
                                                   ArrayRef<int64_t> idx) {
  auto linalgOp = cast<linalg::LinalgOp>(op);
  if (!linalgOp.hasPureTensorSemantics())
    return fail(op, "linalg op on buffers");
  SmallVector<int64_t> ranges = linalgOp.getStaticLoopRanges();
  for (int64_t &r : ranges)
    if (ShapedType::isDynamic(r))
      r = kDynamicSize;
  unsigned numLoops = ranges.size();
  SmallVector<int64_t> pt(numLoops, -1);
  AffineMap outMap =
      linalgOp.getMatchingIndexingMap(linalgOp.getDpsInitOperand(resultNo));
  for (auto [k, e] : llvm::enumerate(outMap.getResults())) {
    auto d = dyn_cast<AffineDimExpr>(e);
    if (!d)
      return fail(op, "non-projected output indexing map");
    pt[d.getPosition()] = idx[k];
  }
  SmallVector<unsigned> freeDims;
  for (unsigned d = 0; d < numLoops; ++d)
    if (pt[d] < 0) {
      freeDims.push_back(d);
      pt[d] = 0;
    }
  for (unsigned d : freeDims)
    if (ranges[d] == 0)
      return fail(op, "empty reduction");

  Block *body = linalgOp.getBlock();
  unsigned numInputs = linalgOp.getNumDpsInputs();
  unsigned numInits = linalgOp.getNumDpsInits();
  // Accumulators start from the init operands at the output point.
  SmallVector<double> acc(numInits);
  for (unsigned i = 0; i < numInits; ++i) {
    OpOperand *init = linalgOp.getDpsInitOperand(i);
    SmallVector<int64_t> at = linalgOp.getMatchingIndexingMap(init).compose(pt);
    // Only read inits that the body uses (tensor.empty is undefined).
    if (!linalgOp.payloadUsesValueFromOperand(init)) {
      acc[i] = 0.0;
      continue;
    }
    FailureOr<double> x = eval(ctx, init->get(), at);
    if (failed(x))
      return failure();
    acc[i] = *x;
  }

  llvm::DenseMap<Value, double> env;
  while (true) {
    env.clear();
    for (unsigned i = 0; i < numInputs; ++i) {
      OpOperand *in = linalgOp.getDpsInputOperand(i);
      BlockArgument arg = body->getArgument(i);
      if (!linalgOp.payloadUsesValueFromOperand(in))
        continue;
      SmallVector<int64_t> at;
      if (isa<ShapedType>(in->get().getType()))
        at = linalgOp.getMatchingIndexingMap(in).compose(pt);
      FailureOr<double> x = eval(ctx, in->get(), at);
      if (failed(x))
        return failure();
      env[arg] = *x;
    }
    for (unsigned i = 0; i < numInits; ++i)
      env[body->getArgument(numInputs + i)] = acc[i];
    for (Operation &bop : body->without_terminator()) {
      if (++steps > budget)
        return fail(nullptr, "analysis budget exhausted");
      if (auto index = dyn_cast<linalg::IndexOp>(bop)) {
        env[index.getResult()] = pt[index.getDim()];
        continue;
      }
      if (auto cst = dyn_cast<arith::ConstantOp>(bop)) {
        Attribute a = cst.getValue();
        if (auto f = dyn_cast<FloatAttr>(a))
          env[cst.getResult()] = f.getValueAsDouble();
        else if (auto i = dyn_cast<IntegerAttr>(a))
          env[cst.getResult()] = static_cast<double>(i.getInt());
        else
          return fail(&bop, "unsupported constant in a linalg body");
        continue;
      }
      SmallVector<double> args;
      for (Value o : bop.getOperands()) {
        auto it = env.find(o);
        if (it != env.end()) {
          args.push_back(it->second);
          continue;
        }
        // A value captured from above the op.
        FailureOr<double> x = eval(ctx, o, {});
        if (failed(x))
          return failure();
        args.push_back(*x);
      }
      if (bop.getNumResults() != 1)
        return fail(&bop, "unsupported op in a linalg body");
      FailureOr<double> r = applyScalarOp(&bop, args);
      if (failed(r))
        return fail(&bop, "unsupported op in a linalg body");
      env[bop.getResult(0)] = *r;
    }
    Operation *yield = body->getTerminator();
    for (unsigned i = 0; i < numInits; ++i) {
      Value y = yield->getOperand(i);
      auto it = env.find(y);
      if (it != env.end()) {
        acc[i] = it->second;
      } else {
        FailureOr<double> x = eval(ctx, y, {});
        if (failed(x))
          return failure();
        acc[i] = *x;
      }
    }
    // Next point of the reduction space (odometer).
    bool done = true;
    for (int k = static_cast<int>(freeDims.size()) - 1; k >= 0; --k) {
      unsigned d = freeDims[k];
      if (++pt[d] < ranges[d]) {
        done = false;
        break;
      }
      pt[d] = 0;
    }
    if (done)
      break;
  }
  return acc[resultNo];
}

FailureOr<double> PointwiseInterpreter::evalTosa(unsigned ctx, Operation *op,
                                                 ArrayRef<int64_t> idx) {
  SmallVector<double> a;
  auto unary = [&](llvm::function_ref<double(double)> f) -> FailureOr<double> {
    FailureOr<double> x = evalBroadcast(ctx, op->getOperand(0), idx);
    if (failed(x))
      return failure();
    return f(*x);
  };
  auto binary =
      [&](llvm::function_ref<double(double, double)> f) -> FailureOr<double> {
    FailureOr<double> x = evalBroadcast(ctx, op->getOperand(0), idx);
    if (failed(x))
      return failure();
    FailureOr<double> y = evalBroadcast(ctx, op->getOperand(1), idx);
    if (failed(y))
      return failure();
    return f(*x, *y);
  };
  auto reduce = [&](uint32_t axis, bool isMax) -> FailureOr<double> {
    SmallVector<int64_t> inShape;
    if (!getStaticShape(op->getOperand(0).getType(), inShape) ||
        axis >= inShape.size())
      return fail(op, "bad reduction");
    SmallVector<int64_t> at(idx);
    double r = isMax ? -INFINITY : 0.0;
    for (int64_t k = 0; k < inShape[axis]; ++k) {
      at[axis] = k;
      FailureOr<double> x = eval(ctx, op->getOperand(0), at);
      if (failed(x))
        return failure();
      r = isMax ? std::max(r, *x) : r + *x;
    }
    return r;
  };
  return llvm::TypeSwitch<Operation *, FailureOr<double>>(op)
      .Case<tosa::AddOp>([&](auto) {
        return binary([](double x, double y) { return x + y; });
      })
      .Case<tosa::SubOp>([&](auto) {
        return binary([](double x, double y) { return x - y; });
      })
      .Case<tosa::MulOp>([&](tosa::MulOp m) -> FailureOr<double> {
        if (isa<FloatType>(getElementTypeOrSelf(m.getType())))
          return binary([](double x, double y) { return x * y; });
        return fail(op, "integer tosa.mul");
      })
      .Case<tosa::MaximumOp>([&](auto) {
        return binary([](double x, double y) { return std::max(x, y); });
      })
      .Case<tosa::MinimumOp>([&](auto) {
        return binary([](double x, double y) { return std::min(x, y); });
      })
      .Case<tosa::PowOp>([&](auto) {
        return binary([](double x, double y) { return std::pow(x, y); });
      })
      .Case<tosa::ExpOp>(
          [&](auto) { return unary([](double x) { return std::exp(x); }); })
      .Case<tosa::LogOp>(
          [&](auto) { return unary([](double x) { return std::log(x); }); })
      .Case<tosa::RsqrtOp>([&](auto) {
        return unary([](double x) { return 1.0 / std::sqrt(x); });
      })
      .Case<tosa::ReciprocalOp>(
          [&](auto) { return unary([](double x) { return 1.0 / x; }); })
      .Case<tosa::TanhOp>(
          [&](auto) { return unary([](double x) { return std::tanh(x); }); })
      .Case<tosa::SigmoidOp>([&](auto) {
        return unary([](double x) { return 1.0 / (1.0 + std::exp(-x)); });
      })
      .Case<tosa::AbsOp>(
          [&](auto) { return unary([](double x) { return std::fabs(x); }); })
      .Case<tosa::NegateOp>([&](tosa::NegateOp n) -> FailureOr<double> {
        if (!isa<FloatType>(getElementTypeOrSelf(n.getType())))
          return fail(op, "integer tosa.negate");
        return unary([](double x) { return -x; });
      })
      .Case<tosa::CastOp, tosa::IdentityOp>(
          [&](auto) { return unary([](double x) { return x; }); })
      .Case<tosa::ClampOp>([&](tosa::ClampOp c) -> FailureOr<double> {
        auto lo = dyn_cast<FloatAttr>(c.getMinValAttr());
        auto hi = dyn_cast<FloatAttr>(c.getMaxValAttr());
        if (!lo || !hi)
          return fail(op, "integer tosa.clamp");
        double l = lo.getValueAsDouble(), h = hi.getValueAsDouble();
        return unary([&](double x) { return std::min(std::max(x, l), h); });
      })
      .Case<tosa::ReduceSumOp>(
          [&](tosa::ReduceSumOp r) { return reduce(r.getAxis(), false); })
      .Case<tosa::ReduceMaxOp>(
          [&](tosa::ReduceMaxOp r) { return reduce(r.getAxis(), true); })
      .Case<tosa::MatMulOp>([&](tosa::MatMulOp m) -> FailureOr<double> {
        SmallVector<int64_t> aShape;
        if (!getStaticShape(m.getA().getType(), aShape) || aShape.size() != 3)
          return fail(op, "bad tosa.matmul");
        double s = 0;
        for (int64_t k = 0; k < aShape[2]; ++k) {
          FailureOr<double> x = eval(ctx, m.getA(), {idx[0], idx[1], k});
          if (failed(x))
            return failure();
          FailureOr<double> y = eval(ctx, m.getB(), {idx[0], k, idx[2]});
          if (failed(y))
            return failure();
          s += *x * *y;
        }
        return s;
      })
      .Case<tosa::ReshapeOp>([&](tosa::ReshapeOp r) -> FailureOr<double> {
        SmallVector<int64_t> inShape, outShape;
        if (!getStaticShape(r.getInput1().getType(), inShape) ||
            !getStaticShape(r.getType(), outShape))
          return fail(op, "dynamic reshape");
        return eval(ctx, r.getInput1(),
                    delinearize(linearize(idx, outShape), inShape));
      })
      .Case<tosa::TransposeOp>([&](tosa::TransposeOp t) -> FailureOr<double> {
        ArrayRef<int32_t> perms = t.getPerms();
        SmallVector<int64_t> at(idx.size());
        for (auto [i, p] : llvm::enumerate(perms))
          at[p] = idx[i];
        return eval(ctx, t.getInput1(), at);
      })
      .Case<tosa::ConcatOp>([&](tosa::ConcatOp c) -> FailureOr<double> {
        uint32_t axis = c.getAxis();
        SmallVector<int64_t> at(idx);
        for (Value in : c.getInput1()) {
          SmallVector<int64_t> s;
          if (!getStaticShape(in.getType(), s))
            return fail(op, "dynamic concat");
          if (at[axis] < s[axis])
            return eval(ctx, in, at);
          at[axis] -= s[axis];
        }
        return fail(op, "concat index out of range");
      })
      .Case<tosa::ConstOp>([&](tosa::ConstOp c) -> FailureOr<double> {
        SmallVector<int64_t> s;
        getStaticShape(c.getType(), s);
        std::optional<double> x =
            readConstant(c.getValues(), linearize(idx, s));
        if (!x)
          return fail(op, "non-dense constant");
        return *x;
      })
      .Default([&](Operation *) { return fail(op, "unsupported TOSA op"); });
}

LogicalResult PointwiseInterpreter::evalMixed(unsigned ctx,
                                              ArrayRef<OpFoldResult> values,
                                              SmallVectorImpl<int64_t> &out) {
  out.clear();
  for (OpFoldResult ofr : values) {
    if (auto attr = dyn_cast<Attribute>(ofr)) {
      auto i = dyn_cast<IntegerAttr>(attr);
      if (!i)
        return failure();
      out.push_back(i.getInt());
      continue;
    }
    FailureOr<double> x = eval(ctx, cast<Value>(ofr), {});
    if (failed(x))
      return failure();
    out.push_back(static_cast<int64_t>(std::llround(*x)));
  }
  return success();
}

FailureOr<double> PointwiseInterpreter::evalOp(unsigned ctx, Operation *op,
                                               unsigned resultNo,
                                               ArrayRef<int64_t> idx) {
  Value res = op->getResult(resultNo);
  if (auto cst = dyn_cast<arith::ConstantOp>(op)) {
    Attribute a = cst.getValue();
    if (auto f = dyn_cast<FloatAttr>(a))
      return f.getValueAsDouble();
    if (auto i = dyn_cast<IntegerAttr>(a))
      return static_cast<double>(i.getInt());
    SmallVector<int64_t> s;
    if (!getStaticShape(res.getType(), s))
      return fail(op, "unsupported constant");
    std::optional<double> x = readConstant(a, linearize(idx, s));
    if (!x)
      return fail(op, "non-dense constant");
    return *x;
  }
  if (isa<tensor::EmptyOp>(op))
    return 0.0; // Undefined contents; only reached for unused inits.
  if (auto lop = dyn_cast<linalg::LinalgOp>(op))
    return evalLinalg(ctx, op, resultNo, idx);
  if (auto sm = dyn_cast<linalg::SoftmaxOp>(op)) {
    int64_t dim = sm.getDimension();
    SmallVector<int64_t> s;
    if (!getStaticShape(sm.getInput().getType(), s))
      return fail(op, "dynamic softmax");
    SmallVector<int64_t> at(idx);
    double m = -INFINITY, sum = 0, mine = 0;
    SmallVector<double> xs;
    for (int64_t k = 0; k < s[dim]; ++k) {
      at[dim] = k;
      FailureOr<double> x = eval(ctx, sm.getInput(), at);
      if (failed(x))
        return failure();
      xs.push_back(*x);
      m = std::max(m, *x);
    }
    for (auto [k, x] : llvm::enumerate(xs)) {
      sum += std::exp(x - m);
      if (static_cast<int64_t>(k) == idx[dim])
        mine = std::exp(x - m);
    }
    return mine / sum;
  }
  if (auto ins = dyn_cast<tensor::InsertSliceOp>(op)) {
    SmallVector<int64_t> offs, sizes, strides;
    if (failed(evalMixed(ctx, ins.getMixedOffsets(), offs)) ||
        failed(evalMixed(ctx, ins.getMixedSizes(), sizes)) ||
        failed(evalMixed(ctx, ins.getMixedStrides(), strides)))
      return fail(op, "dynamic slice");
    SmallVector<int64_t> srcIdx;
    bool inside = true;
    for (unsigned k = 0; k < idx.size(); ++k) {
      if (strides[k] <= 0)
        return fail(op, "bad slice stride");
      int64_t rel = idx[k] - offs[k];
      if (rel < 0 || rel % strides[k] != 0 || rel / strides[k] >= sizes[k]) {
        inside = false;
        break;
      }
    }
    if (!inside)
      return eval(ctx, ins.getDest(), idx);
    llvm::SmallBitVector dropped = ins.getDroppedDims();
    for (unsigned k = 0; k < idx.size(); ++k)
      if (!dropped.test(k))
        srcIdx.push_back((idx[k] - offs[k]) / strides[k]);
    return eval(ctx, ins.getSource(), srcIdx);
  }
  if (auto ext = dyn_cast<tensor::ExtractSliceOp>(op)) {
    SmallVector<int64_t> offs, strides;
    if (failed(evalMixed(ctx, ext.getMixedOffsets(), offs)) ||
        failed(evalMixed(ctx, ext.getMixedStrides(), strides)))
      return fail(op, "dynamic slice");
    llvm::SmallBitVector dropped = ext.getDroppedDims();
    SmallVector<int64_t> srcIdx;
    unsigned r = 0;
    for (unsigned k = 0; k < offs.size(); ++k) {
      int64_t i = dropped.test(k) ? 0 : idx[r++];
      srcIdx.push_back(offs[k] + i * strides[k]);
    }
    return eval(ctx, ext.getSource(), srcIdx);
  }
  if (auto cat = dyn_cast<tensor::ConcatOp>(op)) {
    int64_t dim = cat.getDim();
    SmallVector<int64_t> at(idx);
    for (Value in : cat.getInputs()) {
      SmallVector<int64_t> s;
      if (!getStaticShape(in.getType(), s))
        return fail(op, "dynamic concat");
      if (at[dim] < s[dim])
        return eval(ctx, in, at);
      at[dim] -= s[dim];
    }
    return fail(op, "concat index out of range");
  }
  if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp, tensor::ReshapeOp>(
          op)) {
    SmallVector<int64_t> inShape, outShape;
    if (!getStaticShape(op->getOperand(0).getType(), inShape) ||
        !getStaticShape(res.getType(), outShape))
      return fail(op, "dynamic reshape");
    return eval(ctx, op->getOperand(0),
                delinearize(linearize(idx, outShape), inShape));
  }
  if (isa<tensor::CastOp>(op))
    return eval(ctx, op->getOperand(0), idx);
  if (auto dim = dyn_cast<tensor::DimOp>(op)) {
    // Shape metadata: the static size, or kDynamicSize.
    SmallVector<int64_t> s;
    std::optional<int64_t> k = dim.getConstantIndex();
    if (!k || !getStaticShape(dim.getSource().getType(), s) || *k < 0 ||
        *k >= static_cast<int64_t>(s.size()))
      return fail(op, "unsupported tensor.dim");
    return static_cast<double>(s[*k]);
  }
  if (auto call = dyn_cast<func::CallOp>(op)) {
    auto callee = dyn_cast_or_null<func::FuncOp>(
        SymbolTable::lookupSymbolIn(symbolTableOp, call.getCalleeAttr()));
    if (!callee || callee.isExternal())
      return fail(op, "call to a function without a body");
    auto key = std::make_pair(ctx, op);
    unsigned sub;
    auto it = callContexts.find(key);
    if (it != callContexts.end()) {
      sub = it->second;
    } else {
      sub = contexts.size();
      contexts.push_back({ctx, op});
      callContexts[key] = sub;
    }
    Operation *ret = callee.front().getTerminator();
    return eval(sub, ret->getOperand(resultNo), idx);
  }
  if (op->getDialect() && op->getDialect()->getNamespace() == "tosa")
    return evalTosa(ctx, op, idx);
  if (isa<arith::ArithDialect, math::MathDialect>(op->getDialect()))
    return evalElementwise(ctx, op, idx);
  return fail(op, "unsupported op");
}
