#!/usr/bin/env bash
# Builds, on the build machine, every library the GPU benchmark loads:
#   libscale.so / libscale_isa.so   the tiny upstream-lowered kernel
#                                   (test/Runtime/Inputs/scale.mlir) as a
#                                   fatbin and as PTX: runtime smoke test
#   libbench_*.so, libsweep_*.so    the attnres modules of bench/gen_modules.py
#                                   through attnres-lower-to-nvvm (attnres.aot_compile)
# into OUT_DIR (default .device/bench, git-ignored), with a log per library.
# Carry OUT_DIR to the device (bench/device_run.sh runs everything there).
# Set ATTNRES_BENCH_UPSTREAM_ONLY=1 to build only the smoke-test libraries.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${ATTNRES_BUILD_DIR:-build}
OUT_DIR=${1:-.device/bench}
JOBS=${JOBS:-2}
# In-process AOT compilation (attnres.aot_compile) with the compiler's default
# chip and PTX features.
AOT="env PYTHONPATH=$BUILD_DIR/python_packages python3 -m attnres.aot_compile"

if [ "${ATTNRES_BENCH_REBUILD:-1}" = 1 ] || [ ! -f "$BUILD_DIR/lib/libattnres_cuda_runtime_static.a" ]; then
  ninja -C "$BUILD_DIR" attnres_cuda_runtime_static AttnResPythonModules || exit 1
fi
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR/mlir" "$OUT_DIR/logs"
exclude=$(git rev-parse --git-path info/exclude)
grep -qx '/.device/' "$exclude" 2>/dev/null || echo '/.device/' >> "$exclude"

$AOT --pipeline=upstream --format=fatbin test/Runtime/Inputs/scale.mlir -o "$OUT_DIR" --name scale || exit 1
$AOT --pipeline=upstream --format=isa test/Runtime/Inputs/scale.mlir -o "$OUT_DIR" --name scale_isa || exit 1

if [ "${ATTNRES_BENCH_UPSTREAM_ONLY:-0}" = 1 ]; then
  echo "built the smoke-test libraries only"
  exit 0
fi

# ATTNRES_BENCH_REBUILD=0 uses the Python package (compiler) already built.
if [ "${ATTNRES_BENCH_REBUILD:-1}" = 1 ] || [ ! -d "$BUILD_DIR/python_packages/attnres" ]; then
  ninja -C "$BUILD_DIR" AttnResPythonModules || exit 1
fi
PYTHONPATH=$BUILD_DIR/python_packages:. python3 -m bench.gen_modules -o "$OUT_DIR/mlir" > /dev/null || exit 1
export AOT OUT_DIR
ls "$OUT_DIR"/mlir/*.mlir | xargs -P "$JOBS" -I{} sh -c '
  f={}; n=$(basename "$f" .mlir)
  if $AOT --format=fatbin --opt-level=3 "$f" -o "$OUT_DIR" --name "$n" > "$OUT_DIR/logs/$n.log" 2>&1; then
    echo "built lib$n.so"
  else
    echo "FAILED $n (see $OUT_DIR/logs/$n.log)"
  fi'
ok=$(ls "$OUT_DIR"/lib*.so | wc -l)
total=$(( $(ls "$OUT_DIR"/mlir/*.mlir | wc -l) + 2 ))
echo "bench/build.sh: $ok of $total libraries built in $OUT_DIR"
[ "$ok" = "$total" ]
