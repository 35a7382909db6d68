#!/usr/bin/env bash
# The bundled notebooks through Jupyter's own machinery, as a reader's Jupyter would run
# them: validate each notebooks/*.ipynb with nbformat, then execute it with nbclient on the
# smartnb kernel, installed into a venv of its own (target/ci-venv-nb). Cells tagged
# raises-exception may fail; an error in any other cell fails the check. No ipykernel:
# the only kernel involved is smartnb's.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/ci-venv-nb
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || {
    echo "notebooks_check: cannot create a venv; install python3-venv" >&2
    exit 1
  }
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  nbclient nbformat jupyter_client

cargo build --release --locked

if ! target/release/smartnb kernel --help >/dev/null 2>&1; then
  echo "notebooks_check: target/release/smartnb has no \`kernel\` subcommand, so there is no" >&2
  echo "notebooks_check: Jupyter kernel to install and run the notebooks on (it comes with the kernel branch)" >&2
  exit 1
fi

# Only this venv's kernelspecs: a kernel installed for the user must not shadow it.
export JUPYTER_DATA_DIR="$PWD/$venv/jupyter-data"
export JUPYTER_CONFIG_DIR="$PWD/$venv/jupyter-config"
export JUPYTER_RUNTIME_DIR="$PWD/$venv/jupyter-runtime"
export JUPYTER_PLATFORM_DIRS=0
unset JUPYTER_PATH VIRTUAL_ENV

target/release/smartnb kernel install --prefix "$venv"

shopt -s nullglob
notebooks=(notebooks/*.ipynb)
if [ "${#notebooks[@]}" -eq 0 ]; then
  echo "notebooks_check: no notebooks in notebooks/" >&2
  exit 1
fi

"$venv/bin/python" - "${notebooks[@]}" <<'PY'
import os
import sys
import time

import nbformat
from nbclient import NotebookClient

passed = failed = 0
for path in sys.argv[1:]:
    started = time.monotonic()
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        client = NotebookClient(
            nb,
            kernel_name="smartnb",
            timeout=300,
            allow_errors=False,
            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
        )
        client.execute()
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        if code and not any(cell.outputs for cell in code):
            raise RuntimeError("the kernel produced no output for any cell")
    except Exception as error:  # report every notebook, then fail
        failed += 1
        print(f"FAILED {path}: {type(error).__name__}: {error}", flush=True)
    else:
        passed += 1
        print(f"ok {path} ({time.monotonic() - started:.1f} s)", flush=True)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
