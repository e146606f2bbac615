#!/usr/bin/env bash
# Nsight Compute on single launches of kernels_check kernels (GPU machine,
# repository root, carry [".device/kc_grad"]): one ncu run per "ENTRY:KERNEL"
# pair of PROFILE (entry: a kernels_check manifest name, matched as a
# substring by check.py; kernel: the kernel name, the first launch of it is
# profiled), sections: speed of light, memory workload, occupancy, warp
# state, launch and scheduler statistics. Clocks left alone
# (--clock-control none, as the device README asks).
#   PROFILE="sgrad_bf16_n9_s8_d4096:block_score_grad_bf16_d4096_s8_n9" bash bench/kernels_check/profile.sh
# Logs in $OUT/${KC_TAG}_ncu_<entry>_<kernel>.txt (one per pair: several kernels of one
# entry each get their own).
set -uo pipefail
KC_TAG=${KC_TAG:-run26}
KC_DIR=${KC_DIR:-.device/kc_grad}
export PYTHONPATH=$PWD/python:$PWD PYTHONUNBUFFERED=1 KC_REPS=${KC_REPS:-3}
for pair in ${PROFILE}; do
  entry=${pair%%:*} kernel=${pair#*:}
  log=$OUT/${KC_TAG}_ncu_${entry}_${kernel}.txt
  mkdir -p /tmp/ncu_out
  OUT=/tmp/ncu_out timeout ${KC_NCU_TIMEOUT:-90} ncu --clock-control none \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
    --section WarpStateStats --section LaunchStats --section SchedulerStats \
    -k "regex:^${kernel}\$" -c 1 \
    python3 -m bench.kernels_check.check "$KC_DIR" "$entry" > "$log" 2>&1
  echo "== ncu exit status $?" >> "$log"
  grep -E "Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|L1/TEX Hit|L2 Hit|Eligible Warps|No Eligible|Warp Cycles Per Issued" "$log" | sed "s/^/$entry $kernel: /"
done
