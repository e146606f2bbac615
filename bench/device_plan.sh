#!/usr/bin/env bash
# The pending device measurements (bench/NOTES.md "Run 36 (pending)"), in
# priority order, as three calls on the GPU machine:
#   bash bench/device_plan.sh a   the session-21 candidates (split-query-gains,
#       the mma sweeps of block_score_grad and phase 1) timed and checked next
#       to the defaults, their sanitizers; on a card other than an H200 the
#       timing twice (about 500 s)
#   bash bench/device_plan.sh c   block_score_grad with shared rows and
#       persistent CTAs, their sanitizers, aggregate_grad layouts, host
#       overhead (run 35's part a; about 300 s)
#   bash bench/device_plan.sh b   on an H200: the backward checks, fwd+bwd and
#       the forward sweep (about 450 s)
# Logs are packed into $OUT/r36.tgz after each step, so a call cut short still
# returns what ran.
#
# Build the inputs on the build machine first (about 2 minutes):
#   PYTHONPATH=python GRAD_VARIANTS="elements-per-thread=32;elements-per-thread=16;min-ctas-per-sm=2" \
#     GRAD_VARIANT_SHAPES="9,16384,4096,1;17,16384,4096,1;9,65536,2048,1;10,8192,7168,1;9,65536,2048,0;17,16384,4096,0;12,16384,4096,0;13,16384,4096,0" \
#     KC_SET=grad python3 bench/kernels_check/gen.py build/bin/attnres-opt .device/kc_acc
#   AGG_VARIANTS="e8p4s1=elements-per-thread=8 prefetch-depth=4 sources-per-step=1;e8p3s2=elements-per-thread=8 prefetch-depth=3 sources-per-step=2;e16p3s1=elements-per-thread=16 prefetch-depth=3 sources-per-step=1;e16p2s2=elements-per-thread=16 prefetch-depth=2 sources-per-step=2;e16p2s1=elements-per-thread=16 prefetch-depth=2 sources-per-step=1;e32p2s2=elements-per-thread=32 prefetch-depth=2 sources-per-step=2" \
#     BS_VARIANTS="tensor-cores=0;min-ctas-per-sm=2;l2-prefetch=0;prefetch-depth=3;prefetch-depth=6" \
#     BS_SHAPES="9,8,4096;5,6,2048;9,6,7168;9,8,7168;5,6,7168" KC_SET=fwd \
#     PYTHONPATH=python python3 bench/kernels_check/gen.py build/bin/attnres-opt .device/kc_h200
#   the small-T pack in .device/small_t/pack (bench/small_t.py's header) and
#   Liger-Kernel's src/liger_kernel in .device/peers (bench/NOTES.md run 27)
# and carry .device/{kc_acc,kc_h200,peers,small_t}.
set -uo pipefail
export PYTHONPATH=$PWD/python:$PWD:$PWD/.device/peers PYTHONUNBUFFERED=1
R=/tmp/r36; mkdir -p $R; pack() { tar -czf $OUT/r36.tgz -C $R .; }
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$GPU"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; python3 -c 'import torch; print("torch", torch.__version__)'; git log -1 --oneline; } > $R/env.txt 2>&1
SEL='^grad_bf16_n(9|17|10|12|13)_d(4096|2048|7168)(_acc)?(_e16|_e32)?$'
acc() {
for r in $1; do
  KC_REPS=20 OUT=$R timeout 150 python3 -m bench.kernels_check.check .device/kc_acc "$SEL" '^grad_bf16_n1[23]_d4096_m2$' > $R/acc_call$r.log 2>&1
  echo "exit $?" >> $R/acc_call$r.log
  grep -E " ms " $R/acc_call$r.log | awk '{print $1, $(NF-6), $(NF-5), $(NF-2), $(NF-1), $NF}' | sed 's/ of copy//'
  pack
done
}
qs() {
  # The session-21 candidates next to the defaults: block_score_grad with the
  # split (`_tc_qs`...), with the mma sweep (`_tc_ms`, `_tc_ms_e32`...), then
  # phase 1 (`_qs`, `_ms`, `_qs_ms`); one check call each.
  echo "== split-query-gains and the mma sweeps $(date -u +%T)"
  KC_REPS=20 OUT=$R timeout 180 python3 -m bench.kernels_check.check .device/kc_acc _tc_qs _tc_sh_qs _tc_p_qs \
    '^sgrad_bf16_n(9|5)_s(8|6)_d(4096|2048|7168)(_acc)?_tc$' > $R/qs_grad_call$1.log 2>&1
  echo "exit $?" >> $R/qs_grad_call$1.log
  grep -E " ms |BAD|Error|exit" $R/qs_grad_call$1.log | sed 's/  */ /g; s/ of copy//'
  pack
  KC_REPS=20 OUT=$R timeout 180 python3 -m bench.kernels_check.check .device/kc_acc _tc_ms _tc_p_ms \
    > $R/ms_grad_call$1.log 2>&1
  echo "exit $?" >> $R/ms_grad_call$1.log
  grep -E " ms |BAD|Error|exit" $R/ms_grad_call$1.log | sed 's/  */ /g; s/ of copy//'
  pack
  KC_REPS=20 OUT=$R timeout 200 python3 -m bench.kernels_check.check .device/kc_h200 \
    '^bs_bf16_n(5|9)_s(6|8)_d(2048|4096|7168|8192)(_r)?(_qs)?(_ms)?$' '^bs_bf16_.*_t[0-9]+_(qs|ms)$' \
    > $R/qs_fwd_call$1.log 2>&1
  echo "exit $?" >> $R/qs_fwd_call$1.log
  grep -E " ms |BAD|Error|exit" $R/qs_fwd_call$1.log | sed 's/  */ /g; s/ of copy//'
  pack
}
sgrad() {
  echo "== block_score_grad with shared rows, persistent CTAs $(date -u +%T)"
  KC_REPS=20 OUT=$R timeout 240 python3 -m bench.kernels_check.check .device/kc_acc _tc_sh _tc_p_ \
    '^sgrad_bf16_n(9|5)_s(8|6)_d(4096|2048|7168)(_acc)?_tc$' > $R/sgrad_sh_call$1.log 2>&1
  echo "exit $?" >> $R/sgrad_sh_call$1.log
  grep -E " ms |BAD|Error|exit" $R/sgrad_sh_call$1.log | sed 's/  */ /g; s/ of copy//'
  pack
}
# sanitize TAG DIR ENTRIES...: memcheck and racecheck of check.py on ENTRIES.
sanitize() {
  local tag=$1 dir=$2; shift 2
  for tool in memcheck racecheck; do
    extra="--report-api-errors no"; [ $tool = memcheck ] && extra="$extra --leak-check no"
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 100 compute-sanitizer --tool $tool $extra --error-exitcode 3 \
      --print-limit 10 python3 -m bench.kernels_check.check "$dir" "$@" > $R/${tag}_$tool.log 2>&1
    echo "$tag $tool exit $?"; grep -E "SUMMARY|BAD" $R/${tag}_$tool.log | head -5
  done
  pack
}
case "${1:-a}" in
a)
qs 1
sanitize new_grad .device/kc_acc ^sgrad_bf16_n3_s40_d64_t50_tc_qs ^sgrad_bf16_n5_s6_d104_t901_acc_tc_p_qs \
  ^sgrad_bf16_n17_s12_d2048_t300_tc_ms ^sgrad_bf16_n5_s6_d104_t901_acc_tc_ms ^sgrad_bf16_n4_s8_d4096_t1_tc_ms
sanitize new_fwd .device/kc_h200 ^bs_bf16_n13_s5_d4112_t57_ms ^bs_bf16_n9_s8_d7168_t41_ms \
  ^bs_bf16_n17_s20_d136_t9_ms ^bs_bf16_n3_s10_d200_t77_qs
case "$GPU" in *H200*) ;; *) qs 2;; esac
echo "== part a done $(date -u +%T)"; exit 0;;
c)
sgrad 1
sanitize sgrad .device/kc_acc ^sgrad_bf16_n17_s12_d2048_t300_tc_sh ^sgrad_bf16_n5_s6_d104_t901_acc_tc_sh7 \
  ^sgrad_bf16_n3_s40_d64_t50_tc_sh3 ^sgrad_bf16_n4_s8_d4096_t1_tc_p_m2 ^sgrad_bf16_n3_s40_d64_t50_tc_p_m2
acc 1
echo "== host time of a torch_ops call (single-pass source descriptors) $(date -u +%T)"
timeout 60 python3 -m bench.host_overhead --pack .device/small_t/pack --json $R/host_overhead.json > $R/host_overhead.log 2>&1
grep -E "us$" $R/host_overhead.log | head -24; pack
case "$GPU" in *H200*) ;; *) acc 2; sgrad 2;; esac
echo "== part c done $(date -u +%T)"; exit 0;;
esac
echo "== H200: grad check and fwd+bwd $(date -u +%T)"
KC_REPS=10 OUT=$R timeout 120 python3 -m bench.kernels_check.check .device/kc_acc ^grad_ ^stats_bf16_n > $R/h200_check_agg.log 2>&1
tail -1 $R/h200_check_agg.log
FWDBWD_VARIANTS=reread OUT=$R timeout 130 python3 -m bench.kernels_check.fwdbwd .device/kc_acc --liger --compile > $R/h200_fwdbwd.log 2>&1
grep -E "^n=|attnres|liger |compile |vs " $R/h200_fwdbwd.log; pack
echo "== H200: forward sweep $(date -u +%T)"
KC_REPS=40 OUT=$R timeout 150 python3 -m bench.kernels_check.check .device/kc_h200 > $R/h200_fwd_sweep.log 2>&1
tail -2 $R/h200_fwd_sweep.log; pack
echo "== end $(date -u +%T)"
