//===- MPIMemoryEffectsImpl.cpp - Memory effects of the mpi ops -----------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "attnres/Dialect/AttnRes/Transforms/MPIMemoryEffectsImpl.h"

#include "mlir/Dialect/MPI/IR/MPI.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <type_traits>

using namespace mlir;

namespace {
using Effects =
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>;

/// A communication op: it reads the operands named by `reads`, writes those
/// named by `writes`, and writes the default resource (the communication
/// itself: no op is moved or removed across it).
template <typename OpTy>
struct CommEffects
    : public MemoryEffectOpInterface::ExternalModel<CommEffects<OpTy>, OpTy> {
  void getEffects(Operation *op, Effects &effects) const {
    auto concrete = cast<OpTy>(op);
    for (OpOperand *operand : readBuffers(concrete))
      effects.emplace_back(MemoryEffects::Read::get(), operand,
                           SideEffects::DefaultResource::get());
    for (OpOperand *operand : writtenBuffers(concrete))
      effects.emplace_back(MemoryEffects::Write::get(), operand,
                           SideEffects::DefaultResource::get());
    effects.emplace_back(MemoryEffects::Write::get(),
                         SideEffects::DefaultResource::get());
  }

private:
  static SmallVector<OpOperand *> readBuffers(OpTy op) {
    if constexpr (std::is_same_v<OpTy, mpi::AllReduceOp>)
      return {&op.getSendbufMutable()};
    else if constexpr (std::is_same_v<OpTy, mpi::SendOp> ||
                       std::is_same_v<OpTy, mpi::ISendOp>)
      return {&op.getRefMutable()};
    else
      return {};
  }
  static SmallVector<OpOperand *> writtenBuffers(OpTy op) {
    if constexpr (std::is_same_v<OpTy, mpi::AllReduceOp>)
      return {&op.getRecvbufMutable()};
    else if constexpr (std::is_same_v<OpTy, mpi::RecvOp> ||
                       std::is_same_v<OpTy, mpi::IRecvOp>)
      return {&op.getRefMutable()};
    else
      return {};
  }
};
} // namespace

void mlir::attnres::registerMPIMemoryEffectsExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, mpi::MPIDialect *) {
    mpi::AllReduceOp::attachInterface<CommEffects<mpi::AllReduceOp>>(*ctx);
    mpi::SendOp::attachInterface<CommEffects<mpi::SendOp>>(*ctx);
    mpi::ISendOp::attachInterface<CommEffects<mpi::ISendOp>>(*ctx);
    mpi::RecvOp::attachInterface<CommEffects<mpi::RecvOp>>(*ctx);
    mpi::IRecvOp::attachInterface<CommEffects<mpi::IRecvOp>>(*ctx);
    mpi::InitOp::attachInterface<CommEffects<mpi::InitOp>>(*ctx);
    mpi::FinalizeOp::attachInterface<CommEffects<mpi::FinalizeOp>>(*ctx);
    mpi::Barrier::attachInterface<CommEffects<mpi::Barrier>>(*ctx);
    mpi::Wait::attachInterface<CommEffects<mpi::Wait>>(*ctx);
  });
}
