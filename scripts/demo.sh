#!/usr/bin/env bash
# The main job: set up (install missing Debian packages, build), then run the
# compiler on the bundled example model and show what it did to it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${ATTNRES_BUILD_DIR:-build}
OPT="$BUILD_DIR/bin/attnres-opt --mlir-print-op-on-diagnostic=false"
LLVM_BIN=$(llvm-config-22 --bindir)
LLVM_LIB=$(llvm-config-22 --libdir)
RUNNER=$LLVM_BIN/mlir-runner
LIBS=$LLVM_LIB/libmlir_runner_utils.so,$LLVM_LIB/libmlir_c_runner_utils.so
EXAMPLE=${1:-examples/transformer.mlir}
OUTDIR="$BUILD_DIR/demo"
mkdir -p "$OUTDIR"

echo "== attnres demo on $EXAMPLE"
echo "-- 1. detect residual chains (attnres-detect-residual-chains)"
$OPT "$EXAMPLE" --pass-pipeline='builtin.module(attnres-detect-residual-chains{report=true})' \
  -o "$OUTDIR/1-detected.mlir" 2>&1 | grep -a 'remark:' | sed 's/^/   /'
echo "   aggregations after detection: $(grep -c 'attnres.aggregate' "$OUTDIR/1-detected.mlir" || true)"

echo "-- 2. block form (attnres-blockify block-size=4)"
$OPT "$OUTDIR/1-detected.mlir" --pass-pipeline='builtin.module(attnres-blockify{block-size=4 report=true})' \
  -o "$OUTDIR/2-blocked.mlir" 2>&1 | grep -a 'remark:' | sed 's/^/   /'

echo "-- 3. two-phase form (attnres-fuse-summaries)"
$OPT "$OUTDIR/2-blocked.mlir" --pass-pipeline='builtin.module(attnres-fuse-summaries{report=true})' \
  -o "$OUTDIR/3-fused.mlir" 2>&1 | grep -a 'remark:' | sed 's/^/   /'
for op in aggregate block_sum inv_rms block_score merge; do
  printf '   attnres.%-12s %s\n' "$op" "$(grep -c "attnres.$op " "$OUTDIR/3-fused.mlir" || true)"
done

echo "-- 4. CPU lowering (attnres-lower-to-llvm)"
$OPT "$OUTDIR/3-fused.mlir" --attnres-lower-to-llvm -o "$OUTDIR/4-llvm.mlir"
echo "   wrote $OUTDIR/4-llvm.mlir ($(wc -l < "$OUTDIR/4-llvm.mlir") lines)"

echo "-- 5. run the original and the compiled model on the CPU (mlir-runner) and compare"
$OPT "$EXAMPLE" --attnres-lower-to-llvm -o "$OUTDIR/0-original-llvm.mlir"
$RUNNER "$OUTDIR/0-original-llvm.mlir" -e main -entry-point-result=void -shared-libs=$LIBS > "$OUTDIR/original.out"
$RUNNER "$OUTDIR/4-llvm.mlir" -e main -entry-point-result=void -shared-libs=$LIBS > "$OUTDIR/compiled.out"
# Zero-initialised queries: the converted network equals the original up to
# the norms' epsilon (docs/detection.md).
python3 utils/compare_outputs.py "$OUTDIR/original.out" "$OUTDIR/compiled.out" --rtol 1e-2 --atol 1e-3 | sed 's/^/   /'
echo "== intermediate files in $OUTDIR"
