#!/usr/bin/env bash
# Bounded libFuzzer run of tools/attnres-fuzz (ASan + UBSan), seeded from the
# lit tests' .mlir files. Part of the attnres project; see docs/reliability.md.
#
#   scripts/fuzz.sh [-t SECONDS] [-s SEED] [-r RUNS] [-b BUILD_DIR] [-j JOBS]
#                   [--no-build]
#
# Configures BUILD_DIR (default build-fuzz) with clang-22,
# -DATTNRES_ENABLE_FUZZER=ON -DATTNRES_ENABLE_SANITIZERS=ON, builds
# attnres-fuzz, builds a seed corpus (every .mlir under test/, split at
# `// -----` so that each case is one seed, RUN/CHECK comment lines stripped),
# runs libFuzzer for -max_total_time=SECONDS (default 60, or $FUZZ_TIME) and
# prints the number of executions. Without -s the seed is random (exploration);
# with -s SEED -r RUNS (or $FUZZ_SEED, $FUZZ_RUNS) the run starts from the seeds
# alone and executes RUNS inputs drawn from SEED (-t still bounds it):
# scripts/test.sh (CI) runs it that way, so that the gate is close to
# repeatable (not bit-exact: the target's MLIRContext lives across inputs;
# docs/reliability.md). A crash is saved under
# BUILD_DIR/fuzz/crashes/ (turn it into a regression test under test/Fuzz/:
# see test/Fuzz/README.md) and triaged by scripts/fuzz_triage.py. Exit status
# 1 on a crash, unless the triage finds it inside Debian's MLIR parser with no
# attnres frame on the stack (reported, exit status 0).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TIME=${FUZZ_TIME:-60}
BUILD_DIR=${ATTNRES_FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${FUZZ_JOBS:-2}
SEED=${FUZZ_SEED:-}
RUNS=${FUZZ_RUNS:-}
BUILD=1
while [ $# -gt 0 ]; do
  case $1 in
    -t) TIME=$2; shift 2 ;;
    -b) BUILD_DIR=$2; shift 2 ;;
    -j) JOBS=$2; shift 2 ;;
    -s) SEED=$2; shift 2 ;;
    -r) RUNS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: $0 [-t SECONDS] [-s SEED] [-r RUNS] [-b BUILD_DIR] [-j JOBS] [--no-build]" >&2; exit 2 ;;
  esac
done
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac

if [ $BUILD = 1 ]; then
  bash "$ROOT/scripts/configure.sh" "$BUILD_DIR" \
    -DATTNRES_ENABLE_FUZZER=ON -DATTNRES_ENABLE_SANITIZERS=ON
  ninja -C "$BUILD_DIR" -j"$JOBS" attnres-fuzz
fi
FUZZ=$BUILD_DIR/bin/attnres-fuzz
[ -x "$FUZZ" ] || { echo "fuzz.sh: $FUZZ not built" >&2; exit 2; }

# Seed corpus: one file per `// -----` case of every lit .mlir file.
SEEDS=$BUILD_DIR/fuzz/seeds
CORPUS=$BUILD_DIR/fuzz/corpus
CRASHES=$BUILD_DIR/fuzz/crashes
mkdir -p "$SEEDS" "$CORPUS" "$CRASHES"
rm -f "$CRASHES"/crash-* "$CRASHES"/timeout-* "$CRASHES"/oom-*
/usr/bin/python3 - "$ROOT/test" "$SEEDS" <<'PY'
import hashlib, os, re, sys
src, out = sys.argv[1], sys.argv[2]
n = 0
for d, _, files in os.walk(src):
    for f in files:
        if not f.endswith(".mlir"):
            continue
        text = open(os.path.join(d, f), errors="replace").read()
        for case in re.split(r"^// -----.*$", text, flags=re.M):
            lines = [l for l in case.splitlines()
                     if not re.match(r"\s*//\s*(RUN|CHECK|REQUIRES|UNSUPPORTED|XFAIL|DEFINE|REF|expected-)", l)]
            body = "\n".join(lines).strip() + "\n"
            if len(body) < 8 or len(body) > 64 * 1024:
                continue
            h = hashlib.sha1(body.encode()).hexdigest()[:16]
            open(os.path.join(out, h + ".mlir"), "w").write(body)
            n += 1
print("fuzz.sh: %d seed cases from %s" % (n, src))
PY

LOG=$BUILD_DIR/fuzz/fuzz.log
UPSTREAM=$CRASHES/upstream
if [ -n "$SEED" ]; then
  # A reproducible run starts from the seeds alone, not from the corpus an
  # earlier run left behind.
  rm -rf "$CORPUS"; mkdir -p "$CORPUS"
fi
rm -rf "$UPSTREAM"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One libFuzzer run; a crash stops it. A crash that the triage
# (scripts/fuzz_triage.py) finds inside Debian's MLIR parser, with no attnres
# frame on the stack, is not an attnres finding: it is reported and kept in
# crashes/upstream/, and the run goes on with the next seed for the inputs
# and time left (at most 4 such restarts). Any other crash fails the run.
total=0
attempt=0
start=$SECONDS
while :; do
  EXTRA=()
  [ -z "$SEED" ] || EXTRA+=(-seed=$((SEED + attempt)))
  [ -z "$RUNS" ] || EXTRA+=(-runs=$((RUNS - total)))
  left=$((TIME - (SECONDS - start)))
  [ $left -gt 0 ] || left=1
  set +e
  "$FUZZ" "$CORPUS" "$SEEDS" -max_total_time="$left" -timeout=25 -rss_limit_mb=4096 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$CRASHES/" \
    -dict="$ROOT/tools/attnres-fuzz/mlir.dict" "${EXTRA[@]}" 2>&1 | tee "$LOG" | \
    grep -Ev '^#[0-9]+\s+(NEW|REDUCE|pulse)'
  rc=${PIPESTATUS[0]}
  set -e
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$LOG" | grep -Eo '[0-9]+$' | tail -1)
  total=$((total + ${execs:-0}))
  label=random
  [ -z "$SEED" ] || label=$((SEED + attempt))
  echo "fuzz.sh: ${execs:-?} executions (seed $label, exit status $rc)"
  [ "$rc" != 0 ] || break
  found=()
  for f in "$CRASHES"/*; do
    [ -f "$f" ] || continue
    found+=("$f")
    echo "fuzz.sh: crash input $f (replay: $FUZZ $f; minimize: $FUZZ -minimize_crash=1 -runs=2000 $f)"
  done
  if [ ${#found[@]} -eq 0 ] || ! /usr/bin/python3 "$ROOT/scripts/fuzz_triage.py" "$FUZZ" "${found[@]}"; then
    echo "fuzz.sh: ${total} executions in all; an attnres finding (above)"
    exit 1
  fi
  mkdir -p "$UPSTREAM"
  mv "${found[@]}" "$UPSTREAM/"
  echo "fuzz.sh: a crash inside Debian's MLIR parser, not in attnres code (kept in $UPSTREAM):" \
    "add its input class to tools/attnres-fuzz/UpstreamParserBugs.cpp and test/Fuzz/README.md"
  attempt=$((attempt + 1))
  if [ $attempt -gt 4 ] || [ $((SECONDS - start)) -ge "$TIME" ] ||
     { [ -n "$RUNS" ] && [ $total -ge "$RUNS" ]; }; then
    break
  fi
done
nup=0
[ ! -d "$UPSTREAM" ] || nup=$(find "$UPSTREAM" -type f | wc -l)
echo "fuzz.sh: ${total} executions in all (seed ${SEED:-random}, runs ${RUNS:-unbounded}, at most ${TIME}s);" \
  "${nup} upstream parser crash(es), no attnres finding"
