#!/usr/bin/env bash
# The faint-training page's fine-tunings: the shipped U-Net trained 600 more steps toward the truth alone (no
# teacher: docs/results/flip-distillation found it adds nothing), on the shipped recipe's 240 training phantoms
# drawn by generator version 7 (arm V7: a third of the cases enhance faintly) or by version 2 (arm V2, the
# control: the same extra training on the shipped data). Each seed on 1 thread; give the arm, then the seeds:
#   bash docs/results/faint-training/train.sh V7 200 201   # writes out/faint/unet-V7-s200.safetensors, ...-s201
#   bash docs/results/faint-training/train.sh V2 200
set -eu
arm=${1:?give V7 or V2, then the seeds}
shift
cd "$(dirname "$0")/../../.."
mkdir -p out/faint
. .venv/bin/activate
# The U-Net these fine-tunings start from: the one shipped since 2026-12-03 (S1 of docs/results/flip-distillation).
parent=out/faint/parent-unet.safetensors
if [ ! -f "$parent" ]; then git show b536f72:resources/models/glioma-unet.safetensors > "$parent"; fi
echo "308ceec9620fda328828b69fe777d075bc24d9814618ae71f9fceebe562549a2  $parent" | sha256sum --check --quiet
common=(--arch unet --base-width 16 --depth 4 --context 1 --kernels 4 --domain glioma --synthetic-seeds 0:240
        --val-seeds 9000:9004 --val-cases 2 --batch 8 --crop 128 --epoch-steps 100
        --tumour-slices 14 --empty-slices 10 --modality-dropout 0.35 --anneal-fraction 0.1 --tumour-crop-prob 0.5
        --appearance 0.5 --device auto --threads 1 --workers 2 --cache-dir out/train-cache
        --init "$parent" --steps 600 --lr 0.0005)
case $arm in
  V7) extra=(--generator-version 7) ;;
  V2) extra=(--generator-version 2) ;;
  *) echo "arm must be V7 or V2" >&2; exit 2 ;;
esac
first=""
for seed in "$@"; do
  name=unet-$arm-s$seed
  log=out/faint/train-$name.log
  tumorseg train "${common[@]}" "${extra[@]}" --seed "$seed" --out "out/faint/$name.safetensors" > "$log" 2>&1 &
  if [ -z "$first" ]; then
    first=$!
    # The other runs wait for the first to read or write the slice cache.
    while kill -0 "$first" 2>/dev/null && ! grep -q "slices; training" "$log"; do sleep 20; done
  fi
done
wait
