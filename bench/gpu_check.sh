#!/usr/bin/env bash
# Training throughput and MFU of a Phi-3-mini-shaped model (random weights) under the
# phi3_cocktail recipe's settings (bf16, sequence 4096, micro-batch 1, gradient checkpointing,
# fused AdamW; flash-attention 2 if the flash_attn package is importable, else PyTorch sdpa),
# on one GPU. Needs only PyTorch + transformers: no network, no Axolotl, no extra wheels.
#
#   bash bench/gpu_check.sh                  # on the GPU machine; < 8 minutes on one H200
#   GPU_CHECK_TINY=1 bash bench/gpu_check.sh # a tiny shape on CPU, to check the script runs
#
# Figures go to $OUT/gpu_check.json when $OUT is set (the device runner collects it), else to
# bench/results/gpu_check.json; a log goes next to it. Knobs: GPU_CHECK_BUDGET_S (default 420,
# the whole measurement stops there), GPU_CHECK_STEPS, PEAK_TFLOPS (override the peak table).
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir="${OUT:-bench/results}"
mkdir -p "$out_dir"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]] && .venv/bin/python -c 'import torch, transformers' 2>/dev/null; then
    PY=.venv/bin/python
  else
    PY=python3
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
# Hard stop well inside 8 minutes even if something hangs (the script's own budget is 420 s).
timeout --signal=TERM --kill-after=15 470 \
  "$PY" bench/gpu_train_check.py --out "$out_dir/gpu_check.json" 2>&1 | tee "$out_dir/gpu_check.log"
exit "${PIPESTATUS[0]}"
