#!/usr/bin/env bash
# The shipped U-Net recipe in bf16 mixed precision, seeds 0 and 1, side by side (1 thread each); writes out/prec/.
set -eu
cd "$(dirname "$0")/../../.."
mkdir -p out/prec
. .venv/bin/activate
common=(--arch unet --base-width 16 --depth 4 --context 1 --kernels 4 --domain glioma --synthetic-seeds 0:240
        --val-seeds 9000:9004 --val-cases 2 --steps 2500 --batch 8 --crop 128 --lr 0.002 --epoch-steps 100
        --tumour-slices 14 --empty-slices 10 --modality-dropout 0.35 --anneal-fraction 0.1 --tumour-crop-prob 0.5
        --appearance 0.5 --device auto --threads 1 --workers 2 --cache-dir out/train-cache --precision bf16)
/usr/bin/time -v tumorseg train "${common[@]}" --seed 0 --out out/prec/unet-bf16-s0.safetensors > out/prec/train-s0.log 2>&1 &
sleep 5
while ! ls out/train-cache/slices-glioma-*.npz >/dev/null 2>&1 || ! grep -q "slices; training" out/prec/train-s0.log; do sleep 20; done
/usr/bin/time -v tumorseg train "${common[@]}" --seed 1 --out out/prec/unet-bf16-s1.safetensors > out/prec/train-s1.log 2>&1 &
wait
echo finished > out/prec/done
