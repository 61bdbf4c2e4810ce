#!/usr/bin/env bash
# What one line costs PostgreSQL, part by part: binary COPY of the 1,000,000 lines of the
# import benchmark into scratch tables with one index at a time, the key table, and the same
# indexes built afterwards (sorted builds), all on one connection, timed by psql.
#
#   scripts/bench-pg-components.sh [RUNS]      (default 2)
#
# Needs the database that `scripts/bench-import-pg.sh` leaves behind (`vcci_bench`, 1M lines,
# PG_URL as there). Scratch tables are made and dropped in it; nothing else is touched.
# Nothing here is a test: it prints figures (milliseconds per 1,000,000 rows).
set -euo pipefail
RUNS=${1:-2}
DB=${PG_URL:-postgres://postgres@127.0.0.1:5432}/vcci_bench
export PGOPTIONS='-c client_min_messages=warning'
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
psql "$DB" -qAtc "SELECT count(*) FROM transactions" >/dev/null \
  || { echo "run scripts/bench-import-pg.sh first (it leaves $DB)" >&2; exit 1; }
psql "$DB" -qc "\copy (SELECT * FROM transactions ORDER BY day, transaction_id) TO '$TMP/lines.bin' WITH (FORMAT binary)"
psql "$DB" -qc "\copy (SELECT * FROM transaction_keys ORDER BY transaction_id) TO '$TMP/keys.bin' WITH (FORMAT binary)"
# ms of the last timed statement of a psql script
timed() { psql "$DB" -q -v ON_ERROR_STOP=1 -c '\timing on' "$@" | awk '/^Time:/ {t=$2} END {printf "%8.0f", t}'; }
copy_into() { # $1 = extra DDL after CREATE TABLE x (LIKE transactions)
  psql "$DB" -qc "DROP TABLE IF EXISTS vcci_scratch" -qc "CREATE TABLE vcci_scratch (LIKE transactions)" -qc "$1" >/dev/null
  timed -c "\copy vcci_scratch FROM '$TMP/lines.bin' WITH (FORMAT binary)"
}
printf '%-58s' "rows only (heap)"; for r in $(seq "$RUNS"); do copy_into "SELECT 1"; done; echo
printf '%-58s' "+ primary key (org_id, day, transaction_id)"
for r in $(seq "$RUNS"); do copy_into "ALTER TABLE vcci_scratch ADD PRIMARY KEY (org_id, day, transaction_id)"; done; echo
printf '%-58s' "+ (org_id, category, day, transaction_id)"
for r in $(seq "$RUNS"); do copy_into "CREATE INDEX ON vcci_scratch (org_id, category, day, transaction_id)"; done; echo
printf '%-58s' "+ (org_id, supplier_id, day, transaction_id)"
for r in $(seq "$RUNS"); do copy_into "CREATE INDEX ON vcci_scratch (org_id, supplier_id, day, transaction_id)"; done; echo
printf '%-58s' "all three indexes"
for r in $(seq "$RUNS"); do copy_into "ALTER TABLE vcci_scratch ADD PRIMARY KEY (org_id, day, transaction_id); CREATE INDEX ON vcci_scratch (org_id, category, day, transaction_id); CREATE INDEX ON vcci_scratch (org_id, supplier_id, day, transaction_id)"; done; echo
printf '%-58s' "keys: rows + primary key (org_id, transaction_id)"
for r in $(seq "$RUNS"); do
  psql "$DB" -qc "DROP TABLE IF EXISTS vcci_scratch_keys" -qc "CREATE TABLE vcci_scratch_keys (LIKE transaction_keys) WITH (fillfactor = 70)" -qc "ALTER TABLE vcci_scratch_keys ADD PRIMARY KEY (org_id, transaction_id)" >/dev/null
  timed -c "\copy vcci_scratch_keys FROM '$TMP/keys.bin' WITH (FORMAT binary)"
done; echo
for idx in "(org_id, day, transaction_id)" "(org_id, category, day, transaction_id)" "(org_id, supplier_id, day, transaction_id)"; do
  printf '%-58s' "built afterwards: $idx"
  for r in $(seq "$RUNS"); do
    copy_into "SELECT 1" >/dev/null
    timed -c "CREATE INDEX ON vcci_scratch $idx"
  done; echo
done
psql "$DB" -qc "DROP TABLE IF EXISTS vcci_scratch" -qc "DROP TABLE IF EXISTS vcci_scratch_keys"
