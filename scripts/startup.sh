#!/usr/bin/env bash
# Checks that the release `image-sim` and `disc21-eval` start without libtorch: neither may need
# libtorch's shared libraries (readelf), and `--help` must not pay libtorch's ~0.5-1 s and
# ~450 MB of start-up. With --compare, also builds the `-torch` siblings (every command's cost
# before the split) and prints a table of wall time and peak resident memory for `--help` and an
# `index` run on a small file, five runs each.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source scripts/env.sh
compare=0
[ "${1:-}" = --compare ] && compare=1
bins=(image-sim disc21-eval)
args=(--release --locked -p image-sim --bin image-sim -p disc21-eval --bin disc21-eval)
if [ $compare = 1 ]; then
    args+=(--bin image-sim-torch --bin disc21-eval-torch)
fi
cargo build "${args[@]}"
fail=0
for b in "${bins[@]}"; do
    needed=$(readelf -d "target/release/$b" | grep NEEDED || true)
    if grep -q -E 'libtorch|libc10' <<<"$needed"; then
        echo "FAIL: target/release/$b needs libtorch:"; echo "$needed"; fail=1
    else
        echo "ok: target/release/$b needs no libtorch library"
    fi
done
[ $fail = 0 ] || exit 1

# Peak resident memory (KB) and wall seconds of a command, best of five.
measure() {
    local best_s=999 best_kb=0 out
    for _ in 1 2 3 4 5; do
        out=$( { /usr/bin/time -f '%e %M' "$@" >/dev/null 2>/dev/null; } 2>&1 | tail -n 1)
        read -r s kb <<<"$out"
        if awk -v a="$s" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then best_s=$s; best_kb=$kb; fi
    done
    echo "$best_s s, $((best_kb / 1024)) MiB"
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python - "$work" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(0)
np.save(f"{sys.argv[1]}/e.npy", rng.standard_normal((1000, 64)).astype(np.float32))
open(f"{sys.argv[1]}/ids.txt", "w").write("".join(f"R{i:06d}\n" for i in range(1000)))
PY
index=(index --embeddings "$work/e.npy" --ids "$work/ids.txt" --kind flat --out "$work/i.faiss" --force)
echo
echo "| command | target/release/image-sim | image-sim-torch (libtorch loaded) |"
echo "|---|---|---|"
for cmd in "--help" "${index[*]}"; do
    # shellcheck disable=SC2086
    light=$(measure target/release/image-sim $cmd)
    heavy="(run with --compare)"
    if [ $compare = 1 ]; then
        # shellcheck disable=SC2086
        heavy=$(measure target/release/image-sim-torch $cmd)
    fi
    echo "| \`${cmd%% *}\` | $light | $heavy |"
done
