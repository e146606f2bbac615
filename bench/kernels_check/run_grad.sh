#!/usr/bin/env bash
# The backward kernels on the GPU machine (aggregate_stats, aggregate_grad,
# merge_grad, block_score_grad): correctness sweep, determinism, wrong-formula controls and
# benchmark (kernels_check, copy bandwidth in the same run), then
# compute-sanitizer memcheck and racecheck on the small shapes.
# Prepare here (needs attnres-opt; about 1 minute):
#   PYTHONPATH=python KC_SET=grad python3 bench/kernels_check/gen.py build/bin/attnres-opt .device/kc_grad
# then run from the repository root with carry [".device/kc_grad", ".device/peers"]
# (.device/peers/liger_kernel: Liger-Kernel's src/liger_kernel, optional):
#   bash bench/kernels_check/run_grad.sh            (about 5 minutes at most)
# Logs in $OUT: ${KC_TAG}_grad_{env.txt,check.log,check.json,fwdbwd.log,fwdbwd.json,sanitize_memcheck.txt,sanitize_racecheck.txt}.
set -uo pipefail
KC_TAG=${KC_TAG:-run23}
export PYTHONPATH=$PWD/python:$PWD PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; compute-sanitizer --version | tail -1; python3 -c 'import torch; print("torch", torch.__version__)'; } > $OUT/${KC_TAG}_grad_env.txt 2>&1
KC_REPS=${KC_REPS:-20} timeout ${KC_CHECK_TIMEOUT:-290} python3 -m bench.kernels_check.check .device/kc_grad > $OUT/${KC_TAG}_grad_check.log 2>&1
echo "check exit $?" >> $OUT/${KC_TAG}_grad_check.log
mv $OUT/results.json $OUT/${KC_TAG}_grad_check.json 2>/dev/null
# Forward + backward against Liger-Kernel (when carried as .device/peers),
# eager PyTorch and torch.compile, same inputs, same run.
peer=""; [ -d .device/peers/liger_kernel ] && peer="--liger" && export PYTHONPATH=$PYTHONPATH:$PWD/.device/peers
timeout ${KC_FWDBWD_TIMEOUT:-180} python3 -m bench.kernels_check.fwdbwd .device/kc_grad $peer --compile > $OUT/${KC_TAG}_grad_fwdbwd.log 2>&1
echo "fwdbwd exit $?" >> $OUT/${KC_TAG}_grad_fwdbwd.log
mv $OUT/fwdbwd.json $OUT/${KC_TAG}_grad_fwdbwd.json 2>/dev/null
SEL="sgrad_f32_n2_s3_d13_t7 sgrad_bf16_n5_s6_d100_t901_acc sgrad_f16_n2_s3_d4100_t5 sgrad_bf16_n9_s8_d4096_t200_acc n1_d37_t50 n2_d37_t333 n5_d37_t77 n11_d7168_t64 n2_d13_t4 n9_d1000_t3 n1_d4096_t100 mgrad_f32_d37_t1000 mgrad_bf16_d4096_t300_n mgrad_f16_d7168_t129_p mgrad_bf16_d100_t2001_p_n t1000_c37"
export PYTORCH_NO_CUDA_MEMORY_CACHING=1; mkdir -p /tmp/san
# racecheck is slower: the small shapes only. --report-api-errors no: the
# cuda-python bindings probe driver entry points that do not exist
# (cuGetProcAddress errors, not kernel errors).
SEL_RACE="sgrad_f32_n2_s3_d13_t7 sgrad_bf16_n5_s6_d100_t901_acc sgrad_f16_n2_s3_d4100_t5 n2_d37_t333 n5_d37_t77 n2_d13_t4 n9_d1000_t3 mgrad_f32_d37_t1000 mgrad_bf16_d100_t2001_p_n"
for tool in memcheck racecheck; do
  extra="--report-api-errors no"; sel=$SEL
  [ $tool = memcheck ] && extra="$extra --leak-check no"
  [ $tool = racecheck ] && sel=$SEL_RACE
  OUT=/tmp/san timeout ${KC_SAN_TIMEOUT:-85} compute-sanitizer --tool $tool $extra --error-exitcode 3 --print-limit 20 \
    python3 -m bench.kernels_check.check .device/kc_grad $sel > $OUT/${KC_TAG}_grad_sanitize_$tool.txt 2>&1
  echo "== $tool exit status $?" >> $OUT/${KC_TAG}_grad_sanitize_$tool.txt
done
mkdir -p /tmp/san
tail -3 $OUT/${KC_TAG}_grad_check.log; cat $OUT/${KC_TAG}_grad_fwdbwd.log; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|exit status" $OUT/${KC_TAG}_grad_sanitize_*.txt
