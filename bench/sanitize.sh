#!/usr/bin/env bash
# compute-sanitizer memcheck and racecheck over a small run of each kernel
# (python3 -m bench.sanitize_run). Runs on the GPU machine. PyTorch's caching
# allocator is turned off so that every tensor is its own allocation and an
# out-of-bounds access cannot land silently in a neighbour.
# Usage: bench/sanitize.sh LIB_DIR [LOG_DIR]   (SANITIZE_TIMEOUT seconds per tool, 110)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/python:$PWD${PYTHONPATH:+:$PYTHONPATH}
LIB_DIR=${1:-.device/bench}
LOG_DIR=${2:-${OUT:-/tmp}}
export PYTORCH_NO_CUDA_MEMORY_CACHING=1 PYTHONUNBUFFERED=1
status=0
for tool in memcheck racecheck; do
  extra=""
  [ "$tool" = memcheck ] && extra="--leak-check no"
  echo "== compute-sanitizer --tool $tool"
  timeout "${SANITIZE_TIMEOUT:-110}" compute-sanitizer --tool "$tool" $extra --error-exitcode 3 --print-limit 20 \
    python3 -m bench.sanitize_run "$LIB_DIR" > "$LOG_DIR/sanitize_$tool.txt" 2>&1
  rc=$?
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Hazard|Invalid|FAIL|failure" "$LOG_DIR/sanitize_$tool.txt" | head -30
  echo "== $tool exit status $rc"
  [ $rc -eq 0 ] || status=1
done
exit $status
