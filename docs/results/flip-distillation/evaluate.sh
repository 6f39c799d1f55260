#!/usr/bin/env bash
# The flip-distillation page's measurements, after train.sh D 100 101 and train.sh F 100: the real cases, the
# held-out glioma and metastasis phantoms, one pass (the CPU default), beside the shipped U-Net; D flip-averaged.
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
here=docs/results/flip-distillation
d0=out/distil/unet-D-s100.safetensors
d1=out/distil/unet-D-s101.safetensors
f0=out/distil/unet-F-s100.safetensors
shipped=resources/models/glioma-unet.safetensors
models=(--model "$d0" --model "$d1")
if [ -f "$f0" ]; then models+=(--model "$f0"); fi
models+=(--model "$shipped")
tumorseg evaluate ../shared/real "${models[@]}" --mirror none --threads 2 --json "$here/real.json" \
  --figures out/distil-figures --overwrite
tumorseg evaluate ../shared/real --model "$d0" --mirror all --threads 2 --json "$here/real-mirror-all.json" --overwrite
tumorseg evaluate --synthetic glioma --seeds 10000:10020 "${models[@]}" --mirror none --threads 2 \
  --json "$here/synth-glioma.json" --overwrite
tumorseg evaluate --synthetic metastasis --seeds 20000:20020 --model "$d0" --model "$shipped" --mirror none \
  --threads 2 --json "$here/synth-metastasis.json" --overwrite
