#!/usr/bin/env bash
# Installs what the build needs from Debian (only what is missing), then
# configures and builds attnres into ./build. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake ninja-build ccache
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools clang-22 clang-format-22
  libclang-rt-22-dev libfuzzer-22-dev
  libgtest-dev googletest
  mpich libmpich-dev
  python3 python3-numpy python3-pytest python3-pybind11 pybind11-dev python3-torch
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD_DIR=${ATTNRES_BUILD_DIR:-build}
# shellcheck disable=SC2086 # ATTNRES_CMAKE_ARGS is a list of arguments
bash scripts/configure.sh "$BUILD_DIR" ${ATTNRES_CMAKE_ARGS:-}
ninja -C "$BUILD_DIR" attnres-opt AttnResPlugin
