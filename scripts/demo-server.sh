# Sourced by scripts that run an outside tool against a demo server (schemathesis.sh,
# locust.sh, bench-events.sh): `start_demo_server BIN PORT [SERVE_FLAGS...]` starts `BIN serve
# --demo` on loopback with the rate limit off (and any further flags), in a temporary directory removed on exit, waits for /health, and sets DIR, PID
# and KEY (the demo's admin key). `check_no_panic` fails if the server panicked meanwhile.
start_demo_server() {
  local bin=$1 port=$2
  shift 2
  DIR=$(mktemp -d)
  "$bin" --data-dir "$DIR/data" serve --demo --listen "127.0.0.1:$port" --rate-limit 0 "$@" \
    >"$DIR/out.txt" 2>"$DIR/err.txt" &
  PID=$!
  trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    kill -0 $PID 2>/dev/null || { cat "$DIR/err.txt"; exit 1; }
    sleep 1
  done
  KEY=$(grep -A1 "Demo API key" "$DIR/out.txt" | tail -1)
  [ -n "$KEY" ] || { echo "no demo key printed"; cat "$DIR/out.txt"; exit 1; }
}

check_no_panic() {
  if grep -q "panicked" "$DIR/err.txt"; then
    echo "the server panicked during the run:"; grep -A3 "panicked" "$DIR/err.txt" | head -20
    exit 1
  fi
}
