#!/usr/bin/env bash
# The figures that need a GPU, in one prepared run on a lent GPU machine (see ../shared/ENVIRONMENT.md):
#   - inference on a BraTS-size real glioma, one pass and flip-averaged (the GPU default, `--mirror auto` = all);
#   - adapting 5 corrected slices on the GPU, three times in one process: cold, then warm (target: at most 1 s);
#   - one warm adaptation profiled op by op (scripts/profile_adapt.py);
#   - the adaptation again with each lever that changes the passes (VARIANTS: --replay-by-case, --layers decoder);
#   - the real cases evaluated with the GPU's default (flip-averaged).
# There: the wheels in .whl/ (ENVIRONMENT.md) and a copy of ../shared/real in real/ (TCGA-DU-7294 alone keeps the
# working tree under the 64 MiB a call may send), both git-ignored and carried:
#   run(command="bash scripts/gpu_checks.sh", carry=[".whl", "real"], timeout_s=540)
# Here, as a smoke test of the script itself: DEVICE=cpu REPEATS=1 ADAPTS=1 bash scripts/gpu_checks.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu-checks}
DEVICE=${DEVICE:-cuda}
REPEATS=${REPEATS:-5}
ADAPTS=${ADAPTS:-3}
mkdir -p "$OUT"
if ! python3 -c "import nibabel, psygnal" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
if [ -d real ]; then export TUMORSEG_REAL_DATA=$PWD/real; fi
REAL=${TUMORSEG_REAL_DATA:-../shared/real}
# The benchmark case: a BraTS-size real glioma; the working tree that travels is small, so take what was carried.
BENCH_CASE=${BENCH_CASE:-$REAL/BraTS-GLI-00001-000}
[ -d "$BENCH_CASE" ] || BENCH_CASE=$REAL/TCGA-DU-7294
tumorseg() { python3 -m napari_tumorseg "$@"; }
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true) > "$OUT/gpu.txt"
python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())" >> "$OUT/gpu.txt" 2>&1
status=0
echo "== inference, one pass and flip-averaged"
tumorseg bench --device "$DEVICE" --model resources/models/glioma-unet.safetensors --case "$BENCH_CASE" \
  --mirror none all --repeats "$REPEATS" -o "$OUT/bench-inference.json" --overwrite > "$OUT/bench-inference.log" 2>&1 || status=1
python3 -c "
import json, sys
for r in json.load(open(sys.argv[1]))['results']:
    print(r.get('mirror'), r.get('device'), 'cold', r.get('cold_seconds'), 'warm runs', r.get('warm_runs'), r.get('error', ''))
" "$OUT/bench-inference.json" || status=1
echo "== adapting 5 corrected slices, $ADAPTS times in one process (the first pays for loading the kernels)"
tumorseg bench-adapt --device "$DEVICE" --repeats "$ADAPTS" --output "$OUT/bench-adapt.json" --overwrite \
  > "$OUT/bench-adapt.log" 2>&1 || status=1
python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
for r in d['runs']:
    print(d['device'], 'adapt and guard', r['adapt_and_guard_s'], 's, cpu', r['adapt_and_guard_cpu_s'], 's;', r['phases'])
" "$OUT/bench-adapt.json" || status=1
echo "== where a warm adaptation's time goes (torch.profiler: host time per op, kernel launches, device time)"
python3 scripts/profile_adapt.py --device "$DEVICE" --out "$OUT/profile-adapt.txt" > "$OUT/profile-adapt.log" 2>&1 \
  || status=1
head -n 4 "$OUT/profile-adapt.txt"
# The levers that change the passes, each timed warm beside the default in its own process (a|b|c: flag sets).
VARIANTS=${VARIANTS:-"--replay-by-case|--layers decoder"}
IFS='|' read -r -a variant_flags <<< "$VARIANTS"
for index in "${!variant_flags[@]}"; do
  flags=${variant_flags[$index]}
  echo "== adapting with $flags, $ADAPTS times in one process"
  # shellcheck disable=SC2086  # the flags are words
  tumorseg bench-adapt --device "$DEVICE" --repeats "$ADAPTS" $flags --output "$OUT/bench-adapt-variant$index.json" \
    --overwrite > "$OUT/bench-adapt-variant$index.log" 2>&1 || status=1
  python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
for r in d['runs']:
    print(sys.argv[2], d['device'], 'adapt and guard', r['adapt_and_guard_s'], 's;', r['phases'])
" "$OUT/bench-adapt-variant$index.json" "$flags" || status=1
done
echo "== the real cases with the device's default flip averaging"
tumorseg evaluate "$REAL" --shipped --device "$DEVICE" --json "$OUT/real.json" --overwrite \
  > "$OUT/real.log" 2>&1 || status=1
tail -n 20 "$OUT/real.log"
exit $status
