#!/usr/bin/env bash
# Whether a request's cost grows with the mock's history: GET one contact (64 connections, wrk)
# on a fresh mock, then again after SECONDS_OF_ACTIVITIES (default 3) of creating bulk
# activities (add_list_memberships of one contact, 4 connections) — every activity stays in the
# store. The mock runs on core 0, wrk on core 1 (needs wrk and curl).
#   benches/mock_history.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/mock_common.sh
BIN=${1:-target/release/postie}
[ -x "$BIN" ] || cargo build --release
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
PID=
# `|| true`: under `set -e` a failing kill (the mock already gone) would end the trap before rm.
trap '{ [ -n "$PID" ] && kill -KILL $PID 2>/dev/null && wait $PID 2>/dev/null; } || true; rm -rf "$work"' EXIT
taskset -c 0 "$BIN" mock --port 0 --auto-approve >"$work/out" 2>"$work/err" &
PID=$!
for _ in $(seq 600); do grep -q listening "$work/out" && break; sleep 0.01; done
URL=$(head -1 "$work/out" | sed 's/listening on //')
login
ID=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d "{\"email_address\":\"history@example.com\",\"list_memberships\":[\"$LIST\"]}" \
  "$URL/v3/contacts/sign_up_form" | sed 's/.*"contact_id":"\([^"]*\)".*/\1/')
get() { taskset -c 1 wrk -t1 -c64 -d5s --latency -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts/$ID" | awk '/ 99%/ {p=$2} /Requests\/sec/ {r=$2} END {printf "%s req/s, p99 %s", r, p}'; }
echo "GET one contact, fresh: $(get)"
cat >"$work/act.lua" <<LUA
request = function()
  return wrk.format("POST", "/v3/activities/add_list_memberships", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $TOKEN"}, '{"source":{"contact_ids":["$ID"]},"list_ids":["2b7d4e10-662a-11eb-af0a-fa163e56c9b0"]}')
end
LUA
made=$(taskset -c 1 wrk -t1 -c4 -d"${SECONDS_OF_ACTIVITIES:-3}s" -s "$work/act.lua" "$URL" | awk '/requests in/ {n=$1} /Non-2xx/ {e=$5} END {print n - e}')
sleep 2
echo "GET one contact, after $made activities were made: $(get)"
