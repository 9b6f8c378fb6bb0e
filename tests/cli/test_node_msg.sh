#!/usr/bin/env bash
# test_node_msg.sh - messaging and file transfer with lp2p-node processes (issue 15 scenarios 1-4 and a
# chaos run through the msg_proxy tool):
#  1. connect, then send: still one connection (no second dial); one-shot `send` via --api and `inbox`
#  2. the peer stops: connection-closed at once, peer table empty; the next send is queued (exit 3),
#     delivered when the peer comes back; a peer gone for good: message-failed after the attempts
#  3. a text + a 100 MB attachment with receipts (sha256 checked against sha256sum), rate limit hit
#     and honoured (TOO_LARGE and replayed frames: test_messaging, the API's line limit is 64 KiB)
#  4. kill -9 of the sender with 1,000 queued and of the receiver in the middle of a file; restart
#     both: every queued message delivered exactly once, the 250 MB file resumes (not from 0) and verifies
#  5. (proxy chaos) 500 messages through a proxy that cuts every connection every 700 ms: all
#     delivered, none twice
# Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR, LP2P_TOOLS_DIR (msg_proxy).
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node="${LP2P_NODE:-$src/build/lp2p-node}"
tools="${LP2P_TOOLS_DIR:-$src/build/tests}"
if [ ! -x "$node" ]; then echo "FAIL: lp2p-node not found at $node"; echo "0 passed, 1 failed"; exit 1; fi
py="$(command -v python3)" || { echo "FAIL: python3 not found"; echo "0 passed, 1 failed"; exit 1; }
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null || true; [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"; }
trap cleanup EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/xdg"
mkdir -p "$HOME"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | tail -20 | sed 's/^/       /'; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1" "${3:-}"; fi; }
wait_for() { # file pattern [tenths]
  for _ in $(seq "${3:-100}"); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }

# start NAME PORT [flags...]: node NAME on 127.0.0.1:PORT with --api, JSON on NAME.out
start() {
  local name=$1 port=$2; shift 2
  "$node" listen --listen "/ip4/127.0.0.1/tcp/$port" --api "$tmp/$name.sock" --data-dir "$tmp/$name" --json \
    --msg-backoff 200 "$@" >>"$tmp/$name.out" 2>>"$tmp/$name.err" &
  eval "pid_$name=$!"; pids+=($!)
  for _ in $(seq 100); do [ -S "$tmp/$name.sock" ] && grep -q '"listening"' "$tmp/$name.out" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api() { # NAME LINE...: send lines to NAME's API, print what comes back for a moment
  "$py" - "$tmp/$1.sock" "${@:2}" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
for l in sys.argv[2:]: s.sendall((l + "\n").encode())
s.settimeout(0.5)
try:
    while True:
        d = s.recv(65536)
        if not d: break
        sys.stdout.write(d.decode())
except socket.timeout: pass
EOF
}

pa=$(free_port); pb=$(free_port)
start a "$pa" || bad "node a starts" "$(cat "$tmp/a.err")"
start b "$pb" --msg-rate 50 || bad "node b starts" "$(cat "$tmp/b.err")"
ida=$("$node" id --identity "$tmp/a/identity.key"); idb=$("$node" id --identity "$tmp/b/identity.key")
addr_b="/ip4/127.0.0.1/tcp/$pb/p2p/$idb"

# ---- 1: connect, then send over the same connection ----
api a "dial $addr_b" >/dev/null
wait_for "$tmp/a.out" '"connection-opened"' || true
out=$("$node" send "$idb" "hello from a" --api "$tmp/a.sock" --timeout 10); rc=$?
check "1: send via --api: delivered (exit 0)" '[ $rc = 0 ] && echo "$out" | grep -q "^delivered "' "$out rc=$rc"
wait_for "$tmp/b.out" '"message-received".*hello from a'
check "1: b raised message-received {from, id, text}" \
  'grep "\"message-received\"" "$tmp/b.out" | grep -q "\"from\":\"$ida\".*\"text\":\"hello from a\""' "$(tail -5 "$tmp/b.out")"
check "1: still one connection (no second dial)" '[ "$(count "$tmp/a.out" "\"connection-opened\"")" = 1 ]' "$(grep connection "$tmp/a.out")"
check "1: a saw message-queued and message-delivered {id, peer}" \
  'grep -q "\"message-queued\"" "$tmp/a.out" && grep -q "\"message-delivered\".*\"peer\":\"$idb\"" "$tmp/a.out"' "$(tail -5 "$tmp/a.out")"
out=$("$node" inbox --api "$tmp/b.sock" --timeout 5)
check "1: inbox lists the message" 'echo "$out" | grep -q "$ida: hello from a"' "$out"
out=$("$node" inbox --api "$tmp/b.sock" --timeout 5 --json)
check "1: inbox took it (second listing empty)" 'echo "$out" | grep -q "\"inbox-done\",\"count\":0"' "$out"

out=$("$node" send "$addr_b" "from a short-lived node" --data-dir "$tmp/s" --timeout 10); rc=$?
wait_for "$tmp/b.out" '"text":"from a short-lived node"'
check "1: one-shot send without --api (short-lived node on --data-dir): delivered" \
  '[ $rc = 0 ] && grep -q "\"text\":\"from a short-lived node\"" "$tmp/b.out"' "$out rc=$rc"

# ---- 3: 100 MB attachment with receipts; rate limit; too large ----
head -c 100000000 /dev/urandom >"$tmp/big.bin"
want=$(sha256sum "$tmp/big.bin" | cut -d' ' -f1)
out=$("$node" send "$idb" "the attachment follows" --api "$tmp/a.sock" --timeout 10); rc=$?
t0=$(date +%s.%N)
out=$("$node" send-file "$idb" "$tmp/big.bin" --api "$tmp/a.sock" --timeout 120 --json); rc=$?
t1=$(date +%s.%N)
check "3: send-file 100 MB: file-delivered (exit 0), JSON progress" \
  '[ $rc = 0 ] && echo "$out" | grep -q "\"file-delivered\"" && echo "$out" | grep -q "\"file-progress\""' "$(echo "$out" | tail -3) rc=$rc"
wait_for "$tmp/b.out" '"file-received"'
check "3: b: file-received {from, id, path, size, sha256} matches sha256sum" \
  'grep "\"file-received\"" "$tmp/b.out" | grep -q "\"size\":100000000,\"sha256\":\"$want\""' "$(grep file-received "$tmp/b.out") want $want"
check "3: the received file is in DATA_DIR/received, identical" 'cmp -s "$tmp/big.bin" "$tmp/b/received/big.bin"'
echo "     100 MB in $(echo "$t1 - $t0" | bc) s (hashing, transfer, verify, fsync)"
# rate limit: b takes 50 msgs/s (burst 50); 150 messages need about 2 s and all arrive
lines=(); for i in $(seq 150); do lines+=("send $idb burst-$i"); done
api a "${lines[@]}" >/dev/null
for _ in $(seq 150); do [ "$(count "$tmp/b.out" '"text":"burst-')" -ge 150 ] && break; sleep 0.1; done
check "3: rate limit: 150 messages at 50/s all delivered, none twice" \
  '[ "$(grep -o "\"text\":\"burst-[0-9]*\"" "$tmp/b.out" | sort -u | wc -l)" = 150 ] && [ "$(count "$tmp/b.out" "\"text\":\"burst-")" = 150 ]' \
  "$(count "$tmp/b.out" '"text":"burst-')"
# ---- 2: the peer stops: table empty at once; queued; delivered when back; gone for good: failed ----
kill -TERM "$pid_b"; wait "$pid_b" 2>/dev/null
wait_for "$tmp/a.out" '"connection-closed"'
check "2: a: connection-closed with peers 0 at once" 'grep "\"connection-closed\"" "$tmp/a.out" | grep -q "\"peers\":0"' "$(grep connection "$tmp/a.out")"
out=$("$node" send "$idb" "while you were away" --api "$tmp/a.sock" --timeout 2); rc=$?
check "2: send to a stopped peer: still queued after the timeout (exit 3)" '[ $rc = 3 ]' "$out rc=$rc"
start b "$pb" || bad "node b restarts"
wait_for "$tmp/b.out" '"text":"while you were away"' 150
check "2: delivered once the peer is back (redial from the peer store)" 'grep -q "\"text\":\"while you were away\"" "$tmp/b.out"'
pg=$(free_port)
idg=$("$node" id --identity "$tmp/ghost.key")
start g "$(free_port)" --msg-attempts 3 --msg-backoff 100 || bad "node g starts"
out=$("$node" send "/ip4/127.0.0.1/tcp/$pg/p2p/$idg" "nobody home" --api "$tmp/g.sock" --timeout 20); rc=$?
check "2: a peer gone for good: message-failed after 3 attempts (exit 1)" \
  '[ $rc = 1 ] && grep -q "\"message-failed\".*\"attempts\":3" "$tmp/g.out"' "$out rc=$rc $(grep message-failed "$tmp/g.out")"

# ---- 4: kill -9 the sender with 1,000 queued; the receiver in the middle of a file ----
kill -TERM "$pid_b"; wait "$pid_b" 2>/dev/null
pc=$(free_port)
start c "$pc" || bad "node c starts"
api c "dial $addr_b" >/dev/null
lines=(); for i in $(seq 1000); do lines+=("send $idb q-$i"); done
api c "${lines[@]}" >/dev/null
for _ in $(seq 100); do [ "$(count "$tmp/c.out" '"message-queued"')" -ge 1000 ] && break; sleep 0.1; done
nq=$(count "$tmp/c.out" '"message-queued"')
kill -9 "$pid_c"; wait "$pid_c" 2>/dev/null
check "4: 1,000 messages queued (acknowledged to the app) before kill -9" '[ "$nq" = 1000 ]' "$nq"
start b "$pb" || bad "node b restarts"
start c "$pc" || bad "node c restarts"
api c "dial $addr_b" >/dev/null
for _ in $(seq 300); do [ "$(grep -c '"text":"q-' "$tmp/b.out")" -ge 1000 ] && break; sleep 0.1; done
got=$(grep -o '"text":"q-[0-9]*"' "$tmp/b.out" | wc -l); uniq=$(grep -o '"text":"q-[0-9]*"' "$tmp/b.out" | sort -u | wc -l)
check "4: after restarting both: all 1,000 delivered exactly once" '[ "$got" = 1000 ] && [ "$uniq" = 1000 ]' "got $got unique $uniq"
# the receiver dies mid-file
rm -f "$tmp/b/received/big.bin"
head -c 250000000 /dev/urandom >"$tmp/big2.bin" # big enough that the kill lands mid-file
want2=$(sha256sum "$tmp/big2.bin" | cut -d' ' -f1)
n0=$(wc -l <"$tmp/b.out")
"$node" send-file "$idb" "$tmp/big2.bin" --api "$tmp/a.sock" --timeout 300 --json >"$tmp/sf.out" 2>&1 &
sfpid=$!; pids+=($sfpid)
# past two durable checkpoints (the receiver records every 16 chunks of 1 MiB), whatever the build's speed
for _ in $(seq 1500); do
  b_bytes=$(tail -n +$((n0 + 1)) "$tmp/b.out" | grep '"file-progress"' | grep '"outgoing":false' | tail -1 | grep -o '"bytes":[0-9]*' | cut -d: -f2)
  [ -n "$b_bytes" ] && [ "$b_bytes" -ge 40000000 ] && break; sleep 0.02
done
kill -9 "$pid_b"; wait "$pid_b" 2>/dev/null
check "4: receiver killed with the file in progress (${b_bytes:-0} bytes)" \
  '[ -n "$b_bytes" ] && ! grep -q "\"file-received\".*big2" "$tmp/b.out"'
start b "$pb" || bad "node b restarts"
wait "$sfpid"; rc=$?
check "4: the file resumes and is delivered (send-file exit 0)" '[ $rc = 0 ]' "$(tail -3 "$tmp/sf.out") rc=$rc"
resumed=$(grep '"file-progress"' "$tmp/b.out" | grep '"outgoing":false' | grep -o '"resumed_from":[0-9]*' | cut -d: -f2 | sort -n | tail -1)
check "4: resumed from the last verified chunk, not from 0 ($resumed bytes)" '[ -n "$resumed" ] && [ "$resumed" -gt 0 ]'
check "4: the resumed file verifies (sha256sum)" 'cmp -s "$tmp/big2.bin" "$tmp/b/received/big2.bin" && grep -q "\"sha256\":\"$want2\"" "$tmp/b.out"'

# ---- 5: through a proxy that cuts every connection every 700 ms ----
if [ -x "$tools/msg_proxy" ]; then
  "$tools/msg_proxy" --listen 0 --target "$pb" --cut-every-ms 700 --delay-ms 2 >"$tmp/proxy.port" &
  pids+=($!)
  for _ in $(seq 50); do [ -s "$tmp/proxy.port" ] && break; sleep 0.1; done
  pp=$(head -1 "$tmp/proxy.port")
  pd=$(free_port)
  start d "$pd" --msg-backoff 50 || bad "node d starts"
  api d "dial /ip4/127.0.0.1/tcp/$pp/p2p/$idb" >/dev/null
  for b in 0 1 2 3 4; do # five bursts over about 3 s: several cuts in the middle
    lines=(); for i in $(seq $((b * 100 + 1)) $((b * 100 + 100))); do lines+=("send $idb chaos-$i"); done
    api d "${lines[@]}" >/dev/null
  done
  for _ in $(seq 600); do [ "$(count "$tmp/d.out" '"message-delivered"')" -ge 500 ] && break; sleep 0.1; done
  got=$(grep -o '"text":"chaos-[0-9]*"' "$tmp/b.out" | wc -l); uniq=$(grep -o '"text":"chaos-[0-9]*"' "$tmp/b.out" | sort -u | wc -l)
  check "5: 500 messages through connection cuts every 700 ms: all delivered, none twice ($(count "$tmp/d.out" '"connection-closed"') cuts seen)" \
    '[ "$got" = 500 ] && [ "$uniq" = 500 ] && [ "$(count "$tmp/d.out" "\"message-delivered\"")" -ge 500 ]' "got $got unique $uniq"
else
  echo "skip 5: msg_proxy not built ($tools)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
