#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each (docs/RELIABILITY.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 30. Targets default to the quick ones, which do not link
# libtorch: decode, vecindex_file, faiss_file. FUZZ_TORCH=1 adds (and builds) the libtorch ones:
# checkpoint, csv. Each target starts from the seeds in fuzz/seeds/<target>, the saved reproducers
# in fuzz/regressions/<target>, and whatever earlier runs left in fuzz/corpus/<target> (ignored by
# git). Crashes land in fuzz/artifacts/<target>, logs in fuzz/target/logs; the script exits
# non-zero if any target found one.
#
# Uses cargo-fuzz (installed into .tools/ when missing). It uses nightly-only rustc flags, which the
# stable toolchain accepts with RUSTC_BOOTSTRAP=1 (set here). FUZZ_SANITIZER picks the
# sanitizer (default: address; `none` builds faster and runs about twice as fast). FUZZ_SEED=N
# fixes libFuzzer's random seed (unset: a new one each run). FUZZ_PROFILE=dev builds without
# optimisation (about 4x faster to build, slower to run: for short smoke runs, as CI does); the
# default is release. FUZZ_BUILD_ONLY=1 installs cargo-fuzz and builds the targets, and runs none.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
shift || true
# shellcheck disable=SC1091
source scripts/env.sh
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"
case "${FUZZ_PROFILE:-release}" in
    release) profile=-O ;;
    dev) profile=--dev ;;
    *) echo "FUZZ_PROFILE must be release or dev, not '$FUZZ_PROFILE'" >&2; exit 2 ;;
esac
features=()
if [ "${FUZZ_TORCH:-0}" = 1 ]; then
    features=(--features torch)
    # cargo-fuzz replaces the rustflags that set the RUNPATH to libtorch.
    export LD_LIBRARY_PATH="$PWD/.venv/torch-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ "$#" -gt 0 ]; then
    targets=("$@")
elif [ "${FUZZ_TORCH:-0}" = 1 ]; then
    targets=(decode vecindex_file faiss_file checkpoint csv)
else
    targets=(decode vecindex_file faiss_file)
fi
# cargo-fuzz: the one on PATH, else a pinned copy installed into .tools/ (ignored by git), so a
# fresh machine or CI needs nothing beyond the toolchain.
if ! command -v cargo-fuzz >/dev/null; then
    if [ ! -x .tools/bin/cargo-fuzz ]; then
        echo "installing cargo-fuzz 0.13.2 into .tools/ (about a minute)" >&2
        cargo install cargo-fuzz --version 0.13.2 --locked --root .tools --quiet
    fi
    export PATH="$PWD/.tools/bin:$PATH"
fi

cd fuzz
start=$SECONDS
cargo fuzz build "$profile" -s "$sanitizer" "${features[@]}"
echo "build: $((SECONDS - start)) s"
if [ "${FUZZ_BUILD_ONLY:-0}" = 1 ]; then exit 0; fi

# The file targets write their inputs to a file named after the process; libFuzzer exits without
# running destructors, so they would stay behind in /tmp after every run. A folder per run instead,
# removed at the end.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"
failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    # Saved reproducers start every run too: a regression shows at once.
    cp -n regressions/"$t"/* "corpus/$t/" 2>/dev/null || true
    # Not in artifacts/: cargo-fuzz lists every file there as a failing input.
    mkdir -p target/logs
    log="target/logs/$t.log"
    extra=()
    asan="${ASAN_OPTIONS:-}"
    t0=$SECONDS
    set +e
    if [ -n "${FUZZ_SEED:-}" ]; then
        extra+=(-seed="$FUZZ_SEED")
    fi
    ASAN_OPTIONS="$asan" cargo fuzz run "$profile" -s "$sanitizer" "${features[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        "${extra[@]}" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}' || true)
    n=$(find "corpus/$t" -type f | wc -l)
    line="$t: ${secs} s asked, $((SECONDS - t0)) s wall, ${execs:-?} executions, coverage ${cov:-?}, corpus $n, exit $rc"
    summary+=("$line")
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        # The tail of the log is the input's bytes; show what happened and how to rerun it.
        grep -v '^#[0-9]' "$log" | grep -E -m 30 'panicked|ERROR|deadly|panic|SUMMARY|Test unit written|MS: ' || true
        echo "full log: fuzz/$log"
    fi
done
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crashes; total $((SECONDS - start)) s"
