#!/usr/bin/env bash
# The pending device measurements (bench/NOTES.md "Run 32 (pending)"), in
# priority order, as one call on the GPU machine (about 540 s). Each step has
# its own timeout and the logs are packed into $OUT/plan.tgz after each, so a
# call cut short still returns what ran.
#
# Build the inputs on the build machine first (about 6 minutes):
#   PYTHONPATH=python GRAD_VARIANTS="" KC_SET=grad python3 bench/kernels_check/gen.py build/bin/attnres-opt .device/kc_grad
#   BS_VARIANTS="tensor-cores=0 queries-per-cta=1;tensor-cores=0" BS_SHAPES="9,8,4096;9,6,7168" KC_SET=fwd \
#     PYTHONPATH=python python3 bench/kernels_check/gen.py build/bin/attnres-opt .device/kc_bs
#   bash bench/e2e/build_pack.sh
#   bash bench/e2e/build_pack.sh .device/small_t/pack bench.shapes:small_t_pack_configs
#   Liger-Kernel's src/liger_kernel in .device/peers (bench/NOTES.md run 27)
# and carry .device/{kc_grad,kc_bs,e2e,small_t,peers}.
set -uo pipefail
R=/tmp/plan; mkdir -p $R
export PYTHONPATH=$PWD/python:$PWD:$PWD/.device/peers PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c 'import torch; print("torch", torch.__version__)'; cat .device/peers/SOURCE
  cat .device/e2e/pack/build_info.txt; git log -1 --oneline; } > $R/env.txt 2>&1
head -3 $R/env.txt
pack() { tar -czf $OUT/plan.tgz -C $R .; }

echo "== 1. aggregate_grad, rows in shared memory against re-read $(date -u +%T)"
# Every aggregate_grad entry (the correctness sweep, controls, determinism) and
# the timed `_shared`, `_shared_e16`, `_shared_e16_m2` next to the default.
KC_REPS=10 OUT=$R timeout 150 python3 -m bench.kernels_check.check .device/kc_grad ^grad_ ^stats_bf16_n \
  > $R/check_agg.log 2>&1; echo "exit $?" >> $R/check_agg.log
tail -3 $R/check_agg.log; grep -E "^grad_bf16_n(9|17|10)_d(4096|7168|2048)" $R/check_agg.log | cut -c1-150
mkdir -p /tmp/san; export PYTORCH_NO_CUDA_MEMORY_CACHING=1
SAN="grad_bf16_n6_d100_t1001_acc_shared grad_bf16_n17_d2048_t2000_shared grad_bf16_n20_d4096_t300_acc_shared
     grad_f16_n9_d1000_t3_shared grad_bf16_n13_d7168_t100_shared grad_f16_n7_d4096_t600_acc_shared
     sgrad_bf16_n17_s12_d2048_t300_tc_e32 sgrad_bf16_n3_s40_d64_t50_tc_e32
     sgrad_bf16_n9_s8_d4096_t200_acc_tc_e32 sgrad_bf16_n5_s6_d104_t901_acc_tc_e32"
for tool in memcheck racecheck; do
  extra=""; [ $tool = memcheck ] && extra="--leak-check no"
  OUT=/tmp/san timeout 50 compute-sanitizer --tool $tool --report-api-errors no $extra --error-exitcode 3 \
    --print-limit 20 python3 -m bench.kernels_check.check .device/kc_grad $SAN > $R/$tool.txt 2>&1
  echo "exit $?" >> $R/$tool.txt
done
unset PYTORCH_NO_CUDA_MEMORY_CACHING
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^exit|FAIL" $R/memcheck.txt $R/racecheck.txt | head; pack

echo "== 2. forward + backward with the variants $(date -u +%T)"
FWDBWD_VARIANTS=shared,shared_e16,shared_e16_m2 OUT=$R timeout 130 python3 -m bench.kernels_check.fwdbwd \
  .device/kc_grad --liger --compile > $R/fwdbwd.log 2>&1; echo "fwdbwd exit $?" >> $R/fwdbwd.log
tail -20 $R/fwdbwd.log; pack

echo "== 3. GPU tests through the packs $(date -u +%T)"
timeout 70 python3 -m pytest -q --noconftest -p no:cacheprovider python/tests/test_torch_ops.py \
  > $R/tests_torch_ops.log 2>&1; echo "exit $?" >> $R/tests_torch_ops.log; tail -2 $R/tests_torch_ops.log
timeout 60 python3 -m pytest -q --noconftest -p no:cacheprovider python/tests/test_torch_autograd.py -k gpu \
  > $R/tests_autograd.log 2>&1; echo "exit $?" >> $R/tests_autograd.log; tail -2 $R/tests_autograd.log; pack

echo "== 4. forward overhead of the 32-layer model, rotated order $(date -u +%T)"
timeout 100 python3 -m bench.e2e.run_e2e overhead --pack .device/e2e/pack --rounds 5 --json $R/e2e_overhead.json \
  > $R/e2e_overhead.log 2>&1; echo "exit $?" >> $R/e2e_overhead.log
grep -vE "^warm" $R/e2e_overhead.log | tail -12; pack

echo "== 5. torch_ops host time $(date -u +%T)"
timeout 30 python3 -m bench.host_overhead --pack .device/small_t/pack -k 1000 --json $R/host_overhead.json \
  > $R/host_overhead.log 2>&1; echo "exit $?" >> $R/host_overhead.log
grep -E " us$|exit" $R/host_overhead.log | head -24; pack

echo "== 6. block_score_grad with smaller CTAs (e32) $(date -u +%T)"
KC_REPS=10 OUT=$R timeout 60 python3 -m bench.kernels_check.check .device/kc_grad sgrad_bf16_n9_s8_d4096_tc \
  sgrad_bf16_n5_s6_d4096_tc sgrad_bf16_n9_s8_d7168_tc _tc_e32 _tc_e8 _nol2 > $R/check_sgrad.log 2>&1
echo "exit $?" >> $R/check_sgrad.log; tail -2 $R/check_sgrad.log; grep -E "t16384" $R/check_sgrad.log | cut -c1-150; pack

echo "== 7. where score-small-tokens should switch $(date -u +%T)"
timeout 25 python3 -m bench.kernels_check.latency .device/kc_bs bs_bf16_n9_s8_d4096 bs_bf16_n9_s8_d4096_old_g1 \
  bs_bf16_n9_s6_d7168 bs_bf16_n9_s6_d7168_old_g1 --tokens 8,16,24,32,40,48,64 > $R/latency.log 2>&1
echo "exit $?" >> $R/latency.log; tail -12 $R/latency.log
echo "== end $(date -u +%T)"
pack
