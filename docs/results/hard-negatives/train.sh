#!/usr/bin/env bash
# The hard-negatives page's fine-tunings of the shipped U-Net (600 steps toward the truth), with (arm H) a quarter of
# the crops centred on the false tumour the shipped U-Net marks on training cases 0-63, or (arm M, the third rule)
# only on the false tumour 5 mm or more from the lesion, or without (arm F, the control). Each seed runs on 1 thread; give the arm, then the seeds, run side by side; then the two seeds' soup:
#   bash docs/results/hard-negatives/train.sh H 300 301   # out/hard/unet-H-s300.safetensors, ..., out/hard/unet-H.safetensors
#   bash docs/results/hard-negatives/train.sh F 300 301
set -eu
arm=${1:?give H, M or F, then the seeds}
shift
cd "$(dirname "$0")/../../.."
mkdir -p out/hard
. .venv/bin/activate
# The parent: the U-Net shipped on 2026-12-04 (commit 587a811), taken from git so a later shipped model does not
# change what this page ran.
parent=out/hard/parent-unet.safetensors
if [ ! -f "$parent" ]; then git show 587a811:resources/models/glioma-unet.safetensors > "$parent"; fi
echo "308ceec9620fda328828b69fe777d075bc24d9814618ae71f9fceebe562549a2  $parent" | sha256sum --check --quiet
# The shipped recipe (resources/models/MODEL_CARD.md), then the fine-tuning's own settings.
common=(--arch unet --base-width 16 --depth 4 --context 1 --kernels 4 --domain glioma --synthetic-seeds 0:240
        --val-seeds 9000:9004 --val-cases 2 --batch 8 --crop 128 --epoch-steps 100
        --tumour-slices 14 --empty-slices 10 --modality-dropout 0.35 --anneal-fraction 0.1 --tumour-crop-prob 0.5
        --appearance 0.5 --device auto --threads 1 --workers 2 --cache-dir out/train-cache
        --init "$parent" --steps 600 --lr 0.0005)
case $arm in
  H) extra=(--hard-negatives "$parent" --hard-negative-seeds 0:64 --hard-negative-slices 4 --hard-negative-prob 0.25) ;;
  M) extra=(--hard-negatives "$parent" --hard-negative-seeds 0:64 --hard-negative-slices 4 --hard-negative-prob 0.25
            --hard-negative-margin 5) ;;
  F) extra=() ;;
  *) echo "arm must be H, M or F" >&2; exit 2 ;;
esac
first=""
models=()
for seed in "$@"; do
  name=unet-$arm-s$seed
  log=out/hard/train-$name.log
  models+=("out/hard/$name.safetensors")
  tumorseg train "${common[@]}" "${extra[@]}" --seed "$seed" --out "out/hard/$name.safetensors" > "$log" 2>&1 &
  if [ -z "$first" ]; then
    first=$!
    # The other runs wait for the first to read or write the slice cache and the mined slices (it says
    # "slices; training" once both are there).
    while kill -0 "$first" 2>/dev/null && ! grep -q "slices; training" "$log"; do sleep 20; done
  fi
done
wait
if [ "${#models[@]}" -gt 1 ]; then python scripts/average_weights.py "out/hard/unet-$arm.safetensors" "${models[@]}"; fi
