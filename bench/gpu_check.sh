#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): one table, at most 8 minutes, nothing from the hub.
#   bench/gpu_check.sh                 # on a lent H100/H200
#   bench/gpu_check.sh --cpu --tiny    # smoke test on CPU (tests/test_gpu_check.py runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export COTDISTILL_HOME="${COTDISTILL_HOME:-$(mktemp -d)}"
exec timeout 480 "$PY" bench/gpu_check.py "$@"
