#!/usr/bin/env bash
# Judge the embedded server from Python, as the seed notebook's readers would: start
# `smartnb serve --port 0`, read its base URL from the first line it prints, and run
# tests/python/judge_seed.py (requests + fhirclient + fhir.resources) and
# tests/python/relying_party.py (an OpenID Connect relying party: PyJWT + Authlib) and
# tests/python/backend_services.py (SMART Backend Services and private_key_jwt clients: PyJWT
# with cryptography's RSA and EC keys) and tests/python/simulated_faults.py (every simulated
# fault as requests and fhirclient see it) against it. SMARTNB_BIN runs another smartnb
# binary instead of building the release one.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="$target_dir/ci-venv"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || {
        echo "python_checks: cannot create a venv; install python3-venv" >&2
        exit 1
    }
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    requests fhirclient fhir.resources "pyjwt[crypto]" authlib

if [ -n "${SMARTNB_BIN:-}" ]; then
    bin="$SMARTNB_BIN"
else
    cargo build --release --locked
    bin="$target_dir/release/smartnb"
fi

server_pid=""
fifo_dir="$(mktemp -d)"
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$fifo_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The server's stdout goes through a FIFO so its first line can be read as soon as it is
# printed, which the server does only once it accepts connections: no polling, no sleeps.
mkfifo "$fifo_dir/stdout"
"$bin" serve --port 0 --quiet >"$fifo_dir/stdout" &
server_pid=$!
exec 3<"$fifo_dir/stdout"
if ! IFS= read -r -t 120 base <&3; then
    echo "python_checks: the server printed no base URL (did it fail to start?)" >&2
    exit 1
fi
case "$base" in
    http://*) ;;
    *)
        echo "python_checks: the server's first line is not a URL: $base" >&2
        exit 1
        ;;
esac
echo "python_checks: judging $base"

status=0
"$venv/bin/python" tests/python/judge_seed.py "$base" || status=$?
echo "python_checks: an OpenID Connect relying party (PyJWT, Authlib) signs in as every user"
"$venv/bin/python" tests/python/relying_party.py "$base" || status=$?
echo "python_checks: Backend Services and private_key_jwt clients (PyJWT, cryptography) sign assertions"
"$venv/bin/python" tests/python/backend_services.py "$base" || status=$?
echo "python_checks: simulated faults as requests and fhirclient see them, a second client unaffected"
"$venv/bin/python" tests/python/simulated_faults.py "$base" || status=$?
exit "$status"
