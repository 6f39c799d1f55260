#!/usr/bin/env bash
# The flip-distillation page's trainings: the shipped U-Net fine-tuned for 600 steps on its own training data,
# toward the truth and (arm D) its own softmax averaged over the four in-plane flips, or (arm F, the control)
# toward the truth alone. Each seed runs on 1 thread; give the arm, then the seeds, run side by side:
#   bash docs/results/flip-distillation/train.sh D 100 101   # writes out/distil/unet-D-s100.safetensors, ...-s101
#   bash docs/results/flip-distillation/train.sh F 100         # the control (seeds 100+: the shipped run used seed 0)
set -eu
arm=${1:?give D or F, then the seeds}
shift
cd "$(dirname "$0")/../../.."
mkdir -p out/distil
. .venv/bin/activate
# The U-Net these fine-tunings started from: the one shipped until 2026-12-03 (commit ed57d1c). They ran when it was
# resources/models/glioma-unet.safetensors (so their cards name that path); since S1 replaced it, it comes from git.
shipped=out/distil/parent-unet.safetensors
if [ ! -f "$shipped" ]; then git show ed57d1c:resources/models/glioma-unet.safetensors > "$shipped"; fi
echo "12a24688623373704b7baaebc3359c72058c542570aa86c0d1db347836c5ad43  $shipped" | sha256sum --check --quiet
# The shipped recipe (resources/models/MODEL_CARD.md), then the fine-tuning's own settings.
common=(--arch unet --base-width 16 --depth 4 --context 1 --kernels 4 --domain glioma --synthetic-seeds 0:240
        --val-seeds 9000:9004 --val-cases 2 --batch 8 --crop 128 --epoch-steps 100
        --tumour-slices 14 --empty-slices 10 --modality-dropout 0.35 --anneal-fraction 0.1 --tumour-crop-prob 0.5
        --appearance 0.5 --device auto --threads 1 --workers 2 --cache-dir out/train-cache
        --init "$shipped" --steps 600 --lr 0.0005)
case $arm in
  D) extra=(--teacher "$shipped" --teacher-flips all --distill-weight 1) ;;
  F) extra=() ;;
  *) echo "arm must be D or F" >&2; exit 2 ;;
esac
first=""
for seed in "$@"; do
  name=unet-$arm-s$seed
  log=out/distil/train-$name.log
  tumorseg train "${common[@]}" "${extra[@]}" --seed "$seed" --out "out/distil/$name.safetensors" > "$log" 2>&1 &
  if [ -z "$first" ]; then
    first=$!
    # The other runs wait for the first to read or write the slice cache.
    while kill -0 "$first" 2>/dev/null && ! grep -q "slices; training" "$log"; do sleep 20; done
  fi
done
wait
