#!/usr/bin/env bash
# One prepared run on a lent GPU machine (ENVIRONMENT.md), everything it returns under $OUT:
#   1. `tumorseg bench-adapt --device cuda --repeats 3` (issue 13: adaptation on the GPU, cold and warm);
#   2. the slice caches of generator versions 2 and 6 (240 glioma phantoms each), built side by side;
#   3. four U-Nets trained from scratch at once (versions 2 and 6, seeds 0 and 1), the shipped model's own
#      recipe with batch 16; the number of steps, the same for all four, is set from the time left.
# From this machine:
#   run(command="bash docs/results/generator-v6/gpu_run.sh", carry=[".whl", "real"], timeout_s=450)
set -u
cd "$(dirname "$0")/../../.."
START=$(date +%s)
DEADLINE=${DEADLINE:-410}     # seconds after START by which training must be over
RATE=${RATE:-5.5}             # steps per second per run with four side by side (measured 6.1 on 2026-12-04)
OUT=${OUT:-out/generator-v6}
mkdir -p "$OUT" /tmp/logs
export PYTHONUNBUFFERED=1
if ! python3 -c "import nibabel, psygnal" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
tumorseg() { python3 -m napari_tumorseg "$@"; }
elapsed() { echo $(( $(date +%s) - START )); }

echo "== $(elapsed) s: bench-adapt on the GPU"
tumorseg bench-adapt --device cuda --repeats 3 --output "$OUT/bench-adapt-cuda.json" --overwrite \
  > /tmp/logs/bench-adapt.log 2>&1
python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
for r in d['runs']:
    print('adapt and guard', r['adapt_and_guard_s'], 's, cpu', r['adapt_and_guard_cpu_s'], 's;', r['phases'])
" "$OUT/bench-adapt-cuda.json"

echo "== $(elapsed) s: slice caches, versions 2 and 6"
for v in 2 6; do
  OMP_NUM_THREADS=1 python3 docs/results/generator-v6/build_caches.py $v /tmp/cache 8 > /tmp/logs/cache-v$v.log 2>&1 &
done
wait
ls -la /tmp/cache > /tmp/logs/cache.txt
left=$(( DEADLINE - $(elapsed) - 45 ))   # 45 s: each run's start, its validations and the writing of its model
steps=$(python3 -c "print(min(1500, int($left * $RATE) // 100 * 100))")
echo "== $(elapsed) s: training, $steps steps each"
if [ "$steps" -lt 500 ]; then echo "too little time left to train"; steps=0; fi
for v in 2 6; do for s in 0 1; do
  [ "$steps" -gt 0 ] || continue
  tumorseg train --arch unet --base-width 16 --depth 4 --context 1 --domain glioma --generator-version $v \
    --synthetic-seeds 0:240 --val-seeds 9000:9004 --steps "$steps" --batch 16 --crop 128 --lr 0.002 --seed $s \
    --epoch-steps 100 --tumour-slices 14 --empty-slices 10 --tumour-crop-prob 0.5 --appearance 0.5 \
    --modality-dropout 0.35 --device cuda --threads 4 --cache-dir /tmp/cache \
    --out "$OUT/unet-v$v-s$s.safetensors" > /tmp/logs/train-v$v-s$s.log 2>&1 &
done; done
wait
echo "== $(elapsed) s: done"
cp "$OUT"/*.card.json /tmp/logs/ 2>/dev/null
rm -f "$OUT"/*.train-state* "$OUT"/*.card.json
tar czf "$OUT/logs.tgz" -C /tmp logs
grep -h "validation Dice" /tmp/logs/train-*.log | tail -n 4
ls -la "$OUT"
