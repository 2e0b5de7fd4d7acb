#!/usr/bin/env bash
# The one prepared call on a GPU machine, under 8 minutes on one H100/H200: copy the working tree
# with .whl/ there and run `bash bench/gpu_check.sh` (results in $OUT or gpu-check-out/).
# Nothing is downloaded there: the wheels the image lacks (DeepSpeed built here, transformers,
# datasets, ...) travel in .whl/ (bash bench/gpu_wheels.sh; docs/gpu-check.md).
#   bash bench/gpu_check.sh --smoke     # the same plumbing on a CPU (make test)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--smoke" ]; then
  PY=python3
  [ -x .venv/bin/python ] && PY=.venv/bin/python
  export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""
  out="${OUT:-$(mktemp -d)}"
  exec "$PY" bench/gpu_check.py --smoke --out "$out" --work "${CPT_GPU_CHECK_WORK:-$(mktemp -d)}"
fi
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
export PYTHONUNBUFFERED=1
mkdir -p "${OUT:-gpu-check-out}"
python3 bench/gpu_check.py --out "${OUT:-gpu-check-out}" 2>&1 | tee "${OUT:-gpu-check-out}/gpu_check.log"
exit "${PIPESTATUS[0]}"
