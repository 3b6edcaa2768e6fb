#!/usr/bin/env bash
# The mock's own work per request, counted in instructions (valgrind's cachegrind, user space
# only), which do not drift with the machine's speed as request rates do here: GET one contact
# and POST sign_up_form (distinct emails, --state with --sync batch) driven by wrk for
# SECONDS_PER_PHASE (default 5) at 8 connections, beside the bare hyper server
# (examples/bare_server.rs) answering the same GET. A run that only starts, signs in and stops is
# taken off, so what is left is per request. Needs valgrind, wrk and curl. Takes about a minute.
#   benches/mock_instructions.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/mock_common.sh
builds "${1:-}"
PHASE=${SECONDS_PER_PHASE:-5}
for tool in valgrind wrk curl; do
  command -v $tool >/dev/null || { echo "$tool is not installed (apt-get install $tool)"; exit 1; }
done
work=$(mktemp -d)
PID=
trap '{ [ -n "$PID" ] && kill -KILL $PID 2>/dev/null && wait $PID 2>/dev/null; } || true; rm -rf "$work"' EXIT

# measure WHAT: a mock under cachegrind on a new state, signed in, one contact made and updated a second later, then WHAT
# (none, get or signup) for PHASE seconds; prints "requests instructions".
measure() {
  # Each measure runs in its own subshell, whose PID the script's trap cannot see: stop the
  # server here when the subshell ends early (a server too slow to start under valgrind).
  trap '{ [ -n "$PID" ] && kill -KILL $PID 2>/dev/null; } || true' EXIT
  rm -rf "$work/s" && mkdir -p "$work/s"
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$BIN" mock --port 0 --auto-approve --state "$work/s/state.json" --sync batch >"$work/out" 2>"$work/err" &
  PID=$!
  for _ in $(seq 6000); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.01; done
  URL=$(head -1 "$work/out" | sed 's/listening on //')
  login
  local id req=0
  id=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"email_address\":\"load@example.com\",\"first_name\":\"Load\",\"list_memberships\":[\"$LIST\"]}" \
    "$URL/v3/contacts/sign_up_form" | sed 's/.*"contact_id":"\([^"]*\)".*/\1/')
  # Updated a second later, as a contact mostly is: its created and updated times differ.
  sleep 1.1
  curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"email_address\":\"load@example.com\",\"last_name\":\"Later\",\"list_memberships\":[\"$LIST\"]}" "$URL/v3/contacts/sign_up_form"
  case $1 in
    get) req=$(wrk -t1 -c8 -d"${PHASE}s" -H "Authorization: Bearer $TOKEN" "$URL/v3/contacts/$id" | awk '/requests in/ {print $1}') ;;
    signup) signup_lua "$work/su.lua"
      req=$(wrk -t1 -c8 -d"${PHASE}s" -s "$work/su.lua" "$URL" | awk '/requests in/ {print $1}') ;;
  esac
  kill -TERM $PID; wait $PID 2>/dev/null || true; PID=
  echo "$TOKEN" >"$work/token"  # for the bare server's requests
  echo "$req $(awk '/I *refs/ {gsub(",", "", $NF); print $NF}' "$work/err")"
}

read -r _ base < <(measure none)
read -r n i < <(measure get)
echo "GET /v3/contacts/{id}: $(( (i - base) / n )) instructions a request ($n requests)"
read -r n i < <(measure signup)
echo "POST /v3/contacts/sign_up_form: $(( (i - base) / n )) instructions a request ($n requests; journal and its writer thread included)"

# The bare server, idle and then under the same GET (the mock's token in the header).
bare() {
  trap '{ [ -n "$PID" ] && kill -KILL $PID 2>/dev/null; } || true' EXIT
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$BARE" >"$work/bare" 2>"$work/bare.err" &
  PID=$!
  for _ in $(seq 6000); do grep -q listening "$work/bare" 2>/dev/null && break; sleep 0.01; done
  local url req=0
  url=$(head -1 "$work/bare" | sed 's/listening on //')
  if [ "$1" = get ]; then
    req=$(wrk -t1 -c8 -d"${PHASE}s" -H "Authorization: Bearer $(cat "$work/token")" "$url/v3/contacts/x" | awk '/requests in/ {print $1}')
  fi
  kill -TERM $PID; wait $PID 2>/dev/null || true; PID=
  echo "$req $(awk '/I *refs/ {gsub(",", "", $NF); print $NF}' "$work/bare.err")"
}
read -r _ base < <(bare none)
read -r n i < <(bare get)
echo "the bare hyper server, the same GET: $(( (i - base) / n )) instructions a request ($n requests)"
