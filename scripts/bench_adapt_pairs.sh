#!/usr/bin/env bash
# Two settings of the adaptation timed against each other: 3 interleaved pairs of `tumorseg bench-adapt
# --threads 2 --repeats 2` with the shipped U-Net, A then B, each writing out/bench/NAME-{A,B}-{1,2,3}.json.
# Prints, per run, the load average and the seconds to adapt and guard; then the medians of the 6 timings.
#   bash scripts/bench_adapt_pairs.sh bycase "--no-replay-by-case" "--replay-by-case"
set -u
cd "$(dirname "$0")/.."
name=$1; flags_a=$2; flags_b=$3
mkdir -p out/bench
for pair in 1 2 3; do
  for side in A B; do
    if [ "$side" = A ]; then flags=$flags_a; else flags=$flags_b; fi
    # shellcheck disable=SC2086  # the flags are words
    .venv/bin/tumorseg bench-adapt --threads 2 --repeats 2 --model resources/models/glioma-unet.safetensors $flags \
      --output "out/bench/$name-$side-$pair.json" --overwrite > "out/bench/$name-$side-$pair.log" 2>&1 || exit 1
    echo "$side $pair load $(cut -d' ' -f1-3 /proc/loadavg): $(.venv/bin/python -c "import json, sys
print([r['adapt_and_guard_s'] for r in json.load(open(sys.argv[1]))['runs']])" "out/bench/$name-$side-$pair.json")"
  done
done
.venv/bin/python - "$name" <<'PY'
import json, statistics, sys
for side in "AB":
    runs = [r for pair in (1, 2, 3) for r in json.load(open(f"out/bench/{sys.argv[1]}-{side}-{pair}.json"))["runs"]]
    print(side, "median adapt and guard", statistics.median(r["adapt_and_guard_s"] for r in runs), "s; adapting",
          statistics.median(r["phases"]["adapting"] for r in runs), "s")
PY
