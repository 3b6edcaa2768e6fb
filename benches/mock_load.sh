#!/usr/bin/env bash
# Load-tests the Constant Contact mock with wrk on this machine (needs: apt-get install wrk curl;
# python3 to generate the import bodies).
#   benches/mock_load.sh                                  # 15 s per phase, 1,000,000 contacts
#   SECONDS_PER_PHASE=30 CONTACTS=200000 benches/mock_load.sh
#   PIN=0 benches/mock_load.sh                            # do not pin the mock and wrk to cores
# The mock runs with --state (journal, --sync batch unless SYNC=...) on core 0, wrk on core 1.
# Prints: sign_up_form (distinct emails) at 64 connections over the preloaded store, GET one
# contact at 64 connections, resident memory, and restart times with the store (after a clean
# stop: one snapshot, on one core and on all; after SIGKILL: snapshot plus journal replay).
set -euo pipefail
cd "$(dirname "$0")/.."
PHASE=${SECONDS_PER_PHASE:-15}
CONTACTS=${CONTACTS:-1000000}
SYNC=${SYNC:-batch}
PIN=${PIN:-1}
BIN=target/release/postie
[ -x "$BIN" ] || cargo build --release
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
MOCK_CPU=(); WRK_CPU=()
if [ "$PIN" = 1 ]; then MOCK_CPU=(taskset -c 0); WRK_CPU=(taskset -c 1); fi

work=$(mktemp -d)
out="$work/out"
trap 'kill $PID 2>/dev/null; rm -rf "$work"' EXIT
start_mock() {  # start_mock [unpinned]
  local t0 t1 cpu=("${MOCK_CPU[@]}")
  [ "${1:-}" = unpinned ] && cpu=()
  t0=$(date +%s.%N)
  "${cpu[@]}" "$BIN" mock --port 0 --auto-approve --state "$work/state.json" --sync "$SYNC" >"$out" 2>"$work/err" &
  PID=$!
  for _ in $(seq 600); do grep -q listening "$out" && break; sleep 0.01; done
  t1=$(date +%s.%N)
  URL=$(head -1 "$out" | sed 's/listening on //')
  READY=$(echo "$t1 - $t0" | bc)
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
start_mock
CID=3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21
LIST=07936f78-662a-11eb-af0a-fa163e56c9b0
login() {
  local loc code
  loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$URL/oauth2/default/v1/authorize?client_id=$CID&redirect_uri=http%3A%2F%2Flocalhost%3A8910%2Fcallback&response_type=code&scope=contact_data&state=s")
  code=$(echo "$loc" | sed 's/.*code=\([^&]*\).*/\1/')
  TOKEN=$(curl -s -u "$CID:mock-secret-Zk8xQ2vN7pLr4tYw" -d grant_type=authorization_code -d "code=$code" \
    --data-urlencode redirect_uri=http://localhost:8910/callback "$URL/oauth2/default/v1/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
}
login

echo "== preloading $CONTACTS contacts (40,000-row JSON imports)"
batches=$(( (CONTACTS + 39999) / 40000 ))
for b in $(seq 0 $((batches - 1))); do
  python3 - "$b" "$LIST" >"$work/import.json" <<'PY'
import json, sys
b, lst = int(sys.argv[1]), sys.argv[2]
rows = [{"email": f"m{b}-{i}@bench.io", "first_name": "Bench", "last_name": f"N{i}"} for i in range(40000)]
print(json.dumps({"import_data": rows, "list_ids": [lst]}))
PY
  act=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary "@$work/import.json" \
    "$URL/v3/activities/contacts_json_import" | sed 's/.*"activity_id":"\([^"]*\)".*/\1/')
  until curl -s -H "Authorization: Bearer $TOKEN" "$URL/v3/activities/$act" | grep -q '"state":"completed"'; do sleep 0.2; done
done
ID=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"email_address":"load@example.com","first_name":"Load","list_memberships":["07936f78-662a-11eb-af0a-fa163e56c9b0"]}' \
  "$URL/v3/contacts/sign_up_form" | sed 's/.*"contact_id":"\([^"]*\)".*/\1/')
echo "store: $(curl -s -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts?limit=1&include_count=true" | sed 's/.*"contacts_count":\([0-9]*\).*/\1/') contacts; RSS $(rss) KiB (target < 1 GiB)"
kill -TERM $PID; wait $PID 2>/dev/null || true
start_mock unpinned
ALL=$READY
kill -TERM $PID; wait $PID 2>/dev/null || true
start_mock
echo "restart with the store after a clean stop: ready in ${READY} s on one core, ${ALL} s on all $(nproc) (target <= 2 s); RSS $(rss) KiB"
login

echo "== POST /v3/contacts/sign_up_form (distinct emails), 64 connections, ${PHASE}s, --sync $SYNC (target: p99 <= 5 ms, >= 40,000 req/s)"
lua="$work/signup.lua"
cat >"$lua" <<LUA
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"email_address":"w%d-%d@load.io","list_memberships":["$LIST"]}', math.random(1, 1000000000), n)
  return wrk.format("POST", "/v3/contacts/sign_up_form", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $TOKEN"}, body)
end
LUA
"${WRK_CPU[@]}" wrk -t1 -c64 -d"${PHASE}s" --latency -s "$lua" "$URL" | grep -E 'Requests/sec|50%|99%|requests in|Non-2xx'

echo "== GET /v3/contacts/{id}, 64 connections, ${PHASE}s (target: >= 120,000 req/s, p99 <= 1 ms)"
"${WRK_CPU[@]}" wrk -t1 -c64 -d"${PHASE}s" --latency -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts/$ID" | grep -E "Requests/sec|50%|90%|99%|requests in|Non-2xx"
echo "RSS after the load: $(rss) KiB (target < 1 GiB)"

echo "== the ceiling now: a bare hyper server (examples/bare_server.rs) on the same core, same wrk"
BARE=target/release/examples/bare_server
[ -x "$BARE" ] || cargo build --release --example bare_server
"${MOCK_CPU[@]}" "$BARE" >"$work/bare" &
BARE_PID=$!
for _ in $(seq 300); do grep -q listening "$work/bare" && break; sleep 0.01; done
"${WRK_CPU[@]}" wrk -t1 -c64 -d"${PHASE}s" --latency "$(sed 's/listening on //' "$work/bare")/" | grep -E "Requests/sec|50%|99%"
kill $BARE_PID; wait $BARE_PID 2>/dev/null || true

echo "== restart after SIGKILL (snapshot plus the journal since the last compaction)"
kill -KILL $PID; wait $PID 2>/dev/null || true
ls -la "$work" | grep state || true
start_mock
echo "ready in ${READY} s with $(curl -s -o /dev/null -w '%{http_code}' "$URL/__postie/clock") from the admin area"
cat "$work/err"
