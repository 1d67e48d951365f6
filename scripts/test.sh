#!/usr/bin/env bash
# Runs every check and test of the workspace. Sets up what is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# shellcheck disable=SC1091
source scripts/env.sh
# CI builds each crate once: incremental state would only take disk and time there.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

start=$SECONDS
# Each step says when it starts (seconds since the start), so a slow stage shows in CI's log.
step() { printf '\n\033[1m==> [%d s] %s\033[0m\n' "$((SECONDS - start))" "$*" >&2; }

# The last stages need tools that take minutes to fetch or build: system packages (mostly
# network waits) and the fuzz targets (their own target dir). They are prepared in the
# background at the lowest priority while clippy and the tests build, so they mostly fill
# idle time; each stage waits for its job first. A job that fails costs nothing but the time:
# its stage runs the same idempotent installer again and reports the error itself.
mkdir -p target/ci
declare -A background=()
in_background() {
    local name=$1
    shift
    nice -n 19 "$@" >"target/ci/$name.log" 2>&1 &
    background[$name]=$!
}
await() {
    local name=$1
    [ -n "${background[$name]:-}" ] || return 0
    if ! wait "${background[$name]}"; then
        echo "preparing '$name' in the background failed; the stage tries again. Its log:" >&2
        tail -n 30 "target/ci/$name.log" >&2
    fi
    unset "background[$name]"
}
kill_tree() {
    local child
    for child in $(pgrep -P "$1"); do kill_tree "$child"; done
    kill "$1" 2>/dev/null || true
}
# When a stage fails first: the fuzz build is stopped, a package installation is left to
# finish (stopping apt half-way would leave dpkg to be repaired).
leave() {
    [ -z "${background[fuzz-build]:-}" ] || kill_tree "${background[fuzz-build]}"
    [ -z "${background[packages]:-}" ] || wait "${background[packages]}" || true
}
trap leave EXIT
packages=()
[ "${SKIP_BROWSER:-0}" = 1 ] || packages+=(scripts/browser-setup.sh)
[ "${SKIP_SLURM:-0}" = 1 ] || packages+=("scripts/slurm/cluster.sh install")
if [ ${#packages[@]} -gt 0 ]; then
    # One job: apt-get must not run twice at once.
    in_background packages bash -c "$(printf '%s && ' "${packages[@]}") true"
fi

step "cargo fmt --check"
cargo fmt --all --check

step "minimum Rust version (rust-version in Cargo.toml) against the dependency graph"
cargo metadata --format-version 1 --locked | python3 scripts/check_msrv.py

step "cargo clippy (all targets, warnings are errors; includes clippy's incompatible_msrv lint)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Started once clippy has fetched every crate the workspace needs (cargo-fuzz fetches its own).
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    in_background fuzz-build env FUZZ_BUILD_ONLY=1 FUZZ_SANITIZER=none \
        FUZZ_PROFILE="${FUZZ_PROFILE:-dev}" scripts/fuzz.sh
fi

step "cargo test"
cargo test --workspace --locked

# The model binaries (-torch) must keep libtorch_cuda NEEDED even though no symbol of it is
# referenced. (That the light image-sim / disc21-eval need no libtorch is checked on release
# builds by scripts/startup.sh; this debug workspace build links libtorch into them too.)
step "libtorch_cuda stays linked in the model binaries (else CUDA is invisible on a GPU machine)"
if [ -e .venv/torch-lib/libtorch_cuda.so ]; then
    for bin in target/debug/disc21-eval-torch target/debug/image-sim-torch; do
        readelf -d "$bin" | grep -q 'libtorch_cuda.so' \
            || { echo "FAIL: $bin does not link libtorch_cuda.so"; exit 1; }
        echo "ok: $bin NEEDS libtorch_cuda.so"
    done
else
    echo "this libtorch has no CUDA library; nothing to check"
fi

step "a crate outside the workspace depends on image-sim by path (scripts/downstream.sh)"
scripts/downstream.sh

# --examples resolves features as clippy's --all-targets did (dev-dependencies included), so
# rustdoc reuses clippy's checked dependencies: without it, cargo doc checked and built them
# again with other features (libtorch's C++ bindings included), 5 minutes instead of 40 s.
step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --lib --examples

# The service's web page, clip-front and ClipClient against it in headless Chromium
# (scripts/browser.sh installs chromium, playwright-core and clip-retrieval's front end the
# first time; about 20 s once they are there). SKIP_BROWSER=1 leaves it out.
step "browser test (web page, clip-front, ClipClient; screenshots in target/browser/shots)"
await packages
scripts/browser.sh

# Fuzzing: every fuzz target that does not link libtorch, briefly, from the committed seeds
# (scripts/fuzz.sh; longer runs and the libtorch targets: see docs/RELIABILITY.md).
# SKIP_FUZZ=1 leaves it out, FUZZ_SECONDS sets the time per target. libFuzzer's seed is fixed
# (FUZZ_SEED, default 1), so this step gives the same verdict on every run of the same code and a
# failure here reproduces; a random seed a run found crashes in this step that the run before had
# missed. Searching for new crashes is the job of longer runs with random seeds (FUZZ_SEED= empty,
# or scripts/fuzz.sh directly).
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    # An unoptimised build: 1.5 min instead of 5 on a 2-core machine, for runs this short.
    await fuzz-build
    step "fuzzing briefly (decode, vecindex_file, faiss_file; ${FUZZ_SECONDS:-15} s each, dev build, no sanitizer, seed ${FUZZ_SEED-1})"
    FUZZ_SEED="${FUZZ_SEED-1}" FUZZ_SANITIZER=none FUZZ_PROFILE="${FUZZ_PROFILE:-dev}" \
        scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
fi

# Slurm: a one-node cluster (slurm-wlm and munge from Debian, installed when missing) runs the
# script `image-sim slurm-script` prints for 4 shards, with one task requeued while it runs,
# and the merged collection must equal an unsharded `image-sim build` (scripts/slurm/ci.sh,
# which stops the cluster whatever happens). About 50 s on a 2-core box once the binaries are
# built, plus 1-2 min the first time for the packages. SKIP_SLURM=1 leaves it out.
if [ "${SKIP_SLURM:-0}" != 1 ]; then
    step "Slurm: sharded build on a one-node cluster against an unsharded build"
    await packages
    scripts/slurm/ci.sh 4
fi

step "done in $((SECONDS - start)) s"
