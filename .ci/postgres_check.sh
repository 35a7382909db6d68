#!/usr/bin/env bash
# The store suite on all three backends. Memory and SQLite need nothing; PostgreSQL is
# Debian's, installed when missing and started as a throwaway cluster in a temporary
# directory on a free loopback port (as the postgres user when run as root: initdb refuses
# root), then stopped and deleted however the run ends. Runs tests/store_backends.rs and
# tests/store_postgres.rs (the PostgreSQL suite plus two `smartnb serve` processes on one
# database) with SMARTNB_TEST_POSTGRES pointing at the cluster. Then tests/replicas/check.py:
# three `smartnb serve` replicas on one database behind Debian's nginx in plain round robin
# (started on loopback by the check), complete flows through it, replicas killed with
# SIGKILL, failure counting across replicas, key rotation, and the flow load generator.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
fi
bin=$(pg_bin)
[ -x "$bin/initdb" ] || { echo "postgres_check: no initdb under /usr/lib/postgresql" >&2; exit 1; }

work=$(mktemp -d)
as_owner=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$work" --shell /usr/sbin/nologin postgres
  chown postgres "$work"
  as_owner=(runuser -u postgres --)
fi
stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
printf '%s\n' "$password" >"$work/pwfile"
[ ${#as_owner[@]} -eq 0 ] || chown postgres "$work/pwfile"
"${as_owner[@]}" "$bin/initdb" -D "$work/data" -U smartnb --pwfile="$work/pwfile" \
  --auth-host=scram-sha-256 --auth-local=trust -E UTF8 >"$work/initdb.log" ||
  { cat "$work/initdb.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $work -c max_connections=300" start ||
  { cat "$work/server.log" >&2; exit 1; }
echo "postgres_check: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"

export SMARTNB_TEST_POSTGRES="postgres://smartnb:$password@127.0.0.1:$port/postgres"
cargo test --release --locked --test store_backends --test store_postgres

echo "postgres_check: replicas behind nginx round robin"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || {
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light
}
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target_dir/replicas-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check requests
cargo build --release --locked
flows=$(cargo bench --locked --bench flows --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$flows" ] || { echo "postgres_check: could not find the flows bench executable" >&2; exit 1; }
"$venv/bin/python" tests/replicas/check.py --bin "$target_dir/release/smartnb" \
  --postgres "$SMARTNB_TEST_POSTGRES" --psql "$bin/psql" --nginx "$nginx_bin" --flows-bin "$flows"
