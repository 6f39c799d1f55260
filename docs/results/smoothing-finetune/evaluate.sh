#!/usr/bin/env bash
# The smoothing-finetune page's measurements (after train.sh 200 201), one pass unless said; about 13 min on 2 cores.
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
here=docs/results/smoothing-finetune
o=out/smooth-ft
tumorseg evaluate ../shared/real --model $o/unet-M.safetensors --model $o/unet-M-s200.safetensors \
  --model $o/unet-M-s201.safetensors --mirror none --threads 2 --json $here/real.json --overwrite
tumorseg evaluate --synthetic glioma --seeds 10000:10020 --model $o/unet-M.safetensors --mirror none --threads 2 \
  --json $here/synth-glioma.json --overwrite
tumorseg bench-prepare --synthetic glioma:10000,glioma:10001,glioma:10002,glioma:10005,glioma:10006 --no-real \
  --threads 2 --model $o/unet-M.safetensors -o $here/prepare-heads.json --overwrite
tumorseg evaluate ../shared/real/TCGA-DU-7294 --model $o/unet-M.safetensors --mirror all --threads 2 \
  --json $here/real-mirror-all.json --overwrite
