# Sourced by bench/e2e/device_*.sh on the GPU machine (repository root):
#   . bench/e2e/device_env.sh PACK DEFAULT_OUT
# sets PACK (the kernel pack, default .device/e2e/pack) and OUT (the `run`
# tool's output folder, else DEFAULT_OUT), and puts the attnres package
# (python/; no MLIR is needed there) and bench/ on PYTHONPATH as packages.
PACK=${1:-.device/e2e/pack}
OUT=${OUT:-$2}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 ATTNRES_KERNEL_PACK=$PACK
export PYTHONPATH=$PWD/python:$PWD${PYTHONPATH:+:$PYTHONPATH}
