/*===- probe.c - call into the attnres CUDA runtime -----------------------===*\
|*                                                                            *|
|* Part of the attnres project.                                               *|
|*                                                                            *|
|*===----------------------------------------------------------------------===*|
|*                                                                            *|
|* Usage:                                                                     *|
|*   attnres-runtime-probe                 query the runtime it links to      *|
|*   attnres-runtime-probe launch GX GY GZ call mgpuLaunchKernel and          *|
|*                                         mgpuLaunchClusterKernel with that  *|
|*                                         grid and no kernel, and report the *|
|*                                         status after each                  *|
|*   attnres-runtime-probe LIB.so FUNC N   dlopen an AOT library, call        *|
|*                                         _mlir_ciface_FUNC with N rank-1    *|
|*                                         f32 memrefs of 1024 elements, and  *|
|*                                         report that library's runtime      *|
|*                                         status                             *|
|* Used by test/Runtime to check that a machine without a CUDA driver gets a  *|
|* clear error instead of a crash. It exits 0 whenever it ran to the end.     *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#include "attnres/Runtime/CudaRuntime.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[1];
  int64_t strides[1];
} MemRef1D;

typedef void (*Ciface2)(MemRef1D *, MemRef1D *);
typedef void (*Ciface3)(MemRef1D *, MemRef1D *, MemRef1D *);
typedef int (*GetErrorFn)(void);
typedef const char *(*GetMessageFn)(void);

static int probeSelf(void) {
  int available = attnresRuntimeIsAvailable();
  printf("available: %d\n", available);
  printf("status: %d\n", attnresRuntimeGetLastError());
  printf("message: %s\n", attnresRuntimeGetLastErrorMessage());
  attnresRuntimeClearError();
  printf("status after clear: %d\n", attnresRuntimeGetLastError());
  /* A second query reports the failure again, without printing it. */
  available = attnresRuntimeIsAvailable();
  printf("available again: %d, status: %d\n", available,
         attnresRuntimeGetLastError());
  return 0;
}

static int probeLibrary(const char *path, const char *func, int nargs) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    printf("dlopen failed: %s\n", dlerror());
    return 1;
  }
  printf("loaded: %s\n", path);
  char name[256];
  snprintf(name, sizeof(name), "_mlir_ciface_%s", func);
  void *fn = dlsym(lib, name);
  GetErrorFn getError = (GetErrorFn)dlsym(lib, "attnresRuntimeGetLastError");
  GetMessageFn getMessage =
      (GetMessageFn)dlsym(lib, "attnresRuntimeGetLastErrorMessage");
  if (!fn || !getError || !getMessage) {
    printf("missing symbol: %s\n", !fn ? name : "attnresRuntime*");
    return 1;
  }
  static float buffers[3][1024];
  MemRef1D args[3];
  for (int i = 0; i < 3; ++i) {
    args[i].allocated = args[i].aligned = buffers[i];
    args[i].offset = 0;
    args[i].sizes[0] = 1024;
    args[i].strides[0] = 1;
  }
  if (nargs == 2)
    ((Ciface2)fn)(&args[0], &args[1]);
  else if (nargs == 3)
    ((Ciface3)fn)(&args[0], &args[1], &args[2]);
  else {
    printf("unsupported argument count %d\n", nargs);
    return 1;
  }
  printf("returned from %s\n", name);
  printf("status: %d\n", getError());
  printf("message: %s\n", getMessage());
  return 0;
}

/* The launch entry points of MLIR's GPU host code (gpu-to-llvm), which the
 * runtime exports; CUfunction and CUstream are pointers. */
void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t smem, void *stream,
                      void **params, void **extra, size_t paramsCount);
void mgpuLaunchClusterKernel(void *function, intptr_t clusterX,
                             intptr_t clusterY, intptr_t clusterZ,
                             intptr_t gridX, intptr_t gridY, intptr_t gridZ,
                             intptr_t blockX, intptr_t blockY, intptr_t blockZ,
                             int32_t smem, void *stream, void **params,
                             void **extra);

/* Launches of a kernel that is not loaded (no driver is needed): an empty
 * grid must do nothing, any other grid must report the missing kernel. */
static int probeLaunch(intptr_t gx, intptr_t gy, intptr_t gz) {
  attnresRuntimeSetQuiet(1);
  mgpuLaunchKernel(NULL, gx, gy, gz, 128, 1, 1, 0, NULL, NULL, NULL, 0);
  printf("launch (%ld, %ld, %ld): status %d\n", (long)gx, (long)gy, (long)gz,
         attnresRuntimeGetLastError());
  attnresRuntimeClearError();
  mgpuLaunchClusterKernel(NULL, 1, 1, 1, gx, gy, gz, 128, 1, 1, 0, NULL, NULL,
                          NULL);
  printf("cluster launch (%ld, %ld, %ld): status %d\n", (long)gx, (long)gy,
         (long)gz, attnresRuntimeGetLastError());
  attnresRuntimeClearError();
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc == 1)
    return probeSelf();
  if (argc == 5 && !strcmp(argv[1], "launch"))
    return probeLaunch(atol(argv[2]), atol(argv[3]), atol(argv[4]));
  if (argc == 4)
    return probeLibrary(argv[1], argv[2], atoi(argv[3]));
  fprintf(stderr, "usage: %s [launch GX GY GZ | LIB.so FUNC NARGS]\n", argv[0]);
  return 2;
}
