#!/usr/bin/env bash
# SMART Health IT's JavaScript client (npm `fhirclient`, its Node adapter) does an EHR launch
# against `smartnb serve --port 0`: installs tests/node's locked dependencies with `npm ci`,
# builds, starts the server, reads its base URL from the first line it prints, runs
# tests/node/ehr_launch.mjs and tests/node/faults.mjs (simulated faults through
# client.request and client.refresh; each prints "N passed, M failed") and stops the server
# however the run ends. SMARTNB_BIN runs another smartnb binary instead of building the
# release one.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node_check: needs Node.js 20 or later and npm (e.g. apt-get install nodejs npm)" >&2
    exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
    echo "node_check: needs Node.js 20 or later, found $(node --version)" >&2
    exit 1
fi

# fhirclient's optional dependencies (React Native's and Expo's crypto) and install scripts
# (core-js's banner) are not needed in Node.
if [ ! -d tests/node/node_modules/fhirclient ] ||
    [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then
    npm ci --prefix tests/node --omit=optional --ignore-scripts --no-audit --no-fund
fi

if [ -n "${SMARTNB_BIN:-}" ]; then
    bin="$SMARTNB_BIN"
else
    cargo build --release --locked
    bin="${CARGO_TARGET_DIR:-$root/target}/release/smartnb"
fi

server_pid=""
work="$(mktemp -d)"
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    exec 3<&- 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The server's stdout goes through a FIFO so its first line can be read as soon as it is
# printed, which the server does only once it accepts connections: no polling, no sleeps.
mkfifo "$work/stdout"
"$bin" serve --port 0 >"$work/stdout" 2>"$work/stderr" &
server_pid=$!
exec 3<"$work/stdout"
if ! IFS= read -r -t 120 base <&3 || [ -z "$base" ]; then
    echo "node_check: the server printed no base URL; its stderr:" >&2
    cat "$work/stderr" >&2
    exit 1
fi
case "$base" in
    http://*) ;;
    *)
        echo "node_check: the server's first line is not a URL: $base" >&2
        exit 1
        ;;
esac
version="$(node -p 'require("./tests/node/node_modules/fhirclient/package.json").version')"
echo "node_check: fhirclient $version launches from the EHR at $base"

status=0
node tests/node/ehr_launch.mjs "$base" || status=$?
echo "node_check: fhirclient $version meets simulated faults"
node tests/node/faults.mjs "$base" || status=$?
exit "$status"
