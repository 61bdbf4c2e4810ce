#!/usr/bin/env bash
# Sync throughput of the PACT client: organization A of one vcci server (HTTPS, a test CA
# made here) publishes N footprints; `vcci pact sync` of organization B (another data
# directory) pulls them page by page (100 per page), storing each as received. Prints
# footprints/s of the whole sync (token, discovery, N/100 pages, storing) and of a second,
# incremental sync (every footprint already stored).
#
# With LINES=M, the buyer first imports M lines of the supplier naming its products (so each
# page recalculates the supplier's lines).
#
#   scripts/bench-pact-sync.sh [N=10000]     (VCCI_BIN: the binary; default target/release/vcci)
set -euo pipefail
N=${1:-10000}
VCCI=$(realpath "${VCCI_BIN:-$(dirname "$0")/../target/release/vcci}")
DIR=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null || true; rm -rf "$DIR"' EXIT
cd "$DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
  -days 2 -subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out leaf.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile leaf.ext 2>/dev/null
python3 - "$N" <<'PY'
import json, sys
n = int(sys.argv[1])
docs = []
for i in range(n):
    docs.append({
        "id": f"{i:08x}-0000-4000-8000-000000000000", "specVersion": "3.0.0",
        "created": "2025-01-10T00:00:00Z", "status": "Active", "companyName": "Acme Steel",
        "companyIds": ["urn:company:example:acme"], "productDescription": "coil",
        "productIds": [f"urn:gtin:{i:013}"], "productNameCompany": "HRC",
        "pcf": {"declaredUnitOfMeasurement": "kilogram", "declaredUnitAmount": "1000",
                "productMassPerDeclaredUnit": "1000", "referencePeriodStart": "2023-01-01T00:00:00Z",
                "referencePeriodEnd": "2024-01-01T00:00:00Z", "pcfExcludingBiogenicUptake": "2400",
                "pcfIncludingBiogenicUptake": "2400", "fossilGhgEmissions": "2400",
                "fossilCarbonContent": "0", "ipccCharacterizationFactors": ["AR6"],
                "crossSectoralStandards": ["GHGP-Product"], "exemptedEmissionsPercent": "0"}})
for k in range(0, n, 1000):
    json.dump(docs[k:k + 1000], open(f"part-{k // 1000:04d}.json", "w"))
PY
# `keys create` makes the organizations.
"$VCCI" --data-dir a keys create --org supplier --role admin >/dev/null
for f in part-*.json; do "$VCCI" --data-dir a pact publish --org supplier "$f" >/dev/null; done
CLIENT=$("$VCCI" --data-dir a pact clients create --org supplier --name buyer)
ID=$(echo "$CLIENT" | awk '/client_id/ {print $2}')
SECRET=$(echo "$CLIENT" | awk '/client_secret/ {print $2}')
PORT=18943
"$VCCI" --data-dir a serve --listen 127.0.0.1:$PORT --tls-cert cert.pem --tls-key key.pem --warm-orgs 0 --rate-limit 0 >serve.log 2>&1 &
SERVER=$!
for _ in $(seq 1 50); do curl -sf --cacert ca.pem https://localhost:$PORT/health >/dev/null && break; sleep 0.2; done
export VCCI_SECRET_KEY=$(openssl rand -hex 32) VCCI_PACT_CA_FILE="$DIR/ca.pem" PACT_CLIENT_SECRET="$SECRET"
"$VCCI" --data-dir b keys create --org buyer --role admin >/dev/null
if [ "${LINES:-0}" -gt 0 ]; then
  python3 - "$N" "$LINES" > lines.csv <<'PY'
import sys
n, m = int(sys.argv[1]), int(sys.argv[2])
print("transaction_id,date,supplier_id,quantity,unit,product_id,amount,currency,naics_code")
for i in range(m):
    print(f"L{i},2025-{1 + i % 12:02d}-15,acme-steel,{100 + i % 900},kg,urn:gtin:{i % n:013},1000,USD,331110")
PY
  "$VCCI" --data-dir b import --org buyer lines.csv | tail -1
fi
CONN=$("$VCCI" --data-dir b pact connect --org buyer --supplier acme-steel --url https://localhost:$PORT --client-id "$ID" | awk '{print $2}')
for run in first incremental; do
  T0=$(date +%s.%N)
  "$VCCI" --data-dir b pact sync --org buyer "$CONN" 2>/dev/null | tail -1
  T1=$(date +%s.%N)
  python3 -c "print(f'$run sync: {$N} footprints in {$T1-$T0:.2f} s = {$N/($T1-$T0):,.0f} footprints/s')"
done
