#!/usr/bin/env bash
# The smoothing page's measurements: the two smoothing-trained U-Nets (seeds 0 and 2) beside the shipped U-Net,
# on the real cases, the held-out synthetic gliomas, the smoothness probe, and prepared synthetic raw heads.
# About 25 min on 2 idle cores of an AMD EPYC. Run after
#   EMA=0.998 SMOOTH=0.5 bash docs/results/bf16-training/train.sh fp32 0 2
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
here=docs/results/smoothing
s0=out/prec/unet-fp32-ema0.998-smooth0.5-s0.safetensors
s2=out/prec/unet-fp32-ema0.998-smooth0.5-s2.safetensors
shipped=resources/models/glioma-unet.safetensors
models=(--model "$s0" --model "$s2" --model "$shipped")
tumorseg evaluate ../shared/real "${models[@]}" --threads 2 --json "$here/real.json" --overwrite
tumorseg evaluate --synthetic glioma --seeds 10000:10020 "${models[@]}" --threads 2 --json "$here/synth.json" --overwrite
python scripts/smoothness_probe.py --model shipped --model "$s0" --model "$s2" --synthetic glioma:10000:10005 \
  --real ../shared/real/TCGA-DU-7294 --json "$here/probe.json"
heads=glioma:10000,glioma:10001,glioma:10002,glioma:10005,glioma:10006
tumorseg bench-prepare --synthetic "$heads" --no-real --threads 2 --model "$s0" --output "$here/prepare-s0.json" --overwrite
tumorseg bench-prepare --synthetic "$heads" --no-real --threads 2 --model "$shipped" --output "$here/prepare-shipped.json" \
  --overwrite
