#!/usr/bin/env bash
# `build` (a collection) against `embed` (a .npy) on the same folder of images, same model and
# options, alternating runs: wall time of each whole command (model loading and writing
# included) as images/s, and build's rate as a fraction of embed's.
#
#   scripts/bench_build.sh BIN_DIR IMAGES_DIR RUNS -- MODEL_ARGS...
#   e.g. scripts/bench_build.sh target/release /tmp/ckpt/images 3 -- --model clip --weights /tmp/ckpt/clip --device cpu
set -euo pipefail
[ $# -ge 4 ] && [ "$4" = -- ] || { echo "usage: $0 BIN_DIR IMAGES_DIR RUNS -- MODEL_ARGS..." >&2; exit 2; }
bin=$1/image-sim
images=$2
runs=$3
shift 4
n=$(find "$images" -maxdepth 1 -type f ! -name '.*' | wc -l)
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-build.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
now() { date +%s.%N; }
te=0
tb=0
for r in $(seq "$runs"); do
    rm -rf -- "$work"/*
    t=$(now)
    "$bin" --quiet embed "$@" --images "$images" --out "$work/e.npy"
    e=$(awk "BEGIN { print $(now) - $t }")
    t=$(now)
    "$bin" --quiet build "$@" --images "$images" --out "$work/coll"
    b=$(awk "BEGIN { print $(now) - $t }")
    printf 'run %d: embed %.2f s (%.1f images/s), build %.2f s (%.1f images/s)\n' \
        "$r" "$e" "$(awk "BEGIN { print $n / $e }")" "$b" "$(awk "BEGIN { print $n / $b }")"
    te=$(awk "BEGIN { print $te + $e }")
    tb=$(awk "BEGIN { print $tb + $b }")
done
awk "BEGIN { printf \"%d images, %d runs each: embed %.1f images/s, build %.1f images/s, build/embed %.3f\n\", $n, $runs, $n * $runs / $te, $n * $runs / $tb, $te / $tb }"
