#!/usr/bin/env bash
# The pending device measurements (bench/NOTES.md "Run 34 (pending)" items 1,
# 2, 3 and 5), in priority order, as one call on the GPU machine (about 450 s
# on an H100). Each step has its own timeout and the logs are packed into
# $OUT/plan.tgz after each, so a call cut short still returns what ran.
#
# Build the inputs on the build machine first (about 6 minutes):
#   PYTHONPATH=python GRAD_VARIANTS="" KC_SET=grad python3 bench/kernels_check/gen.py build/bin/attnres-opt .device/kc_grad
#   BS_VARIANTS="tensor-cores=0 queries-per-cta=1;tensor-cores=0" BS_SHAPES="9,8,4096;9,6,7168" KC_SET=fwd \
#     PYTHONPATH=python python3 bench/kernels_check/gen.py build/bin/attnres-opt .device/kc_bs
#   bash bench/e2e/build_pack.sh
#   Liger-Kernel's src/liger_kernel in .device/peers (bench/NOTES.md run 27)
# and carry .device/{kc_grad,kc_bs,e2e,peers}.
set -uo pipefail
R=/tmp/plan; mkdir -p $R
export PYTHONPATH=$PWD/python:$PWD:$PWD/.device/peers PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c 'import torch; print("torch", torch.__version__)'; cat .device/peers/SOURCE
  cat .device/e2e/pack/build_info.txt; git log -1 --oneline; } > $R/env.txt 2>&1
head -3 $R/env.txt
pack() { tar -czf $OUT/plan.tgz -C $R .; }

echo "== 1. GPU tests through the packs $(date -u +%T)"
timeout 70 python3 -m pytest -q --noconftest -p no:cacheprovider python/tests/test_torch_ops.py \
  > $R/tests_torch_ops.log 2>&1; echo "exit $?" >> $R/tests_torch_ops.log; tail -2 $R/tests_torch_ops.log
timeout 60 python3 -m pytest -q --noconftest -p no:cacheprovider python/tests/test_torch_autograd.py -k gpu \
  > $R/tests_autograd.log 2>&1; echo "exit $?" >> $R/tests_autograd.log; tail -2 $R/tests_autograd.log; pack

echo "== 2. aggregate_grad: rows in shared memory (default) against re-read, fwd + bwd $(date -u +%T)"
KC_REPS=10 OUT=$R timeout 120 python3 -m bench.kernels_check.check .device/kc_grad ^grad_ ^stats_bf16_n \
  > $R/check_agg.log 2>&1; echo "exit $?" >> $R/check_agg.log
tail -2 $R/check_agg.log; grep -E "^grad_bf16_n(9|17|10)_d(4096|7168|2048)" $R/check_agg.log | cut -c1-150
FWDBWD_VARIANTS=reread OUT=$R timeout 130 python3 -m bench.kernels_check.fwdbwd .device/kc_grad --liger --compile \
  > $R/fwdbwd.log 2>&1; echo "fwdbwd exit $?" >> $R/fwdbwd.log
grep -E "^n=|attnres|liger |compile |vs " $R/fwdbwd.log; pack

echo "== 3. forward overhead of the 32-layer model, rotated order, and its profile $(date -u +%T)"
timeout 100 python3 -m bench.e2e.run_e2e overhead --pack .device/e2e/pack --rounds 5 --json $R/e2e_overhead.json \
  > $R/e2e_overhead.log 2>&1; echo "exit $?" >> $R/e2e_overhead.log
grep -vE "^warm" $R/e2e_overhead.log | tail -12; pack

echo "== 5. where score-small-tokens should switch $(date -u +%T)"
timeout 25 python3 -m bench.kernels_check.latency .device/kc_bs bs_bf16_n9_s8_d4096 bs_bf16_n9_s8_d4096_old_g1 \
  bs_bf16_n9_s6_d7168 bs_bf16_n9_s6_d7168_old_g1 --tokens 8,16,24,32,40,48,64 > $R/latency.log 2>&1
echo "exit $?" >> $R/latency.log; tail -12 $R/latency.log
echo "== end $(date -u +%T)"
pack
