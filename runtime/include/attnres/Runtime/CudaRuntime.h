/*===- CudaRuntime.h - attnres CUDA runtime: public C API ---------*- C -*-===*\
|*                                                                            *|
|* Part of the attnres project.                                               *|
|*                                                                            *|
|*===----------------------------------------------------------------------===*|
|*                                                                            *|
|* The attnres CUDA runtime implements the `mgpu*` entry points that MLIR's   *|
|* gpu-to-llvm lowering calls from host code, over the CUDA driver API loaded *|
|* at run time (dlopen("libcuda.so.1")). This header declares the few extra   *|
|* functions a caller of compiled code uses: to check that a GPU is usable,   *|
|* to read errors, and to make compiled host functions enqueue their work on  *|
|* a caller-chosen stream without synchronizing. See docs/runtime.md.         *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef ATTNRES_RUNTIME_CUDARUNTIME_H
#define ATTNRES_RUNTIME_CUDARUNTIME_H

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes returned by attnresRuntimeGetLastError(). Positive values are
   CUDA driver CUresult codes. */
#define ATTNRES_RUNTIME_SUCCESS 0
/* libcuda.so.1 could not be loaded or lacks a required entry point. */
#define ATTNRES_RUNTIME_ERROR_NO_DRIVER (-1)
/* A kernel or module was used that failed to load earlier. */
#define ATTNRES_RUNTIME_ERROR_NO_KERNEL (-2)

/* Loads the driver and initialises it (once per process). Returns 1 when a
   CUDA device can be used, 0 otherwise; the reason is then available from
   attnresRuntimeGetLastErrorMessage(). Never aborts. */
int attnresRuntimeIsAvailable(void);

/* The first error recorded since the last attnresRuntimeClearError() (or
   process start): ATTNRES_RUNTIME_SUCCESS when none. Errors are sticky, so a
   caller can check once after a sequence of calls. */
int attnresRuntimeGetLastError(void);

/* A human-readable description of that error ("" when none). The string
   stays valid until the next attnresRuntimeClearError(). */
const char *attnresRuntimeGetLastErrorMessage(void);

void attnresRuntimeClearError(void);

/* Makes compiled host functions called on this thread run on `stream` (a
   CUstream; NULL is the legacy default stream) instead of a stream of their
   own: mgpuStreamCreate returns it, and mgpuStreamSynchronize and
   mgpuStreamDestroy do nothing for it, so calls enqueue back to back and the
   caller synchronizes. The stream must belong to the context that is
   current on the thread (for PyTorch: the current device's primary
   context). */
void attnresRuntimeSetStream(void *stream);

/* Restores the default behaviour on this thread: every call creates its own
   stream and synchronizes before it returns, as MLIR expects. */
void attnresRuntimeResetStream(void);

/* The stream set by attnresRuntimeSetStream on this thread; *isSet is set to
   0 when none is (then the result is NULL). `isSet` may be NULL. */
void *attnresRuntimeGetStream(int *isSet);

/* When `quiet` is nonzero, errors are recorded but not printed to stderr.
   The environment variable ATTNRES_RUNTIME_QUIET=1 has the same effect. */
void attnresRuntimeSetQuiet(int quiet);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATTNRES_RUNTIME_CUDARUNTIME_H */
