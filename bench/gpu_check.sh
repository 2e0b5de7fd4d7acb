#!/usr/bin/env bash
# One call on a lent GPU machine (the device tool): install the carried wheels, run every GPU check.
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=540)
# Preparing .whl here is described in docs/gpu-check.md.
set -uo pipefail
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
export PYTHONUNBUFFERED=1
python3 bench/gpu_check.py --out "${OUT:-gpu-check-out}" 2>&1 | tee "${OUT:-.}/gpu_check.log"
