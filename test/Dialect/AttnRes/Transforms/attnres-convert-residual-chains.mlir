// attnres-convert-residual-chains alone: on the generated conversion cases,
// raising then converting (two passes) gives exactly what the pipeline
// attnres-detect-residual-chains gives, and the conversion pass alone raises
// nothing (a model written with primitives keeps its math.exp softmax).
// RUN: attnres-opt %S/detect-residual-chains.mlir --split-input-file -attnres-raise-aggregations -attnres-convert-residual-chains > %t.two
// RUN: attnres-opt %S/detect-residual-chains.mlir --split-input-file -attnres-detect-residual-chains > %t.pipe
// RUN: diff %t.two %t.pipe
// RUN: FileCheck %s --input-file=%t.two
// CHECK: attnres.aggregate
// CHECK: ml_program.global public mutable @attnres_query_
// RUN: attnres-opt %S/detect-residual-chains-raise.mlir --split-input-file -attnres-convert-residual-chains=report=true 2>&1 | FileCheck %s --check-prefix=NORAISE
// NORAISE-NOT: raised an AttnRes aggregation
// NORAISE: math.exp
