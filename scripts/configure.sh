#!/usr/bin/env bash
# Configures a build directory the one way the project is built (clang-22,
# Release, Debian's MLIR 22, lit from LLVM), unless it is configured already:
#   scripts/configure.sh BUILD_DIR [extra cmake arguments...]
# Used by setup.sh (build/), sanitize.sh (build-asan/) and fuzz.sh (build-fuzz/).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${1:?usage: $0 BUILD_DIR [cmake arguments...]}
shift
# Debian's LLVM 22 is found through its llvm-config, never by a literal path.
LLVM_PREFIX=$(llvm-config-22 --prefix)
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -G Ninja -S "$ROOT" -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DMLIR_DIR="$LLVM_PREFIX/lib/cmake/mlir" \
    -DLLVM_EXTERNAL_LIT="$LLVM_PREFIX/bin/lit" \
    -DPython3_EXECUTABLE=/usr/bin/python3 -DPYTHON_EXECUTABLE=/usr/bin/python3 \
    "$@"
fi
