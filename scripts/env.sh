# Source this file to run cargo by hand: `source scripts/env.sh`.
# It activates the project's Python environment, where `tch` finds libtorch
# (LIBTORCH_USE_PYTORCH=1 is set in .cargo/config.toml).
_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ ! -x "$_root/.venv/bin/python" ]; then
    echo "no .venv yet: run $_root/scripts/setup.sh first" >&2
else
    # shellcheck disable=SC1091
    . "$_root/.venv/bin/activate"
    export LIBTORCH_USE_PYTORCH=1
    # Binaries cargo builds find libtorch through a RUNPATH relative to target/; doctests run
    # from a temporary folder, so they need the search path too.
    export LD_LIBRARY_PATH="$_root/.venv/torch-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
unset _root
