#!/usr/bin/env bash
# Measures the HTTP API with wrk (Debian package `wrk`) at 64 connections on loopback.
#
#   scripts/bench-api.sh [SECONDS] [EXTRA SERVE FLAGS...]
#   scripts/bench-api.sh 15                       # default configuration (cache on)
#   scripts/bench-api.sh 15 --cache-entries 0     # every request computed (no response cache)
#
# Builds the release binary, starts `vcci serve --demo` (200,000 demo lines) on a fresh data
# directory with rate limiting off, runs each scenario for SECONDS, prints req/s, p50, p99 and
# non-2xx counts, and stops the server. wrk and the server share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
shift || true
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release --locked -p vcci >&2
DIR=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$DIR"
rm -rf "$DIR/data"
PORT=${BENCH_PORT:-18080}
OUT="$DIR/serve.out"
target/release/vcci --data-dir "$DIR/data" serve --demo --listen 127.0.0.1:$PORT --rate-limit 0 "$@" >"$OUT" 2>"$DIR/serve.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.2
done
export VCCI_KEY=$(grep -o 'vcci_[0-9a-f]*' "$OUT" | head -1)
export VCCI_WRK_DIR=$PWD/scripts/wrk
B=http://127.0.0.1:$PORT
W=scripts/wrk
printf '%-34s %10s %9s %9s %8s\n' scenario req/s p50 p99 non-2xx
run() {
  local name=$1; shift
  local r
  r=$(wrk -t2 -c64 -d"${SECS}s" --latency "$@")
  printf '%-34s %10s %9s %9s %8s\n' "$name" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$r")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$r")" \
    "$(awk '$1 == "99%" {print $2}' <<<"$r")" \
    "$(awk '/Non-2xx/ {print $5}' <<<"$r" | grep . || echo 0)"
}
run "/health" "$B/health"
run "summary (same URL)" -s $W/auth.lua "$B/api/v1/emissions/summary"
run "page of 100 lines (same URL)" -s $W/auth.lua "$B/api/v1/transactions?limit=100"
run "page of 100, random date_to" -s $W/page-random.lua "$B"
run "detail (same line)" -s $W/auth.lua "$B/api/v1/transactions/TX-2023-00000001"
run "detail, random of 200k lines" -s $W/detail-random.lua "$B"
run "calculate, 100 lines" -s $W/calculate.lua "$B/api/v1/emissions/calculate"
