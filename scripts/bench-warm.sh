#!/usr/bin/env bash
# The first 1,000 requests after a restart, with and without cache warming.
#
#   scripts/bench-warm.sh [ORGS] [LINES_PER_ORG]      (defaults: 10 organizations, 20000 lines)
#
# Loads ORGS organizations with the same generated demo data (release build; VCCI_BIN picks
# another), then for `--warm-orgs 0` and `--warm-orgs ORGS`, twice each: starts
# `vcci serve`, waits for /ready to answer 200, and sends 1,000 requests on one keep-alive
# connection — the dashboard's first requests (overview, first transactions page, factor
# catalogue: the paths a warming answers) for organizations in turn, in a fixed random
# order. Prints p50/p95/p99/max and the time /ready took. Nothing here is a test.
set -euo pipefail
ORGS=${1:-10}
LINES=${2:-20000}
cd "$(dirname "$0")/.."
if [ -z "${VCCI_BIN:-}" ]; then
  cargo build --release --locked -p vcci >/dev/null 2>&1 || cargo build --release --locked -p vcci
  VCCI_BIN=target/release/vcci
fi
OUT=${BENCH_DIR:-bench-out}/warm-$ORGS-$LINES
PORT=${BENCH_PORT:-18794}
if [ ! -s "$OUT/keys" ]; then
  rm -rf "$OUT"; mkdir -p "$OUT"
  "$VCCI_BIN" --data-dir "$OUT/gen" demo --lines "$LINES" --out-dir "$OUT/data" --generate-only >/dev/null
  for i in $(seq 1 "$ORGS"); do
    "$VCCI_BIN" --data-dir "$OUT/db" import "$OUT/data/suppliers.csv" --org "org$i" --kind suppliers -q 2>/dev/null
    "$VCCI_BIN" --data-dir "$OUT/db" import "$OUT/data/transactions.csv" --org "org$i" -q 2>/dev/null
    "$VCCI_BIN" --data-dir "$OUT/db" keys create --org "org$i" --role viewer | tail -1 >> "$OUT/keys"
  done
fi
run() {
  local warm=$1
  "$VCCI_BIN" --data-dir "$OUT/db" serve --listen "127.0.0.1:$PORT" --rate-limit 0 --warm-orgs "$warm" \
    >"$OUT/serve.out" 2>"$OUT/serve.err" &
  local pid=$!
  local t0; t0=$(date +%s.%N)
  until curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null; do sleep 0.02; done
  local t1; t1=$(date +%s.%N)
  python3 - "$PORT" "$OUT/keys" "$warm" "$(echo "$t1 - $t0" | bc)" <<'PY'
import http.client, random, sys, time
port, keys, warm, ready = int(sys.argv[1]), open(sys.argv[2]).read().split(), sys.argv[3], float(sys.argv[4])
paths = ["/api/v1/emissions/summary", "/api/v1/emissions/by-month", "/api/v1/emissions/by-supplier?limit=10",
         "/api/v1/transactions?limit=25&fields=transaction_id%2Cdate%2Csupplier_id%2Csupplier_name%2Cemission",
         "/api/v1/factors?limit=25", "/api/v1/factors?set=epa&limit=25", "/api/v1/factors?set=desnz&limit=25"]
rng = random.Random(7)
reqs = [(k, p) for k in keys for p in paths]
plan = [rng.choice(reqs) for _ in range(1000)]
c = http.client.HTTPConnection("127.0.0.1", port)
lat = []
for key, path in plan:
    t = time.perf_counter()
    c.request("GET", path, headers={"Authorization": "Bearer " + key})
    r = c.getresponse(); r.read()
    assert r.status == 200, (r.status, path)
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"warm-orgs {warm:>2}: /ready after {ready:.2f} s; first 1,000 requests p50 {q(.5):.2f} ms, p95 {q(.95):.2f} ms, p99 {q(.99):.2f} ms, max {lat[-1]:.2f} ms")
PY
  kill $pid; wait $pid 2>/dev/null || true
}
for round in 1 2; do
  run 0
  run "$ORGS"
done
