#!/usr/bin/env bash
# Builds, on the build machine, the kernel pack that bench/e2e/device_run.sh
# and python/tests/test_torch_ops.py use on the GPU machine:
#   bash bench/e2e/build_pack.sh [OUT_DIR] [MODULE:FUNCTION]
# (default .device/e2e/pack and bench.e2e.model:pack_configs). The small-T pack
# of `bench/device_run.sh small` is
#   bash bench/e2e/build_pack.sh .device/small_t/pack bench.shapes:small_t_pack_configs
# (bf16 D=4096 and D=7168 models whose kernels cover bench.shapes' SMALL_T shapes).
# The default configs are the models' (bench/e2e/model.py pack_configs()): bf16 D=896
# (the small model: 24 sublayers, blocks of 3), f32 D=896 (the same in f32:
# tests and the f32 end-to-end check), bf16 D=4096 (the large model: 64
# sublayers, blocks of 8); fatbins for the compiler's default chip
# (attnres.default_nvvm_target()). Each config also gets the merges with the
# sublayers' RMSNorm fused (the models' norm epsilon: attnres.merge_norm, the
# *-twophase-norm modes). ATTNRES_PACK_GPU_OPTIONS passes convert-attnres-to-gpu
# options (space-separated name=value pairs) to every library, e.g. the
# session-21 candidates:
#   ATTNRES_PACK_GPU_OPTIONS="split-query-gains=1 score-mma-sweep=1 score-grad-mma-sweep=1" \
#     bash bench/e2e/build_pack.sh .device/e2e/pack_ms
# Carry OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${ATTNRES_BUILD_DIR:-build}
OUT_DIR=${1:-.device/e2e/pack}
CONFIGS=${2:-bench.e2e.model:pack_configs}
exclude=$(git rev-parse --git-path info/exclude)
grep -qx '/.device/' "$exclude" 2> /dev/null || echo '/.device/' >> "$exclude"
rm -rf "$OUT_DIR"
export PYTHONPATH=$BUILD_DIR/python_packages:$PWD
# The model module imports torch: Debian's python3 (the one the build is
# configured with), not whatever python3 comes first on PATH.
PYTHON=${PYTHON:-/usr/bin/python3}
configs=()
for c in $("$PYTHON" -c "import importlib; m, f = '$CONFIGS'.split(':'); print(' '.join(getattr(importlib.import_module(m), f)()))"); do
  configs+=(--config "$c")
done
gpu_options=()
[ -z "${ATTNRES_PACK_GPU_OPTIONS:-}" ] || gpu_options=(--gpu-options "$ATTNRES_PACK_GPU_OPTIONS")
"$PYTHON" -m attnres.kernel_pack -o "$OUT_DIR" --format fatbin "${configs[@]}" ${gpu_options[@]+"${gpu_options[@]}"}
# Which compiler built the kernels: the commit, and uncommitted changes to the
# compiler's sources (attnres-opt in BUILD_DIR is built from the working tree).
{
  echo "built $(date -u +%FT%TZ) with $BUILD_DIR/bin/attnres-opt"
  echo "HEAD $(git rev-parse --short HEAD) $(git log -1 --format=%s | cut -c1-100)"
  git status --short -- lib include tools | sed 's/^/uncommitted: /'
  [ -z "${ATTNRES_BUILD_NOTE:-}" ] || echo "note: $ATTNRES_BUILD_NOTE"
  [ -z "${ATTNRES_PACK_GPU_OPTIONS:-}" ] || echo "gpu options: $ATTNRES_PACK_GPU_OPTIONS"
} > "$OUT_DIR/build_info.txt"
