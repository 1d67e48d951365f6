"""Checks the declared minimum Rust version (workspace `rust-version`) against the dependency graph.

Reads `cargo metadata` on stdin and fails when a package needs a newer Rust than the workspace
declares. Together with clippy's `incompatible_msrv` lint (standard-library APIs newer than the
declared version, run with -D warnings in scripts/test.sh) this is how CI tests the MSRV: only one
toolchain can be installed on the CI machine, so an older compiler cannot be run there.
"""

import json
import sys


def version(text):
    return tuple(int(x) for x in text.split("."))[:3] + (0,) * (3 - len(text.split(".")))


meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
declared = {p["rust_version"] for p in meta["packages"] if p["id"] in members and p.get("rust_version")}
if len(declared) != 1:
    sys.exit(f"workspace members declare different rust-versions: {sorted(declared)}")
msrv = declared.pop()
too_new = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p.get("rust_version") and version(p["rust_version"]) > version(msrv)
)
if too_new:
    for name, ver, rv in too_new:
        print(f"{name} {ver} needs Rust {rv} > declared {msrv}", file=sys.stderr)
    sys.exit(1)
print(f"MSRV {msrv}: all {len(meta['packages'])} packages of the dependency graph accept it")
