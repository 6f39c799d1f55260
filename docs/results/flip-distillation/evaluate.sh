#!/usr/bin/env bash
# The flip-distillation page's measurements, one pass (the CPU default) unless said, in the order they ran:
#   1. after train.sh D 100 101: the two D seeds on the real cases and the held-out glioma phantoms (with the shipped
#      U-Net beside them); after train.sh F 100: the control on the real cases;
#   2. after train.sh D 102 103 and the two soups: those on the same sets, then the soup S1 flip-averaged and on the
#      metastasis phantoms.
# Run one part: bash docs/results/flip-distillation/evaluate.sh 1   (or 2)
set -eu
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
here=docs/results/flip-distillation
o=out/distil
# "shipped" is the U-Net shipped when these ran (commit ed57d1c; named glioma-unet in the JSON files). S1 has
# replaced it since, so a re-run takes it from git (named parent-unet in the new files).
shipped=out/distil/parent-unet.safetensors
if [ ! -f "$shipped" ]; then git show ed57d1c:resources/models/glioma-unet.safetensors > "$shipped"; fi
case ${1:?give the part, 1 or 2} in
  1)
    tumorseg evaluate ../shared/real --model $o/unet-D-s100.safetensors --model $o/unet-D-s101.safetensors \
      --mirror none --threads 1 --json $here/real-D.json --overwrite
    tumorseg evaluate --synthetic glioma --seeds 10000:10020 --model $o/unet-D-s100.safetensors \
      --model $o/unet-D-s101.safetensors --model "$shipped" --mirror none --threads 1 --json $here/synth-D.json --overwrite
    tumorseg evaluate ../shared/real --model $o/unet-F-s100.safetensors --mirror none --threads 1 \
      --json $here/real-F.json --overwrite
    ;;
  2)
    python scripts/average_weights.py $o/unet-S1.safetensors $o/unet-D-s100.safetensors $o/unet-D-s101.safetensors
    python scripts/average_weights.py $o/unet-S2.safetensors $o/unet-D-s102.safetensors $o/unet-D-s103.safetensors
    new=(--model $o/unet-S1.safetensors --model $o/unet-S2.safetensors --model $o/unet-D-s102.safetensors
         --model $o/unet-D-s103.safetensors --model $o/unet-F-s100.safetensors)
    tumorseg evaluate ../shared/real "${new[@]}" --mirror none --threads 2 --json $here/real-S.json --overwrite \
      --figures out/distil-figures
    tumorseg evaluate --synthetic glioma --seeds 10000:10020 "${new[@]}" --mirror none --threads 2 \
      --json $here/synth-S.json --overwrite
    tumorseg evaluate ../shared/real --model $o/unet-S1.safetensors --mirror all --threads 2 \
      --json $here/real-S1-mirror-all.json --overwrite
    tumorseg evaluate --synthetic metastasis --seeds 20000:20020 --model $o/unet-S1.safetensors --model "$shipped" \
      --mirror none --threads 2 --json $here/synth-metastasis.json --overwrite
    ;;
esac
