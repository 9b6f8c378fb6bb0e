#!/usr/bin/env bash
# test_node_peers.sh - lp2p-node keeps the peers it knows across restarts in DATA_DIR/peers (the
# peer store's persistence hook, node/peerfile.c): after a dial the file (mode 0600) names the
# peer and its address; a restarted node pings that peer by its id alone (the address comes from
# the file); unreadable lines are skipped with a count on stderr and the rest still loads; an
# address whose TTL ran out while the node was down is not loaded (the ping then fails with
# "not connected").
# Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR.
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node="${LP2P_NODE:-$src/build/lp2p-node}"
if [ ! -x "$node" ]; then
  echo "FAIL: lp2p-node not found at $node"; echo "0 passed, 1 failed"; exit 1
fi
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/xdg"
mkdir -p "$HOME"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | head -30 | sed 's/^/       /'; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1" "${3:-}"; fi; }
# wait_grep FILE PATTERN: the node writes the line when the event happens (bounded wait, 10 s)
wait_grep() { for _ in $(seq 100); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
stop() { kill -s TERM "$1"; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; wait "$1" 2>/dev/null; }

# the peer everyone talks to
"$node" listen --identity "$tmp/a.key" >"$tmp/a.out" 2>"$tmp/a.err" &
pids+=($!)
wait_grep "$tmp/a.out" "/p2p/"
a_addr="$(head -n 1 "$tmp/a.out")"
a_id="${a_addr##*/p2p/}"
a_tcp="${a_addr%/p2p/*}"
data="$tmp/data"

# start_b NAME: lp2p-node with the data dir, --control from a fifo, --json
start_b() {
  rm -f "$tmp/$1.in"; mkfifo "$tmp/$1.in"
  exec 7<>"$tmp/$1.in"
  "$node" listen --data-dir "$data" --control --json <"$tmp/$1.in" >"$tmp/$1.out" 2>"$tmp/$1.err" &
  bpid=$!; pids+=($bpid)
  wait_grep "$tmp/$1.out" '"event":"listening"\|/p2p/'
}

# ---- 1: dial, the file records the peer ----
start_b b1
echo "dial $a_addr" >&7
wait_grep "$tmp/b1.out" '"event":"dialed"'
check "dial succeeds" 'grep "\"event\":\"dialed\"" "$tmp/b1.out" | grep -qv "\"error\""' "$(cat "$tmp/b1.out" "$tmp/b1.err")"
wait_grep "$data/peers" "$a_id"
check "DATA_DIR/peers names the peer and its address, mode 0600" \
  'grep "^$a_id " "$data/peers" | grep -qF "$a_tcp" && [ "$(stat -c %a "$data/peers")" = 600 ]' "$(ls -l "$data" 2>&1; cat "$data/peers" 2>&1)"
stop "$bpid"

# ---- 2: restart, ping by peer id only ----
start_b b2
echo "ping $a_id" >&7
wait_grep "$tmp/b2.out" '"event":"ping"'
check "after a restart the peer is pinged by its id alone (address from DATA_DIR/peers)" \
  'grep "\"event\":\"ping\"" "$tmp/b2.out" | grep -q "\"rtt_us\"" && ! grep "\"event\":\"ping\"" "$tmp/b2.out" | grep -q "\"error\""' \
  "$(cat "$tmp/b2.out" "$tmp/b2.err")"
stop "$bpid"

# ---- 3: unreadable lines and an expired address ----
ghost="$("$node" id --identity "$tmp/ghost.key")"
{
  echo "not-a-peer-id 1:0:/ip4/127.0.0.1/tcp/1"
  echo "$a_id 99:0:/ip4/127.0.0.1/tcp/2 1:0:not-a-multiaddr"
  echo "$ghost 1:1000:/ip4/127.0.0.1/tcp/9"
} >>"$data/peers"
start_b b3
check "unreadable entries are skipped with a count on stderr" 'grep -q "unreadable entries skipped" "$tmp/b3.err"' "$(cat "$tmp/b3.err")"
echo "ping $a_id" >&7
wait_grep "$tmp/b3.out" '"event":"ping"'
check "the readable rest still loads: the peer is pinged by id" \
  'grep "\"event\":\"ping\"" "$tmp/b3.out" | head -1 | grep -q "\"rtt_us\""' "$(cat "$tmp/b3.out" "$tmp/b3.err")"
echo "ping $ghost" >&7
for _ in $(seq 100); do [ "$(grep -c '"event":"ping"' "$tmp/b3.out")" -ge 2 ] && break; sleep 0.1; done
check "an address that expired while the node was down is not loaded" \
  'grep "\"event\":\"ping\"" "$tmp/b3.out" | sed -n 2p | grep -q "\"error\""' "$(cat "$tmp/b3.out")"
stop "$bpid"
check "the expired entry is gone from the file, the good one stays" \
  '! grep -q "^$ghost " "$data/peers" && grep -q "^$a_id " "$data/peers"' "$(cat "$data/peers")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
