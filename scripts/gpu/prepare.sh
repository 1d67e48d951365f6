#!/usr/bin/env bash
# For a GPU machine without a Rust toolchain: builds the release `disc21-eval-torch` (the binary that runs the models) here and copies it,
# stripped, with the scripts the GPU run needs into .devcarry/ (gitignored). Copy that folder to
# the GPU machine, whose `python3` must have PyTorch 2.11 (the libtorch the binary was built
# against) and transformers, and run `bash .devcarry/run_device_checks.sh` there; see
# scripts/gpu/run_device_checks.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
cargo build --release -p disc21-eval --bin disc21-eval-torch
BIN=target/release/disc21-eval-torch
# libtorch_cuda must be NEEDED, or CUDA stays invisible on the GPU machine (embed-torch's build
# script keeps it linked).
readelf -d "$BIN" | grep -q 'libtorch_cuda.so' || { echo "libtorch_cuda.so is not NEEDED by $BIN" >&2; exit 1; }
mkdir -p .devcarry
strip -o .devcarry/disc21-eval "$BIN"
# The binary's system libraries besides libtorch and glibc (fontconfig and freetype, for the
# report plots' text, and what they load), as a fallback: the GPU machine may lack them, and the
# run script puts .devcarry/lib on the library path only when the loader cannot find them there.
rm -rf .devcarry/lib && mkdir -p .devcarry/lib
ldd "$BIN" | awk '$3 ~ /^\/(usr\/)?lib/ {print $3}' \
  | grep -vE '/(libc|libm|libdl|libpthread|librt|libutil|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' \
  | while read -r lib; do cp -L "$lib" .devcarry/lib/; done
# embed-torch's unit tests (the CUDA event test runs only on a GPU).
TESTS=$(cargo test --release -p embed-torch --lib --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="embed_torch": print(m["executable"])' | tail -1)
strip -o .devcarry/embed_torch_tests "$TESTS"
cp scripts/gpu/baseline.py scripts/gpu/make_checkpoints.py scripts/gpu/run_device_checks.sh .devcarry/
du -sh .devcarry
