#!/usr/bin/env bash
# Load-tests the Constant Contact mock with wrk on this machine (needs: apt-get install wrk curl).
#   benches/mock_load.sh                      # 15 s per phase
#   SECONDS_PER_PHASE=30 SOAK_SECONDS=250 benches/mock_load.sh   # ~10 M requests in the soak
# Prints: GET /v3/contacts/{id} at 64 connections (requests/s, latency percentiles),
# sign_up_form at 64 connections, and the mock's resident memory across a soak.
set -euo pipefail
cd "$(dirname "$0")/.."
PHASE=${SECONDS_PER_PHASE:-15}
SOAK=${SOAK_SECONDS:-60}
BIN=target/release/postie
[ -x "$BIN" ] || cargo build --release
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }

out=$(mktemp)
"$BIN" mock --port 0 --auto-approve >"$out" 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
URL=$(head -1 "$out" | sed 's/listening on //')
CID=3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21
LOC=$(curl -s -o /dev/null -w '%{redirect_url}' "$URL/oauth2/default/v1/authorize?client_id=$CID&redirect_uri=http%3A%2F%2Flocalhost%3A8910%2Fcallback&response_type=code&scope=contact_data&state=s")
CODE=$(echo "$LOC" | sed 's/.*code=\([^&]*\).*/\1/')
TOKEN=$(curl -s -u "$CID:mock-secret-Zk8xQ2vN7pLr4tYw" -d grant_type=authorization_code -d "code=$CODE" \
  --data-urlencode redirect_uri=http://localhost:8910/callback "$URL/oauth2/default/v1/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
ID=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"email_address":"load@example.com","first_name":"Load","list_memberships":["07936f78-662a-11eb-af0a-fa163e56c9b0"]}' \
  "$URL/v3/contacts/sign_up_form" | sed 's/.*"contact_id":"\([^"]*\)".*/\1/')
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }

echo "== GET /v3/contacts/{id}, 64 connections, ${PHASE}s (target: >= 40,000 req/s, p99 < 2 ms)"
for t in 1 2; do echo "-- wrk threads: $t"; wrk -t$t -c64 -d"${PHASE}s" --latency -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts/$ID" | grep -E "Requests/sec|50%|90%|99%|requests in|Non-2xx"; done

echo "== POST /v3/contacts/sign_up_form (distinct emails), 64 connections, ${PHASE}s"
lua=$(mktemp --suffix=.lua)
cat >"$lua" <<LUA
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"email_address":"w%d-%d@load.io","list_memberships":["07936f78-662a-11eb-af0a-fa163e56c9b0"]}', math.random(1, 1000000000), n)
  return wrk.format("POST", "/v3/contacts/sign_up_form", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $TOKEN"}, body)
end
LUA
wrk -t2 -c64 -d"${PHASE}s" --latency -s "$lua" "$URL" | grep -E 'Requests/sec|50%|99%|requests in|Non-2xx'
rm -f "$lua"

echo "== soak: GET for ${SOAK}s; resident memory of the mock (KiB) before and after"
before=$(rss)
wrk -t2 -c64 -d"${SOAK}s" -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts/$ID" | grep -E 'requests in'
after=$(rss)
journal=$(curl -s "$URL/__postie/journal?limit=1" | sed 's/.*"total":\([0-9]*\).*/\1/')
echo "RSS before ${before} KiB, after ${after} KiB; requests served in total: ${journal}"
