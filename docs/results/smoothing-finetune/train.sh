#!/usr/bin/env bash
# The smoothing-finetune page's trainings: the shipped U-Net (the fine-tuned soup of 2026-12-03) fine-tuned 600 more
# steps on its training data with resampling-smoothness augmentation (--smoothing 0.5), no teacher; seeds side by
# side, 1 thread each, then the two averaged:
#   bash docs/results/smoothing-finetune/train.sh 200 201   # out/smooth-ft/unet-M-s200.safetensors, ...-s201, unet-M.safetensors
set -eu
cd "$(dirname "$0")/../../.."
mkdir -p out/smooth-ft
. .venv/bin/activate
start=out/smooth-ft/start-unet.safetensors
if [ ! -f "$start" ]; then git show 6cac9f6:resources/models/glioma-unet.safetensors > "$start"; fi
common=(--arch unet --base-width 16 --depth 4 --context 1 --kernels 4 --domain glioma --synthetic-seeds 0:240
        --val-seeds 9000:9004 --val-cases 2 --batch 8 --crop 128 --epoch-steps 100
        --tumour-slices 14 --empty-slices 10 --modality-dropout 0.35 --anneal-fraction 0.1 --tumour-crop-prob 0.5
        --appearance 0.5 --device auto --threads 1 --workers 2 --cache-dir out/train-cache
        --init "$start" --steps 600 --lr 0.0005 --smoothing 0.5)
first=""
models=()
for seed in "$@"; do
  name=unet-M-s$seed
  models+=("out/smooth-ft/$name.safetensors")
  tumorseg train "${common[@]}" --seed "$seed" --out "out/smooth-ft/$name.safetensors" > "out/smooth-ft/train-$name.log" 2>&1 &
  if [ -z "$first" ]; then
    first=$!
    while kill -0 "$first" 2>/dev/null && ! grep -q "slices; training" "out/smooth-ft/train-$name.log"; do sleep 10; done
  fi
done
wait
python scripts/average_weights.py out/smooth-ft/unet-M.safetensors "${models[@]}"
