#!/usr/bin/env bash
# The faint-training page's measurements, one pass (the CPU default), in the order they ran:
#   1. after train.sh V7 200 201 and V2 200: the soup S7, then every arm and the parent on the real cases, the
#      held-out glioma phantoms 10000-10019 (version 2), and their version-7 draws;
#   2. only if clauses 1-3 of the rule hold: the effort protocol on the real glioma with S7 as the U-Net.
# Run one part: bash docs/results/faint-training/evaluate.sh 1   (or 2)
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
here=docs/results/faint-training
o=out/faint
models=(--model $o/unet-S7.safetensors --model $o/unet-V7-s200.safetensors --model $o/unet-V7-s201.safetensors
        --model $o/unet-V2-s200.safetensors --model $o/parent-unet.safetensors)
case ${1:?give the part, 1 or 2} in
  1)
    python scripts/average_weights.py $o/unet-S7.safetensors $o/unet-V7-s200.safetensors $o/unet-V7-s201.safetensors
    tumorseg evaluate ../shared/real "${models[@]}" --mirror none --threads 2 --json $here/real.json --overwrite \
      --figures out/faint-figures
    tumorseg evaluate --synthetic glioma --seeds 10000:10020 "${models[@]}" --mirror none --threads 2 \
      --json $here/synth.json --overwrite
    tumorseg evaluate --synthetic glioma --seeds 10000:10020 --generator-version 7 "${models[@]}" --mirror none \
      --threads 2 --json $here/synth-v7.json --overwrite
    ;;
  2)
    tumorseg experiment effort --out out/effort-real-S7 --unet $o/unet-S7.safetensors --seeds 1 --device auto \
      --threads 2 --patients 1 --runs paste --real-seeds 2 --real-runs suggest/active,random/active
    ;;
esac
