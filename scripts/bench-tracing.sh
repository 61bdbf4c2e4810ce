#!/usr/bin/env bash
# The cost of tracing on the cached summary route, measured with wrk (Debian package `wrk`).
#
#   scripts/bench-tracing.sh [SECONDS] [ROUNDS] [BASELINE_BINARY]
#
# Builds the release binary and loads the demo company once; then, ROUNDS times in turn,
# starts `vcci serve` on that data in each configuration and runs wrk (-t2 -c64) on
# /api/v1/emissions/summary for SECONDS:
#   off        no OTLP endpoint (the default);
#   ratio 0    exporting, sampling ratio 0 (spans are made and dropped);
#   ratio 1    exporting every trace to a local OTLP/HTTP sink (scripts/otlp-sink.py, which
#              reads and counts what it is sent, on the same cores);
#   baseline   BASELINE_BINARY (e.g. a build of an earlier commit), when given.
# Rate limiting is off. Prints req/s, p50, p99 and non-2xx per run, and the sink's counts.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
ROUNDS=${2:-2}
BASELINE=${3:-}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release --locked -p vcci >&2
BIN=$PWD/target/release/vcci
DIR=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$DIR"
rm -rf "$DIR/data"
PORT=${BENCH_PORT:-18080}
SINK_PORT=${BENCH_SINK_PORT:-14318}
python3 scripts/otlp-sink.py "$SINK_PORT" >"$DIR/sink.out" 2>&1 &
SINK=$!
SERVER=
trap 'kill $SERVER $SINK 2>/dev/null || true' EXIT

start() { # BINARY ARGS...
  local bin=$1; shift
  "$bin" --data-dir "$DIR/data" serve --listen 127.0.0.1:$PORT --rate-limit 0 --warm-orgs 0 "$@" \
    >"$DIR/serve.out" 2>"$DIR/serve.err" &
  SERVER=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "the server did not start: $(cat "$DIR/serve.err")" >&2
  exit 1
}
stop() {
  kill -TERM $SERVER 2>/dev/null || true
  wait $SERVER 2>/dev/null || true
}

# The demo company, once (its key printed by --demo).
start "$BIN" --demo
export VCCI_KEY=$(grep -o 'vcci_[0-9a-f]*' "$DIR/serve.out" | head -1)
stop
export VCCI_WRK_DIR=$PWD/scripts/wrk
URL=http://127.0.0.1:$PORT/api/v1/emissions/summary

printf '%-10s %-6s %10s %9s %9s %8s\n' config round req/s p50 p99 non-2xx
run() { # NAME ROUND BINARY ARGS...
  local name=$1 round=$2 bin=$3; shift 3
  start "$bin" "$@"
  wrk -t2 -c64 -d2s -s scripts/wrk/auth.lua "$URL" >/dev/null # warm the cache and the key
  local r
  r=$(wrk -t2 -c64 -d"${SECS}s" --latency -s scripts/wrk/auth.lua "$URL")
  stop
  printf '%-10s %-6s %10s %9s %9s %8s\n' "$name" "$round" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$r")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$r")" \
    "$(awk '$1 == "99%" {print $2}' <<<"$r")" \
    "$(awk '/Non-2xx/ {print $5}' <<<"$r" | grep . || echo 0)"
}
OTLP=(--otlp-endpoint "http://127.0.0.1:$SINK_PORT")
# Odd rounds run the configurations in one order, even rounds in the reverse one, so that
# a drift of the machine during a round does not favour one of them.
for round in $(seq 1 "$ROUNDS"); do
  configs=(baseline off ratio0 ratio1)
  [ $((round % 2)) -eq 0 ] && configs=(ratio1 ratio0 off baseline)
  for c in "${configs[@]}"; do
    case $c in
      baseline) [ -n "$BASELINE" ] && run baseline "$round" "$BASELINE" ;;
      off) run off "$round" "$BIN" ;;
      ratio0) run "ratio 0" "$round" "$BIN" "${OTLP[@]}" --otlp-sampling-ratio 0 ;;
      ratio1) run "ratio 1" "$round" "$BIN" "${OTLP[@]}" --otlp-sampling-ratio 1 ;;
    esac
  done
done
kill -USR1 $SINK 2>/dev/null || true
sleep 0.5
echo "OTLP sink: $(tail -1 "$DIR/sink.out")"
