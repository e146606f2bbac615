#!/usr/bin/env bash
# The one command run on the GPU machine (repository root) for attnres.torch_ops
# and the end-to-end model, with the kernel pack of bench/e2e/build_pack.sh
# carried in .device/e2e/pack:
#   bash bench/e2e/device_run.sh [PACK]
# 1. python/tests/test_torch_ops.py (custom ops vs reference in f32/bf16,
#    side stream, torch.compile, fake tensors; no conftest: no MLIR here)
# 2. run_e2e.py check     (small model: logits vs the pure PyTorch model)
# 3. run_e2e.py overhead  (large model: forward latency vs standard residuals)
# 4. run_e2e.py profile  (large model, compiled two-phase with and without the
#    fused norm: kernel times; ATTNRES_E2E_PROFILE=0 skips it)
# 5. run_e2e.py check --compile (the small model under torch.compile)
# Logs and JSON go to $OUT; keep them with `python3 -m bench.summarize --import
# <files_at> --kind e2e --run N` (bench/results/e2e/runN_*). Step timeouts: ATTNRES_E2E_T_{TESTS,CHECK,OVERHEAD,
# PROFILE,COMPILE} seconds.
set -uo pipefail
. bench/e2e/device_env.sh "${1:-}" /tmp/attnres-e2e-out
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor TRITON_CACHE_DIR=/tmp/inductor/triton
{
  date -u; nvidia-smi
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
  python3 -c 'import pytest; print("pytest", pytest.__version__)'
  ls -la "$PACK"
  cat "$PACK/build_info.txt" 2> /dev/null
} > "$OUT/env.txt" 2>&1
grep -E "H100|H200|torch|pytest" "$OUT/env.txt" | head -5

step() { echo "== $1 ($(date -u +%T))"; }
step tests
if python3 -c 'import pytest' 2> /dev/null; then
  timeout "${ATTNRES_E2E_T_TESTS:-240}" python3 -m pytest -v -s --noconftest -p no:cacheprovider \
    python/tests/test_torch_ops.py python/tests/test_torch_autograd.py > "$OUT/tests.log" 2>&1
else
  timeout "${ATTNRES_E2E_T_TESTS:-240}" python3 python/tests/test_torch_ops.py > "$OUT/tests.log" 2>&1
fi
echo "tests exit status $?"
grep -E "PASS|FAIL|SKIP|passed|failed|rel err|: out|merge |torch.compile|Error|error" "$OUT/tests.log" | cut -c1-200 | tail -40

step "e2e check"
timeout "${ATTNRES_E2E_T_CHECK:-180}" python3 -m bench.e2e.run_e2e check --pack "$PACK" --json "$OUT/e2e_check.json" \
  > "$OUT/e2e_check.log" 2>&1
echo "check exit status $?"; tail -n 18 "$OUT/e2e_check.log"

step overhead
timeout "${ATTNRES_E2E_T_OVERHEAD:-240}" python3 -m bench.e2e.run_e2e overhead --pack "$PACK" --json "$OUT/e2e_overhead.json" \
  ${ATTNRES_E2E_OVERHEAD_FLAGS:-} > "$OUT/e2e_overhead.log" 2>&1
echo "overhead exit status $?"; tail -n 14 "$OUT/e2e_overhead.log"

if [ "${ATTNRES_E2E_PROFILE:-1}" = 1 ]; then
  step profile
  timeout "${ATTNRES_E2E_T_PROFILE:-120}" python3 -m bench.e2e.run_e2e profile --pack "$PACK" \
    --modes compiled-twophase-norm,compiled-twophase --json "$OUT/e2e_profile.json" \
    > "$OUT/e2e_profile.log" 2>&1
  echo "profile exit status $?"; grep -E "GPU kernels|merge|rms|layer_norm|block_score" \
    "$OUT/e2e_profile.log" | cut -c1-200 | head -24
fi

if [ "${ATTNRES_E2E_COMPILE:-1}" = 1 ]; then
  step "e2e check under torch.compile"
  timeout "${ATTNRES_E2E_T_COMPILE:-200}" python3 -m bench.e2e.run_e2e check --pack "$PACK" --compile \
    --json "$OUT/e2e_compile.json" > "$OUT/e2e_compile.log" 2>&1
  echo "compile check exit status $?"; grep -E "torch.compile|e2e check" "$OUT/e2e_compile.log"
fi
step done; ls -la "$OUT"
