/*===- compiler.c - test of the attnres C API ---------------------*- C -*-===*\
|*                                                                            *|
|* Part of the attnres project.                                               *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

/* RUN: attnres-capi-test 2>&1 | FileCheck %s
 */

#include "attnres-c/Compiler.h"
#include "attnres-c/Dialects.h"
#include "attnres-c/Passes.h"
#include "attnres-c/Target.h"

#include "mlir-c/Dialect/Func.h"
#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"
#include "mlir-c/RegisterEverything.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void printToStderr(MlirStringRef str, void *userData) {
  (void)userData;
  fwrite(str.data, 1, str.length, stderr);
}

/* Counts the diagnostics and prints each one, tagged. */
static void printDiagnostic(const AttnResDiagnostic *d, void *userData) {
  ++*(int *)userData;
  fprintf(stderr, "DIAG file=%.*s line=%u col=%u note=%d: %.*s\n",
          (int)d->file.length, d->file.data, d->line, d->column, d->isNote,
          (int)d->formatted.length, d->formatted.data);
}

static const char *kOneSource =
    "func.func @one(%w: tensor<8xf32>, %g: tensor<8xf32>,\n"
    "               %v: tensor<4x8xf32>) -> tensor<4x8xf32> {\n"
    "  %h = attnres.aggregate %w, %g over %v {epsilon = 1.0e-06 : f32}\n"
    "      : tensor<4x8xf32>\n"
    "  return %h : tensor<4x8xf32>\n"
    "}\n";

static const char *kTwoSources =
    "func.func @two(%w: tensor<8xf32>, %g: tensor<8xf32>,\n"
    "               %a: tensor<4x8xf32>, %b: tensor<4x8xf32>)\n"
    "    -> tensor<4x8xf32> {\n"
    "  %h = attnres.aggregate %w, %g over %a, %b {epsilon = 1.0e-06 : f32}\n"
    "      : tensor<4x8xf32>\n"
    "  return %h : tensor<4x8xf32>\n"
    "}\n";

/* The dialect handle works with a plain upstream context. */
static int testDialectHandle(void) {
  fprintf(stderr, "@testDialectHandle\n");
  MlirDialectHandle handle = mlirGetDialectHandle__attnres__();
  MlirStringRef ns = mlirDialectHandleGetNamespace(handle);
  fprintf(stderr, "namespace: %.*s\n", (int)ns.length, ns.data);
  MlirContext ctx = mlirContextCreate();
  mlirDialectHandleRegisterDialect(handle, ctx);
  mlirDialectHandleRegisterDialect(mlirGetDialectHandle__func__(), ctx);
  MlirModule module =
      mlirModuleCreateParse(ctx, mlirStringRefCreateFromCString(kTwoSources));
  if (mlirModuleIsNull(module)) {
    fprintf(stderr, "parse failed\n");
    mlirContextDestroy(ctx);
    return 1;
  }
  mlirOperationPrint(mlirModuleGetOperation(module), printToStderr, NULL);
  fprintf(stderr, "\n");
  mlirModuleDestroy(module);
  mlirContextDestroy(ctx);
  return 0;
  // CHECK-LABEL: @testDialectHandle
  // CHECK: namespace: attnres
  // CHECK: func.func @two
  // CHECK: attnres.aggregate %{{.*}}, %{{.*}} over %{{.*}}, %{{.*}} {epsilon
  // = 9.99999997E-7 : f32} : tensor<4x8xf32>
}

/* Upstream mlirParsePassPipeline + mlirPassManagerRunOnOp see the attnres
   passes once attnresRegisterAllPasses ran. */
static int testUpstreamPassManager(void) {
  fprintf(stderr, "@testUpstreamPassManager\n");
  MlirContext ctx = attnresContextCreate(false);
  int count = 0;
  MlirModule module = attnresParseModule(
      ctx, mlirStringRefCreateFromCString(kOneSource),
      mlirStringRefCreateFromCString("one.mlir"), printDiagnostic, &count);
  MlirPassManager pm = mlirPassManagerCreate(ctx);
  MlirLogicalResult parsed = mlirParsePassPipeline(
      mlirPassManagerGetAsOpPassManager(pm),
      mlirStringRefCreateFromCString("builtin.module(canonicalize)"),
      printToStderr, NULL);
  if (mlirLogicalResultIsFailure(parsed) ||
      mlirLogicalResultIsFailure(
          mlirPassManagerRunOnOp(pm, mlirModuleGetOperation(module)))) {
    fprintf(stderr, "upstream pass manager failed\n");
    return 1;
  }
  attnresPrintModule(module, false, false, printToStderr, NULL);
  fprintf(stderr, "diagnostics: %d\n", count);
  mlirPassManagerDestroy(pm);
  mlirModuleDestroy(module);
  mlirContextDestroy(ctx);
  return 0;
  // The one-source aggregate folds away.
  // CHECK-LABEL: @testUpstreamPassManager
  // CHECK: func.func @one(%{{.*}}: tensor<8xf32>, %{{.*}}: tensor<8xf32>,
  // %[[V:.*]]: tensor<4x8xf32>) CHECK-NOT: attnres.aggregate CHECK: return
  // %[[V]] CHECK: diagnostics: 0
}

/* Parse, run a pipeline (both the bare and the anchored spelling), print. */
static int testPipelines(void) {
  fprintf(stderr, "@testPipelines\n");
  MlirContext ctx = attnresContextCreate(false);
  int count = 0;
  MlirModule module = attnresParseModule(
      ctx, mlirStringRefCreateFromCString(kOneSource),
      mlirStringRefCreateFromCString("one.mlir"), printDiagnostic, &count);
  if (mlirModuleIsNull(module))
    return 1;
  if (mlirLogicalResultIsFailure(attnresRunPassPipeline(
          module, mlirStringRefCreateFromCString("canonicalize,cse"),
          printDiagnostic, &count)))
    return 1;
  attnresPrintModule(module, false, false, printToStderr, NULL);
  mlirModuleDestroy(module);
  // CHECK-LABEL: @testPipelines
  // CHECK: func.func @one
  // CHECK-NOT: attnres.aggregate
  // CHECK: return

  module = attnresParseModule(ctx, mlirStringRefCreateFromCString(kTwoSources),
                              mlirStringRefCreateFromCString("two.mlir"),
                              printDiagnostic, &count);
  if (mlirModuleIsNull(module))
    return 1;
  if (mlirLogicalResultIsFailure(attnresRunPassPipeline(
          module,
          mlirStringRefCreateFromCString(
              "builtin.module(func.func(convert-attnres-to-linalg),"
              "canonicalize)"),
          printDiagnostic, &count)))
    return 1;
  attnresPrintModule(module, false, false, printToStderr, NULL);
  fprintf(stderr, "diagnostics: %d\n", count);
  mlirModuleDestroy(module);
  mlirContextDestroy(ctx);
  return 0;
  // CHECK: func.func @two
  // CHECK-NOT: attnres.
  // CHECK: linalg.generic
  // CHECK-NOT: attnres.
  // CHECK: diagnostics: 0
}

/* Every failure comes back as diagnostics with their locations. */
static int testErrors(void) {
  fprintf(stderr, "@testErrors\n");
  MlirContext ctx = attnresContextCreate(false);
  int count = 0;

  /* A syntax error. */
  MlirModule module = attnresParseModule(
      ctx, mlirStringRefCreateFromCString("func.func @f() {\n  %x = \n}\n"),
      mlirStringRefCreateFromCString("syntax.mlir"), printDiagnostic, &count);
  fprintf(stderr, "null module: %d, diagnostics: %d\n",
          mlirModuleIsNull(module), count);
  // CHECK-LABEL: @testErrors
  // CHECK: DIAG file=syntax.mlir line=2 col=7 note=0: syntax.mlir:2:7: error:
  // expected operation name CHECK: null module: 1, diagnostics: 1

  /* A verifier error: the sources disagree with the result type; the
     verifier attaches the op as a note. */
  count = 0;
  module = attnresParseModule(
      ctx,
      mlirStringRefCreateFromCString(
          "func.func @bad(%w: tensor<8xf32>, %g: tensor<8xf32>,\n"
          "               %a: tensor<4x8xf32>, %b: tensor<2x8xf32>)\n"
          "    -> tensor<4x8xf32> {\n"
          "  %h = \"attnres.aggregate\"(%w, %g, %a, %b)\n"
          "      {epsilon = 1.0e-06 : f32} : (tensor<8xf32>, tensor<8xf32>,\n"
          "      tensor<4x8xf32>, tensor<2x8xf32>) -> tensor<4x8xf32>\n"
          "  return %h : tensor<4x8xf32>\n"
          "}\n"),
      mlirStringRefCreateFromCString("verify.mlir"), printDiagnostic, &count);
  fprintf(stderr, "null module: %d, diagnostics: %d\n",
          mlirModuleIsNull(module), count);
  // CHECK: DIAG file=verify.mlir line=4 col=8 note=0: verify.mlir:4:8: error:
  // 'attnres.aggregate' op source #1 has type 'tensor<2x8xf32>' but the result
  // has type 'tensor<4x8xf32>'; all sources and the result must have one type
  // (C{{[0-9]+}}) CHECK-NEXT: DIAG file=verify.mlir line=4 col=8 note=1:
  // verify.mlir:4:8: note: see current operation: CHECK: null module: 1,
  // diagnostics: 2

  /* An unknown pass: an error on the pipeline, the module is left as is. */
  count = 0;
  module = attnresParseModule(ctx, mlirStringRefCreateFromCString(kTwoSources),
                              mlirStringRefCreateFromCString("two.mlir"),
                              printDiagnostic, &count);
  MlirLogicalResult result = attnresRunPassPipeline(
      module, mlirStringRefCreateFromCString("canonicalize,no-such-pass"),
      printDiagnostic, &count);
  fprintf(stderr, "failed: %d, diagnostics: %d\n",
          mlirLogicalResultIsFailure(result), count);
  // CHECK: DIAG file= line=0 col=0 note=0: <pass pipeline>: error: invalid pass
  // pipeline 'canonicalize,no-such-pass': {{.*}}no-such-pass CHECK: failed: 1,
  // diagnostics: 1

  /* A pipeline that does not parse. */
  count = 0;
  result = attnresRunPassPipeline(
      module, mlirStringRefCreateFromCString("func.func(canonicalize"),
      printDiagnostic, &count);
  fprintf(stderr, "failed: %d, diagnostics: %d\n",
          mlirLogicalResultIsFailure(result), count);
  // CHECK: DIAG {{.*}}<pass pipeline>: error: invalid pass pipeline
  // CHECK: failed: 1, diagnostics: 1
  mlirModuleDestroy(module);

  /* A pass that fails reports at the op it failed on: one-shot-bufferize
     cannot bufferize an unrealized cast of tensors. */
  count = 0;
  module = attnresParseModule(
      ctx,
      mlirStringRefCreateFromCString(
          "func.func @cast(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
          "  %y = builtin.unrealized_conversion_cast %x : tensor<4xf32> to "
          "tensor<4xf32>\n"
          "  return %y : tensor<4xf32>\n"
          "}\n"),
      mlirStringRefCreateFromCString("cast.mlir"), printDiagnostic, &count);
  result = attnresRunPassPipeline(
      module, mlirStringRefCreateFromCString("one-shot-bufferize"),
      printDiagnostic, &count);
  fprintf(stderr, "failed: %d, diagnostics: %d\n",
          mlirLogicalResultIsFailure(result), count);
  // CHECK: DIAG file=cast.mlir line=2 col=8 note=0: cast.mlir:2:8: error: op
  // was not bufferized CHECK: failed: 1, diagnostics: {{[1-9]}}

  mlirModuleDestroy(module);
  mlirContextDestroy(ctx);
  return 0;
}

/* Appends to a growing buffer (a struct Buffer). */
struct Buffer {
  char data[1 << 16];
  size_t size;
  size_t total;
};

static void appendToBuffer(MlirStringRef str, void *userData) {
  struct Buffer *b = (struct Buffer *)userData;
  size_t n = str.length;
  if (n > sizeof(b->data) - b->size)
    n = sizeof(b->data) - b->size;
  memcpy(b->data + b->size, str.data, n);
  b->size += n;
  b->total += str.length;
}

/* The compiler's default NVVM target, and host code for a module lowered to
   the LLVM dialect: LLVM IR text and an ELF object, or diagnostics. */
static int testHostCode(void) {
  fprintf(stderr, "@testHostCode\n");
  MlirStringRef chip = attnresGetDefaultNVVMChip();
  MlirStringRef features = attnresGetDefaultNVVMFeatures();
  fprintf(stderr, "default target: %.*s %.*s\n", (int)chip.length, chip.data,
          (int)features.length, features.data);
  // CHECK-LABEL: @testHostCode
  // CHECK: default target: sm_{{[0-9]+}}{{a?}} +ptx{{[0-9]+}}

  MlirContext ctx = attnresContextCreate(false);
  int count = 0;
  MlirModule module = attnresParseModule(
      ctx, mlirStringRefCreateFromCString(kTwoSources),
      mlirStringRefCreateFromCString("two.mlir"), printDiagnostic, &count);
  /* Not lowered yet: the translation fails with a diagnostic. */
  static struct Buffer ir, object;
  MlirLogicalResult result =
      attnresEmitHostCode(module, 2, appendToBuffer, &ir, appendToBuffer,
                          &object, printDiagnostic, &count);
  fprintf(stderr, "failed: %d, diagnostics: %d, bytes: %zu\n",
          mlirLogicalResultIsFailure(result), count, ir.total + object.total);
  // CHECK: error: cannot translate the module to LLVM IR
  // CHECK: failed: 1, diagnostics: 1, bytes: 0

  count = 0;
  result = attnresEmitHostCode(module, 7, NULL, NULL, NULL, NULL,
                               printDiagnostic, &count);
  fprintf(stderr, "failed: %d, diagnostics: %d\n",
          mlirLogicalResultIsFailure(result), count);
  // CHECK: error: optimisation level must be 0 to 3, got 7
  // CHECK: failed: 1, diagnostics: 1

  count = 0;
  if (mlirLogicalResultIsFailure(attnresRunPassPipeline(
          module, mlirStringRefCreateFromCString("attnres-lower-to-llvm"),
          printDiagnostic, &count)))
    return 1;
  result = attnresEmitHostCode(module, 2, appendToBuffer, &ir, appendToBuffer,
                               &object, printDiagnostic, &count);
  ir.data[ir.size < sizeof(ir.data) ? ir.size : sizeof(ir.data) - 1] = 0;
  fprintf(stderr, "ok: %d, diagnostics: %d, defines two: %d, ELF: %d\n",
          mlirLogicalResultIsSuccess(result), count,
          strstr(ir.data, " @two(") != NULL,
          object.size > 4 && memcmp(object.data,
                                    "\x7f"
                                    "ELF",
                                    4) == 0);
  // CHECK: ok: 1, diagnostics: 0, defines two: 1, ELF: 1
  mlirModuleDestroy(module);
  mlirContextDestroy(ctx);
  return 0;
}

int main(void) {
  /* Upstream registration is idempotent; attnresContextCreate also does it. */
  mlirRegisterAllPasses();
  attnresRegisterAllPasses();
  attnresRegisterAllPasses();
  if (testDialectHandle() || testUpstreamPassManager() || testPipelines() ||
      testErrors() || testHostCode()) {
    fprintf(stderr, "FAILED\n");
    return 1;
  }
  fprintf(stderr, "PASSED\n");
  // CHECK: PASSED
  return 0;
}
