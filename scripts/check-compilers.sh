#!/usr/bin/env bash
# Checks that attnres generates the same code whatever C++ compiler built it
# (issue 16 item 3): builds the project with g++ into build-gcc/ (the clang-22
# build is build/, made by scripts/setup.sh), runs the g++ build's lit suite,
# then writes the PTX corpus of both builds (scripts/ptx_corpus.py: the
# benchmark and sweep modules, the GPU pipeline tests at every chip their RUN
# lines name, every kernel of bench/kernels_check and bench/merge_norm_check,
# and every case of the GPU conversion tests, as kernel IR and as PTX) and
# compares them byte for byte (diff -r). Only the PTX held by the gpu.binary
# is compared: the gpu.object also carries compile-time attributes
# (LLVMIRToISATimeInMs) that differ between any two runs.
#
#   scripts/check-compilers.sh                 the whole check
#   scripts/check-compilers.sh --ptx BUILD OUT only write BUILD's PTX corpus
#                                              into OUT (as
#                                              scripts/ptx_corpus.py does)
#
# Environment: CLANG_BUILD_DIR (build), GCC_BUILD_DIR (build-gcc), JOBS (2).
# Exit status 0 only if the g++ build, its lit suite and the comparison pass.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-2}

# dump_ptx BUILD_DIR OUT_DIR: BUILD_DIR's PTX corpus into OUT_DIR.
dump_ptx() {
  JOBS=$JOBS python3 scripts/ptx_corpus.py "$1" "$2" ||
    { echo "check-compilers: the PTX corpus of $1 failed" >&2; return 1; }
}

if [ "${1:-}" = "--ptx" ]; then
  [ $# -eq 3 ] || { echo "usage: $0 --ptx BUILD_DIR OUT_DIR" >&2; exit 2; }
  dump_ptx "$2" "$3"
  exit $?
fi

CLANG_BUILD=${CLANG_BUILD_DIR:-build}
GCC_BUILD=${GCC_BUILD_DIR:-build-gcc}
status=0

echo "== clang build ($CLANG_BUILD)"
ATTNRES_BUILD_DIR=$CLANG_BUILD bash scripts/setup.sh >/dev/null || exit 1
nice ninja -C "$CLANG_BUILD" -j"$JOBS" attnres-opt AttnResPythonModules || exit 1

echo "== g++ build ($GCC_BUILD)"
if [ ! -f "$GCC_BUILD/build.ninja" ]; then
  # Debian's LLVM 22 through its llvm-config, as scripts/configure.sh finds it.
  LLVM_PREFIX=$(llvm-config-22 --prefix) || exit 1
  cmake -G Ninja -S . -B "$GCC_BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ \
    -DMLIR_DIR="$LLVM_PREFIX/lib/cmake/mlir" \
    -DLLVM_EXTERNAL_LIT="$LLVM_PREFIX/bin/lit" \
    -DPython3_EXECUTABLE=/usr/bin/python3 -DPYTHON_EXECUTABLE=/usr/bin/python3 || exit 1
fi
grep -q 'CMAKE_CXX_COMPILER:.*g++' "$GCC_BUILD/CMakeCache.txt" ||
  { echo "check-compilers: $GCC_BUILD is not configured with g++" >&2; exit 1; }
nice ninja -C "$GCC_BUILD" -j"$JOBS" || exit 1

echo "== lit suite of the g++ build"
if ! nice ninja -C "$GCC_BUILD" -j"$JOBS" check-attnres; then
  echo "check-compilers: FAIL: the g++ build's lit suite"
  status=1
fi

echo "== PTX corpus, clang vs g++"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dump_ptx "$CLANG_BUILD" "$work/clang" || exit 1
dump_ptx "$GCC_BUILD" "$work/gcc" || exit 1
n=$(find "$work/clang" -type f | wc -l)
if diff -r "$work/clang" "$work/gcc" >"$work/diff"; then
  echo "check-compilers: PTX corpus ($n files) byte-identical between $CLANG_BUILD and $GCC_BUILD"
else
  echo "check-compilers: FAIL: PTX differs between $CLANG_BUILD and $GCC_BUILD:"
  head -50 "$work/diff"
  status=1
fi
exit $status
