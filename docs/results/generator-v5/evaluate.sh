#!/usr/bin/env bash
# The generator-v5 page's measurements: the two U-Nets trained on version-5 phantoms (seeds 0 and 2) beside the
# shipped U-Net. About 12 min on 2 idle cores of an AMD EPYC. Run after
#   GEN=5 EMA=0.998 SMOOTH=0.5 bash docs/results/bf16-training/train.sh fp32 0 2
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
here=docs/results/generator-v5
v0=out/prec/unet-fp32-v5-ema0.998-smooth0.5-s0.safetensors
v2=out/prec/unet-fp32-v5-ema0.998-smooth0.5-s2.safetensors
shipped=resources/models/glioma-unet.safetensors
tumorseg evaluate ../shared/real --model "$v0" --model "$v2" --model "$shipped" --threads 2 --json "$here/real.json" \
  --figures out/v5-figures --overwrite
tumorseg evaluate --synthetic glioma --seeds 10000:10020 --generator-version 5 --model "$v0" --model "$v2" \
  --model "$shipped" --threads 2 --json "$here/synth-v5.json" --overwrite
tumorseg evaluate --synthetic glioma --seeds 10000:10020 --model "$v0" --model "$v2" --threads 2 \
  --json "$here/synth-v2.json" --overwrite
python scripts/false_positives.py labelled "$v0" "$v2" "$shipped" | tee "$here/false-labelled.txt"
python scripts/false_positives.py real "$v0" "$v2" "$shipped" | tee "$here/false-real.txt"
