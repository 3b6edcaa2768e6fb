#!/usr/bin/env bash
# Load-tests `postie mock --spec` beside Prism (the same document, the same machine, the same run).
# Needs: wrk (apt-get install wrk), curl; Prism is optional: PRISM=/path/to/prism, or on PATH
# (npm install @stoplight/prism-cli@5).
#   benches/spec_load.sh                     # 10 s per phase, the Constant Contact Swagger
#   SPEC=fixtures/interop/openapi/realworld-conduit.openapi-3.1.yaml ROUTE=/api/tags BASE=/api benches/spec_load.sh
#   PIN=0 benches/spec_load.sh               # do not pin the server and wrk to cores
# The server runs on core 0, wrk on core 1 (one connection per wrk thread would measure wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
PHASE=${SECONDS_PER_PHASE:-10}
SPEC=${SPEC:-fixtures/interop/openapi/constant-contact-v3-swagger.yaml}
ROUTE=${ROUTE:-/v3/contact_lists?limit=50}
# Prism serves Swagger 2.0 paths without the document's basePath.
PRISM_ROUTE=${PRISM_ROUTE:-${ROUTE#${BASE:-/v3}}}
PIN=${PIN:-1}
BIN=target/release/postie
[ -x "$BIN" ] || cargo build --release
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
PRISM=${PRISM:-$(command -v prism || true)}
SRV_CPU=(); WRK_CPU=()
if [ "$PIN" = 1 ]; then SRV_CPU=(taskset -c 0); WRK_CPU=(taskset -c 1); fi
work=$(mktemp -d)
PID=
# `|| true`: under `set -e` a failing kill (the server already gone) would end the trap before rm.
trap '{ [ -n "$PID" ] && kill $PID 2>/dev/null && wait $PID 2>/dev/null; } || true; rm -rf "$work"' EXIT

load() { # name url route
  local ROUTE=$3
  echo "== $1: GET $ROUTE, 64 connections, ${PHASE}s (target for postie: >= 50,000 req/s on one core)"
  curl -s -o "$work/body" -w "   first answer: %{http_code}, %{size_download} bytes\n" -H 'Authorization: Bearer bench' "$2$ROUTE"
  "${WRK_CPU[@]}" wrk -t1 -c64 -d"${PHASE}s" --latency -H 'Authorization: Bearer bench' "$2$ROUTE" |
    grep -E 'Requests/sec|50%|99%|requests in|Non-2xx|Socket errors'
  echo "   RSS $(awk '/VmRSS/ {print $2}' "/proc/$PID/status") KiB"
}

t0=$(date +%s%N)
"${SRV_CPU[@]}" "$BIN" mock --spec "$SPEC" --port 0 >"$work/out" 2>"$work/err" &
PID=$!
for _ in $(seq 1000); do grep -q listening "$work/out" && break; sleep 0.005; done
echo "postie mock --spec $SPEC: listening after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
load "postie mock --spec" "$(head -1 "$work/out" | sed 's/listening on //')" "$ROUTE"
kill $PID; wait $PID 2>/dev/null || true; PID=

if [ -n "$PRISM" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  t0=$(date +%s%N)
  "${SRV_CPU[@]}" "$PRISM" mock -h 127.0.0.1 -p "$port" "$SPEC" >"$work/prism" 2>&1 &
  PID=$!
  for _ in $(seq 6000); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.01; done
  echo "Prism $("$PRISM" --version 2>/dev/null): listening after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  load "Prism mock" "http://127.0.0.1:$port" "$PRISM_ROUTE"
  kill $PID; wait $PID 2>/dev/null || true; PID=
else
  echo "(Prism not found: npm install @stoplight/prism-cli@5, then PRISM=node_modules/.bin/prism)"
fi
