//===- CudaDriver.h - minimal CUDA driver API declarations ------*- C++ -*-===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// The few types, constants and function types of the CUDA driver API that
// the runtime uses, declared here so that the runtime builds without the CUDA
// toolkit and has no link-time dependency on libcuda: the functions are
// looked up with dlsym in libcuda.so.1 at run time. Values are those of
// cuda.h (CUDA 12/13); the driver ABI keeps them stable.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNRES_RUNTIME_CUDADRIVER_H
#define ATTNRES_RUNTIME_CUDADRIVER_H

#include <stddef.h>
#include <stdint.h>

namespace attnres::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
constexpr CUresult CUDA_ERROR_DEINITIALIZED = 4;

constexpr unsigned CU_STREAM_DEFAULT = 0x0;
constexpr unsigned CU_STREAM_NON_BLOCKING = 0x1;
constexpr unsigned CU_EVENT_DISABLE_TIMING = 0x2;
constexpr unsigned CU_MEM_ATTACH_GLOBAL = 0x1;
constexpr int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
constexpr int CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr int CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
constexpr int CU_JIT_OPTIMIZATION_LEVEL = 7;
constexpr int CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4;

struct CUlaunchAttribute {
  int id;
  char pad[4];
  union {
    char raw[64];
    struct {
      unsigned x, y, z;
    } clusterDim;
  } value;
};
static_assert(sizeof(CUlaunchAttribute) == 72, "CUlaunchAttribute layout");

struct CUlaunchConfig {
  unsigned gridDimX, gridDimY, gridDimZ;
  unsigned blockDimX, blockDimY, blockDimZ;
  unsigned sharedMemBytes;
  CUstream hStream;
  CUlaunchAttribute *attrs;
  unsigned numAttrs;
};

/// The driver entry points, resolved from libcuda.so.1. The X-macro lists
/// each member, the symbol looked up (the versioned name that cuda.h maps
/// the plain name to), whether the runtime can work without it, and its
/// signature.
#define ATTNRES_CUDA_DRIVER_FUNCTIONS(X)                                       \
  X(cuGetErrorName, "cuGetErrorName", true, CUresult,                          \
    (CUresult, const char **))                                                 \
  X(cuGetErrorString, "cuGetErrorString", true, CUresult,                      \
    (CUresult, const char **))                                                 \
  X(cuInit, "cuInit", false, CUresult, (unsigned))                             \
  X(cuDriverGetVersion, "cuDriverGetVersion", true, CUresult, (int *))         \
  X(cuDeviceGet, "cuDeviceGet", false, CUresult, (CUdevice *, int))            \
  X(cuDeviceGetCount, "cuDeviceGetCount", false, CUresult, (int *))            \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute", false, CUresult,             \
    (int *, int, CUdevice))                                                    \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", false, CUresult,     \
    (CUcontext *, CUdevice))                                                   \
  X(cuCtxGetCurrent, "cuCtxGetCurrent", false, CUresult, (CUcontext *))        \
  X(cuCtxPushCurrent, "cuCtxPushCurrent_v2", false, CUresult, (CUcontext))     \
  X(cuCtxPopCurrent, "cuCtxPopCurrent_v2", false, CUresult, (CUcontext *))     \
  X(cuModuleLoadData, "cuModuleLoadData", false, CUresult,                     \
    (CUmodule *, const void *))                                                \
  X(cuModuleLoadDataEx, "cuModuleLoadDataEx", false, CUresult,                 \
    (CUmodule *, const void *, unsigned, int *, void **))                      \
  X(cuModuleUnload, "cuModuleUnload", false, CUresult, (CUmodule))             \
  X(cuModuleGetFunction, "cuModuleGetFunction", false, CUresult,               \
    (CUfunction *, CUmodule, const char *))                                    \
  X(cuFuncSetAttribute, "cuFuncSetAttribute", false, CUresult,                 \
    (CUfunction, int, int))                                                    \
  X(cuLaunchKernel, "cuLaunchKernel", false, CUresult,                         \
    (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,   \
     unsigned, CUstream, void **, void **))                                    \
  X(cuLaunchKernelEx, "cuLaunchKernelEx", true, CUresult,                      \
    (const CUlaunchConfig *, CUfunction, void **, void **))                    \
  X(cuStreamCreate, "cuStreamCreate", false, CUresult, (CUstream *, unsigned)) \
  X(cuStreamDestroy, "cuStreamDestroy_v2", false, CUresult, (CUstream))        \
  X(cuStreamSynchronize, "cuStreamSynchronize", false, CUresult, (CUstream))   \
  X(cuStreamWaitEvent, "cuStreamWaitEvent", false, CUresult,                   \
    (CUstream, CUevent, unsigned))                                             \
  X(cuEventCreate, "cuEventCreate", false, CUresult, (CUevent *, unsigned))    \
  X(cuEventDestroy, "cuEventDestroy_v2", false, CUresult, (CUevent))           \
  X(cuEventSynchronize, "cuEventSynchronize", false, CUresult, (CUevent))      \
  X(cuEventRecord, "cuEventRecord", false, CUresult, (CUevent, CUstream))      \
  X(cuMemAlloc, "cuMemAlloc_v2", false, CUresult, (CUdeviceptr *, size_t))     \
  X(cuMemAllocManaged, "cuMemAllocManaged", true, CUresult,                    \
    (CUdeviceptr *, size_t, unsigned))                                         \
  X(cuMemAllocAsync, "cuMemAllocAsync", true, CUresult,                        \
    (CUdeviceptr *, size_t, CUstream))                                         \
  X(cuMemFree, "cuMemFree_v2", false, CUresult, (CUdeviceptr))                 \
  X(cuMemFreeAsync, "cuMemFreeAsync", true, CUresult, (CUdeviceptr, CUstream)) \
  X(cuMemcpyAsync, "cuMemcpyAsync", false, CUresult,                           \
    (CUdeviceptr, CUdeviceptr, size_t, CUstream))                              \
  X(cuMemsetD32Async, "cuMemsetD32Async", false, CUresult,                     \
    (CUdeviceptr, unsigned, size_t, CUstream))                                 \
  X(cuMemsetD16Async, "cuMemsetD16Async", false, CUresult,                     \
    (CUdeviceptr, unsigned short, size_t, CUstream))                           \
  X(cuMemHostRegister, "cuMemHostRegister_v2", true, CUresult,                 \
    (void *, size_t, unsigned))                                                \
  X(cuMemHostUnregister, "cuMemHostUnregister", true, CUresult, (void *))

struct DriverApi {
#define ATTNRES_DECLARE_MEMBER(name, symbol, optional, ret, args)              \
  ret(*name) args = nullptr;
  ATTNRES_CUDA_DRIVER_FUNCTIONS(ATTNRES_DECLARE_MEMBER)
#undef ATTNRES_DECLARE_MEMBER
};

} // namespace attnres::cuda

#endif // ATTNRES_RUNTIME_CUDADRIVER_H
