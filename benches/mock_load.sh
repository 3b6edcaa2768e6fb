#!/usr/bin/env bash
# Load-tests the Constant Contact mock with wrk on this machine (needs: apt-get install wrk curl;
# python3 to generate the import bodies).
#   benches/mock_load.sh                                  # 15 s per phase, 1,000,000 contacts
#   SECONDS_PER_PHASE=30 CONTACTS=200000 benches/mock_load.sh
#   PIN=0 benches/mock_load.sh                            # do not pin the mock and wrk to cores
# The mock runs with --state (journal, --sync batch unless SYNC=...) on core 0, wrk on core 1.
# Prints: sign_up_form (distinct emails) at 64 connections over the preloaded store, GET one
# contact at 64 connections (right after that burst, and again with no merge of its journal
# running), resident memory, and restart times with the store (after a clean
# stop: one snapshot, on one core and on all; after SIGKILL: snapshot plus journal replay).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/mock_common.sh
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
# KILL, not TERM: a stopping mock merges its journal into the snapshot, writing into $work.
# Every step `|| true`: under `set -e` a failing step ends the trap itself (a killed mock's
# `wait` is 137), and the 600 MB in $work would stay behind.
trap 'kill -KILL $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$work"' EXIT
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
login

echo "== preloading $CONTACTS contacts (40,000-row JSON imports)"
preload "$CONTACTS"
ID=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"email_address":"load@example.com","first_name":"Load","list_memberships":["07936f78-662a-11eb-af0a-fa163e56c9b0"]}' \
  "$URL/v3/contacts/sign_up_form" | sed 's/.*"contact_id":"\([^"]*\)".*/\1/')
count() { curl -s -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts?limit=1&include_count=true" | sed 's/.*"contacts_count":\([0-9]*\).*/\1/'; }
echo "store: $(count) contacts; RSS $(rss) KiB (target at 1,000,000 contacts: < 1 GiB)"
took() { curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$URL/v3/$1"; }
echo "counts over the store: include_count $(took 'contacts?limit=1&include_count=true') s, list membership counts $(took 'contact_lists?include_membership_count=all') s (kept as contacts change; a walk took 40-110 ms at 1M)"
kill -TERM $PID; wait $PID 2>/dev/null || true
start_mock unpinned
ALL=$READY
kill -TERM $PID; wait $PID 2>/dev/null || true
start_mock
echo "restart with the store after a clean stop: ready in ${READY} s on one core, ${ALL} s on all $(nproc) (target <= 2 s); RSS $(rss) KiB"
login

echo "== POST /v3/contacts/sign_up_form (distinct emails), 64 connections, ${PHASE}s, --sync $SYNC (target: p99 <= 5 ms, >= 40,000 req/s)"
lua="$work/signup.lua"
signup_lua "$lua"
"${WRK_CPU[@]}" wrk -t1 -c64 -d"${PHASE}s" --latency -s "$lua" "$URL" | grep -E 'Requests/sec|50%|99%|requests in|Non-2xx'

# The burst's journal is merged into the snapshot in the background once the sealed part
# outgrows the snapshot: at the lowest priority, or, when the journal outgrows it under load, at
# normal priority and at most a third of the core. A merge running beside GET takes its share;
# GET is measured right after the burst, and again once no merge is running.
merging() { { ls "$work"/state.json.[0-9]*.tmp 2>/dev/null || true; } | wc -l; }
get() {
  "${WRK_CPU[@]}" wrk -t1 -c64 -d"${PHASE}s" --latency -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts/$ID"
}
running=$(merging)
echo "== GET /v3/contacts/{id} right after the burst, 64 connections, ${PHASE}s (merges running at its start: $running)"
get | grep -E "Requests/sec|50%|99%|requests in|Non-2xx"
t0=$(date +%s.%N)
for _ in $(seq 3000); do [ "$(merging)" = 0 ] && break; sleep 0.1; done
echo "no merge running $(echo "$(date +%s.%N) - $t0" | bc) s after that"
echo "== GET /v3/contacts/{id}, no merge running, 64 connections, ${PHASE}s (target: >= 120,000 req/s, p99 <= 1 ms)"
get=$(get)
echo "$get" | grep -E "Requests/sec|50%|90%|99%|requests in|Non-2xx"
echo "after the load: $(count) contacts, RSS $(rss) KiB"

echo "== the ceiling now: a bare hyper server (examples/bare_server.rs) on the same core, same wrk, the same request headers"
BARE=target/release/examples/bare_server
[ -x "$BARE" ] || cargo build --release --example bare_server
"${MOCK_CPU[@]}" "$BARE" >"$work/bare" &
BARE_PID=$!
for _ in $(seq 300); do grep -q listening "$work/bare" && break; sleep 0.01; done
bare=$("${WRK_CPU[@]}" wrk -t1 -c64 -d"${PHASE}s" --latency -H "Authorization: Bearer $TOKEN" "$(sed 's/listening on //' "$work/bare")/v3/contacts/$ID")
echo "$bare" | grep -E "Requests/sec|50%|99%"
kill $BARE_PID; wait $BARE_PID 2>/dev/null || true
# This machine's speed drifts by a quarter within an hour; the share of the bare server's rate
# taken in the same run is the figure that compares across runs.
rate() { awk '/Requests\/sec/ {print $2}'; }
echo "GET: the mock did $(echo "$get" | rate) req/s, $(awk -v m="$(echo "$get" | rate)" -v b="$(echo "$bare" | rate)" 'BEGIN {printf "%.2f", m / b}') of the bare server's $(echo "$bare" | rate) req/s in this run"

echo "== restart after SIGKILL (snapshot plus the journal since the last compaction)"
kill -KILL $PID; wait $PID 2>/dev/null || true
ls -la "$work" | grep state || true
start_mock
echo "ready in ${READY} s with $(curl -s -o /dev/null -w '%{http_code}' "$URL/__postie/clock") from the admin area"
cat "$work/err"
