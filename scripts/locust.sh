#!/usr/bin/env bash
# Locust (PyPI) against `vcci serve --demo` on loopback, headless, with
# deploy/locust/locustfile.py (the mixed scenario of `vcci loadtest`): first one process, then
# the distributed mode (a master and two workers). Fails if any request failed or Locust could
# not run. A smoke test of the locustfile, not a measurement.
#
#   scripts/locust.sh [VCCI_BIN]     (default: the debug build under $CARGO_TARGET_DIR or
#                                     target/, built first)
#
# Installs Locust into a virtualenv under $LOCUST_VENV (default ~/.cache/vcci-locust).
# Bounded: 8 s per run, 20 users.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ge 1 ]; then
  BIN=$1
else
  cargo build --locked -p vcci
  BIN=${CARGO_TARGET_DIR:-target}/debug/vcci
fi
VENV=${LOCUST_VENV:-$HOME/.cache/vcci-locust}
if [ ! -x "$VENV/bin/locust" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "locust==2.47.0"
fi
"$VENV/bin/locust" --version
PORT=${LOCUST_PORT:-18792}
MPORT=${LOCUST_MASTER_PORT:-18793}
. scripts/demo-server.sh
start_demo_server "$BIN" "$PORT"
export VCCI_KEY=$KEY
HOST="http://127.0.0.1:$PORT"
# Locust exits 1 when a request failed; its stats are printed either way.
check() {
  local name=$1 csv=$2
  local total failed
  total=$(awk -F, '$2 == "Aggregated" { print $3 }' "${csv}_stats.csv")
  failed=$(awk -F, '$2 == "Aggregated" { print $4 }' "${csv}_stats.csv")
  echo "$name: $total requests, $failed failed"
  [ "${total:-0}" -gt 100 ] || { echo "$name: too few requests"; exit 1; }
  [ "${failed:-1}" -eq 0 ] || { cat "${csv}_failures.csv"; exit 1; }
}
echo "== one process"
timeout 60 "$VENV/bin/locust" -f deploy/locust/locustfile.py --host "$HOST" --headless \
  -u 20 -r 20 -t 8s --only-summary --csv "$DIR/single" --exit-code-on-error 1
check "one process" "$DIR/single"
echo "== distributed: a master and two workers"
WORKERS=()
for w in 1 2; do
  timeout 60 "$VENV/bin/locust" -f deploy/locust/locustfile.py --worker \
    --master-host 127.0.0.1 --master-port "$MPORT" >"$DIR/worker$w.txt" 2>&1 &
  WORKERS+=($!)
done
timeout 60 "$VENV/bin/locust" -f deploy/locust/locustfile.py --host "$HOST" --headless \
  --master --master-bind-host 127.0.0.1 --master-bind-port "$MPORT" --expect-workers 2 \
  --expect-workers-max-wait 30 -u 20 -r 20 -t 8s --only-summary --csv "$DIR/dist" \
  --exit-code-on-error 1
for w in "${WORKERS[@]}"; do wait "$w" || true; done
check "distributed" "$DIR/dist"
check_no_panic
