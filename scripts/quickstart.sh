#!/usr/bin/env bash
# One command from a fresh clone: sets everything up (scripts/setup.sh), builds the command
# lines, and runs the whole study on a small generated DISC21-shaped data set: generate →
# embed with CLIP and DINOv2 → index → search → score → report with plots and a gallery.
#
# Weights: the study's checkpoints (openai/clip-vit-base-patch32, facebook/dinov2-base) when
# they are in the local Hugging Face cache or can be downloaded; otherwise real-size
# random-weight checkpoints made with the project's PyTorch, labelled "random weights" on
# every output (their scores say nothing about CLIP or DINOv2: the run shows the system
# working, not the study's result).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# shellcheck disable=SC1091
source scripts/env.sh

cargo build --release --locked -p image-sim -p disc21-eval --bins
bin=target/release
out=target/quickstart
mkdir -p "$out"
started=$SECONDS

echo
echo "== Checkpoints"
if .venv/bin/python scripts/fetch_weights.py; then
    clip=openai/clip-vit-base-patch32
    dinov2=facebook/dinov2-base
else
    echo "The study's checkpoints are not available here: using real-size random-weight"
    echo "checkpoints instead (made once in $out/random-weights; results are labelled)."
    .venv/bin/python scripts/gpu/make_checkpoints.py "$out/random-weights" --images 0 >/dev/null
    for m in clip dinov2; do
        echo "weights drawn at random by scripts/gpu/make_checkpoints.py; not a trained model" \
            > "$out/random-weights/$m/RANDOM_WEIGHTS"
    done
    clip=$out/random-weights/clip
    dinov2=$out/random-weights/dinov2
fi

echo
echo "== A DISC21-shaped data set: 60 references, 30 queries (half of them edited copies)"
"$bin/disc21-eval" generate --out "$out/data" --references 60 --queries 30 --seed 0 --force

echo
echo "== The study: CLIP vs DINOv2 on it (embed, index, search, score, report)"
"$bin/disc21-eval" run --data "$out/data" --models clip,dinov2 \
    --weights-clip "$clip" --weights-dinov2 "$dinov2" --device cpu \
    --out "$out/report" --force

echo
echo "Done in $((SECONDS - started)) s after the build. Look at:"
echo "  $out/report/report.md        accuracy, top-k accuracy, µAP, images/s, side by side"
echo "  $out/report/pr_curves.png, accuracy.png, throughput.png   the plots"
echo "  $out/report/gallery.png      queries with the top-5 references of each model"
echo "Search your own images: $bin/image-sim --help"
