#!/usr/bin/env bash
# The API scenarios of bench-api.sh on PostgreSQL + Redis, with one node or several nodes
# behind nginx (round robin, keep-alive upstreams), all on loopback.
#
#   scripts/bench-api-cluster.sh [SECONDS] [NODES]        (defaults: 15 s, 1 node)
#
# Needs wrk and nginx (Debian packages), PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis
# on 127.0.0.1:6379; PG_URL and REDIS_URL override. Loads the demo (200,000 lines) into a
# fresh database `vcci_bench_api`, starts NODES `vcci serve` processes sharing it and Redis,
# and with NODES > 1 an nginx in front of them on port 18080. wrk, nginx, the nodes,
# PostgreSQL and Redis all share the machine's cores. Nothing here is a test: it prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
NODES=${2:-1}
PG=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS=${REDIS_URL:-redis://127.0.0.1:6379}
for t in wrk nginx psql; do
  command -v $t >/dev/null || { echo "$t is not installed (apt-get install -y wrk nginx postgresql-client)" >&2; exit 1; }
done
cargo build --release --locked -p vcci >&2
BIN=target/release/vcci
DIR=$(mktemp -d)
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS vcci_bench_api" -qc "CREATE DATABASE vcci_bench_api" >&2
export DATABASE_URL="$PG/vcci_bench_api"
"$BIN" demo >/dev/null
export VCCI_KEY=$("$BIN" keys create --org demo --role admin | tail -1)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
PREFIX="bench-$$:"
UPSTREAMS=""
for n in $(seq 1 "$NODES"); do
  port=$((18080 + n))
  "$BIN" serve --listen 127.0.0.1:$port --rate-limit 0 --redis-url "$REDIS" --redis-prefix "$PREFIX" \
    >"$DIR/node$n.out" 2>"$DIR/node$n.err" &
  PIDS+=($!)
  UPSTREAMS+="    server 127.0.0.1:$port;"$'\n'
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
if [ "$NODES" -gt 1 ]; then
  cat >"$DIR/nginx.conf" <<EOF
worker_processes 2;
pid $DIR/nginx.pid;
error_log $DIR/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  upstream vcci {
$UPSTREAMS    keepalive 128;
  }
  server {
    listen 127.0.0.1:18080;
    location / {
      proxy_pass http://vcci;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
  nginx -c "$DIR/nginx.conf" -p "$DIR"
  B=http://127.0.0.1:18080
else
  B=http://127.0.0.1:18081
fi
for _ in $(seq 1 100); do curl -sf "$B/ready" >/dev/null 2>&1 && break; sleep 0.1; done
echo "nodes: $NODES, PostgreSQL + Redis, $(curl -s "$B/ready")"
W=scripts/wrk
export VCCI_WRK_DIR=$PWD/scripts/wrk
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
