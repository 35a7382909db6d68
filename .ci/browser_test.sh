#!/usr/bin/env bash
# The portal's authorization-code flow in a real browser: Debian's Chromium, driven by
# playwright-core, against `smartnb serve --port 0`. Installs what is missing, builds,
# starts the server, waits for the base URL on its first stdout line, runs
# tests/browser/consent.mjs and tests/browser/ehr_launch.mjs (each prints "N passed,
# M failed" and saves screenshots to target/screenshots/), and stops the server however
# the run ends.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=no
apt_install() {
  if [ "$apt_updated" = no ]; then
    apt-get update
    apt_updated=yes
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

[ -x /usr/bin/chromium ] || apt_install chromium
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
if [ ! -d tests/browser/node_modules/playwright-core ] ||
  [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/browser --no-audit --no-fund
fi

cargo build --release --locked

work=$(mktemp -d)
mkfifo "$work/stdout"
target/release/smartnb serve --port 0 >"$work/stdout" 2>"$work/stderr" &
server=$!
stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  exec 3<&- 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT
exec 3<"$work/stdout"

# The server prints its base URL once it accepts connections: no sleeping, just reading.
if ! read -r -t 120 base_url <&3 || [ -z "$base_url" ]; then
  echo "browser_test: the server did not print its base URL; its stderr:" >&2
  cat "$work/stderr" >&2
  exit 1
fi
echo "browser_test: server at $base_url"

status=0
node tests/browser/consent.mjs "$base_url" || status=1
node tests/browser/ehr_launch.mjs "$base_url" || status=1
exit "$status"
