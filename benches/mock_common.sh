# Shared by the bench scripts (sourced): the builds they need, starting a mock on a state file,
# making or reusing a snapshot to start from, the bundled client's sign-in, bulk preloading, and
# the wrk script that signs up distinct emails. Uses $URL, $work, $CONTACTS; sets $TOKEN, $PID.
CID=3f2b8f9e-5a1c-4c7e-9d2a-8b6e1f0c4d21
LIST=07936f78-662a-11eb-af0a-fa163e56c9b0

# builds [BINARY]: sets BIN (BINARY, else the release build) and BARE (the bare hyper server,
# examples/bare_server.rs), building whichever is missing.
builds() {
  BIN=$(realpath "${1:-target/release/postie}")
  [ -x "$BIN" ] || cargo build --release
  BARE=target/release/examples/bare_server
  [ -x "$BARE" ] || cargo build --release --example bare_server
}

# start BINARY DIR [taskset...]: BINARY's mock on DIR/state.json (output in DIR/out and DIR/err),
# waited for until it listens (up to 30 s: a big snapshot loads first), signed in; sets PID, URL
# and TOKEN.
start() {
  local bin=$1 dir=$2; shift 2
  "$@" "$bin" mock --port 0 --auto-approve --state "$dir/state.json" >"$dir/out" 2>"$dir/err" &
  PID=$!
  for _ in $(seq 3000); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.01; done
  URL=$(head -1 "$dir/out" | sed 's/listening on //')
  login
}

# seed BINARY: $work/seed/state.json, copied from $SNAPSHOT when set, else made by BINARY from
# $CONTACTS preloaded contacts plus load@example.com on $LIST, then a clean stop.
seed() {
  mkdir -p "$work/seed"
  if [ -n "${SNAPSHOT:-}" ]; then
    echo "== using the snapshot $SNAPSHOT"
    cp "$SNAPSHOT" "$work/seed/state.json"
  else
    echo "== making a snapshot of $CONTACTS contacts with $1"
    start "$1" "$work/seed"
    preload "$CONTACTS"
    curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      -d "{\"email_address\":\"load@example.com\",\"list_memberships\":[\"$LIST\"]}" "$URL/v3/contacts/sign_up_form"
    kill -TERM $PID; wait $PID 2>/dev/null || true; PID=
  fi
}

# login: the authorization-code grant against the mock at $URL (auto-approved); sets $TOKEN.
login() {
  local loc code
  loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$URL/oauth2/default/v1/authorize?client_id=$CID&redirect_uri=http%3A%2F%2Flocalhost%3A8910%2Fcallback&response_type=code&scope=contact_data&state=s")
  code=$(echo "$loc" | sed 's/.*code=\([^&]*\).*/\1/')
  TOKEN=$(curl -s -u "$CID:mock-secret-Zk8xQ2vN7pLr4tYw" -d grant_type=authorization_code -d "code=$code" \
    --data-urlencode redirect_uri=http://localhost:8910/callback "$URL/oauth2/default/v1/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
}

# preload N: N contacts (rounded up to 40,000) by JSON bulk imports, each polled to completion.
preload() {
  local b act
  for b in $(seq 0 $(( ($1 + 39999) / 40000 - 1 ))); do
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
}

# signup_lua FILE: a wrk script posting sign_up_form with a distinct email each request.
signup_lua() {
  cat >"$1" <<LUA
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"email_address":"w%d-%d@load.io","list_memberships":["$LIST"]}', math.random(1, 1000000000), n)
  return wrk.format("POST", "/v3/contacts/sign_up_form", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $TOKEN"}, body)
end
LUA
}
