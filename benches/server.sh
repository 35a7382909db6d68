#!/usr/bin/env bash
# Server benchmarks: authorized FHIR reads/s against nginx serving the same bytes (wrk,
# interleaved runs, medians, ratio, p99 at 64 connections), token mints/s (refresh_token
# grant, and the debug token endpoint), authorization-code flows/s (benches/flows), and
# the issue-9 load test (200 clients doing flows and FHIR reads for 60 s against one
# server with short code and token lifetimes; errors, 5xx and the server's RSS over time).
#
#   benches/server.sh            the full run (about 6 minutes)
#   benches/server.sh --quick    a few seconds of each, to prove the benches still work
#   SMARTNB=path/to/smartnb benches/server.sh    measure another build (e.g. an older commit)
#
# Targets are reported, never enforced: only broken functionality (a failed flow, a 5xx,
# non-2xx answers under wrk, a server that does not start) makes this script fail.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

# The load test's short lifetimes make codes and tokens expire (and get swept) during the
# run; the quick run keeps them long, so a slow CI machine cannot turn a queued code
# exchange into an "expired" error.
if [ $QUICK = 1 ]; then
  ROUNDS=1 WRK_SECONDS=1 FLOW_SECONDS=2 FLOW_ROUNDS=1 LOAD_CLIENTS=200 LOAD_SECONDS=3 LINGER=1
  CODE_LIFETIME=60 ACCESS_LIFETIME=60 SESSION_LIFETIME=60
else
  ROUNDS=5 WRK_SECONDS=5 FLOW_SECONDS=10 FLOW_ROUNDS=3 LOAD_CLIENTS=200 LOAD_SECONDS=60 LINGER=15
  CODE_LIFETIME=2 ACCESS_LIFETIME=5 SESSION_LIFETIME=10
fi
WRK_CONNECTIONS=64
WRK_THREADS=2
FLOW_CLIENTS=32

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "installing Debian's $2"
    apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }
  fi
}
need wrk wrk
need nginx nginx
need curl curl

echo "building smartnb and the flow generator (release)"
cargo build --release --locked --quiet
FLOWS=$(cargo bench --locked --bench flows --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$FLOWS" ] || { echo "could not find the flows bench executable" >&2; exit 1; }
SMARTNB=${SMARTNB:-target/release/smartnb}

WORK=$(mktemp -d)
SERVER_PID="" NGINX_PID_FILE="$WORK/nginx.pid"
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -f "$NGINX_PID_FILE" ] && kill "$(cat "$NGINX_PID_FILE")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Start `smartnb serve` on a free loopback port; sets SERVER_PID and BASE.
start_server() {
  [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  : > "$WORK/serve.out"
  "$SMARTNB" serve --port 0 --quiet "$@" > "$WORK/serve.out" 2> "$WORK/serve.err" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/serve.out" ] && break; sleep 0.1; done
  BASE=$(head -1 "$WORK/serve.out")
  [ -n "$BASE" ] || { echo "smartnb serve did not start:" >&2; cat "$WORK/serve.err" >&2; exit 1; }
}

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# wrk's latency figures in ms, whatever unit it printed.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f\n", v}'; }

# One wrk run; prints "requests/s p99_ms". Fails on a non-2xx answer or a broken
# connection; a slow answer is latency, not failure (hence the long timeout).
wrk_run() {
  local out
  out=$(wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${WRK_SECONDS}s --timeout 30s --latency "$@")
  if grep -q "Non-2xx" <<<"$out" || grep -qE "Socket errors: .*(connect|read|write) [1-9]" <<<"$out"; then
    echo "wrk saw failures:" >&2; echo "$out" >&2; return 1
  fi
  echo "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"

# --- authorized FHIR reads: smartnb vs nginx, same bytes, same wrk settings, interleaved
start_server
CLIENT=$(curl -sf "$BASE/oauth/register" -H 'Content-Type: application/json' \
  -d '{"client_name":"bench","redirect_uris":["http://localhost:9001/authorized"],"scope":"launch/patient patient/*.read offline_access"}')
CLIENT_ID=$(json_field client_id <<<"$CLIENT")
MINT_BODY="{\"client_id\":\"$CLIENT_ID\",\"username\":\"daniel-adams\",\"patient_id\":\"smart-1288992\"}"
TOKEN=$(curl -sf "$BASE/oauth/debug/token" -H 'Content-Type: application/json' -d "$MINT_BODY" | json_field access_token)
READ_PATH=/api/fhir/Patient/smart-1288992
PORT=${BASE##*:}
SMARTNB_URL="http://127.0.0.1:$PORT$READ_PATH"

mkdir -p "$WORK/root/api/fhir/Patient" "$WORK/logs" "$WORK/tmp"
curl -sf "$SMARTNB_URL" -H "Authorization: Bearer $TOKEN" -o "$WORK/root$READ_PATH"
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $NGINX_PID_FILE;
error_log $WORK/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  types { }
  default_type "application/fhir+json; charset=utf-8";
  server { listen 127.0.0.1:$NGINX_PORT; root $WORK/root; }
}
EOF
chmod -R a+rX "$WORK"
nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/logs/error.log"
NGINX_URL="http://127.0.0.1:$NGINX_PORT$READ_PATH"
for _ in $(seq 1 50); do curl -sf -o /dev/null "$NGINX_URL" && break; sleep 0.1; done
cmp -s <(curl -sf "$NGINX_URL") <(curl -sf "$SMARTNB_URL" -H "Authorization: Bearer $TOKEN") \
  || { echo "nginx and smartnb do not serve the same bytes" >&2; exit 1; }

echo "== authorized FHIR read by id: wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${WRK_SECONDS}s --latency, $ROUNDS interleaved rounds"
: > "$WORK/reads"
for round in $(seq 1 $ROUNDS); do
  s=$(wrk_run -H "Authorization: Bearer $TOKEN" "$SMARTNB_URL")
  n=$(wrk_run -H "Authorization: Bearer $TOKEN" "$NGINX_URL")
  echo "round $round: smartnb $s   nginx $n   (requests/s p99_ms)"
  echo "$s $n" >> "$WORK/reads"
done
S_RPS=$(awk '{print $1}' "$WORK/reads" | median); N_RPS=$(awk '{print $3}' "$WORK/reads" | median)
S_P99=$(awk '{print $2}' "$WORK/reads" | median); N_P99=$(awk '{print $4}' "$WORK/reads" | median)
RATIO=$(awk -v s="$S_RPS" -v n="$N_RPS" 'BEGIN {printf "%.2f", s/n}')
RATIOS=$(awk '{printf "%.2f ", $1/$3}' "$WORK/reads")

echo "== token mints"
cat > "$WORK/mint.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$MINT_BODY'
EOF
DEBUG_MINT=$(wrk_run -s "$WORK/mint.lua" "http://127.0.0.1:$PORT/oauth/debug/token" | awk '{print $1}')
echo "debug token endpoint (POST /oauth/debug/token, wrk -c$WRK_CONNECTIONS): $DEBUG_MINT/s"
: > "$WORK/refresh"
for round in $(seq 1 $FLOW_ROUNDS); do
  "$FLOWS" --url "$BASE" --mode refresh --clients $FLOW_CLIENTS --seconds $FLOW_SECONDS --pid "$SERVER_PID" | tee "$WORK/last" | grep -v '^RESULT'
  sed -n 's/.* rate=\([0-9.]*\).*/\1/p' "$WORK/last" >> "$WORK/refresh"
done
REFRESH=$(median < "$WORK/refresh")

echo "== authorization-code flows (login, consent, code, token, read), $FLOW_CLIENTS clients"
: > "$WORK/flows"
PEOPLE=joseph
[ $QUICK = 1 ] && PEOPLE=all   # the patient picker too, so CI walks every page
for round in $(seq 1 $FLOW_ROUNDS); do
  "$FLOWS" --url "$BASE" --clients $FLOW_CLIENTS --seconds $FLOW_SECONDS --people $PEOPLE --pid "$SERVER_PID" \
    | tee "$WORK/last" | grep -v '^RESULT'
  echo "$(sed -n 's/.* rate=\([0-9.]*\).*/\1/p' "$WORK/last") $(sed -n 's/.* server_cpu_us=\([0-9]*\).*/\1/p' "$WORK/last") $(sed -n 's/.* generator_cpu_us=\([0-9]*\).*/\1/p' "$WORK/last")" >> "$WORK/flows"
done
FLOWS_RATE=$(awk '{print $1}' "$WORK/flows" | median)
FLOW_SERVER_US=$(awk '{print $2}' "$WORK/flows" | median)
FLOW_GENERATOR_US=$(awk '{print $3}' "$WORK/flows" | median)
kill "$(cat "$NGINX_PID_FILE")"; rm -f "$NGINX_PID_FILE"

echo "== load test: $LOAD_CLIENTS clients, flows + 4 FHIR reads each, ${LOAD_SECONDS} s, codes live $CODE_LIFETIME s, access tokens $ACCESS_LIFETIME s, sign-ins $SESSION_LIFETIME s, swept every second"
start_server --code-lifetime $CODE_LIFETIME --access-lifetime $ACCESS_LIFETIME \
  --session-lifetime $SESSION_LIFETIME --sweep-every 1
"$FLOWS" --url "$BASE" --clients $LOAD_CLIENTS --seconds $LOAD_SECONDS --warmup 0 --reads 4 --people all \
  --pid "$SERVER_PID" --linger $LINGER | tee "$WORK/load"
LOAD=$(grep '^RESULT' "$WORK/load")
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$LOAD"; }

cat <<EOF

== server summary ($(date -u +%F), $(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg))
authorized FHIR reads/s (median of $ROUNDS): smartnb $S_RPS, nginx $N_RPS, ratio $RATIO (per round: $RATIOS) target >= 0.5
p99 latency at $WRK_CONNECTIONS connections (median of $ROUNDS): smartnb $S_P99 ms, nginx $N_P99 ms
token mints/s: refresh_token grant $REFRESH (median of $FLOW_ROUNDS, $FLOW_CLIENTS clients); debug endpoint $DEBUG_MINT
authorization-code flows/s (median of $FLOW_ROUNDS, $FLOW_CLIENTS clients): $FLOWS_RATE target >= 2000
  CPU per flow (medians): server $FLOW_SERVER_US µs, generator $FLOW_GENERATOR_US µs: $(nproc) idle cores fit $(awk -v s="$FLOW_SERVER_US" -v g="$FLOW_GENERATOR_US" -v c="$(nproc)" 'BEGIN {if (s+g>0) printf "%.0f", c*1e6/(s+g); else print "?"}') flows/s with the generator beside the server
load test: $(field flows) flows and $(field reads) more FHIR reads in ${LOAD_SECONDS} s by $LOAD_CLIENTS clients; errors $(field errors), 5xx $(field status_5xx); server RSS MB: start $(( $(field rss_start_kb) / 1024 )), half-way $(( $(field rss_half_kb) / 1024 )), end of load $(( $(field rss_load_end_kb) / 1024 )), max $(( $(field rss_max_kb) / 1024 )), ${LINGER} s later $(( $(field rss_final_kb) / 1024 ))
EOF
