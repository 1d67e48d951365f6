#!/usr/bin/env bash
# autofaiss against `image-sim query`: builds a collection of small synthetic JPEGs with
# `image-sim build` (the test embedder, exact and weightless), has autofaiss build an exact
# index (Flat, inner product) from the collection's img_emb/ folder, and checks that it returns
# the same neighbours, in the same order and with the same similarities, as `image-sim query`
# for images of the collection.
#
# autofaiss needs numpy < 2, so it lives in its own environment, .venv-autofaiss (git-ignored),
# made here with the versions below; the project's .venv is not touched.
#
#   scripts/interop/autofaiss.sh
set -euo pipefail
root=$(cd -- "$(dirname -- "$0")/../.." && pwd)
venv=$root/.venv-autofaiss
pins=(autofaiss==2.18.0 numpy==1.26.4 faiss-cpu==1.15.1 pyarrow==19.0.1)
if ! "$venv/bin/python" -c 'import autofaiss' 2>/dev/null; then
    echo "creating $venv with ${pins[*]}" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
fi
# shellcheck disable=SC1091
source "$root/scripts/env.sh"
(cd "$root" && cargo build -q -p image-sim --bins)
bin=$root/target/debug/image-sim
work=$(mktemp -d "${TMPDIR:-/tmp}/image-sim-autofaiss.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
mkdir -p "$work/images"
"$root/.venv/bin/python" - "$work/images" <<'PY'
import sys, random
from PIL import Image
rng = random.Random(3)
for i in range(300):
    w, h = rng.randint(24, 90), rng.randint(24, 90)
    im = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(8):
        x, y = rng.randrange(w), rng.randrange(h)
        im.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, min(w, x + 11), min(h, y + 11)))
    im.save(f"{sys.argv[1]}/p{i:04d}.jpg", quality=92)
PY
# A grid of 4x4 cells: 48 floats per image; several .npy shards to read.
"$bin" --quiet build --test-model 4 --device cpu --images "$work/images" --out "$work/coll" \
    --rows-per-file 128
queries=()
for i in 0007 0123 0299; do queries+=("$work/images/p$i.jpg"); done
"$bin" query "$work/coll" "${queries[@]}" --k 10 --device cpu --json >"$work/ours.json"
"$venv/bin/python" - "$work/coll" "$work/ours.json" "$work/autofaiss" <<'PY'
import glob, json, sys
import numpy as np
import pyarrow.parquet as pq
from autofaiss import build_index

coll, ours_path, out = sys.argv[1:4]
index, _ = build_index(
    embeddings=f"{coll}/img_emb", index_path=f"{out}/knn.index",
    index_infos_path=f"{out}/infos.json", metric_type="ip", index_key="Flat",
    save_on_disk=True, verbose=30,
)
paths = []
for f in sorted(glob.glob(f"{coll}/metadata/*.parquet")):
    paths += pq.read_table(f).column("image_path").to_pylist()
vectors = np.concatenate([np.load(f) for f in sorted(glob.glob(f"{coll}/img_emb/*.npy"))])
assert index.ntotal == len(paths) == len(vectors), (index.ntotal, len(paths), len(vectors))
ours = json.load(open(ours_path))
for answer in ours:
    name = answer["query"].rsplit("/", 1)[-1]
    row = paths.index(name)
    sims, rows = index.search(vectors[row : row + 1].astype("float32"), len(answer["hits"]))
    theirs = [(paths[r], float(s)) for r, s in zip(rows[0], sims[0])]
    mine = [(h["image_path"], h["similarity"]) for h in answer["hits"]]
    assert [p for p, _ in theirs] == [p for p, _ in mine], (name, theirs, mine)
    assert all(abs(a - b) < 1e-5 for (_, a), (_, b) in zip(theirs, mine)), (theirs, mine)
print(f"autofaiss (Flat, ip) over {index.ntotal} rows from img_emb/: the same top-"
      f"{len(ours[0]['hits'])} neighbours and similarities as image-sim query for {len(ours)} queries")
PY
