//===- OpHelpers.h - Verifier and parser helpers of attnres ops -*- C++ -*-===//
//
// Part of the attnres project. Private to the dialect library: the type
// checks and parsing pieces shared by AttnResOps.cpp (forward ops) and
// AttnResGradOps.cpp (training ops), defined in AttnResOps.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_LIB_DIALECT_ATTNRES_IR_OPHELPERS_H
#define ATTNRES_LIB_DIALECT_ATTNRES_IR_OPHELPERS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpImplementation.h"

#include <optional>

namespace mlir::attnres::detail {

/// `tensor<D x E>` for sources of type `tensor<... x D x E>`.
RankedTensorType getVectorType(RankedTensorType sourceType);
/// `tensor<[prefix x] ... x f32>`: the sources' shape without D.
RankedTensorType getPerTokenType(RankedTensorType sourceType,
                                 std::optional<int64_t> prefix = {});
/// Every dimension equal or dynamic on one side (spec 0.4).
bool compatibleShapes(ArrayRef<int64_t> a, ArrayRef<int64_t> b);
/// Replaces the dynamic dimensions of `known` by those of `actual`.
void refineShape(MutableArrayRef<int64_t> known, ArrayRef<int64_t> actual);
bool isStorageElementType(Type t);
/// Rank >= 1 (`rankRule`) and an f32/f16/bf16 element type (`eltRule`).
LogicalResult verifyValueType(Operation *op, RankedTensorType type,
                              StringRef what, StringRef rankRule,
                              StringRef eltRule);
/// `type` is `tensor<D x elt>` with D compatible with `shape.back()`.
LogicalResult verifyVectorOperand(Operation *op, Type type,
                                  MutableArrayRef<int64_t> shape, Type elt,
                                  StringRef what, StringRef rule);
/// `type` is an f32 tensor compatible with `shape`; refines `shape`.
LogicalResult verifyF32Operand(Operation *op, Type type,
                               MutableArrayRef<int64_t> shape, StringRef what,
                               StringRef meaning, StringRef rule);
/// Finite and non-negative.
LogicalResult verifyEpsilon(Operation *op, FloatAttr eps, StringRef rule);
/// For an op with AttrSizedOperandSegments: every group in `required` (its
/// index into `segmentSizes` and its operand's name) has exactly one
/// operand. ODS verifies the sizes of Optional and Variadic groups and their
/// sum, not that a required group has one operand: a generic form whose
/// operandSegmentSizes gives one 0 or 2 passed, and the group's accessor
/// then read past the operands (found by the fuzzer). Call first in verify().
LogicalResult
verifyRequiredOperandGroups(Operation *op, ArrayRef<int32_t> segmentSizes,
                            ArrayRef<std::pair<unsigned, StringRef>> required);
/// `%a, %b, ...` (at least one operand).
ParseResult
parseOperandList1(OpAsmParser &parser,
                  SmallVectorImpl<OpAsmParser::UnresolvedOperand> &operands);
/// A ranked tensor type of rank >= 1.
ParseResult parseSourceType(OpAsmParser &parser, RankedTensorType &type);

} // namespace mlir::attnres::detail

#endif // ATTNRES_LIB_DIALECT_ATTNRES_IR_OPHELPERS_H
