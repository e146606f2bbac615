#!/usr/bin/env bash
# block_score_grad A/B on the GPU machine: the kernels of .device/kc_grad
# (this checkout's compiler) against .device/kc_old (an earlier compiler's
# sgrad_* kernels, same shapes), same run, same card; then compute-sanitizer
# memcheck and racecheck on the small sgrad shapes of .device/kc_grad.
# Prepare here:
#   KC_SET=grad gen.py build/bin/attnres-opt .device/kc_grad
#   KC_SET=grad gen.py OLD/bin/attnres-opt .device/kc_old   (sgrad_* suffice)
# Logs in ${OUT}/${KC_TAG}_sgrad_*.
set -uo pipefail
KC_TAG=${KC_TAG:-run24}
export PYTHONPATH=$PWD/python:$PWD PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } > $OUT/${KC_TAG}_sgrad_env.txt 2>&1
mkdir -p /tmp/kc_new /tmp/kc_old
OUT=/tmp/kc_new KC_REPS=${KC_REPS:-20} timeout ${KC_CHECK_TIMEOUT:-150} python3 -m bench.kernels_check.check .device/kc_grad sgrad > $OUT/${KC_TAG}_sgrad_new.log 2>&1
echo "check exit $?" >> $OUT/${KC_TAG}_sgrad_new.log
cp /tmp/kc_new/results.json $OUT/${KC_TAG}_sgrad_new.json 2>/dev/null
OUT=/tmp/kc_old KC_REPS=${KC_REPS:-20} timeout ${KC_CHECK_TIMEOUT:-150} python3 -m bench.kernels_check.check .device/kc_old sgrad_bf16_n9_s8_d4096 sgrad_bf16_n5_s6_d4096 sgrad_bf16_n9_s8_d2048 sgrad_bf16_n9_s8_d7168 > $OUT/${KC_TAG}_sgrad_old.log 2>&1
echo "check exit $?" >> $OUT/${KC_TAG}_sgrad_old.log
SEL="sgrad_f32_n2_s3_d13_t7 sgrad_bf16_n5_s6_d100_t901_acc sgrad_f16_n2_s3_d4100_t5 sgrad_bf16_n9_s8_d4096_t200_acc sgrad_f32_n1_s1_d64_t40_acc sgrad_bf16_n4_s8_d100_t6 sgrad_f32_n9_s8_d7168_t17_acc"
export PYTORCH_NO_CUDA_MEMORY_CACHING=1; mkdir -p /tmp/san
# racecheck is slower: in run 24 it got through four of the seven entries in 40 s;
# it takes the small ones (T <= 901 tokens, D <= 4100).
SEL_RACE="sgrad_f32_n2_s3_d13_t7 sgrad_bf16_n5_s6_d100_t901_acc sgrad_f16_n2_s3_d4100_t5 sgrad_f32_n1_s1_d64_t40_acc sgrad_bf16_n4_s8_d100_t6"
for tool in memcheck racecheck; do
  extra="--report-api-errors no"; sel=$SEL
  [ $tool = memcheck ] && extra="$extra --leak-check no"
  [ $tool = racecheck ] && sel=$SEL_RACE
  OUT=/tmp/san timeout ${KC_SAN_TIMEOUT:-60} compute-sanitizer --tool $tool $extra --error-exitcode 3 --print-limit 20 \
    python3 -m bench.kernels_check.check .device/kc_grad $sel > $OUT/${KC_TAG}_sgrad_sanitize_$tool.txt 2>&1
  echo "== $tool exit status $?" >> $OUT/${KC_TAG}_sgrad_sanitize_$tool.txt
done
grep -E "sgrad|copy" $OUT/${KC_TAG}_sgrad_new.log $OUT/${KC_TAG}_sgrad_old.log | sed 's/^.*run[0-9]*_//'
grep -E "ERROR SUMMARY|RACECHECK SUMMARY|exit status" $OUT/${KC_TAG}_sgrad_sanitize_*.txt
