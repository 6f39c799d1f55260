#!/usr/bin/env bash
# The shipped U-Net recipe (resources/models/MODEL_CARD.md) in one precision, several seeds side by side, 1 thread
# each; writes out/prec/unet-PRECISION-sSEED.safetensors with its card and log.
#   bash docs/results/bf16-training/train.sh bf16 0 1    # 17.5 and 12.1 min on 2 cores of the Xeon (cache included)
#   bash docs/results/bf16-training/train.sh fp32 2 3    # 21.6 and 21.4 min
#   EMA=0.998 bash docs/results/bf16-training/train.sh fp32 0 2   # the weight-average page: also --ema-decay, writing
#     out/prec/unet-fp32-ema0.998-sSEED.safetensors (the average) and ...-sSEED-last.safetensors (the last step's)
#   EMA=0.998 SMOOTH=0.5 bash docs/results/bf16-training/train.sh fp32 0 2   # the smoothing page: also --smoothing,
#     writing out/prec/unet-fp32-ema0.998-smooth0.5-sSEED.safetensors
#   GEN=4 (or 5) EMA=0.998 SMOOTH=0.5 bash docs/results/bf16-training/train.sh fp32 0 2   # the generator-v4 (v5) page: also
#     --generator-version 4, writing out/prec/unet-fp32-v4-ema0.998-smooth0.5-sSEED.safetensors
set -eu
precision=${1:?give fp32 or bf16, then the seeds}
shift
cd "$(dirname "$0")/../../.."
mkdir -p out/prec
. .venv/bin/activate
common=(--arch unet --base-width 16 --depth 4 --context 1 --kernels 4 --domain glioma --synthetic-seeds 0:240
        --val-seeds 9000:9004 --val-cases 2 --steps 2500 --batch 8 --crop 128 --lr 0.002 --epoch-steps 100
        --tumour-slices 14 --empty-slices 10 --modality-dropout 0.35 --anneal-fraction 0.1 --tumour-crop-prob 0.5
        --appearance 0.5 --device auto --threads 1 --workers 2 --cache-dir out/train-cache --precision "$precision")
first=""
for seed in "$@"; do
  name=$precision${GEN:+-v$GEN}${EMA:+-ema$EMA}${SMOOTH:+-smooth$SMOOTH}-s$seed
  log=out/prec/train-$name.log
  extra=()
  if [ -n "${EMA:-}" ]; then extra=(--ema-decay "$EMA" --last-out "out/prec/unet-$name-last.safetensors"); fi
  if [ -n "${SMOOTH:-}" ]; then extra+=(--smoothing "$SMOOTH"); fi
  if [ -n "${GEN:-}" ]; then extra+=(--generator-version "$GEN"); fi
  tumorseg train "${common[@]}" "${extra[@]}" --seed "$seed" --out "out/prec/unet-$name.safetensors" > "$log" 2>&1 &
  if [ -z "$first" ]; then
    first=$!
    # The other runs wait for the first to write the slice cache, then read it (or stop with it).
    while kill -0 "$first" 2>/dev/null && ! grep -q "slices; training" "$log"; do sleep 20; done
  fi
done
wait
