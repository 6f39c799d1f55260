#!/usr/bin/env bash
# The third rule of the hard-negatives page: M (mined only 5 mm or more from the lesion) on the real cases, the 60
# synthetic gliomas and the metastases; the parent's figures are those of the first two rules (same code and
# machine). About 15 min on 2 cores, after train.sh M 300 301.
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
here=docs/results/hard-negatives
m=(--model out/hard/unet-M.safetensors --mirror none --threads 2 --overwrite)
tumorseg evaluate ../shared/real "${m[@]}" --model out/hard/unet-M-s300.safetensors \
  --model out/hard/unet-M-s301.safetensors --json $here/margin-real.json
for range in 10000 12000 14000; do
  tumorseg evaluate --synthetic glioma --seeds $range:$((range + 20)) "${m[@]}" --json $here/margin-glioma-$range.json
done
tumorseg evaluate --synthetic metastasis --seeds 20000:20020 "${m[@]}" --json $here/margin-metastasis.json
python scripts/hard_negatives_table.py $here --margin | tee $here/margin-tables.md
