#!/usr/bin/env bash
# SQLite import speed on files in date order and in random order, each against the bare
# `sqlite3 .import` of the same file measured in the same run (the baseline: no parsing
# beyond CSV, no calculation, no index, one table of text columns).
#
#   scripts/bench-import-order.sh [LINES] [RUNS]      (defaults: 1000000 lines, 3 runs)
#
# VCCI_BIN=path/to/vcci compares another build (default: this tree's release build).
# Needs the sqlite3 shell (Debian `sqlite3`) and GNU time. Nothing here is a test: it prints
# figures, one line per run and order, and the ratio vcci / sqlite3.
set -euo pipefail
LINES=${1:-1000000}
RUNS=${2:-3}
cd "$(dirname "$0")/.."
if [ -z "${VCCI_BIN:-}" ]; then
  cargo build --release --locked -p vcci >/dev/null 2>&1 || cargo build --release --locked -p vcci
  VCCI_BIN=target/release/vcci
fi
command -v sqlite3 >/dev/null || { echo "needs the sqlite3 shell (apt-get install sqlite3)"; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
OUT=${BENCH_DIR:-bench-out}/order-$LINES
mkdir -p "$OUT"
if [ ! -s "$OUT/data/transactions.csv" ]; then
  "$VCCI_BIN" --data-dir "$OUT/gen" demo --lines "$LINES" --out-dir "$OUT/data" --generate-only
fi
# Random order: the same lines shuffled with a fixed seed (header kept first).
if [ ! -s "$OUT/data/random.csv" ]; then
  { head -1 "$OUT/data/transactions.csv"
    tail -n +2 "$OUT/data/transactions.csv" | shuf --random-source=<(yes vcci); } > "$OUT/data/random.csv"
fi
now() { date +%s.%N; }
for run in $(seq 1 "$RUNS"); do
  for order in date random; do
    f="$OUT/data/transactions.csv"; [ "$order" = random ] && f="$OUT/data/random.csv"
    rm -f "$OUT/baseline.db"
    t0=$(now)
    sqlite3 "$OUT/baseline.db" ".mode csv" ".import $f t"
    t1=$(now)
    base=$(echo "$LINES / ($t1 - $t0)" | bc)
    rm -rf "$OUT/db"
    "$VCCI_BIN" --data-dir "$OUT/db" import "$OUT/data/suppliers.csv" --org bench --kind suppliers -q 2>/dev/null
    res=$(/usr/bin/time -f "rss=%M" "$VCCI_BIN" --data-dir "$OUT/db" import "$f" --org bench -q 2>&1)
    rate=$(echo "$res" | grep -o '([0-9,]* lines/s)' | tr -dc '0-9')
    rss=$(echo "$res" | grep -o 'rss=[0-9]*' | cut -d= -f2)
    echo "run $run $order: sqlite3 .import $base rows/s, vcci $rate lines/s, ratio $(echo "scale=2; $rate / $base" | bc), peak RSS $((rss / 1024)) MB"
  done
done
"$VCCI_BIN" --data-dir "$OUT/db" verify --org bench
