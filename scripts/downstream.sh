#!/usr/bin/env bash
# Builds and runs a crate outside the workspace that depends on `image-sim` by path, as an
# application would (tests/downstream/main.rs): embed a folder with a tiny CLIP checkpoint,
# index it, query it, and the same with an `Embedder` of its own. The crate is written to a
# temporary folder under target/ (so the repository's .cargo/config.toml and build cache apply)
# with its own Cargo.toml and [workspace]; nothing in it is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck disable=SC1091
source scripts/env.sh
work=$(mktemp -d "$root/target/downstream.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/images"
cp tests/downstream/main.rs "$work/src/main.rs"
# The workspace's lock file: the same dependency versions, so the build cache is reused.
cp Cargo.lock "$work/Cargo.lock"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "downstream"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
image-sim = { path = "$root/crates/image-sim" }

# Not what an application needs: only so that cargo reuses what the test stage built. Each line
# turns on features that the workspace's own dev-dependencies turn on there; without them these
# crates resolve with fewer features, and libc's change alone rebuilt every dependency above it,
# libtorch's C++ bindings included (8.6 minutes on 2 cores). Found, and to be found again when the
# dependencies change, by comparing the units of 'cargo test --workspace --no-run' with this
# build's ('--unit-graph -Z unstable-options', RUSTC_BOOTSTRAP=1): features, profile, host/target.
# (No backquotes in this unquoted here-document: the shell would run what they enclose.)
embed-torch = { path = "$root/crates/embed-torch", features = ["fixtures"] }
vecindex = { path = "$root/crates/vecindex", features = ["hnsw-rs-compare"] }
libc = { version = "0.2", features = ["extra_traits"] }
either = { version = "1", default-features = false, features = ["use_std"] }
env_logger = "0.11"
once_cell = "1"
getrandom = { version = "0.4", features = ["std", "sys_rng"] }
flate2 = "1"
rand_core = { version = "0.6", features = ["std", "getrandom"] }
sha2 = "0.10"
regex-syntax = "0.8"

# Its own workspace: not a member of image-sim's.
[workspace]
TOML
# The workspace's profiles (the last tables of its Cargo.toml): with cargo's defaults every
# dependency, libtorch's C++ bindings included, would be built a second time with other
# settings. Out here the workspace's crates are dependencies, which "*" would build at
# opt-level 3: they get the test profile's level, as `cargo test` built them (a crate outside this
# build's graph, such as disc21-eval, only draws a warning that --quiet leaves out).
sed -n '/^\[profile\./,$p' Cargo.toml >> "$work/Cargo.toml"
for manifest in crates/*/Cargo.toml; do
    name=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n 1)
    printf '\n[profile.test.package.%s]\nopt-level = 2\n' "$name" >> "$work/Cargo.toml"
done
# A tiny random-weight CLIP checkpoint and a few images, made with the project's Python.
.venv/bin/python - "$work" <<'PY'
import os, sys
import numpy as np
from PIL import Image
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
import torch
out = sys.argv[1]
torch.manual_seed(0)
cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, image_size=32, patch_size=8, projection_dim=16)
CLIPVisionModelWithProjection(cfg).save_pretrained(f"{out}/clip")
CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(f"{out}/clip")
rng = np.random.default_rng(0)
for i in range(6):
    h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(f"{out}/images/img{i}.png")
PY
# The test profile, as `cargo test` built the workspace: the registry dependencies' artifacts are
# reused. The workspace's own crates are compiled again (about 100 s on 2 cores): built from this
# crate's workspace root they get other artifact hashes, even with equal features and profiles.
CARGO_TARGET_DIR="$root/target" cargo build --quiet --profile test --manifest-path "$work/Cargo.toml"
"$root/target/debug/downstream" "$work/images" "$work/clip"
