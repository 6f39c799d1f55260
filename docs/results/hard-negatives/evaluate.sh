#!/usr/bin/env bash
# Every measurement of the hard-negatives page, after train.sh H 300 301 and train.sh F 300 301 (about 25 min on
# 2 cores): the real cases (every model, one pass), the synthetic gliomas (two ranges) and metastases, the tables.
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
here=docs/results/hard-negatives
o=out/hard
soups=(--model $o/unet-H.safetensors --model $o/unet-F.safetensors --model $o/parent-unet.safetensors)
seeds=(--model $o/unet-H-s300.safetensors --model $o/unet-H-s301.safetensors --model $o/unet-F-s300.safetensors
       --model $o/unet-F-s301.safetensors)
tumorseg evaluate ../shared/real "${soups[@]}" "${seeds[@]}" --mirror none --threads 2 --json $here/real.json --overwrite
tumorseg evaluate --synthetic glioma --seeds 10000:10020 "${soups[@]}" --mirror none --threads 2 \
  --json $here/glioma-10000.json --overwrite
tumorseg evaluate --synthetic glioma --seeds 12000:12020 "${soups[@]}" --mirror none --threads 2 \
  --json $here/glioma-12000.json --overwrite
tumorseg evaluate --synthetic metastasis --seeds 20000:20020 --model $o/unet-H.safetensors \
  --model $o/parent-unet.safetensors --mirror none --threads 2 --json $here/metastasis.json --overwrite
python scripts/hard_negatives_table.py $here | tee $here/tables.md
