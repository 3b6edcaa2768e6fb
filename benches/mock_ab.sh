#!/usr/bin/env bash
# Paired comparison of two builds of the mock: on this machine throughput drifts by a quarter
# within an hour, so a change is judged only against runs taken beside it.
#   benches/mock_ab.sh OLD_BINARY NEW_BINARY          # 3 pairs, 15 s each, 1,000,000 contacts
#   PAIRS=4 SECONDS_PER_RUN=10 CONTACTS=200000 GET=1 benches/mock_ab.sh old new
#   SNAPSHOT=/path/state.json benches/mock_ab.sh old new   # reuse a snapshot a clean stop left
#   CONNS=1 benches/mock_ab.sh old new                     # sign_up_form at 1 connection, not 64
# A build may be a script that sets an environment and execs the binary.
# One snapshot is made once (bulk imports, clean stop); each run starts a build on a copy of it
# (synced), pinned to core 0 with wrk on core 1, sends sign_up_form with distinct emails at 64
# connections (CONNS) (then GET one contact when GET=1), and kills the mock, so no run's
# shutdown work overlaps the next. Prints one line per run: build, sign_up req/s, p50, p99 and
# maximum latency, GET req/s and p99. From the 1,000,004-contact snapshot, SECONDS_PER_RUN=30 crosses 1,835,009
# contacts, where the tables used to stall (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/mock_common.sh
[ $# -eq 2 ] || { echo "usage: benches/mock_ab.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
OLD=$(realpath "$1"); NEW=$(realpath "$2")
PAIRS=${PAIRS:-3}; SECS=${SECONDS_PER_RUN:-15}; CONTACTS=${CONTACTS:-1000000}; CONNS=${CONNS:-64}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
PID=
# `|| true`: under `set -e` a failing kill (the mock already gone) would end the trap before rm.
trap '{ [ -n "$PID" ] && kill -KILL $PID 2>/dev/null && wait $PID 2>/dev/null; } || true; rm -rf "$work"' EXIT

seed "$OLD"

run() {  # run LABEL BINARY
  local dir="$work/run"
  rm -rf "$dir"; mkdir -p "$dir"; cp "$work/seed/state.json" "$dir/"; sync
  start "$2" "$dir" taskset -c 0
  signup_lua "$dir/signup.lua"
  local s g=""
  s=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$dir/signup.lua" "$URL" | awk '/^ +Latency +[0-9]/ {m=$4} / 50%/ {h=$2} / 99%/ {p=$2} /Requests\/sec/ {r=$2} END {printf "sign_up %s req/s p50 %s p99 %s max %s", r, h, p, m}')
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
