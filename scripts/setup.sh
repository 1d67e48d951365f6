#!/usr/bin/env bash
# Sets up everything the workspace needs, idempotently, on Debian or Ubuntu with Rust and
# Python 3 installed:
#   - cmake and nasm (the `turbojpeg` crate builds libjpeg-turbo 3 from source with SIMD),
#   - the project's Python environment .venv with the exact versions of requirements.txt
#     (libtorch for `tch`, and the reference packages the tests compare against),
#   - .venv/torch-lib, a link to libtorch's lib folder that built binaries find at run time.
# Re-running it does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else log "need root for: $*"; return 1
    fi
}

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v nasm >/dev/null || missing+=(nasm)
command -v readelf >/dev/null || missing+=(binutils)
command -v pkg-config >/dev/null || missing+=(pkg-config)
# The report's plots render text with the system's fonts (plotters' ttf backend).
if ! pkg-config --exists fontconfig 2>/dev/null; then
    missing+=(libfontconfig1-dev)
fi
if ! command -v fc-list >/dev/null || [ -z "$(fc-list 2>/dev/null | head -n 1)" ]; then
    missing+=(fontconfig fonts-dejavu-core)
fi
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    missing+=("python3-venv")
fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { log "cargo not found: install Rust from https://rustup.rs"; exit 1; }

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python packages from requirements.txt (torch is large: a few minutes the first time)"
    # torch with its CUDA libraries takes ~5 GB installed, and a first build of the workspace
    # ~10 GB more under target/: say so up front rather than fail half-way with ENOSPC.
    free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
    if [ -n "$free_kb" ] && [ "$free_kb" -lt $((16 * 1024 * 1024)) ]; then
        log "warning: only $((free_kb / 1024)) MiB free on this disk; setup and a first build need ~16 GiB"
    fi
    pip_opts=(--quiet --disable-pip-version-check)
    # CI starts from nothing each time: a pip cache there only doubles the disk the wheels take.
    if [ "${CI:-}" = true ]; then pip_opts+=(--no-cache-dir); fi
    .venv/bin/python -m pip install "${pip_opts[@]}" -r requirements.txt
    echo "$want" > "$stamp"
fi

torch_dir=$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')
ln -sfn "$torch_dir/lib" .venv/torch-lib
log "ready: torch $(.venv/bin/python -c 'import torch; print(torch.__version__)') in .venv"
