#!/usr/bin/env bash
# The Slurm stage of CI: installs slurm-wlm and munge from Debian when missing, starts a
# one-node cluster in a temporary folder (cluster.sh), runs the end-to-end test with the real
# command line (e2e.sh: 4 shard tasks, one requeued, against an unsharded build), and stops
# the cluster whatever happens.
#
#   scripts/slurm/ci.sh [SHARDS]
set -euo pipefail
here=$(cd -- "$(dirname -- "$0")" && pwd)
shards=${1:-4}
dir=$(mktemp -d "${TMPDIR:-/tmp}/image-sim-slurm.XXXXXX")
cleanup() {
    local rc=$?
    "$here/cluster.sh" stop "$dir" || true
    if [ "$rc" != 0 ]; then
        echo "slurm stage failed; daemon logs:" >&2
        tail -n 30 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 2>/dev/null || true
        tail -n 20 "$dir/e2e work/out/logs/"*.out >&2 2>/dev/null || true
    fi
    rm -rf -- "$dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t0=$SECONDS
"$here/cluster.sh" start "$dir"
"$here/e2e.sh" "$dir" "$shards"
echo "slurm stage: $((SECONDS - t0)) s (cluster start, e2e, not counting the build)"
