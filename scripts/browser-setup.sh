#!/usr/bin/env bash
# Installs what the browser test needs, idempotently: Debian's `chromium` (apt), the pinned
# `playwright-core` (npm ci in tests/browser/, from its package-lock.json) and a separate
# Python environment `.venv-clip-retrieval` with clip-retrieval (--no-deps: its static front
# end and ClipClient only) and ClipClient's `requests`, versions in tests/browser/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
    echo "installing chromium (apt)" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

if ! command -v npm >/dev/null; then
    echo "npm is missing: install Node.js 18 or newer (apt-get install nodejs npm)" >&2
    exit 1
fi
if [ ! -d tests/browser/node_modules/playwright-core ] \
    || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

venv=.venv-clip-retrieval
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/browser/requirements.txt "$stamp"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        -r tests/browser/requirements.txt
    cp tests/browser/requirements.txt "$stamp"
fi
