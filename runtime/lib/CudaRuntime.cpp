//===- CudaRuntime.cpp - mgpu* entry points over the CUDA driver ----------===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//
//
// Implements the `mgpu*` functions that MLIR 22's gpu-to-llvm lowering calls
// from host code (module load/unload, kernel lookup and launch, streams,
// events, device memory), plus the attnresRuntime* API of
// attnres/Runtime/CudaRuntime.h.
//
// Design points (docs/runtime.md has the long form):
//  - No link-time dependency on CUDA: libcuda.so.1 is opened with dlopen the
//    first time a function needs the driver. Without a driver every function
//    records an error, prints it once, and returns without crashing.
//  - The runtime uses only libc (no libstdc++), so that it can be linked
//    statically into an ahead-of-time compiled shared library that then
//    needs nothing but libc and, at run time, libcuda.
//  - mgpuModuleLoad does not touch the driver: the generated code calls it
//    from a global constructor, i.e. when the library is loaded. The module
//    is loaded lazily, once per (binary, context), by the first
//    mgpuModuleGetFunction, and kernels are cached by name.
//  - attnresRuntimeSetStream makes compiled functions enqueue on a caller's
//    stream without synchronizing.
//
//===----------------------------------------------------------------------===//

#include "attnres/Runtime/CudaRuntime.h"

#include "CudaDriver.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

using namespace attnres::cuda;

namespace {

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

pthread_mutex_t errorMutex = PTHREAD_MUTEX_INITIALIZER;
int firstError = ATTNRES_RUNTIME_SUCCESS;
char firstErrorMessage[1024] = "";
int printedErrors = 0;
int quietMode = -1; // -1: not decided yet (read ATTNRES_RUNTIME_QUIET).
constexpr int kMaxPrintedErrors = 16;

bool isQuiet() {
  if (quietMode < 0) {
    const char *env = getenv("ATTNRES_RUNTIME_QUIET");
    quietMode = env && env[0] && strcmp(env, "0") != 0;
  }
  return quietMode;
}

/// Records `code` with a message. The first error since the last clear is
/// kept; every error is printed to stderr (up to a limit) unless quiet or
/// `print` is false.
__attribute__((format(printf, 3, 4))) void recordError(int code, bool print,
                                                       const char *fmt, ...) {
  char message[sizeof(firstErrorMessage)];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof(message), fmt, ap);
  va_end(ap);

  pthread_mutex_lock(&errorMutex);
  if (firstError == ATTNRES_RUNTIME_SUCCESS) {
    firstError = code;
    memcpy(firstErrorMessage, message, sizeof(message));
  }
  if (print && !isQuiet()) {
    if (printedErrors < kMaxPrintedErrors)
      fprintf(stderr, "attnres-runtime: error: %s\n", message);
    else if (printedErrors == kMaxPrintedErrors)
      fprintf(stderr, "attnres-runtime: further errors are not printed\n");
    ++printedErrors;
  }
  pthread_mutex_unlock(&errorMutex);
}

//===----------------------------------------------------------------------===//
// The driver
//===----------------------------------------------------------------------===//

DriverApi api;
pthread_once_t driverOnce = PTHREAD_ONCE_INIT;
bool driverReady = false;
int driverInitError = ATTNRES_RUNTIME_SUCCESS;
char driverInitMessage[768] = "";

const char *errorName(CUresult result) {
  const char *name = nullptr;
  if (api.cuGetErrorName)
    api.cuGetErrorName(result, &name);
  return name ? name : "unknown CUDA error";
}

const char *errorString(CUresult result) {
  const char *text = nullptr;
  if (api.cuGetErrorString)
    api.cuGetErrorString(result, &text);
  return text ? text : "";
}

/// Records a failed driver call; returns true when `result` is success.
bool check(CUresult result, const char *what) {
  if (result == CUDA_SUCCESS)
    return true;
  recordError(result, /*print=*/true, "%s failed: %s (%s)", what,
              errorName(result), errorString(result));
  return false;
}

void failDriverInit(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void failDriverInit(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(driverInitMessage, sizeof(driverInitMessage), fmt, ap);
  va_end(ap);
  driverInitError = code;
  recordError(code, /*print=*/true,
              "%s; GPU functions of this process will do nothing",
              driverInitMessage);
}

void initDriver() {
  const char *path = getenv("ATTNRES_CUDA_DRIVER");
  if (!path || !path[0])
    path = "libcuda.so.1";
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    failDriverInit(ATTNRES_RUNTIME_ERROR_NO_DRIVER,
                   "cannot load the CUDA driver library '%s' (%s): is an "
                   "NVIDIA driver installed on this machine?",
                   path, why ? why : "unknown reason");
    return;
  }
#define ATTNRES_RESOLVE(name, symbol, optional, ret, args)                     \
  api.name = reinterpret_cast<ret(*) args>(dlsym(handle, symbol));             \
  if (!api.name && !(optional)) {                                              \
    failDriverInit(ATTNRES_RUNTIME_ERROR_NO_DRIVER,                            \
                   "the CUDA driver library '%s' has no '%s' (driver too "     \
                   "old?)",                                                    \
                   path, symbol);                                              \
    return;                                                                    \
  }
  ATTNRES_CUDA_DRIVER_FUNCTIONS(ATTNRES_RESOLVE)
#undef ATTNRES_RESOLVE

  CUresult result = api.cuInit(0);
  if (result != CUDA_SUCCESS) {
    failDriverInit(result, "cuInit failed: %s (%s): no usable CUDA device",
                   errorName(result), errorString(result));
    return;
  }
  int count = 0;
  result = api.cuDeviceGetCount(&count);
  if (result != CUDA_SUCCESS || count == 0) {
    failDriverInit(result ? result : 100 /*CUDA_ERROR_NO_DEVICE*/,
                   "the CUDA driver reports no device");
    return;
  }
  driverReady = true;
}

/// Loads and initialises the driver once; on later calls after a failure,
/// records the failure again (quietly) so that a caller who cleared the
/// error still sees why nothing ran.
bool ensureDriver() {
  pthread_once(&driverOnce, initDriver);
  if (driverReady)
    return true;
  recordError(driverInitError, /*print=*/false, "%s", driverInitMessage);
  return false;
}

//===----------------------------------------------------------------------===//
// Contexts and streams
//===----------------------------------------------------------------------===//

pthread_mutex_t stateMutex = PTHREAD_MUTEX_INITIALIZER;
constexpr int kMaxDevices = 64;
CUcontext primaryContexts[kMaxDevices];

thread_local int32_t defaultDevice = 0;
thread_local bool defaultDeviceChosen = false;
thread_local bool userStreamSet = false;
thread_local CUstream userStream = nullptr;

CUcontext primaryContext(int32_t device) {
  if (device < 0 || device >= kMaxDevices) {
    recordError(CUDA_ERROR_INVALID_VALUE, true, "invalid device ordinal %d",
                device);
    return nullptr;
  }
  pthread_mutex_lock(&stateMutex);
  CUcontext ctx = primaryContexts[device];
  if (!ctx) {
    CUdevice dev = 0;
    if (check(api.cuDeviceGet(&dev, device), "cuDeviceGet") &&
        check(api.cuDevicePrimaryCtxRetain(&ctx, dev),
              "cuDevicePrimaryCtxRetain"))
      primaryContexts[device] = ctx;
    else
      ctx = nullptr;
  }
  pthread_mutex_unlock(&stateMutex);
  return ctx;
}

/// Makes a context current for the duration of a call: the context already
/// current on the thread (so that a caller such as PyTorch, which made its
/// device's primary context current, is served in it), else the primary
/// context of the default device. mgpuSetDefaultDevice forces the latter.
class ScopedContext {
public:
  ScopedContext() {
    if (!ensureDriver())
      return;
    if (!defaultDeviceChosen) {
      if (!check(api.cuCtxGetCurrent(&context), "cuCtxGetCurrent"))
        return;
      if (context) {
        ok = true;
        return;
      }
    }
    context = primaryContext(defaultDevice);
    if (!context)
      return;
    CUcontext current = nullptr;
    api.cuCtxGetCurrent(&current);
    if (current == context) {
      ok = true;
      return;
    }
    if (!check(api.cuCtxPushCurrent(context), "cuCtxPushCurrent"))
      return;
    pushed = true;
    ok = true;
  }
  ~ScopedContext() {
    if (pushed) {
      CUcontext popped = nullptr;
      api.cuCtxPopCurrent(&popped);
    }
  }
  ScopedContext(const ScopedContext &) = delete;
  ScopedContext &operator=(const ScopedContext &) = delete;

  explicit operator bool() const { return ok; }
  CUcontext get() const { return context; }

private:
  CUcontext context = nullptr;
  bool pushed = false;
  bool ok = false;
};

bool isUserStream(CUstream stream) {
  return userStreamSet && stream == userStream;
}

//===----------------------------------------------------------------------===//
// Module cache
//===----------------------------------------------------------------------===//

struct LoadedModule {
  CUcontext context;
  CUmodule module;
  LoadedModule *next;
};

struct CachedFunction {
  CUcontext context;
  char *name;
  CUfunction function;
  CachedFunction *next;
};

/// One embedded GPU binary, keyed by the address of its bytes. The handle
/// that mgpuModuleLoad returns points to it.
struct Binary {
  const void *data;
  size_t size;
  bool jit;
  int optLevel;
  int references;
  LoadedModule *modules;
  CachedFunction *functions;
  Binary *next;
};

Binary *binaries = nullptr; // Guarded by stateMutex.

Binary *registerBinary(const void *data, size_t size, bool jit, int optLevel) {
  if (!data) {
    recordError(CUDA_ERROR_INVALID_VALUE, true,
                "mgpuModuleLoad called with a null binary");
    return nullptr;
  }
  pthread_mutex_lock(&stateMutex);
  Binary *binary = binaries;
  while (binary && binary->data != data)
    binary = binary->next;
  if (binary) {
    ++binary->references;
  } else {
    binary = static_cast<Binary *>(calloc(1, sizeof(Binary)));
    if (binary) {
      binary->data = data;
      binary->size = size;
      binary->jit = jit;
      binary->optLevel = optLevel;
      binary->references = 1;
      binary->next = binaries;
      binaries = binary;
    }
  }
  pthread_mutex_unlock(&stateMutex);
  return binary;
}

/// Loads `binary` into `context` unless already loaded. Called with
/// stateMutex held.
CUmodule moduleFor(Binary *binary, CUcontext context) {
  for (LoadedModule *m = binary->modules; m; m = m->next)
    if (m->context == context)
      return m->module;
  CUmodule module = nullptr;
  if (binary->jit) {
    char log[4096] = "";
    int options[] = {CU_JIT_ERROR_LOG_BUFFER,
                     CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                     CU_JIT_OPTIMIZATION_LEVEL};
    void *values[] = {log, reinterpret_cast<void *>(sizeof(log)),
                      reinterpret_cast<void *>(intptr_t(binary->optLevel))};
    CUresult result =
        api.cuModuleLoadDataEx(&module, binary->data, 3, options, values);
    if (result != CUDA_SUCCESS) {
      recordError(result, true,
                  "cuModuleLoadDataEx (PTX JIT) failed: %s (%s); log: %s",
                  errorName(result), errorString(result), log);
      return nullptr;
    }
  } else if (!check(api.cuModuleLoadData(&module, binary->data),
                    "cuModuleLoadData")) {
    return nullptr;
  }
  auto *entry = static_cast<LoadedModule *>(calloc(1, sizeof(LoadedModule)));
  if (!entry) {
    api.cuModuleUnload(module);
    return nullptr;
  }
  entry->context = context;
  entry->module = module;
  entry->next = binary->modules;
  binary->modules = entry;
  return module;
}

//===----------------------------------------------------------------------===//
// Stream-ordered allocations
//===----------------------------------------------------------------------===//

struct AsyncAllocation {
  void *pointer;
  AsyncAllocation *next;
};
AsyncAllocation *asyncAllocations = nullptr; // Guarded by stateMutex.

void rememberAsync(void *pointer) {
  auto *entry =
      static_cast<AsyncAllocation *>(calloc(1, sizeof(AsyncAllocation)));
  if (!entry)
    return;
  pthread_mutex_lock(&stateMutex);
  entry->pointer = pointer;
  entry->next = asyncAllocations;
  asyncAllocations = entry;
  pthread_mutex_unlock(&stateMutex);
}

bool forgetAsync(void *pointer) {
  pthread_mutex_lock(&stateMutex);
  AsyncAllocation **link = &asyncAllocations;
  while (*link && (*link)->pointer != pointer)
    link = &(*link)->next;
  AsyncAllocation *found = *link;
  if (found)
    *link = found->next;
  pthread_mutex_unlock(&stateMutex);
  free(found);
  return found != nullptr;
}

CUdeviceptr toDevicePtr(const void *pointer) {
  return static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(pointer));
}

bool fitsUnsigned(intptr_t value) {
  return value >= 0 && static_cast<uintmax_t>(value) <= UINT_MAX;
}

} // namespace

//===----------------------------------------------------------------------===//
// attnresRuntime* API
//===----------------------------------------------------------------------===//

extern "C" {

int attnresRuntimeIsAvailable(void) { return ensureDriver() ? 1 : 0; }

int attnresRuntimeGetLastError(void) {
  pthread_mutex_lock(&errorMutex);
  int code = firstError;
  pthread_mutex_unlock(&errorMutex);
  return code;
}

const char *attnresRuntimeGetLastErrorMessage(void) {
  return firstErrorMessage;
}

void attnresRuntimeClearError(void) {
  pthread_mutex_lock(&errorMutex);
  firstError = ATTNRES_RUNTIME_SUCCESS;
  firstErrorMessage[0] = '\0';
  pthread_mutex_unlock(&errorMutex);
}

void attnresRuntimeSetStream(void *stream) {
  userStreamSet = true;
  userStream = static_cast<CUstream>(stream);
}

void attnresRuntimeResetStream(void) {
  userStreamSet = false;
  userStream = nullptr;
}

void *attnresRuntimeGetStream(int *isSet) {
  if (isSet)
    *isSet = userStreamSet ? 1 : 0;
  return userStreamSet ? userStream : nullptr;
}

void attnresRuntimeSetQuiet(int quiet) { quietMode = quiet ? 1 : 0; }

//===----------------------------------------------------------------------===//
// mgpu* entry points (signatures of MLIR 22's GPUToLLVMConversion)
//===----------------------------------------------------------------------===//

// The module handle is a Binary*; the driver module is loaded lazily.
void *mgpuModuleLoad(void *data, size_t gpuBlobSize) {
  return registerBinary(data, gpuBlobSize, /*jit=*/false, /*optLevel=*/0);
}

// PTX text (format=isa), compiled by the driver when first used.
void *mgpuModuleLoadJIT(void *data, int optLevel) {
  return registerBinary(data, data ? strlen(static_cast<char *>(data)) + 1 : 0,
                        /*jit=*/true, optLevel);
}

void mgpuModuleUnload(void *handle) {
  auto *binary = static_cast<Binary *>(handle);
  if (!binary)
    return;
  pthread_mutex_lock(&stateMutex);
  if (--binary->references > 0) {
    pthread_mutex_unlock(&stateMutex);
    return;
  }
  Binary **link = &binaries;
  while (*link && *link != binary)
    link = &(*link)->next;
  if (*link)
    *link = binary->next;
  pthread_mutex_unlock(&stateMutex);

  // This runs from a global destructor, possibly after the driver shut down
  // at exit: errors here are not worth reporting.
  for (LoadedModule *m = binary->modules; m;) {
    if (driverReady)
      api.cuModuleUnload(m->module);
    LoadedModule *next = m->next;
    free(m);
    m = next;
  }
  for (CachedFunction *f = binary->functions; f;) {
    CachedFunction *next = f->next;
    free(f->name);
    free(f);
    f = next;
  }
  free(binary);
}

CUfunction mgpuModuleGetFunction(void *handle, const char *name) {
  auto *binary = static_cast<Binary *>(handle);
  if (!binary || !name) {
    recordError(ATTNRES_RUNTIME_ERROR_NO_KERNEL, true,
                "kernel '%s' requested from a module that failed to load",
                name ? name : "<null>");
    return nullptr;
  }
  ScopedContext scoped;
  if (!scoped)
    return nullptr;
  CUcontext context = scoped.get();
  CUfunction function = nullptr;
  pthread_mutex_lock(&stateMutex);
  for (CachedFunction *f = binary->functions; f; f = f->next) {
    if (f->context == context && strcmp(f->name, name) == 0) {
      function = f->function;
      break;
    }
  }
  if (!function) {
    CUmodule module = moduleFor(binary, context);
    if (module && check(api.cuModuleGetFunction(&function, module, name),
                        "cuModuleGetFunction")) {
      auto *entry =
          static_cast<CachedFunction *>(calloc(1, sizeof(CachedFunction)));
      char *copy = strdup(name);
      if (entry && copy) {
        entry->context = context;
        entry->name = copy;
        entry->function = function;
        entry->next = binary->functions;
        binary->functions = entry;
      } else {
        free(entry);
        free(copy);
      }
    }
  }
  pthread_mutex_unlock(&stateMutex);
  return function;
}

void mgpuLaunchKernel(CUfunction function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t smem, CUstream stream,
                      void **params, void **extra, size_t /*paramsCount*/) {
  // A grid with no CTA (an op on zero tokens) has nothing to do; CUDA would
  // reject it (CUDA_ERROR_INVALID_VALUE).
  if (gridX == 0 || gridY == 0 || gridZ == 0)
    return;
  if (!function) {
    recordError(ATTNRES_RUNTIME_ERROR_NO_KERNEL, true,
                "kernel launch skipped: the kernel is not loaded");
    return;
  }
  if (!fitsUnsigned(gridX) || !fitsUnsigned(gridY) || !fitsUnsigned(gridZ) ||
      !fitsUnsigned(blockX) || !fitsUnsigned(blockY) || !fitsUnsigned(blockZ) ||
      smem < 0) {
    recordError(CUDA_ERROR_INVALID_VALUE, true,
                "kernel launch skipped: grid (%ld, %ld, %ld), block (%ld, "
                "%ld, %ld) or shared memory %d out of range",
                long(gridX), long(gridY), long(gridZ), long(blockX),
                long(blockY), long(blockZ), smem);
    return;
  }
  ScopedContext scoped;
  if (!scoped)
    return;
  // More than 48 KiB of dynamic shared memory must be opted into.
  if (smem > 48 * 1024 &&
      !check(
          api.cuFuncSetAttribute(
              function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem),
          "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)"))
    return;
  check(api.cuLaunchKernel(function, unsigned(gridX), unsigned(gridY),
                           unsigned(gridZ), unsigned(blockX), unsigned(blockY),
                           unsigned(blockZ), unsigned(smem), stream, params,
                           extra),
        "cuLaunchKernel");
}

void mgpuLaunchClusterKernel(CUfunction function, intptr_t clusterX,
                             intptr_t clusterY, intptr_t clusterZ,
                             intptr_t gridX, intptr_t gridY, intptr_t gridZ,
                             intptr_t blockX, intptr_t blockY, intptr_t blockZ,
                             int32_t smem, CUstream stream, void **params,
                             void **extra) {
  if (gridX == 0 || gridY == 0 || gridZ == 0)
    return;
  if (!function) {
    recordError(ATTNRES_RUNTIME_ERROR_NO_KERNEL, true,
                "cluster kernel launch skipped: the kernel is not loaded");
    return;
  }
  ScopedContext scoped;
  if (!scoped)
    return;
  if (!api.cuLaunchKernelEx) {
    recordError(ATTNRES_RUNTIME_ERROR_NO_DRIVER, true,
                "cluster launch needs cuLaunchKernelEx (CUDA 12 driver)");
    return;
  }
  if (smem > 48 * 1024 &&
      !check(
          api.cuFuncSetAttribute(
              function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem),
          "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)"))
    return;
  CUlaunchAttribute attribute;
  memset(&attribute, 0, sizeof(attribute));
  attribute.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
  attribute.value.clusterDim.x = unsigned(clusterX);
  attribute.value.clusterDim.y = unsigned(clusterY);
  attribute.value.clusterDim.z = unsigned(clusterZ);
  CUlaunchConfig config;
  memset(&config, 0, sizeof(config));
  config.gridDimX = unsigned(gridX);
  config.gridDimY = unsigned(gridY);
  config.gridDimZ = unsigned(gridZ);
  config.blockDimX = unsigned(blockX);
  config.blockDimY = unsigned(blockY);
  config.blockDimZ = unsigned(blockZ);
  config.sharedMemBytes = unsigned(smem);
  config.hStream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  check(api.cuLaunchKernelEx(&config, function, params, extra),
        "cuLaunchKernelEx");
}

CUstream mgpuStreamCreate(void) {
  if (userStreamSet)
    return userStream;
  ScopedContext scoped;
  if (!scoped)
    return nullptr;
  // A blocking stream: it waits for work the caller queued on the legacy
  // default stream (where PyTorch and most CUDA code run unless told otherwise)
  // and that stream waits for it.
  CUstream stream = nullptr;
  check(api.cuStreamCreate(&stream, CU_STREAM_DEFAULT), "cuStreamCreate");
  return stream;
}

void mgpuStreamDestroy(CUstream stream) {
  if (isUserStream(stream) || !stream || !driverReady)
    return;
  check(api.cuStreamDestroy(stream), "cuStreamDestroy");
}

void mgpuStreamSynchronize(CUstream stream) {
  if (isUserStream(stream) || !driverReady)
    return;
  ScopedContext scoped;
  if (scoped)
    check(api.cuStreamSynchronize(stream), "cuStreamSynchronize");
}

void mgpuStreamWaitEvent(CUstream stream, CUevent event) {
  if (!event || !driverReady)
    return;
  check(api.cuStreamWaitEvent(stream, event, 0), "cuStreamWaitEvent");
}

CUevent mgpuEventCreate(void) {
  ScopedContext scoped;
  if (!scoped)
    return nullptr;
  CUevent event = nullptr;
  check(api.cuEventCreate(&event, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
  return event;
}

void mgpuEventDestroy(CUevent event) {
  if (event && driverReady)
    check(api.cuEventDestroy(event), "cuEventDestroy");
}

void mgpuEventSynchronize(CUevent event) {
  if (event && driverReady)
    check(api.cuEventSynchronize(event), "cuEventSynchronize");
}

void mgpuEventRecord(CUevent event, CUstream stream) {
  if (event && driverReady)
    check(api.cuEventRecord(event, stream), "cuEventRecord");
}

void *mgpuMemAlloc(uint64_t sizeBytes, CUstream stream, bool isHostShared) {
  if (sizeBytes == 0)
    return nullptr;
  ScopedContext scoped;
  if (!scoped)
    return nullptr;
  CUdeviceptr pointer = 0;
  if (isHostShared) {
    if (!api.cuMemAllocManaged) {
      recordError(ATTNRES_RUNTIME_ERROR_NO_DRIVER, true,
                  "the driver has no cuMemAllocManaged");
      return nullptr;
    }
    if (!check(api.cuMemAllocManaged(&pointer, sizeBytes, CU_MEM_ATTACH_GLOBAL),
               "cuMemAllocManaged"))
      return nullptr;
  } else if (isUserStream(stream) && api.cuMemAllocAsync &&
             api.cuMemFreeAsync) {
    // Stream-ordered, so that calls on the caller's stream need no host
    // synchronization for their temporaries.
    if (!check(api.cuMemAllocAsync(&pointer, sizeBytes, stream),
               "cuMemAllocAsync"))
      return nullptr;
    rememberAsync(reinterpret_cast<void *>(uintptr_t(pointer)));
  } else if (!check(api.cuMemAlloc(&pointer, sizeBytes), "cuMemAlloc")) {
    return nullptr;
  }
  return reinterpret_cast<void *>(uintptr_t(pointer));
}

void mgpuMemFree(void *pointer, CUstream stream) {
  if (!pointer || !driverReady)
    return;
  ScopedContext scoped;
  if (!scoped)
    return;
  if (forgetAsync(pointer))
    check(api.cuMemFreeAsync(toDevicePtr(pointer), stream), "cuMemFreeAsync");
  else
    check(api.cuMemFree(toDevicePtr(pointer)), "cuMemFree");
}

void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, CUstream stream) {
  if (sizeBytes == 0)
    return;
  ScopedContext scoped;
  if (scoped)
    check(api.cuMemcpyAsync(toDevicePtr(dst), toDevicePtr(src), sizeBytes,
                            stream),
          "cuMemcpyAsync");
}

void mgpuMemset32(void *dst, unsigned int value, size_t count,
                  CUstream stream) {
  if (count == 0)
    return;
  ScopedContext scoped;
  if (scoped)
    check(api.cuMemsetD32Async(toDevicePtr(dst), value, count, stream),
          "cuMemsetD32Async");
}

void mgpuMemset16(void *dst, unsigned short value, size_t count,
                  CUstream stream) {
  if (count == 0)
    return;
  ScopedContext scoped;
  if (scoped)
    check(api.cuMemsetD16Async(toDevicePtr(dst), value, count, stream),
          "cuMemsetD16Async");
}

void mgpuMemHostRegister(void *pointer, uint64_t sizeBytes) {
  ScopedContext scoped;
  if (!scoped)
    return;
  if (!api.cuMemHostRegister) {
    recordError(ATTNRES_RUNTIME_ERROR_NO_DRIVER, true,
                "the driver has no cuMemHostRegister");
    return;
  }
  check(api.cuMemHostRegister(pointer, sizeBytes, 0), "cuMemHostRegister");
}

void mgpuMemHostUnregister(void *pointer) {
  if (!driverReady || !api.cuMemHostUnregister)
    return;
  ScopedContext scoped;
  if (scoped)
    check(api.cuMemHostUnregister(pointer), "cuMemHostUnregister");
}

// A ranked memref descriptor: {allocated, aligned, offset, sizes[rank],
// strides[rank]}.
namespace {
struct MemRefHeader {
  char *allocated;
  char *aligned;
  int64_t offset;
};

/// The first byte of a memref's data and the bytes its elements span.
void memrefExtent(int64_t rank, void *descriptor, int64_t elementSizeBytes,
                  char **begin, uint64_t *bytes) {
  auto *header = static_cast<MemRefHeader *>(descriptor);
  const int64_t *sizes = reinterpret_cast<const int64_t *>(header + 1);
  const int64_t *strides = sizes + rank;
  int64_t last = 0;
  bool empty = false;
  for (int64_t i = 0; i < rank; ++i) {
    if (sizes[i] == 0)
      empty = true;
    else
      last += (sizes[i] - 1) * strides[i];
  }
  *begin = header->aligned + header->offset * elementSizeBytes;
  *bytes = empty ? 0 : uint64_t(last + 1) * uint64_t(elementSizeBytes);
}
} // namespace

void mgpuMemHostRegisterMemRef(int64_t rank, void *descriptor,
                               int64_t elementSizeBytes) {
  char *begin = nullptr;
  uint64_t bytes = 0;
  memrefExtent(rank, descriptor, elementSizeBytes, &begin, &bytes);
  if (bytes)
    mgpuMemHostRegister(begin, bytes);
}

void mgpuMemHostUnregisterMemRef(int64_t rank, void *descriptor,
                                 int64_t elementSizeBytes) {
  char *begin = nullptr;
  uint64_t bytes = 0;
  memrefExtent(rank, descriptor, elementSizeBytes, &begin, &bytes);
  if (bytes)
    mgpuMemHostUnregister(begin);
}

void mgpuSetDefaultDevice(int32_t device) {
  defaultDevice = device;
  defaultDeviceChosen = true;
}

} // extern "C"
