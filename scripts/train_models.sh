#!/usr/bin/env bash
# Train the shipped models (generator version 2, the default): both architectures on one shared slice cache.
# About 70 min on 2 CPU cores with both runs side by side; each writes its model and card to out/models/.
# The shipped U-Net is this run's U-Net fine-tuned further (2026-12-03): docs/results/flip-distillation/train.sh D 100
# 101, then python scripts/average_weights.py (the commands are in that page and in the U-Net's card).
set -eu
cd "$(dirname "$0")/.."
. .venv/bin/activate
common=(--base-width 16 --depth 4 --context 1 --domain glioma --synthetic-seeds 0:240 --val-seeds 9000:9004
        --steps 2500 --batch 8 --crop 128 --lr 0.002 --seed 0 --epoch-steps 100 --tumour-slices 14 --empty-slices 10
        --tumour-crop-prob 0.5 --appearance 0.5 --modality-dropout 0.35 --device auto --threads 1 --workers 2
        --cache-dir out/train-cache)
tumorseg train --arch unet "${common[@]}" --out out/models/glioma-unet.safetensors > out/train-unet.log 2>&1 &
sleep 5
# The second run waits for the first to write the cache, then reads it.
while ! ls out/train-cache/slices-glioma-*.npz >/dev/null 2>&1 || ! grep -q "slices; training" out/train-unet.log; do sleep 20; done
tumorseg train --arch dycnn --kernels 4 --anneal-fraction 0.1 --float16 "${common[@]}" \
  --out out/models/glioma-dycnn.safetensors > out/train-dycnn.log 2>&1 &
wait
