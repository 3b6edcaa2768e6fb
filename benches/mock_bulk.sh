#!/usr/bin/env bash
# What a bulk activity over every contact costs the requests beside it.
#   benches/mock_bulk.sh [BINARY]                     # 1,000,000 contacts, 12 s of GET
#   SNAPSHOT=/path/state.json benches/mock_bulk.sh    # reuse a snapshot a clean stop left
#   CONTACTS=100000 RUNS=2 benches/mock_bulk.sh target/release/postie
#   WRITES=1 benches/mock_bulk.sh                     # sign_up_form (distinct emails) instead of GET
# One snapshot is made once (bulk imports, clean stop). Each run starts the mock on a copy of it
# (synced), pinned to core 0 with wrk on core 1, sends GET one contact (or, with WRITES=1,
# sign_up_form) at 64 connections, and 3 s in makes one add_list_memberships activity from the
# list every contact is on to a new list, moves the mock clock past its completion and polls it
# until `completed`. Runs alternate with a
# baseline run that makes no activity. Prints, per run: how long the activity took to apply
# (from the clock move to `completed`), and wrk's req/s, p99 and maximum latency over the run
# (wrk gives up on a request after 2 s: those are counted apart). A build that applies the
# whole activity inside one request (before 2026-12-06) shows it as that request's wait.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/mock_common.sh
BIN=$(realpath "${1:-target/release/postie}")
RUNS=${RUNS:-2}; SECS=${SECONDS_PER_RUN:-12}; CONTACTS=${CONTACTS:-1000000}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
PID=
# `|| true`: under `set -e` a failing kill (the mock already gone) would end the trap before rm.
trap '{ [ -n "$PID" ] && kill -KILL $PID 2>/dev/null && wait $PID 2>/dev/null; } || true; rm -rf "$work"' EXIT

seed "$BIN"

run() {  # run with|without
  rm -rf "$work/run"; mkdir -p "$work/run"
  cp "$work/seed/state.json" "$work/run/"; sync
  start "$BIN" "$work/run" taskset -c 0
  local id target applied=-
  id=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts?email=load@example.com" | sed 's/.*"contact_id":"\([^"]*\)".*/\1/')
  target=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"name\":\"bulk $RANDOM\"}" "$URL/v3/contact_lists" | sed 's/.*"list_id":"\([^"]*\)".*/\1/')
  if [ -n "${WRITES:-}" ]; then
    signup_lua "$work/signup.lua"
    taskset -c 1 wrk -t1 -c64 -d"${SECS}s" --latency -s "$work/signup.lua" "$URL" >"$work/wrk" &
  else
    taskset -c 1 wrk -t1 -c64 -d"${SECS}s" --latency -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts/$id" >"$work/wrk" &
  fi
  local w=$!
  sleep 3
  if [ "$1" = with ]; then
    local act t0
    act=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      -d "{\"source\":{\"list_ids\":[\"$LIST\"]},\"list_ids\":[\"$target\"]}" \
      "$URL/v3/activities/add_list_memberships" | sed 's/.*"activity_id":"\([^"]*\)".*/\1/')
    curl -s -o /dev/null -H 'Content-Type: application/json' -d '{"advance":"1h"}' "$URL/__postie/clock"
    t0=$(date +%s%N)
    until curl -s -H "Authorization: Bearer $TOKEN" "$URL/v3/activities/$act" | grep -q '"state":"completed"'; do sleep 0.02; done
    applied="$(( ($(date +%s%N) - t0) / 1000000 )) ms"
  fi
  wait $w
  printf '%-8s applied in %-9s %s req/s, p99 %s, max %s, %s requests timed out (2 s)\n' "$1" "$applied" \
    "$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk")" \
    "$(awk '/ 99%/ {print $2}' "$work/wrk")" \
    "$(awk '/Latency/ && !/Distribution/ {print $4; exit}' "$work/wrk")" \
    "$(awk '/Socket errors/ {sub(/.*timeout /, ""); print; found=1} END {if (!found) print 0}' "$work/wrk")"
  kill -KILL $PID; wait $PID 2>/dev/null || true; PID=
}

for _ in $(seq "$RUNS"); do
  run with
  run without
done
