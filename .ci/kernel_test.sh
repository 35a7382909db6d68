#!/usr/bin/env bash
# The Jupyter kernel against the official jupyter_kernel_test suite, through a real
# jupyter_client, in a venv of its own (target/ci-venv-kernel). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/ci-venv-kernel
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  jupyter_kernel_test jupyter_client jupyter_core nbclient nbformat pytest

cargo build --release --locked

# Only this venv's kernelspecs: a kernel installed for the user must not shadow it.
export JUPYTER_DATA_DIR="$PWD/$venv/jupyter-data"
export JUPYTER_CONFIG_DIR="$PWD/$venv/jupyter-config"
export JUPYTER_RUNTIME_DIR="$PWD/$venv/jupyter-runtime"
export JUPYTER_PLATFORM_DIRS=0
unset JUPYTER_PATH VIRTUAL_ENV

target/release/smartnb kernel install --prefix "$venv"

specs=$("$venv/bin/jupyter" kernelspec list 2>/dev/null)
echo "$specs"
if ! grep -Eq "^ +smartnb +$PWD/$venv/share/jupyter/kernels/smartnb\$" <<<"$specs"; then
  echo "kernel_test: jupyter kernelspec list does not show smartnb in $venv" >&2
  exit 1
fi

status=0
"$venv/bin/python" -m pytest -q tests/python/test_kernel.py || status=$?
if [ "$status" -eq 5 ]; then
  echo "kernel_test: pytest ran no test" >&2
  exit 1
fi
exit "$status"
