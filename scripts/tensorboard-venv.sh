#!/usr/bin/env bash
# A virtualenv with TensorBoard (its own event-file readers, for the tests of m2m's
# TensorBoard logs, and its server, to look at them). Prints the venv's python on stdout;
# exits non-zero with a one-line reason when it cannot be made (no python3 -m venv, no pip
# access). Idempotent: `${M2M_CACHE:-~/.cache/m2m}/tensorboard-venv`.
set -euo pipefail
VENV="${M2M_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/m2m}/tensorboard-venv"
TENSORBOARD="tensorboard==2.21.0"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import tensorboard" 2>/dev/null; then
    echo "$VENV/bin/python"
    exit 0
fi
command -v python3 >/dev/null || { echo "tensorboard-venv.sh: python3 not found" >&2; exit 1; }
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" 2>/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
    $SUDO apt-get install -y -qq python3-venv >/dev/null 2>&1 \
        || { echo "tensorboard-venv.sh: python3 -m venv is missing (apt-get install python3-venv)" >&2; exit 1; }
fi
rm -rf "$VENV"
python3 -m venv "$VENV" >&2
"$VENV/bin/pip" install -q --disable-pip-version-check "$TENSORBOARD" >&2 \
    || { echo "tensorboard-venv.sh: pip install $TENSORBOARD failed" >&2; exit 1; }
echo "$VENV/bin/python"
