#!/usr/bin/env bash
# Ship the soup S1 as the bundled U-Net (the rule of docs/results/flip-distillation held) and record, in its card,
# every evaluation set the card of the U-Net it replaces had. About 25 min on 2 cores of the EPYC.
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
target=resources/models/glioma-unet.safetensors
python - <<'PY'
import json, shutil
from pathlib import Path
from napari_tumorseg.training.card import read_card, write_card
source, target = Path("out/distil/unet-S1.safetensors"), Path("resources/models/glioma-unet.safetensors")
card = read_card(source)
shutil.copyfile(source, target)
card["name"] = "glioma-unet"
card["training"]["note"] = (
    "the U-Net shipped until 2026-12-03 (file SHA-256 12a24688623373704b7baaebc3359c72058c542570aa86c0d1db347836c5ad43, "
    "git commit ed57d1c; its own command was the one above with --steps 2500 --lr 0.002 --seed 0 and without --init, "
    "--teacher and their settings), fine-tuned twice for 600 steps toward the truth and its own flip-averaged softmax "
    "(the command above with seeds 100 and 101: docs/results/flip-distillation/train.sh D 100 101), then the two "
    "networks' weights averaged: " + card["training"]["average_command"])
write_card(target, card)
PY
m=(--model "$target")
tumorseg evaluate ../shared/real --shipped --record --figures docs/images/real --json docs/results/real/real.json \
  --overwrite --threads 2
tumorseg evaluate ../shared/real "${m[@]}" --record --mirror all --threads 2
tumorseg evaluate --synthetic glioma --seeds 10000:10020 "${m[@]}" --record --threads 2
tumorseg evaluate --synthetic metastasis --seeds 20000:20020 "${m[@]}" --record --threads 2
tumorseg evaluate --synthetic glioma --seeds 10000:10010 "${m[@]}" --missing t1,t1c --record --threads 2
tumorseg evaluate --synthetic glioma --seeds 10000:10020 "${m[@]}" --record --mirror all --threads 2
tumorseg evaluate --synthetic metastasis --seeds 20000:20020 "${m[@]}" --record --mirror all --threads 2
