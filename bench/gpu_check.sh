#!/usr/bin/env bash
# One-GPU check in at most 8 minutes: gpu-marked tests, 13B-width DiT block stack on eager / torch.compile /
# TensorRT (with a LoRA sync in between), r=64 LoRA sync on the 13B shapes, one tiny Edit-GRPO step; one table.
# What each row means: bench/gpu_check.py's docstring. Exit: 0 all ok, 1 a row failed, 2 no GPU, 124 over 8 min.
#
# Run (repository root or anywhere): bash bench/gpu_check.sh [--skip-tests] [--budget-s 450]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
if [ ! -x "$PY" ]; then
  echo "gpu_check: $PY not found; run 'make install' first (or set PY=/path/to/python)" >&2
  exit 2
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi is missing or fails); this check needs one CUDA GPU" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-$(mktemp -d -t viva_inductor_XXXXXX)}"
# The Python side stops starting sections after --budget-s (450 s by default) and prints each row as it goes, so
# a run cut at 8 minutes still shows what it measured.
timeout --signal=INT --kill-after=20 480 "$PY" bench/gpu_check.py "$@"
