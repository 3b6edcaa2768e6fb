#!/usr/bin/env bash
# The runner's cost as the work grows, counted in instructions (valgrind's cachegrind), which do
# not drift with the machine's speed as wall times do here (±10-25 % between runs): flows of 1,000
# and 2,000 distinct GETs, each capturing a value, against examples/bare_server.rs, run fresh and
# over the state an earlier run left; then 10 and 1,000 steps of a 10,000-request collection over
# a state holding 10,000 exchanges, against fresh, whose difference is the cost of a step.
# Needs valgrind (apt-get install valgrind) and python3. Takes about 4 minutes.
#   benches/runner_instructions.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/mock_common.sh  # for `builds`
builds "${1:-}"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
work=$(mktemp -d)
BARE_PID=
trap '{ [ -n "$BARE_PID" ] && kill $BARE_PID 2>/dev/null && wait $BARE_PID 2>/dev/null; } || true; rm -rf "$work"' EXIT
"$BARE" >"$work/bare" &
BARE_PID=$!
for _ in $(seq 300); do grep -q listening "$work/bare" && break; sleep 0.01; done
PORT=$(sed 's/.*://' "$work/bare")

# collection DIR N [K...]: N distinct GETs each capturing one value, flow `all` of them and a
# flow `firstK` of the first K for each K.
collection() {
  mkdir -p "$1"
  python3 - "$PORT" "$@" <<'PY'
import sys
port, d, n, ks = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(k) for k in sys.argv[4:]]
s = [f"name: scale\nvariables:\n  base: http://127.0.0.1:{port}\nrequests:\n"]
for i in range(n):
    s.append(f"  r{i}:\n    url: <<base>>/items/{i}\n    capture:\n      v{i}: $.contact_id\n")
s.append("flows:\n  all:\n    steps:\n" + "".join(f"      - r{i}\n" for i in range(n)))
for k in ks:
    s.append(f"  first{k}:\n    steps:\n" + "".join(f"      - r{i}\n" for i in range(k)))
open(f"{d}/c.yaml", "w").write("".join(s))
PY
}
# instructions DIR FLOW [--fresh]: instructions of one whole `postie run` process.
instructions() {
  local dir=$1 flow=$2; shift 2
  (cd "$dir" && valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$BIN" run c.yaml --flow "$flow" "$@" 2>&1 >/dev/null | awk '/I *refs/ {gsub(",", "", $NF); print $NF}')
}
pct() { echo "scale=1; 100 * ($1 - $2) / $2" | bc; }

echo "postie run, whole process, instructions (valgrind --tool=cachegrind), against examples/bare_server.rs"
declare -A FRESH STATE
for n in 1000 2000; do
  collection "$work/n$n" "$n"
  (cd "$work/n$n" && "$BIN" run c.yaml --flow all >/dev/null)  # leaves n exchanges in state
  FRESH[$n]=$(instructions "$work/n$n" all --fresh)
  STATE[$n]=$(instructions "$work/n$n" all)
  printf '%5d distinct steps: fresh %6.1f M (%3d k/step), over saved state %6.1f M (%3d k/step, %+.1f %%)\n' \
    "$n" "$(echo "${FRESH[$n]} / 1000000" | bc -l)" $((FRESH[$n] / n / 1000)) \
    "$(echo "${STATE[$n]} / 1000000" | bc -l)" $((STATE[$n] / n / 1000)) "$(pct "${STATE[$n]}" "${FRESH[$n]}")"
done
echo "2,000 / 1,000 steps: fresh $(echo "scale=3; ${FRESH[2000]} / ${FRESH[1000]}" | bc)x, over state $(echo "scale=3; ${STATE[2000]} / ${STATE[1000]}" | bc)x (linear: 2.0x)"

collection "$work/big" 10000 10 1000
(cd "$work/big" && "$BIN" run c.yaml --flow all >/dev/null)  # 10,000 exchanges in state
f10=$(instructions "$work/big" first10 --fresh)
f1000=$(instructions "$work/big" first1000 --fresh)
s10=$(instructions "$work/big" first10)
s1000=$(instructions "$work/big" first1000)
fstep=$(((f1000 - f10) / 990))
sstep=$(((s1000 - s10) / 990))
echo "a 10,000-request collection: a step costs $((fstep / 1000)) k instructions fresh and $((sstep / 1000)) k over a state of 10,000 exchanges ($(pct "$sstep" "$fstep") %); loading and saving that state adds $(((s10 - f10) / 1000000)) M once per command"
