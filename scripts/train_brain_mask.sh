#!/usr/bin/env bash
# Train the shipped brain-mask network on synthetic heads (about 15 min making the heads, then about
# 35 min training on one CPU thread of a shared 2-core machine), then copy it, its card and its page into
# resources/models/brain/. Run again after a stop: the heads are cached and --resume continues the run.
# The shipped network is this run stopped at step 800 of its 1200-step schedule (--until 800); remove
# --until to train to the end.
set -eu
cd "$(dirname "$0")/.."
. .venv/bin/activate
args=(--out out/models/brain-mask.safetensors --heads 0:96 --val-heads 9000:9004 --steps 1200 --batch 16
      --crop 128 --lr 0.002 --base-width 16 --depth 4 --context 2 --until 800 --epoch-steps 200 --seed 0 --threads 1
      --cache-dir out/brain-cache)
if [ -f out/models/brain-mask.train-state ]; then
  nice -n 15 tumorseg train-brain "${args[@]}" --resume
else
  nice -n 15 tumorseg train-brain "${args[@]}"
fi
mkdir -p resources/models/brain
cp out/models/brain-mask.safetensors out/models/brain-mask.card.json out/models/README.md resources/models/brain/
