#!/usr/bin/env bash
# test_node_pubsub.sh - gossipsub in lp2p-node (node/mod_pubsub.c): three nodes in a line
# A - B - C (no A-C connection; B dials A, C dials B), all started with --subscribe chat.
# A message published on A reaches B and C exactly once (gossip-message events), the
# published result names the id and the peer count; C's message reaches A through B; then
# D joins late (dials C, then subscribes by command) and gets the next messages of A exactly once,
# while nothing published before it joined is replayed; mesh/unsubscribe commands answer.
# Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR.
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node="${LP2P_NODE:-$src/build/lp2p-node}"
if [ ! -x "$node" ]; then
  echo "FAIL: lp2p-node not found at $node"; echo "0 passed, 1 failed"; exit 1
fi
tmp="$(mktemp -d)"
pids=()
cleanup() { exec 2>/dev/null; for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/xdg"
mkdir -p "$HOME"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | head -30 | sed 's/^/       /'; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1" "${3:-}"; fi; }
# wait_grep FILE PATTERN [SEC]: bounded wait for a line (the node writes it when the event happens)
wait_grep() { for _ in $(seq $((${3:-10} * 10))); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }

declare -A fd addr
# start NAME ARGS...: lp2p-node listen --json --control, stdin from a FIFO on a new fd (--no-kad: the DHT would link A and C and spoil the line)
start() {
  local name="$1"; shift
  mkfifo "$tmp/$name.in"
  exec {f}<>"$tmp/$name.in"
  fd[$name]=$f
  "$node" listen --json --control --no-kad --identity "$tmp/$name.key" "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  wait_grep "$tmp/$name.out" '"event":"listening"'
  addr[$name]="$(grep -m1 '"event":"listening"' "$tmp/$name.out" | sed 's/.*"addr":"\([^"]*\)".*/\1/')"
}
cmd() { printf '%s\n' "$2" >&"${fd[$1]}"; }
# mesh_size NAME TOPIC: asks for the mesh, prints the number of peers of the newest answer
mesh_size() {
  local before; before="$(count "$tmp/$1.out" '"event":"mesh"')"
  cmd "$1" "mesh $2"
  for _ in $(seq 50); do [ "$(count "$tmp/$1.out" '"event":"mesh"')" -gt "$before" ] && break; sleep 0.1; done
  grep '"event":"mesh"' "$tmp/$1.out" | tail -1 | grep -o '12D3Koo[A-Za-z0-9]*' | wc -l
}
wait_mesh() { for _ in $(seq 30); do [ "$(mesh_size "$1" "$2")" -ge "$3" ] && return 0; sleep 0.3; done; return 1; }

start A --subscribe chat
start B --subscribe chat
start C --subscribe chat --subscribe other
check "three nodes listening" '[ -n "${addr[A]}" ] && [ -n "${addr[B]}" ] && [ -n "${addr[C]}" ]' "$(cat "$tmp"/*.err)"
cmd B "dial ${addr[A]}"
cmd C "dial ${addr[B]}"
wait_grep "$tmp/B.out" '"event":"dialed"'
wait_grep "$tmp/C.out" '"event":"dialed"'
check "B's mesh holds A and C (line, no A-C link)" 'wait_mesh B chat 2' "$(tail -5 "$tmp/B.out")"
check "A is not connected to C" '! grep -q "${addr[C]##*/p2p/}" "$tmp/A.out"'

cmd A "publish chat hello from A"
wait_grep "$tmp/A.out" '"event":"published"'
check "published {topic, ok, id, peers}" 'grep "\"event\":\"published\"" "$tmp/A.out" | grep "\"topic\":\"chat\"" | grep "\"ok\":true" | grep -q "\"peers\":1"' "$(grep published "$tmp/A.out")"
wait_grep "$tmp/C.out" 'hello from A'
wait_grep "$tmp/B.out" 'hello from A'
a_id="${addr[A]##*/p2p/}"
check "C got A's message through B" 'grep "\"event\":\"gossip-message\"" "$tmp/C.out" | grep "\"topic\":\"chat\"" | grep "\"from\":\"$a_id\"" | grep -q "\"data\":\"hello from A\""' "$(tail -5 "$tmp/C.out")"
id="$(grep '"event":"published"' "$tmp/A.out" | head -1 | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/')"
check "the id of the gossip-message is the published id" 'grep "hello from A" "$tmp/C.out" | grep -q "\"id\":\"$id\""'

cmd C "publish chat reply from C"
wait_grep "$tmp/A.out" 'reply from C'
check "A got C's message through B" 'grep -q "\"data\":\"reply from C\"" "$tmp/A.out"' "$(tail -5 "$tmp/A.out")"
cmd C "publish other not for A"
sleep 3 # three heartbeats of gossip: a duplicate would show up now
check "exactly once on B and C" '[ "$(count "$tmp/B.out" "hello from A")" = 1 ] && [ "$(count "$tmp/C.out" "hello from A")" = 1 ] && [ "$(count "$tmp/B.out" "reply from C")" = 1 ] && [ "$(count "$tmp/A.out" "reply from C")" = 1 ]'
check "nobody gets their own message, nor a topic it did not join" '[ "$(count "$tmp/A.out" "gossip-message.*hello from A")" = 0 ] && [ "$(count "$tmp/A.out" "not for A")" = 0 ] && [ "$(count "$tmp/B.out" "not for A")" = 0 ]'

# ---- D joins late ----
start D # no --subscribe: gossipsub starts with its first subscribe, on a connection already up
cmd D "dial ${addr[C]}"
wait_grep "$tmp/D.out" '"event":"dialed"'
cmd D "subscribe chat"
wait_grep "$tmp/D.out" '"event":"subscribed"'
check "subscribed {topic, ok}" 'grep "\"event\":\"subscribed\"" "$tmp/D.out" | grep -q "\"ok\":true"'
check "D in C's mesh" 'wait_mesh D chat 1'
for i in 1 2 3 4 5; do cmd A "publish chat late $i"; done
for i in 1 2 3 4 5; do wait_grep "$tmp/D.out" "late $i"; done
sleep 3
check "D got every later message exactly once" 'for i in 1 2 3 4 5; do [ "$(count "$tmp/D.out" "\"data\":\"late $i\"")" = 1 ] || exit 1; done' "$(grep gossip "$tmp/D.out")"
check "C got them exactly once too" 'for i in 1 2 3 4 5; do [ "$(count "$tmp/C.out" "\"data\":\"late $i\"")" = 1 ] || exit 1; done'
check "nothing from before D joined is replayed" '! grep -q "hello from A" "$tmp/D.out"'

cmd D "unsubscribe chat"
wait_grep "$tmp/D.out" '"event":"unsubscribed"'
check "unsubscribed {topic, ok}" 'grep "\"event\":\"unsubscribed\"" "$tmp/D.out" | grep -q "\"ok\":true"'
cmd A "publish chat after D left"
wait_grep "$tmp/C.out" 'after D left'
sleep 1
check "D gets nothing after leaving" '! grep -q "after D left" "$tmp/D.out"'
cmd A "publish"
wait_grep "$tmp/A.out" '"event":"control-error"\|"error"' 5
check "publish without a topic is a command error" 'grep -q "usage: publish TOPIC TEXT" "$tmp/A.out"' "$(tail -3 "$tmp/A.out")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
