#!/usr/bin/env bash
# The browser test: the service's web page, clip-front (clip-retrieval's own front end, from
# its wheel) and clip-retrieval's ClipClient against the demo service (two collections made
# with the host test model), in headless Chromium driven by playwright-core.
# Screenshots and logs: target/browser/. SKIP_BROWSER=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SKIP_BROWSER:-0}" = 1 ]; then
    echo "SKIP_BROWSER=1: browser test skipped"
    exit 0
fi
start=$SECONDS
scripts/browser-setup.sh
# shellcheck disable=SC1091
[ -x .venv/bin/python ] && source scripts/env.sh
out=target/browser
rm -rf "$out"
mkdir -p "$out/shots"

# The demo example as `cargo test --workspace` builds it (examples included): after the test
# stage this builds nothing, where `-p image-sim-serve` alone would resolve features differently
# and rebuild most dependencies (2.5 minutes on 2 cores).
cargo test --quiet --workspace --locked --no-run
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

target/debug/examples/demo --dir "$out/demo" --port 0 >"$out/demo.out" 2>"$out/demo.log" &
pids+=($!)
for _ in $(seq 1 100); do
    grep -q '^READY ' "$out/demo.out" 2>/dev/null && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$out/demo.log" >&2; exit 1; }
    sleep 0.1
done
server=$(sed -n 's/^READY //p' "$out/demo.out")
[ -n "$server" ] || { echo "the demo service did not start" >&2; exit 1; }
echo "demo service at $server"

# clip-front's static build from the wheel, with a config naming the service.
site=$(.venv-clip-retrieval/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp -r "$site/front/build" "$out/clip-front"
printf '{"defaultBackend": "%s", "defaultIndex": "clip", "urlColumn": "url"}\n' "$server" \
    >"$out/clip-front/config.json"
front_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$front_port" --bind 127.0.0.1 --directory "$out/clip-front" \
    >"$out/clip-front.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$front_port/config.json" >/dev/null 2>&1 && break
    sleep 0.1
done

query="$out/demo/images/queries/Q00000.jpg"
SERVER="$server" FRONT="http://127.0.0.1:$front_port" QUERY="$PWD/$query" SHOTS="$PWD/$out/shots" \
    node tests/browser/page.test.mjs
.venv-clip-retrieval/bin/python tests/browser/clip_client_check.py "$server" "$site" "$query"

# The service stops cleanly on SIGTERM.
kill -TERM "${pids[0]}"
wait "${pids[0]}"
echo "demo service stopped on SIGTERM (exit 0)"
pids=("${pids[@]:1}")
echo "browser test passed in $((SECONDS - start)) s; screenshots in $out/shots"
