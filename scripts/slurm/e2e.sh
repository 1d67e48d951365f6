#!/usr/bin/env bash
# End to end on a cluster started by cluster.sh, with the real command line: the script
# `image-sim slurm-script` prints submits a sharded `image-sim build` (a job array of SHARDS
# tasks and a merge job chained with --dependency=afterok); one shard task is requeued
# (killed and started again) while it runs; the merged collection must equal an unsharded
# `image-sim build` of the same folder: the same rows, ids, skipped images, vectors, index
# file and search answers, and `image-sim query` must answer the same on both.
#
# The model is the command line's deterministic test embedder (no weights, CPU, a delay per
# batch standing in for a model's time), so the run needs no checkpoint and fits a 2-core box.
#
#   scripts/slurm/e2e.sh DIR [SHARDS]     (DIR as given to cluster.sh start; SHARDS default 4)
#
# Prints the wall time of the sharded run (submission to merged collection) and of the
# unsharded build. E2E_PROFILE=release runs release binaries; E2E_REQUEUE=0 leaves the requeue
# out (to time the sharded run alone); E2E_IMAGES sets the number of images (240).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [SHARDS]" >&2; exit 2; }
root=$(cd -- "$(dirname -- "$0")/../.." && pwd)
dir=$(cd -- "$1" && pwd)
shards=${2:-4}
images_n=${E2E_IMAGES:-240}
export SLURM_CONF=$dir/slurm.conf
work="$dir/e2e work"
rm -rf -- "$work"
mkdir -p -- "$work/images"
now() { date +%s.%N; }
since() { awk "BEGIN { printf \"%.2f\", $(now) - $1 }"; }

profile=${E2E_PROFILE:-debug}
if [ "$profile" = release ]; then
    (cd "$root" && cargo build -q --release -p image-sim --bins -p embed-collection --example fake_build)
else
    # What `cargo test --workspace` builds (bins and examples included), with the same
    # features: after the test stage this builds nothing, where building the two packages
    # alone would unify features differently and rebuild libtorch's bindings.
    (cd "$root" && cargo test -q --workspace --locked --no-run)
fi
bin=$root/target/$profile/image-sim
compare=$root/target/$profile/examples/fake_build

# Small JPEGs of different sizes, and two files that are not images.
"$root/.venv/bin/python" - "$work/images" "$images_n" <<'PY'
import sys, random
from PIL import Image
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
for i in range(n):
    w, h = rng.randint(24, 80), rng.randint(24, 80)
    im = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(6):
        x, y = rng.randrange(w), rng.randrange(h)
        im.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, min(w, x + 9), min(h, y + 9)))
    im.save(f"{out}/img{i:05d}.jpg", quality=90)
for name in ("broken_a.jpg", "broken_b.png"):
    open(f"{out}/{name}", "wb").write(b"not an image")
PY

# What every build runs with: the test embedder (2x2 grid means, 12 floats), an HNSW index
# (built by one thread, so the graph depends on the rows alone), a delay per batch of 8.
model=(--model clip --device cpu --batch-size 8 --workers 1 --kind hnsw)
test_model=(--test-model 2 --test-delay-ms 40)

"$bin" slurm-script --shards "$shards" "${model[@]}" --images "$work/images" \
    --out "$work/out" --job-name e2e -- "${test_model[@]}" >"$work/submit.sh"
t0=$(now)
bash "$work/submit.sh" | tee "$work/submitted.txt"
array=$(sed -n 's/^shard array job: \([0-9]*\).*/\1/p' "$work/submitted.txt")
[ -n "$array" ] || { echo "FAIL: no array job id in the script's output" >&2; exit 1; }
requeue=${E2E_REQUEUE:-1}
for _ in $(seq 300); do
    [ "$requeue" = 1 ] || break
    [ "$(squeue -h -j "${array}_1" -o %T 2>/dev/null)" = RUNNING ] && break
    sleep 0.1
done
if [ "$requeue" = 1 ]; then
    sleep 0.5
    scontrol requeue "${array}_1"
    # A requeued task waits out a start delay (BeginTime); the test does not need to. The update
    # only holds once the task is pending again, so it is repeated until the task starts.
    for _ in $(seq 200); do
        state=$(squeue -h -j "${array}_1" -o %T 2>/dev/null || true)
        [ "$state" = PENDING ] && scontrol update JobId="${array}_1" StartTime=now 2>/dev/null || true
        case "$state" in RUNNING | "") break ;; esac
        sleep 0.1
    done
    echo "requeued task 1 of array $array while it ran (now ${state:-finished})"
fi
for _ in $(seq 3000); do
    [ -z "$(squeue -h -o %i)" ] && break
    sleep 0.2
done
sharded_s=$(since "$t0")
echo "sharded build ($shards tasks + merge) finished $sharded_s s after submission"
cat "$work/out/logs/merge.out"
[ -s "$work/out/collection.json" ] || { echo "FAIL: no merged collection" >&2; tail -n 5 "$work/out/logs/"*.out >&2; exit 1; }
if [ "$requeue" = 1 ]; then
    restarts=$(scontrol show job "${array}_1" | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
    [ "${restarts:-0}" -ge 1 ] || { echo "FAIL: task 1 was not requeued (Restarts=${restarts:-?})" >&2; exit 1; }
    echo "task 1 ran $((restarts + 1)) times"
fi

t1=$(now)
"$bin" --quiet build "${model[@]}" "${test_model[@]}" --images "$work/images" --out "$work/unsharded"
unsharded_s=$(since "$t1")
echo "unsharded build finished in $unsharded_s s"

"$compare" compare "$work/out" "$work/unsharded"
queries=("$work/images/img00003.jpg" "$work/images/img00100.jpg" "$work/images/img00200.jpg")
"$bin" query "$work/out" "${queries[@]}" --k 5 --device cpu --json >"$work/q_sharded.json"
"$bin" query "$work/unsharded" "${queries[@]}" --k 5 --device cpu --json >"$work/q_unsharded.json"
cmp "$work/q_sharded.json" "$work/q_unsharded.json" || { echo "FAIL: query answers differ" >&2; exit 1; }
echo "query answers equal ($(grep -c '"rank"' "$work/q_sharded.json") hits)"
what="$shards tasks"
[ "$requeue" = 1 ] && what="$what, one requeued"
echo "e2e ok: sharded ${sharded_s} s ($what) vs unsharded ${unsharded_s} s"
