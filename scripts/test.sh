#!/usr/bin/env bash
# Builds attnres and runs every test: the lit suite (check-attnres) and the
# GoogleTest unit tests. Idempotent; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${ATTNRES_BUILD_DIR:-build}

status=0
ninja -C "$BUILD_DIR" AttnResUnitTests
ninja -C "$BUILD_DIR" check-attnres 2>&1 | tee "$BUILD_DIR/check-attnres.log" || status=1

unit_pass=0
unit_fail=0
for t in "$BUILD_DIR"/unittests/*; do
  [ -x "$t" ] || continue
  if "$t"; then unit_pass=$((unit_pass + 1)); else unit_fail=$((unit_fail + 1)); status=1; fi
done

lit_pass=$(grep -Eo 'Passed *: *[0-9]+' "$BUILD_DIR/check-attnres.log" | grep -Eo '[0-9]+' | tail -1 || true)
lit_fail=$(grep -Eo 'Failed *: *[0-9]+' "$BUILD_DIR/check-attnres.log" | grep -Eo '[0-9]+' | tail -1 || true)
lit_unsup=$(grep -Eo 'Unsupported *: *[0-9]+' "$BUILD_DIR/check-attnres.log" | grep -Eo '[0-9]+' | tail -1 || true)
echo "unit test binaries: ${unit_pass} passed, ${unit_fail} failed"
echo "summary: $(( ${lit_pass:-0} + unit_pass )) passed, $(( ${lit_fail:-0} + unit_fail )) failed, ${lit_unsup:-0} skipped"
exit $status
