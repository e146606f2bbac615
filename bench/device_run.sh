#!/usr/bin/env bash
# The one command run on the GPU machine (from the repository root), with the
# libraries of bench/build.sh carried in .device/bench:
#   bash bench/device_run.sh [smoke|baselines|full] [extra run_bench.py flags]
# small:     bench.small_t only (T = 1..256: ours, attnres.torch_ops with
#            .device/small_t/pack, else .device/e2e/pack, when carried, Liger-Kernel with .device/peers
#            when carried, torch.compile)
# smoke:     runtime smoke test + sanitizer
# baselines: smoke + copy bandwidth + eager/torch.compile (no attnres kernels)
# full:      smoke + sanitizer + sweep + kernels + baselines
# ATTNRES_SANITIZE=0 skips the sanitizer, ATTNRES_PROFILE=0 the ncu profile.
# Logs and results go to $OUT (at most 8 files); keep them with
#   python3 -m bench.summarize --import <files_at> --kind kernels --run N
# (bench/results/kernels/runN_*, summary regenerated). The torch.compile cache
# is restored from .device/inductor_cache.tgz when carried, and saved back.
set -uo pipefail
MODE=${1:-full}
shift || true
OUT=${OUT:-/tmp/attnres-out}
mkdir -p "$OUT"
LIB=.device/bench
export PYTHONUNBUFFERED=1
# bench/ and the attnres package (python/; no MLIR is needed here) as packages.
export PYTHONPATH=$PWD/python:$PWD${PYTHONPATH:+:$PYTHONPATH}
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor TRITON_CACHE_DIR=/tmp/inductor/triton
[ -f .device/inductor_cache.tgz ] && tar xzf .device/inductor_cache.tgz -C /tmp
{
  date -u; nvidia-smi; ldd --version | head -1
  python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'
  ls -la $LIB
} > "$OUT/env.txt" 2>&1
head -n 30 "$OUT/env.txt" | grep -E "H100|H200|Driver|ldd|torch" || true

if [ "$MODE" = small ]; then
  echo "== small token counts"
  extra=""
  # The small-T pack (bench/e2e/build_pack.sh .device/small_t/pack
  # bench.shapes:small_t_pack_configs) has every small-T shape; the e2e pack
  # only the e2e models' (its other cells read "fail").
  if [ -d .device/small_t/pack ]; then extra="$extra --pack .device/small_t/pack"
  elif [ -d .device/e2e/pack ]; then extra="$extra --pack .device/e2e/pack"; fi
  # The peer's package (never committed: carried in .device/peers).
  [ -d .device/peers/liger_kernel ] && extra="$extra --liger" && export PYTHONPATH=$PYTHONPATH:$PWD/.device/peers
  python3 -m bench.small_t --lib-dir $LIB $extra --json "$OUT/small_t.json" \
    --markdown "$OUT/small_t.md" "$@" > "$OUT/small_t.log" 2>&1
  echo "small_t exit status $?"
  tail -n 60 "$OUT/small_t.log"
  [ -d /tmp/inductor ] && tar czf "$OUT/inductor_cache_small.tgz" -C /tmp inductor 2>/dev/null
  exit 0
fi

echo "== smoke"
timeout 120 python3 -m bench.smoke_runtime $LIB > "$OUT/smoke.log" 2>&1
echo "smoke exit status $?"; grep -E "FAIL|smoke:|us/call|device:" "$OUT/smoke.log"

if [ "${ATTNRES_SANITIZE:-1}" = 1 ]; then
  echo "== sanitizer"
  timeout 240 bash bench/sanitize.sh $LIB "$OUT" > "$OUT/sanitize_summary.txt" 2>&1
  echo "sanitizer exit status $?"; tail -20 "$OUT/sanitize_summary.txt"
  # One returned file: the summary, then both full sanitizer outputs.
  { cat "$OUT/sanitize_summary.txt"
    for t in memcheck racecheck; do echo "=== $t"; tail -c 200000 "$OUT/sanitize_$t.txt"; done
  } > "$OUT/sanitize.txt" 2>/dev/null
  rm -f "$OUT"/sanitize_memcheck.txt "$OUT"/sanitize_racecheck.txt "$OUT/sanitize_summary.txt"
fi

if [ "$MODE" = full ] && command -v ncu > /dev/null && [ "${ATTNRES_PROFILE:-1}" = 1 ]; then
  echo "== ncu"
  timeout 120 ncu --kernel-name regex:"aggregate|block_score" --launch-count 3 \
    --section SpeedOfLight --section Occupancy --section MemoryWorkloadAnalysis \
    --section LaunchStats python3 -m bench.profile_run $LIB > "$OUT/ncu.txt" 2>&1
  echo "ncu exit status $?"
  grep -E "^  [a-z_]+.*\(|DRAM Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Duration|Registers Per|Block Size|Waves Per SM" "$OUT/ncu.txt" | head -40
fi

echo "== bench ($MODE)"
flags=""
[ "$MODE" = baselines ] && flags="--baselines-only"
[ "$MODE" = smoke ] && exit 0
# Liger-Kernel's attn_res beside ours when its package is carried in .device/peers.
if [ -d .device/peers/liger_kernel ]; then
  flags="$flags --liger"; export PYTHONPATH=$PYTHONPATH:$PWD/.device/peers
fi
python3 -m bench.run_bench --lib-dir $LIB --json "$OUT/bench.json" --markdown "$OUT/bench.md" \
  $flags "$@" > "$OUT/bench.log" 2>&1
echo "bench exit status $?"
tail -n 40 "$OUT/bench.log"
if [ -d /tmp/inductor ]; then
  tar czf "$OUT/inductor_cache.tgz" -C /tmp inductor 2>/dev/null
  size=$(stat -c %s "$OUT/inductor_cache.tgz")
  [ "$size" -gt 16000000 ] && rm -f "$OUT/inductor_cache.tgz" && echo "inductor cache too large ($size B), not returned"
fi
ls -la "$OUT"
