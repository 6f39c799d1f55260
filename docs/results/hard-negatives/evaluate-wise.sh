#!/usr/bin/env bash
# The second rule of the hard-negatives page: W, the mean of H's soup and the parent (WiSE-FT at 0.5), on the real
# cases, the synthetic gliomas (the two ranges above and the fresh 14000-14019, where the parent runs too) and the
# metastases; then the verdict. About 15 min on 2 cores, after train.sh H 300 301.
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
here=docs/results/hard-negatives
o=out/hard
python scripts/average_weights.py $o/unet-W.safetensors $o/unet-H.safetensors $o/parent-unet.safetensors
w=(--model $o/unet-W.safetensors)
tumorseg evaluate ../shared/real "${w[@]}" --mirror none --threads 2 --json $here/wise-real.json --overwrite
tumorseg evaluate --synthetic glioma --seeds 14000:14020 "${w[@]}" --model $o/parent-unet.safetensors --mirror none \
  --threads 2 --json $here/wise-glioma-14000.json --overwrite
tumorseg evaluate --synthetic glioma --seeds 10000:10020 "${w[@]}" --mirror none --threads 2 \
  --json $here/wise-glioma-10000.json --overwrite
tumorseg evaluate --synthetic glioma --seeds 12000:12020 "${w[@]}" --mirror none --threads 2 \
  --json $here/wise-glioma-12000.json --overwrite
tumorseg evaluate --synthetic metastasis --seeds 20000:20020 "${w[@]}" --mirror none --threads 2 \
  --json $here/wise-metastasis.json --overwrite
python scripts/hard_negatives_table.py $here --wise | tee $here/wise-tables.md
