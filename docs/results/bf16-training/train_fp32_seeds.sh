#!/usr/bin/env bash
# The shipped U-Net recipe in float32, seeds 2 and 3, side by side (1 thread each): the recipe's seed spread.
set -eu
cd "$(dirname "$0")/../../.."
mkdir -p out/prec
. .venv/bin/activate
common=(--arch unet --base-width 16 --depth 4 --context 1 --kernels 4 --domain glioma --synthetic-seeds 0:240
        --val-seeds 9000:9004 --val-cases 2 --steps 2500 --batch 8 --crop 128 --lr 0.002 --epoch-steps 100
        --tumour-slices 14 --empty-slices 10 --modality-dropout 0.35 --anneal-fraction 0.1 --tumour-crop-prob 0.5
        --appearance 0.5 --device auto --threads 1 --workers 2 --cache-dir out/train-cache)
for seed in 2 3; do
  /usr/bin/time -v tumorseg train "${common[@]}" --seed $seed --out out/prec/unet-fp32-s$seed.safetensors \
    > out/prec/train32-s$seed.log 2>&1 &
done
wait
echo finished > out/prec/done32
