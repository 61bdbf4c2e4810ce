#!/usr/bin/env bash
# Live updates under load (docs/HTTP.md "Live updates", BENCHMARKS.md): a `vcci serve --demo`
# on loopback holds N idle GET /api/v1/events streams opened by `vcci loadtest
# --events-streams N` (another process), for HOLD seconds with a heartbeat every 5 s; then 20
# writes are timed to their `data` event on every stream. Reports the node's resident memory
# per stream (from its /metrics).
#
#   scripts/bench-events.sh [STREAMS] [HOLD_SECS]     (default 10000 and 20)
#
# Each stream is a socket in each of the two processes, so both need `ulimit -n` above
# STREAMS; the script raises the soft limit to the hard one and says what that allows.
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMS=${1:-10000}
HOLD=${2:-20}
PORT=${BENCH_EVENTS_PORT:-18795}
cargo build --release --locked -p vcci
BIN=${CARGO_TARGET_DIR:-target}/release/vcci
HARD=$(ulimit -Hn)
ulimit -n "$HARD"
echo "file-descriptor limit per process: $(ulimit -n) (hard limit $HARD)"
if [ "$STREAMS" -gt $((HARD - 200)) ]; then
  echo "note: $STREAMS streams need more descriptors than this machine allows per process ($HARD)"
fi
. scripts/demo-server.sh
start_demo_server "$BIN" "$PORT" --events-heartbeat 5 --events-max-streams 1000000 --warm-orgs 0
"$BIN" loadtest --url "http://127.0.0.1:$PORT" --key "$KEY" --events-streams "$STREAMS" \
  --duration "$HOLD" --events-writes 20 --timeout-ms 30000 --json "${BENCH_EVENTS_JSON:-/dev/null}"
