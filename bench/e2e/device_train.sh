#!/usr/bin/env bash
# The training benchmark on the GPU machine (repository root), with the kernel
# pack of bench/e2e/build_pack.sh carried in .device/e2e/pack and, when
# carried, Liger-Kernel's package in .device/peers (its src/liger_kernel):
#   bash bench/e2e/device_train.sh [PACK]
# 1. run_e2e.py train: the 32-layer d=4096 model, 8K tokens, bf16, AdamW,
#    every sublayer recomputed in the backward (--checkpoint sublayer)
# 2. run_e2e.py train --layers 12 --checkpoint none: no recomputation (a model
#    whose activations fit), ATTNRES_TRAIN_SECOND=0 skips it
# 3. the GPU autograd test (python/tests/test_torch_autograd.py, -k gpu)
# The `run` tool sends the session's checkout: from another worktree, copy its bench/,
# python/, include/ and .device/{e2e,peers} into an ignored folder of that checkout
# (run 20: .device/train), carry it, and run this script inside it.
# Logs and JSON go to $OUT (bench/results/e2e/runN_train*). Step timeouts:
# ATTNRES_TRAIN_T_{MAIN,SECOND,TESTS} seconds.
set -uo pipefail
. bench/e2e/device_env.sh "${1:-}" /tmp/attnres-train-out
[ -d .device/peers/liger_kernel ] && export PYTHONPATH=$PYTHONPATH:$PWD/.device/peers
export TRITON_CACHE_DIR=/tmp/triton
{
  date -u; nvidia-smi
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
  python3 -c 'import triton; print("triton", triton.__version__)'
  cat "$PACK/build_info.txt" 2> /dev/null
  cat .device/peers/SOURCE 2> /dev/null
} > "$OUT/env.txt" 2>&1
grep -E "H100|H200|torch|triton|liger" "$OUT/env.txt" | head -6

step() { echo "== $1 ($(date -u +%T))"; }
step "train 32 layers, checkpoint per sublayer"
timeout "${ATTNRES_TRAIN_T_MAIN:-300}" python3 -m bench.e2e.run_e2e train --pack "$PACK" \
  --json "$OUT/e2e_train.json" ${ATTNRES_TRAIN_FLAGS:-} > "$OUT/e2e_train.log" 2>&1
echo "train exit status $?"; grep -v "^round" "$OUT/e2e_train.log" | tail -n 20

if [ "${ATTNRES_TRAIN_SECOND:-1}" = 1 ]; then
  step "train 12 layers, no checkpoint"
  timeout "${ATTNRES_TRAIN_T_SECOND:-150}" python3 -m bench.e2e.run_e2e train --pack "$PACK" \
    --layers 12 --checkpoint none --json "$OUT/e2e_train12.json" > "$OUT/e2e_train12.log" 2>&1
  echo "train12 exit status $?"; grep -v "^round" "$OUT/e2e_train12.log" | tail -n 16
fi

if [ "${ATTNRES_TRAIN_TESTS:-1}" = 1 ] && python3 -c 'import pytest' 2> /dev/null; then
  step "GPU autograd test"
  timeout "${ATTNRES_TRAIN_T_TESTS:-90}" python3 -m pytest -q --noconftest -p no:cacheprovider \
    python/tests/test_torch_autograd.py -k gpu > "$OUT/tests_autograd.log" 2>&1
  echo "tests exit status $?"; tail -n 3 "$OUT/tests_autograd.log"
fi
step done; ls -la "$OUT"
