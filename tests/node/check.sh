#!/usr/bin/env bash
# End-to-end self-check of the Node interop scripts: server.js <-> client.js.
# Starts server.js on an ephemeral port, runs every client.js scenario against
# it, checks the client's and the server's JSON lines, and stops the server.
# Exits non-zero if anything fails.
set -u
cd "$(dirname "$0")"

if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund >&2 || { echo "npm ci failed" >&2; exit 1; }
fi

WORK=$(mktemp -d)
PASSED=0
FAILED=0
SERVER_PIDS=()

cleanup() {
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }

# start_server NAME [server.js options...]
# Sets SERVER_PID, SERVER_PORT, SERVER_LOG, SERVER_FD (the server's stdin).
start_server() {
  local name=$1; shift
  SERVER_LOG="$WORK/$name.log"
  mkfifo "$WORK/$name.stdin"
  node server.js "$@" <"$WORK/$name.stdin" >"$SERVER_LOG" 2>"$WORK/$name.err" &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  exec {SERVER_FD}>"$WORK/$name.stdin"   # hold the server's stdin open
  SERVER_PORT=""
  for _ in $(seq 100); do
    SERVER_PORT=$(head -n 1 "$SERVER_LOG" | sed -n 's/^{"event":"listening","port":\([0-9][0-9]*\)}$/\1/p')
    [ -n "$SERVER_PORT" ] && break
    sleep 0.1
  done
  if [ -z "$SERVER_PORT" ]; then
    echo "server $name did not start:" >&2
    cat "$SERVER_LOG" "$WORK/$name.err" >&2
    exit 1
  fi
  echo "server $name (${*:-default options}) listening on port $SERVER_PORT, pid $SERVER_PID"
}

# wait_exit PID: 0 if it exits with status 0 within 5 s.
wait_exit() {
  local pid=$1
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; return $?; }
    sleep 0.1
  done
  return 1
}

# scenario NAME EXPECTED_SERVER_LINE EXPECTED_CLIENT_LINE... -- [client options]
# The client must exit 0 and print exactly the expected lines then done; the
# server must print EXPECTED_SERVER_LINE (if non-empty) while serving it.
scenario() {
  local name=$1 server_line=$2; shift 2
  local expected=() extra=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do expected+=("$1"); shift; done
  [ $# -gt 0 ] && shift && extra=("$@")
  expected+=('{"step":"done","ok":true}')

  local before out rc
  before=$(wc -l <"$SERVER_LOG")
  out=$(node client.js "http://127.0.0.1:$SERVER_PORT" "$name" "${extra[@]}")
  rc=$?
  if [ $rc -ne 0 ] || [ "$out" != "$(printf '%s\n' "${expected[@]}")" ]; then
    fail "$name: client exit $rc, output:"
    echo "$out" | cut -c1-400 | sed 's/^/    /'
    return
  fi
  if [ -n "$server_line" ]; then
    local seen=""
    for _ in $(seq 30); do
      tail -n +"$((before + 1))" "$SERVER_LOG" | grep -qxF "$server_line" && { seen=1; break; }
      sleep 0.1
    done
    if [ -z "$seen" ]; then
      fail "$name: server did not print $server_line; server printed:"
      tail -n +"$((before + 1))" "$SERVER_LOG" | sed 's/^/    /'
      return
    fi
  fi
  pass "$name"
}

# recovery_scenario on|off: runs the recovery scenario against a server with
# (on) or without (off) --recovery. Socket ids, pids and offsets are random, so
# a node snippet checks the structure of the client's output and of the four
# server lines it causes (connect, transport close, connect, disconnect).
RECOVERY_CHECK='
const [mode, out, srv] = process.argv.slice(1);
const on = mode === "on";
const parse = (text) => text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const isOffset = (x) => typeof x === "string" && x.length > 0;
const problems = [];
const need = (ok, what) => { if (!ok) problems.push(what); };
const lines = parse(out), log = parse(srv);
const [first, rec, ticks, done] = lines;
need(lines.length === 4, "client printed " + lines.length + " lines, expected 4");
need(first && first.step === "first" && typeof first.id === "string" && first.id.length === 20, "bad first step");
const firstTicks = (first && first.ticks) || [];
if (on) {
  need(firstTicks.length === 3 && firstTicks.every((t, i) => t.length === 2 && t[0] === i && isOffset(t[1])),
    "first ticks are not [[0,o1],[1,o2],[2,o3]]");
} else {
  need(same(firstTicks, [[0], [1], [2]]), "first ticks are not [[0],[1],[2]]");
}
need(same(rec, { step: "reconnected", recovered: on, same_id: on }), "bad reconnected step");
const args = (ticks && ticks.args) || [];
need(ticks && ticks.step === "ticks" && ticks.missed_complete === on, "bad ticks step / missed_complete");
need(same(args.slice(0, 3), firstTicks), "ticks step does not start with the first ticks");
if (on) {
  const missed = args.slice(3);
  need(missed.length === 2 && missed[0][0] === "missed-1" && missed[1][0] === "missed-2"
    && missed.every((t) => t.length === 2 && isOffset(t[1])), "missed ticks are not [\"missed-1\",o4],[\"missed-2\",o5]");
  const offsets = args.map((t) => t[1]);
  need(new Set(offsets).size === 5, "offsets are not all distinct");
} else {
  need(args.length === 3, "missed ticks arrived without CSR");
}
need(same(done, { step: "done", ok: true }), "no done step");
const sid = first && first.id;
need(same(log[0], { event: "connect", sid, auth: { token: "secret" }, recovered: false }), "server: bad first connect line");
need(same(log[1], { event: "disconnect", reason: "transport close" }), "server: no transport close");
const again = log[2] || {};
if (on) {
  // The reconnect CONNECT carries {pid, offset} merged with the auth; offset = the last offset received.
  const a = again.auth || {};
  need(again.event === "connect" && again.sid === sid && again.recovered === true
    && same(Object.keys(a), ["pid", "offset", "token"]) && typeof a.pid === "string" && a.pid.length === 20
    && a.offset === firstTicks[2][1] && a.token === "secret", "server: bad recovered connect line");
} else {
  need(again.event === "connect" && typeof again.sid === "string" && again.sid !== sid
    && same(again.auth, { token: "secret" }) && again.recovered === false, "server: bad second connect line");
}
need(same(log[3], { event: "disconnect", reason: "client namespace disconnect" }), "server: no final disconnect");
need(log.length === 4, "server printed " + log.length + " lines, expected 4");
if (problems.length) console.log(problems.join("; "));
'
recovery_scenario() {
  local mode=$1 before out rc srv problems
  before=$(wc -l <"$SERVER_LOG")
  out=$(node client.js "http://127.0.0.1:$SERVER_PORT" recovery); rc=$?
  for _ in $(seq 30); do
    srv=$(tail -n +"$((before + 1))" "$SERVER_LOG")
    echo "$srv" | grep -qxF '{"event":"disconnect","reason":"client namespace disconnect"}' && break
    sleep 0.1
  done
  sleep 0.1
  srv=$(tail -n +"$((before + 1))" "$SERVER_LOG")
  if [ $rc -eq 0 ]; then
    problems=$(node -e "$RECOVERY_CHECK" "$mode" "$out" "$srv" 2>&1)
  else
    problems="client exit $rc"
  fi
  if [ -z "$problems" ]; then
    pass "recovery (CSR $mode)"
  else
    fail "recovery (CSR $mode): $problems; client output:"
    echo "$out" | cut -c1-400 | sed 's/^/    /'
    echo "$srv" | sed 's/^/    server: /'
  fi
}

HEX256=$(node -e 'process.stdout.write(Buffer.from([...Array(256).keys()]).toString("hex"))')
ID='"id":"[^"]*"'

# --- server 1: default ping settings ---
start_server main

# auth: the connected id is random, so check it by pattern first.
out=$(node client.js "http://127.0.0.1:$SERVER_PORT" auth); rc=$?
if [ $rc -eq 0 ] \
  && echo "$out" | sed -n 1p | grep -qx "{\"step\":\"connected\",$ID}" \
  && [ "$(echo "$out" | sed -n 2,3p)" = $'{"step":"connect_error","message":"Not authorized","data":{"code":42}}\n{"step":"done","ok":true}' ] \
  && grep -qxF '{"event":"disconnect","reason":"client namespace disconnect"}' "$SERVER_LOG" \
  && grep -qx '{"event":"connect","sid":"[^"]*","auth":{"token":"secret"},"recovered":false}' "$SERVER_LOG"; then
  pass auth
else
  fail "auth: client exit $rc, output:"; echo "$out" | sed 's/^/    /'
fi

scenario echo "" "{\"step\":\"ack\",\"args\":[\"hi\",{\"\$bytes\":\"$HEX256\"},{\"nested\":[1,2.5,null,true]}]}"
scenario server_call "" '{"step":"ack","args":[42]}'
scenario room "" '{"step":"b_got","args":["hello"]}' '{"step":"a_got","count":0}'
scenario boom '{"event":"handler_error"}' '{"step":"ack","args":[1]}'
scenario server_disconnect '{"event":"disconnect","reason":"server namespace disconnect"}' \
  '{"step":"disconnected","reason":"io server disconnect"}'
scenario big "" '{"step":"big","length":2097152,"equal":true}'

# client_disconnect: connected id is random; compare the rest.
before=$(wc -l <"$SERVER_LOG")
out=$(node client.js "http://127.0.0.1:$SERVER_PORT" client_disconnect); rc=$?
sleep 0.3
if [ $rc -eq 0 ] \
  && echo "$out" | sed -n 1p | grep -qx "{\"step\":\"connected\",$ID}" \
  && [ "$(echo "$out" | sed -n 2,3p)" = $'{"step":"disconnected","reason":"io client disconnect"}\n{"step":"done","ok":true}' ] \
  && tail -n +"$((before + 1))" "$SERVER_LOG" | grep -qxF '{"event":"disconnect","reason":"client namespace disconnect"}'; then
  pass client_disconnect
else
  fail "client_disconnect: client exit $rc, output:"; echo "$out" | sed 's/^/    /'
  tail -n +"$((before + 1))" "$SERVER_LOG" | sed 's/^/    server: /'
fi

# recovery without CSR: new sid, no missed ticks (the client gives up on them after ~1 s).
recovery_scenario off

# provoke is not a client.js scenario: it must be refused with exit 1.
out=$(node client.js "http://127.0.0.1:$SERVER_PORT" provoke); rc=$?
if [ $rc -eq 1 ] && [ "$out" = '{"step":"error","message":"unknown scenario: provoke"}' ]; then
  pass "provoke refused"
else
  fail "provoke refused: exit $rc, output: $out"
fi

# Stop server 1 by closing its stdin.
main_pid=$SERVER_PID
exec {SERVER_FD}>&-
if wait_exit "$main_pid"; then pass "server exits 0 when stdin closes"; else fail "server exits when stdin closes"; fi

# --- server 2: fast heartbeat, for idle ---
start_server fastping --ping-interval 200 --ping-timeout 200
scenario idle '{"event":"disconnect","reason":"client namespace disconnect"}' \
  '{"step":"ack","args":["still here"]}' '{"step":"idle","disconnects":0}' -- --idle-ms 1500
if grep -q '"reason":"ping timeout"' "$SERVER_LOG"; then fail "idle: server saw a ping timeout"; else pass "idle: no ping timeout"; fi

# Stop server 2 with SIGTERM.
kill -TERM "$SERVER_PID"
if wait_exit "$SERVER_PID"; then pass "server exits 0 on SIGTERM"; else fail "server exits on SIGTERM"; fi

# --- server 3: connection state recovery ---
start_server recovery --recovery
recovery_scenario on
exec {SERVER_FD}>&-
if wait_exit "$SERVER_PID"; then pass "server --recovery exits 0 when stdin closes"; else fail "server --recovery exits when stdin closes"; fi

echo "--- server logs ---"
cat "$WORK/main.log" "$WORK/fastping.log" "$WORK/recovery.log"
echo "check: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
