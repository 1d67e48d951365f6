#!/usr/bin/env bash
# Copy detection through compressed indexes, scored by the benchmark's own metrics: runs
# vecindex's `copy_detection_quality` example (a generated DISC21-shaped set of vectors, searched
# exactly and with each compressed kind; see the example's documentation for the set and its
# environment variables), then `disc21-eval metrics` on every kind's predictions, and prints one
# markdown table: µAP, accuracy, top-5 accuracy, recall at precision 0.9 and the score threshold
# there, each with its difference from the exact flat index.
#
#   scripts/bench_quality.sh [OUT]        (default OUT: target/bench-quality)
#   e.g. REFS=30000 DIM=512 scripts/bench_quality.sh /tmp/quality
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-quality}
# shellcheck disable=SC1091
source scripts/env.sh
tdir=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p vecindex --example copy_detection_quality
# The light `disc21-eval` (no libtorch) scores the predictions: DISC21_EVAL, else the debug
# build the tests made, else one is built.
metrics=${DISC21_EVAL:-$tdir/debug/disc21-eval}
[ -x "$metrics" ] || cargo build --locked -q --workspace --bins
mkdir -p "$out"
"$tdir/release/examples/copy_detection_quality" "$out" | tee "$out/shift.md"
echo
echo "| kind | µAP | Δ µAP | accuracy | Δ accuracy | top-5 accuracy | Δ top-5 | recall at P90 | threshold at P90 |"
echo "|---|---|---|---|---|---|---|---|---|"
for f in "$out"/predictions_flat.csv "$out"/predictions_*.csv; do
    kind=$(basename "$f" .csv)
    kind=${kind#predictions_}
    if [ "$kind" = flat ] && [ -n "${flat_done:-}" ]; then continue; fi
    flat_done=1
    "$metrics" metrics --predictions "$f" --ground-truth "$out/ground_truth.csv" \
        --top-k 5 --json > "$out/metrics_$kind.json"
    python3 - "$out" "$kind" <<'PY'
import json, sys
out, kind = sys.argv[1], sys.argv[2]
m = json.load(open(f"{out}/metrics_{kind}.json"))
e = json.load(open(f"{out}/metrics_flat.json"))
def cell(key):
    return f"{m[key]:.4f} | {m[key] - e[key]:+.4f}"
thr = m["threshold_at_p90"]
thr = "-" if thr is None else f"{thr:.4f}"
print(f"| {kind} | {cell('micro_ap')} | {cell('accuracy')} | {cell('topk_accuracy')} "
      f"| {m['recall_at_p90']:.4f} | {thr} |")
PY
done
