#!/usr/bin/env bash
# Runs `vcci loadtest` scenarios against a `vcci serve --demo` process (SQLite, one node) on
# loopback and prints each report. The load generator and the server share the machine.
#
#   scripts/bench-loadtest.sh [SECONDS]        # default 20 s per scenario
#
# Reports (JSON and HTML) go to $BENCH_DIR/reports (a temporary directory by default).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
cargo build --release --locked -p vcci >&2
DIR=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$DIR/reports"
rm -rf "$DIR/data"
PORT=${BENCH_PORT:-18081}
# Rate limiting is off: one API key drives the whole load.
target/release/vcci --data-dir "$DIR/data" serve --demo --listen 127.0.0.1:$PORT --rate-limit 0 >"$DIR/serve.out" 2>"$DIR/serve.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.2
done
export VCCI_KEY=$(grep -o 'vcci_[0-9a-f]*' "$DIR/serve.out" | head -1)
URL=http://127.0.0.1:$PORT
lt() {
  local name=$1; shift
  echo "=== $name: vcci loadtest $*"
  target/release/vcci loadtest --url "$URL" --quiet --duration "$SECS" \
    --json "$DIR/reports/$name.json" --html "$DIR/reports/$name.html" "$@" || true
  echo
}
lt read-heavy-5k  --scenario read-heavy  --rate 5000
lt read-heavy-20k --scenario read-heavy  --rate 20000 --connections 512
lt mixed-5k       --scenario mixed       --rate 5000
lt write-heavy-1k --scenario write-heavy --rate 1000
lt write-heavy-2k --scenario write-heavy --rate 2000
lt write-heavy-3k --scenario write-heavy --rate 3000
lt calculate-2k   --scenario calculate   --rate 2000
lt closed-64      --scenario read-heavy  --mode closed --users 64
lt spike-mixed    --scenario mixed       --rate 2000 --shape spike --spike-factor 3
lt soak-mixed     --scenario mixed       --rate 2000 --shape soak
lt ramp-mixed     --scenario mixed       --rate 5000 --shape ramp --ramp-secs "$SECS"
echo "reports: $DIR/reports"
