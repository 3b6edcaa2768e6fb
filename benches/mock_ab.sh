#!/usr/bin/env bash
# Paired comparison of two builds of the mock: on this machine throughput drifts by a quarter
# within an hour, so a change is judged only against runs taken beside it.
#   benches/mock_ab.sh OLD_BINARY NEW_BINARY          # 3 pairs, 15 s each, 1,000,000 contacts
#   PAIRS=4 SECONDS_PER_RUN=10 CONTACTS=200000 GET=1 benches/mock_ab.sh old new
# One snapshot is made once (bulk imports, clean stop); each run starts a build on a copy of it
# (synced), pinned to core 0 with wrk on core 1, sends sign_up_form with distinct emails at 64
# connections (then GET one contact when GET=1), and kills the mock, so no run's shutdown work
# overlaps the next. Prints one line per run: build, sign_up req/s and p99, GET req/s and p99.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: benches/mock_ab.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
OLD=$(realpath "$1"); NEW=$(realpath "$2")
PAIRS=${PAIRS:-3}; SECS=${SECONDS_PER_RUN:-15}; CONTACTS=${CONTACTS:-1000000}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill -KILL $PID 2>/dev/null; rm -rf "$work"' EXIT
CID=3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21
LIST=07936f78-662a-11eb-af0a-fa163e56c9b0
start() {  # start BINARY DIR [taskset...]
  local bin=$1 dir=$2; shift 2
  "$@" "$bin" mock --port 0 --auto-approve --state "$dir/state.json" >"$dir/out" 2>"$dir/err" &
  PID=$!
  for _ in $(seq 1000); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.01; done
  URL=$(head -1 "$dir/out" | sed 's/listening on //')
  local loc code
  loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$URL/oauth2/default/v1/authorize?client_id=$CID&redirect_uri=http%3A%2F%2Flocalhost%3A8910%2Fcallback&response_type=code&scope=contact_data&state=s")
  code=$(echo "$loc" | sed 's/.*code=\([^&]*\).*/\1/')
  TOKEN=$(curl -s -u "$CID:mock-secret-Zk8xQ2vN7pLr4tYw" -d grant_type=authorization_code -d "code=$code" \
    --data-urlencode redirect_uri=http://localhost:8910/callback "$URL/oauth2/default/v1/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
}

echo "== making a snapshot of $CONTACTS contacts with $OLD"
mkdir -p "$work/seed"
start "$OLD" "$work/seed"
for b in $(seq 0 $(( (CONTACTS + 39999) / 40000 - 1 ))); do
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
kill -TERM $PID; wait $PID 2>/dev/null || true; PID=

run() {  # run LABEL BINARY
  local dir="$work/run"
  rm -rf "$dir"; mkdir -p "$dir"; cp "$work/seed/state.json" "$dir/"; sync
  start "$2" "$dir" taskset -c 0
  cat >"$dir/signup.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"email_address":"w%d-%d@load.io","list_memberships":["$LIST"]}', math.random(1, 1000000000), n)
  return wrk.format("POST", "/v3/contacts/sign_up_form", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $TOKEN"}, body)
end
LUA
  local s g=""
  s=$(taskset -c 1 wrk -t1 -c64 -d"${SECS}s" --latency -s "$dir/signup.lua" "$URL" | awk '/ 99%/ {p=$2} /Requests\/sec/ {r=$2} END {printf "sign_up %s req/s p99 %s", r, p}')
  if [ -n "${GET:-}" ]; then
    local id
    id=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      -d "{\"email_address\":\"ab@example.com\",\"list_memberships\":[\"$LIST\"]}" "$URL/v3/contacts/sign_up_form" | sed 's/.*"contact_id":"\([^"]*\)".*/\1/')
    g=$(taskset -c 1 wrk -t1 -c64 -d"${SECS}s" --latency -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts/$id" | awk '/ 99%/ {p=$2} /Requests\/sec/ {r=$2} END {printf "  GET %s req/s p99 %s", r, p}')
  fi
  kill -KILL $PID; wait $PID 2>/dev/null || true; PID=
  echo "$1  $s$g"
}
for _ in $(seq "$PAIRS"); do run old "$OLD"; run new "$NEW"; done
