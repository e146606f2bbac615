#!/usr/bin/env bash
# ASan + UBSan build of attnres and the whole lit suite run with it.
# Part of the attnres project; see docs/reliability.md.
#
#   scripts/sanitize.sh [-b BUILD_DIR] [-j JOBS]
#
# Configures BUILD_DIR (default build-asan) with clang-22 and
# -DATTNRES_ENABLE_SANITIZERS=ON, builds the lit suite's dependencies and runs
# every lit test. The lit feature `asan` marks tests that cannot run in this
# build (a plugin loaded into Debian's uninstrumented mlir-opt or python3):
# they are UNSUPPORTED. Leaks are not reported (libMLIR.so is not
# instrumented and keeps global state); every other ASan or UBSan report
# aborts the tool and fails its test. Prints the time of the build and of the
# suite; exit status 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${ATTNRES_ASAN_BUILD_DIR:-build-asan}
JOBS=${SANITIZE_JOBS:-$(nproc)}
while [ $# -gt 0 ]; do
  case $1 in
    -b) BUILD_DIR=$2; shift 2 ;;
    -j) JOBS=$2; shift 2 ;;
    *) echo "usage: $0 [-b BUILD_DIR] [-j JOBS]" >&2; exit 2 ;;
  esac
done
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac

t0=$(date +%s)
bash "$ROOT/scripts/configure.sh" "$BUILD_DIR" -DATTNRES_ENABLE_SANITIZERS=ON
# The lit suite's dependencies (test/CMakeLists.txt) without running it.
deps=$(ninja -C "$BUILD_DIR" -t query test/check-attnres 2>/dev/null | \
  awk '/input:/{f=1;next} /outputs:/{f=0} f{print $1}' | \
  grep -v -e '^|' -e 'CMakeFiles/check-attnres' || true)
ninja -C "$BUILD_DIR" -j"$JOBS" ${deps:-attnres-opt}
t1=$(date +%s)

# (test/lit.cfg.py sets ASAN_OPTIONS/UBSAN_OPTIONS for the tests: no leak
# checks, abort on the first report so that `not` cannot hide a crash.)
set +e
"$(llvm-config-22 --bindir)/lit" -sv "$BUILD_DIR/test" 2>&1 | tee "$BUILD_DIR/sanitize-lit.log"
rc=${PIPESTATUS[0]}
set -e
t2=$(date +%s)
reports=$(grep -cE 'ERROR: AddressSanitizer|runtime error:' "$BUILD_DIR/sanitize-lit.log" || true)
echo "sanitize.sh: build $((t1 - t0)) s, lit suite $((t2 - t1)) s, total $((t2 - t0)) s" \
     "($JOBS jobs); sanitizer reports in the log: $reports; lit exit status $rc"
exit $rc
