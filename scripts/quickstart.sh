#!/usr/bin/env bash
# One command from a fresh clone: sets everything up (scripts/setup.sh), builds the release
# binaries, fetches the study's checkpoints into the Hugging Face cache when the hub is reachable,
# and runs the main job: CLIP and DINOv2 similarity of the two sample images in assets/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# shellcheck disable=SC1091
source scripts/env.sh

cargo build --release --locked -p disc21-eval --bin disc21-eval -p image-sim-examples --example compare_pair
out=target/quickstart
mkdir -p "$out"

echo
echo "== The exact tensors CLIP and DINOv2 see for assets/sample_a.jpg (bit-identical to transformers)"
for model in clip dinov2; do
    target/release/disc21-eval preprocess --model "$model" assets/sample_a.jpg \
        --out "$out/sample_a.$model.npy" --force
done

echo
echo "== Checkpoints (openai/clip-vit-base-patch32, facebook/dinov2-base)"
if .venv/bin/python scripts/fetch_weights.py; then
    echo
    echo "== Main job: how similar are the two sample images?"
    target/release/examples/compare_pair assets/sample_a.jpg assets/sample_b.jpg --model both
else
    cat >&2 <<'MSG'

The checkpoints are neither in the local Hugging Face cache nor downloadable from here.
On a machine with internet access, run `.venv/bin/python scripts/fetch_weights.py` (or
`.venv/bin/hf download openai/clip-vit-base-patch32` and `facebook/dinov2-base`), or copy a
checkpoint folder (config.json, preprocessor_config.json, model.safetensors) and pass it with
--weights-clip / --weights-dinov2, then run:
  target/release/examples/compare_pair assets/sample_a.jpg assets/sample_b.jpg --model both
MSG
fi
