#!/usr/bin/env bash
# GET one contact from the mock (or sign_up_form: REQUEST=sign_up_form), interleaved with the
# bare hyper server (examples/bare_server.rs) answering GET, in short turns, so each mock figure
# has a ceiling measured seconds before and after it. This machine's speed changes within a
# minute (the bare server alone has done 15,000 to 218,000 req/s here), which a single long phase
# cannot tell apart from the mock's own cost.
#   benches/mock_get_pairs.sh                      # 20 turns of 3 s each, 1,000,000 contacts
#   TURNS=40 SECONDS_PER_TURN=2 CONTACTS=200000 benches/mock_get_pairs.sh
#   SNAPSHOT=/path/state.json benches/mock_get_pairs.sh   # reuse a snapshot a clean stop left
#   REQUEST=sign_up_form benches/mock_get_pairs.sh        # the mock's turns sign up distinct emails
# Both servers run at once on core 0 (an idle one costs nothing), wrk on core 1 at 64
# connections, the same request headers (the mock's token). Prints every turn, then the mock's
# median share of the bare server's rate over all turns, and the mock's figures over the turns
# whose bare server, before and after, was at least CALM req/s (default 150,000) with p99 <= 1 ms:
# the machine in its fast state, where the issue's targets were set.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/mock_common.sh
TURNS=${TURNS:-20}; SECS=${SECONDS_PER_TURN:-3}; CONTACTS=${CONTACTS:-1000000}; CALM=${CALM:-150000}
REQUEST=${REQUEST:-get}
case $REQUEST in
  get) TARGET="targets: >= 120,000 req/s, p99 <= 1 ms" ;;
  sign_up_form) TARGET="targets: >= 40,000 req/s, p99 <= 5 ms" ;;
  *) echo "REQUEST is get or sign_up_form"; exit 2 ;;
esac
builds "${1:-}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
PID=; BPID=
trap '{ [ -n "$PID" ] && kill -KILL $PID 2>/dev/null; [ -n "$BPID" ] && kill -KILL $BPID 2>/dev/null; } || true; rm -rf "$work"' EXIT

seed "$BIN"
mkdir -p "$work/m" && cp "$work/seed/state.json" "$work/m/" && sync
start "$BIN" "$work/m" taskset -c 0
ID=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d "{\"email_address\":\"load@example.com\",\"first_name\":\"Load\",\"list_memberships\":[\"$LIST\"]}" \
  "$URL/v3/contacts/sign_up_form" | sed 's/.*"contact_id":"\([^"]*\)".*/\1/')
taskset -c 0 "$BARE" >"$work/bare" &
BPID=$!
for _ in $(seq 300); do grep -q listening "$work/bare" && break; sleep 0.01; done
BARE_URL=$(sed 's/listening on //' "$work/bare")

# turn URL [sign_up_form]: "req/s p99_ms" for one turn of wrk against URL: GET the contact, or
# sign up distinct emails.
signup_lua "$work/signup.lua"
turn() {
  local req=(-H "Authorization: Bearer $TOKEN" "$1/v3/contacts/$ID")
  [ "${2:-}" = sign_up_form ] && req=(-s "$work/signup.lua" "$1")
  taskset -c 1 wrk -t1 -c64 -d"${SECS}s" --latency "${req[@]}" |
    awk '/Requests\/sec/ {r = $2}
         /^ +99%/ {p = $2; u = p ~ /us$/ ? 0.001 : p ~ /ms$/ ? 1 : 1000; sub(/[a-z]+$/, "", p); p *= u}
         END {printf "%.0f %.2f\n", r, p}'
}
echo "== the mock: $REQUEST; the bare server: GET; 64 connections, $TURNS turns of ${SECS} s: bare, mock, bare, ... (req/s, p99 ms)"
read -r b bp < <(turn "$BARE_URL")
echo "bare $b $bp"
for _ in $(seq "$TURNS"); do
  read -r m mp < <(turn "$URL" "$REQUEST")
  read -r b2 bp2 < <(turn "$BARE_URL")
  echo "mock $m $mp"
  echo "bare $b2 $bp2"
  echo "$b $bp $m $mp $b2 $bp2" >>"$work/turns"
  b=$b2; bp=$bp2
done
median=$(awk '{ print $3 / (($1 + $5) / 2) }' "$work/turns" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }')
echo "mock as a share of the bare server (the mean of the turns either side), median of $TURNS turns: $median"
awk -v calm="$CALM" -v target="$TARGET" '
  $1 >= calm && $5 >= calm && $2 <= 1 && $6 <= 1 { n++; rate += $3; if ($4 > p) p = $4; s += $3 / (($1 + $5) / 2) }
  END {
    if (n) printf "turns with the bare server at >= %d req/s and p99 <= 1 ms either side: %d; mock mean %.0f req/s, worst p99 %.2f ms, share %.2f (%s)\n", calm, n, rate / n, p, s / n, target
    else printf "no turn had the bare server at >= %d req/s with p99 <= 1 ms either side: the machine was slow throughout\n", calm
  }' "$work/turns"
