#!/usr/bin/env bash
# End-to-end import benchmark on PostgreSQL.
#
#   scripts/bench-import-pg.sh [LINES] [RUNS]      (defaults: 1000000 lines, 3 runs)
#
# Like bench-import.sh, into a fresh database `vcci_bench` on PG_URL (default
# postgres://postgres@127.0.0.1:5432, trust auth) for each run: imports the demo suppliers,
# then the lines (timed: the import's own lines/s, wall time, peak RSS of `vcci import`),
# then the same file again (every line unchanged), and checks the read models. The client
# and PostgreSQL share the machine's cores. Nothing here is a test: it prints figures.
set -euo pipefail
LINES=${1:-1000000}
RUNS=${2:-3}
PG=${PG_URL:-postgres://postgres@127.0.0.1:5432}
cd "$(dirname "$0")/.."
cargo build --release --locked -p vcci >/dev/null 2>&1 || cargo build --release --locked -p vcci
BIN=${VCCI_BIN:-target/release/vcci}
OUT=${BENCH_DIR:-bench-out}/import-$LINES
mkdir -p "$OUT"
if [ ! -s "$OUT/data/transactions.csv" ]; then
  "$BIN" --data-dir "$OUT/gen" demo --lines "$LINES" --out-dir "$OUT/data" --generate-only
fi
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
psql "$PG/postgres" -qAtc "SELECT version()"
psql "$PG/postgres" -qAtc "SELECT name || '=' || setting FROM pg_settings WHERE name IN ('shared_buffers', 'max_wal_size', 'wal_compression', 'synchronous_commit')"
export DATABASE_URL="$PG/vcci_bench"
for run in $(seq 1 "$RUNS"); do
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS vcci_bench" -qc "CREATE DATABASE vcci_bench"
  "$BIN" import "$OUT/data/suppliers.csv" --org bench --kind suppliers -q >/dev/null
  /usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KB" \
    "$BIN" import "$OUT/data/transactions.csv" --org bench -q 2>&1 | grep -E "Imported|peak RSS"
  /usr/bin/time -f "wall %e s (again, unchanged)" \
    "$BIN" import "$OUT/data/transactions.csv" --org bench -q 2>&1 | grep -E "Imported|wall"
done
"$BIN" verify --org bench
psql "$DATABASE_URL" -qAtc "SELECT pg_size_pretty(pg_database_size('vcci_bench'))"
