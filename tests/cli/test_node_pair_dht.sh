#!/usr/bin/env bash
# test_node_pair_dht.sh - pairing through the DHT between lp2p-node processes on loopback (no
# mDNS, no address typed): x is a Kademlia bootstrap node; a and b bootstrap from x only.
#   1. a pair-start (6-digit nameplate) -> a provides SHA-256("lp2p-pair-dht", nameplate, epoch);
#      b pair-join CODE (no peer) finds a as a provider and pairs; same SAS both sides; 10 runs
#      for the timings (p50 printed)
#   2. c (bootstrapped from x too) knows the nameplate but not the words: it finds a through the
#      DHT, its guess fails on both sides and burns the code; b's right code then fails too
#   3. a and b restart (same data dirs, fresh ports, still only x as bootstrap): still paired;
#      ping, --paired-only on both, works a <-> b by peer id alone (addresses from the device
#      registry or the DHT) and is refused to the unpaired x; b's registry then holds a's new
#      address (refreshed from identify, persisted)
# Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR.
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node="${LP2P_NODE:-$src/build/lp2p-node}"
if [ ! -x "$node" ]; then
  echo "FAIL: lp2p-node not found at $node"; echo "0 passed, 1 failed"; exit 1
fi
command -v jq >/dev/null || { echo "SKIP: jq missing (scripts/deps installs it)"; exit 77; }
tmp="$(mktemp -d)"
declare -A fd_of=() pid_of=()
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"; }
trap cleanup EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/xdg"
mkdir -p "$HOME" "$tmp/seen"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | head -30 | sed 's/^/       /'; fail=$((fail + 1)); }
now_ms() { date +%s%3N; }
# wait_ev NAME EVENT [JQ] [SEC]: the NEXT matching event line (not returned before), else fails
wait_ev() {
  local n="$1" e="$2" f="${3:-true}" sec="${4:-10}" line sf
  sf="$tmp/seen/$n.$(printf '%s|%s' "$e" "$f" | md5sum | cut -c1-16)"
  local want=$(( $(cat "$sf" 2>/dev/null || echo 0) + 1 )) end=$(( $(now_ms) + sec * 1000 ))
  while :; do
    line="$(jq -c --arg e "$e" "select(.event == \$e and ($f))" "$tmp/$n.out" 2>/dev/null | sed -n "${want}p")"
    if [ -n "$line" ]; then echo "$want" >"$sf"; printf '%s\n' "$line"; return 0; fi
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep 0.01
  done
}
cmd() { printf '%s\n' "$2" >&"${fd_of[$1]}"; }
start() {
  local n="$1" d="$2"; shift 2
  rm -f "$tmp/$n.in"; mkfifo "$tmp/$n.in"
  local fd; exec {fd}<>"$tmp/$n.in"; fd_of[$n]=$fd
  "$node" listen --data-dir "$d" --control --json --listen /ip4/127.0.0.1/tcp/0 "$@" <"$tmp/$n.in" >"$tmp/$n.out" 2>"$tmp/$n.err" &
  pid_of[$n]=$!; pids+=($!)
  local l; l="$(wait_ev "$n" listening true 10)" || { bad "$n started" "$(cat "$tmp/$n.err")"; return 1; }
  printf -v "addr_$n" '%s' "$(jq -r .addr <<<"$l")"
  local a="addr_$n"; printf -v "id_$n" '%s' "${!a##*/p2p/}"
}
stop() {
  local p="${pid_of[$1]}"
  cmd "$1" quit
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
  rm -f "$tmp/seen/$1".*
}
P=(--pair-nameplate-digits 6 --paired-only /ipfs/ping/1.0.0)

start x "$tmp/dx" --device-name boot || { echo "$pass passed, $((fail + 1)) failed"; exit 1; }
start a "$tmp/da" --device-name laptop --bootstrap "$addr_x" "${P[@]}"
start b "$tmp/db" --device-name phone --bootstrap "$addr_x" "${P[@]}"
wait_ev a kad-bootstrap true 10 >/dev/null && wait_ev b kad-bootstrap true 10 >/dev/null &&
  ok "a and b bootstrapped from x" || bad "a and b bootstrapped from x" "$(tail -3 "$tmp/a.out" "$tmp/b.out")"

# ---- 1: 10 pairings through the DHT ----
times=()
for run in $(seq 10); do
  cmd a pair-start
  code="$(wait_ev a pair-code true 5 | jq -r .code)"
  t0=$(now_ms)
  cmd b "pair-join $code"
  pb="$(wait_ev b paired true 20)"; t1=$(now_ms)
  pa="$(wait_ev a paired true 10)"
  times+=($((t1 - t0)))
  if [ "$run" = 1 ]; then
    np="${code%%-*}"
    if [ "${#np}" = 6 ] && [ -n "$pb" ] && [ -n "$pa" ] && [ "$(jq -r .sas <<<"$pa")" = "$(jq -r .sas <<<"$pb")" ] &&
      [ "$(jq -r .peer <<<"$pb")" = "$id_a" ] && [ "$(jq -r .peer <<<"$pa")" = "$id_b" ] && [ "$(jq -r .name <<<"$pb")" = laptop ]; then
      ok "pair-join CODE without an address: paired through the DHT, same SAS, 6-digit nameplate"
    else bad "paired through the DHT" "code=$code a=$pa b=$pb $(grep pair "$tmp/b.out" | tail -5)"; fi
  fi
  [ -n "$pb" ] && [ -n "$pa" ] || { bad "DHT pairing run $run" "$code $(grep pair "$tmp/b.out" | tail -3)"; break; }
done
if [ "${#times[@]}" = 10 ]; then
  sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  echo "  pairing via the DHT on loopback (pair-join -> paired, incl. provider lookup, dial, PAKE, control I/O), 10 runs: p50 ${sorted[4]} ms, min ${sorted[0]} ms, max ${sorted[9]} ms"
  ok "10 pairings through the DHT"
else bad "10 pairings through the DHT"; fi
if ! grep '"event":"device-state"' "$tmp/x.out" | grep -q '"state":"pairing"'; then
  ok "the bootstrap node x never ran a PAKE session"; else bad "x never ran a PAKE session"; fi

# ---- 2: c knows the nameplate, not the words (found through the DHT) ----
start c "$tmp/dc" --device-name mallory --bootstrap "$addr_x"
wait_ev c kad-bootstrap true 10 >/dev/null
mapfile -t words < <(grep -o '"[a-z]*"' "$src/protocols/pairing/engine/wordlist.c" | tr -d '"')
cmd a pair-start
code="$(wait_ev a pair-code true 5 | jq -r .code)"
np="${code%%-*}"
guessed=""
for try in $(seq 400); do
  guess="$np-${words[RANDOM % 2048]}-${words[RANDOM % 2048]}-${words[RANDOM % 2048]}"
  [ "$guess" = "$code" ] && continue
  cmd c "pair-join $guess"
  e="$(wait_ev c pair-failed 'true' 1)" || e=""
  if [ -n "$e" ] && [ "$(jq -r .error <<<"$e")" = typo ]; then continue; fi
  guessed="$guess"; break
done
fa="$(wait_ev a pair-failed true 20)"
fc="$(wait_ev c pair-failed '.error != "typo"' 20)"
if jq -e '.error == "wrong-code" and .burned' >/dev/null <<<"$fa" && jq -e '.error == "aborted" and .peer_error == "wrong-code" and .burned' >/dev/null <<<"$fc"; then
  ok "c's guess (right nameplate, wrong words, found via the DHT) fails on both sides and burns the code"
else bad "c's guess fails on both sides and burns the code" "guess=$guessed a=$fa c=$fc"; fi
cmd b "pair-join $code"
e="$(wait_ev b pair-failed true 40)"
[ -n "$e" ] && ! jq -e 'select(.event == "paired" and .peer == "'"$id_c"'")' "$tmp/a.out" >/dev/null 2>&1 &&
  ok "the burned code no longer pairs b ($(jq -r .error <<<"$e"))" || bad "the burned code no longer pairs b" "$e"
stop c

# ---- 3: restart both: still paired, paired-only ping by id ----
stop a; stop b
start a "$tmp/da" --device-name laptop --bootstrap "$addr_x" "${P[@]}"
start b "$tmp/db" --device-name phone --bootstrap "$addr_x" "${P[@]}"
cmd b devices
d="$(wait_ev b devices true 5)"
jq -e ".count == 1 and .peers[0] == \"$id_a\"" >/dev/null <<<"$d" && ok "after restart b still lists a" || bad "after restart b still lists a" "$d"
wait_ev a kad-bootstrap true 10 >/dev/null; wait_ev b kad-bootstrap true 10 >/dev/null
cmd b "ping $id_a"
p="$(wait_ev b ping true 15)"
jq -e '.rtt_us > 0' >/dev/null <<<"$p" && ok "paired-only ping b -> a by id after restart (new ports)" || bad "paired-only ping b -> a after restart" "$p"
new_port_a="$(sed 's|.*/tcp/\([0-9]*\)/.*|\1|' <<<"$addr_a")"
for _ in $(seq 100); do grep "^$id_a " "$tmp/db/devices" 2>/dev/null | grep -q "/tcp/$new_port_a\b" && break; sleep 0.05; done
grep "^$id_a " "$tmp/db/devices" 2>/dev/null | grep -q "/tcp/$new_port_a\b" &&
  ok "b's device registry now holds a's new address (port $new_port_a), persisted" ||
  bad "b's registry refreshed a's address" "$(cat "$tmp/db/devices")"
cmd a "ping $id_b"
p="$(wait_ev a ping true 15)"
jq -e '.rtt_us > 0' >/dev/null <<<"$p" && ok "paired-only ping a -> b" || bad "paired-only ping a -> b" "$p"
cmd x "ping $id_a"
p="$(wait_ev x ping true 15)"
jq -e '.error == "LP2P_ERR_UNSUPPORTED"' >/dev/null <<<"$p" && ok "paired-only ping refused to the unpaired x" || bad "paired-only ping refused to x" "$p"
wait_ev a inbound-stream-failed '.error == "LP2P_ERR_DENIED"' 5 >/dev/null && ok "a's gate denied x's stream (LP2P_ERR_DENIED)" || bad "a's gate denied x's stream" "$(grep inbound-stream "$tmp/a.out")"
stop a; stop b; stop x
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
