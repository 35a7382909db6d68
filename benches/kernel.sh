#!/usr/bin/env bash
# Kernel benchmarks (benches/kernel.py): start-up against ipykernel, the walkthrough's FHIR
# read as a `fetch` cell against the seed's `requests` cell, idle tree memory and CPU, the first Rust
# cell (first, and after five helper cells) against evcxr_jupyter, and `smartnb run` of the
# smart-examples notebook.
#
#   benches/kernel.sh            the full run (builds evcxr_jupyter 0.22.0 once, ~10 minutes)
#   benches/kernel.sh --quick    one run of each, smartnb's Rust cell without the comparison
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/bench-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check jupyter_client ipykernel requests

cargo build --release --locked

if [ "${1:-}" = "--quick" ]; then
  "$venv/bin/python" benches/kernel.py --quick
else
  evcxr=target/bench-tools/bin/evcxr_jupyter
  if [ ! -x "$evcxr" ]; then
    cargo install --locked --root target/bench-tools evcxr_jupyter --version 0.22.0
  fi
  "$venv/bin/python" benches/kernel.py --runs 7 --rust-runs 5 --idle-runs 3 --evcxr "$evcxr"
fi
