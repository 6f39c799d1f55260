#!/usr/bin/env bash
# Train the shipped brain-mask network on synthetic heads (about 3 min making the heads, then about 16 min
# training on 2 torch threads of an idle 2-core AMD EPYC), then copy it, its card and its page into
# resources/models/brain/. Run again after a stop: the heads are cached and --resume continues the run.
# The shipped network is this run to the end of its 1200-step schedule; its brain threshold was then chosen
# on the validation heads with scripts/brain_threshold_sweep.py (docs/results/brain-mask-full/README.md) and
# written into its file with prepare.brainnet.set_threshold: choose it again after retraining.
set -eu
cd "$(dirname "$0")/.."
. .venv/bin/activate
args=(--out out/brain-full/brain-mask.safetensors --heads 0:96 --val-heads 9000:9004 --steps 1200 --batch 16
      --crop 128 --lr 0.002 --base-width 16 --depth 4 --context 2 --epoch-steps 200 --seed 0 --threads 2
      --cache-dir out/brain-cache)
if [ -f out/brain-full/brain-mask.train-state ]; then
  tumorseg train-brain "${args[@]}" --resume
else
  tumorseg train-brain "${args[@]}"
fi
mkdir -p resources/models/brain
cp out/brain-full/brain-mask.safetensors out/brain-full/brain-mask.card.json out/brain-full/README.md resources/models/brain/
