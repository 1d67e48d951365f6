#!/usr/bin/env bash
# One command from a fresh clone: sets everything up (scripts/setup.sh), builds the release
# binaries, and runs the main job on the sample images shipped in assets/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# shellcheck disable=SC1091
source scripts/env.sh

cargo build --release --locked -p disc21-eval --bin disc21-eval
bin=target/release/disc21-eval
out=target/quickstart
mkdir -p "$out"

echo
echo "== The exact tensors CLIP and DINOv2 see for assets/sample_a.jpg (parity with transformers)"
for model in clip dinov2; do
    "$bin" preprocess --model "$model" assets/sample_a.jpg --out "$out/sample_a.$model.npy" --force
done
