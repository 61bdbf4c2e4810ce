#!/usr/bin/env bash
# End-to-end import benchmark on the embedded SQLite store.
#
#   scripts/bench-import.sh [LINES] [RUNS]      (defaults: 1000000 lines, 3 runs)
#
# Generates the deterministic demo data (lines in posting-date order, like an ERP export),
# then, for each run, imports the suppliers and the lines into a fresh data directory and
# reports the import's own lines/s, the wall time and the peak RSS of the `vcci import`
# process (GNU time). Nothing here is a test: it prints figures.
set -euo pipefail
LINES=${1:-1000000}
RUNS=${2:-3}
cd "$(dirname "$0")/.."
cargo build --release --locked -p vcci >/dev/null 2>&1 || cargo build --release --locked -p vcci
BIN=target/release/vcci
OUT=${BENCH_DIR:-bench-out}/import-$LINES
mkdir -p "$OUT"
if [ ! -s "$OUT/data/transactions.csv" ]; then
  "$BIN" --data-dir "$OUT/gen" demo --lines "$LINES" --out-dir "$OUT/data" --generate-only
fi
ls -l "$OUT/data/transactions.csv"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
for run in $(seq 1 "$RUNS"); do
  rm -rf "$OUT/db"
  "$BIN" --data-dir "$OUT/db" import "$OUT/data/suppliers.csv" --org bench --kind suppliers -q 2>/dev/null
  /usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KB" \
    "$BIN" --data-dir "$OUT/db" import "$OUT/data/transactions.csv" --org bench -q 2>&1 | grep -E "Imported|peak RSS"
done
"$BIN" --data-dir "$OUT/db" verify --org bench
du -sh "$OUT/db"
