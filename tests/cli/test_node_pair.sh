#!/usr/bin/env bash
# test_node_pair.sh - pairing end to end with lp2p-node processes on loopback (node/mod_pair.c,
# node/cmd_pair.c; direct rendezvous: the joiner is given the initiator's address):
#   1. A pair-start -> pair-code; B pair-join CODE A -> paired on both sides with the same SAS,
#      device-state events, `devices` lists the peer; timings: p50 of 10 pairings
#   2. a third node C that knows the nameplate but not the words: its typos are refused locally
#      (no traffic), its first well-formed guess fails on both sides (wrong-code / aborted) and burns
#      the code: B then cannot pair with it either
#   3. both restart (same data dirs, A on the same port): still paired; ping, marked
#      --paired-only on A, works from B and is refused to the unpaired C
#   4. codes expire (--pair-code-ttl 1): pair-failed {error: expired}; joining it fails
#   5. one-shot `lp2p-node pair` / `pair CODE --peer` exit 0, `devices` lists, `unpair` forgets
#   6. unpair in the daemon tells the other side (its device goes to "unpaired")
# (Tampered and replayed PAKE messages: tests/unit/test_pairing.c, a raw joiner on the real behaviour.)
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
mkdir -p "$HOME"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | head -30 | sed 's/^/       /'; fail=$((fail + 1)); }
now_ms() { date +%s%3N; }

# ev NAME EVENT [JQ] : the Nth (count of earlier waits for it) matching event line, else ""
# wait_ev NAME EVENT [JQ] [SEC]: wait for the NEXT matching event (not returned before)
# (the count of lines already returned per NAME+EVENT+JQ lives in a file: wait_ev runs in $(...))
mkdir -p "$tmp/seen"
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

# start NAME DATA_DIR ARGS... : lp2p-node listen --control --json; sets addr_NAME, id_NAME
start() {
  local n="$1" d="$2"; shift 2
  rm -f "$tmp/$n.in"; mkfifo "$tmp/$n.in"
  local fd; exec {fd}<>"$tmp/$n.in"; fd_of[$n]=$fd
  "$node" listen --data-dir "$d" --control --json --paired-only /ipfs/ping/1.0.0 "$@" <"$tmp/$n.in" >"$tmp/$n.out" 2>"$tmp/$n.err" &
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

start a "$tmp/da" --device-name laptop || { echo "$pass passed, $((fail + 1)) failed"; exit 1; }
start b "$tmp/db" --device-name phone
start c "$tmp/dc" --device-name mallory

# ---- 1: pair, 10 times for the timings ----
times=()
for run in $(seq 10); do
  cmd a pair-start
  code="$(wait_ev a pair-code true 5 | jq -r .code)"
  t0=$(now_ms)
  cmd b "pair-join $code $addr_a"
  pb="$(wait_ev b paired true 10)"; t1=$(now_ms)
  pa="$(wait_ev a paired true 10)"
  times+=($((t1 - t0)))
  if [ "$run" = 1 ]; then
    if [ -n "$pb" ] && [ -n "$pa" ] && [ "$(jq -r .sas <<<"$pa")" = "$(jq -r .sas <<<"$pb")" ] &&
      [ "$(jq -r .name <<<"$pb")" = laptop ] && [ "$(jq -r .name <<<"$pa")" = phone ] &&
      [ "$(jq -r .peer <<<"$pb")" = "$id_a" ] && [ "$(jq -r .peer <<<"$pa")" = "$id_b" ]; then
      ok "pair-start / pair-join: paired on both sides, same SAS ($(jq -r .sas <<<"$pa")), names and ids"
    else bad "pair-start / pair-join: paired on both sides" "code=$code a=$pa b=$pb $(tail -5 "$tmp/a.out" "$tmp/b.out")"; fi
    if wait_ev b device-state ".peer == \"$id_a\" and .state == \"connected\"" 5 >/dev/null &&
      wait_ev a device-state ".peer == \"$id_b\" and .state == \"connected\"" 5 >/dev/null &&
      [ "$(jq -r 'select(.event == "device-state" and .peer == "'"$id_a"'") | .state' "$tmp/b.out" | tr '\n' ' ')" = "discovered pairing paired connected " ]; then
      ok "device-state: discovered -> pairing -> paired -> connected"
    else bad "device-state: discovered -> pairing -> paired -> connected" "$(grep device-state "$tmp/b.out")"; fi
    cmd b devices
    d="$(wait_ev b devices true 5)"
    if jq -e ".count == 1 and .peers[0] == \"$id_a\" and .names[0] == \"laptop\" and .states[0] == \"connected\"" >/dev/null <<<"$d"; then
      ok "devices lists the paired device"; else bad "devices lists the paired device" "$d"; fi
  fi
  [ -n "$pb" ] && [ -n "$pa" ] || { bad "pairing run $run" "$code"; break; }
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "  pairing on loopback (pair-join -> paired, incl. dial + Noise + PAKE + control I/O), 10 runs: p50 ${sorted[4]} ms, min ${sorted[0]} ms, max ${sorted[9]} ms"
[ "${#times[@]}" = 10 ] && ok "10 pairings in a row" || bad "10 pairings in a row"

# ---- 2: C knows the nameplate, not the words ----
mapfile -t words < <(grep -o '"[a-z]*"' "$src/protocols/pairing/engine/wordlist.c" | tr -d '"')
cmd a pair-start
code="$(wait_ev a pair-code true 5 | jq -r .code)"
np="${code%%-*}"
typos=0 guessed=""
for try in $(seq 400); do
  guess="$np-${words[RANDOM % 2048]}-${words[RANDOM % 2048]}-${words[RANDOM % 2048]}"
  [ "$guess" = "$code" ] && continue
  cmd c "pair-join $guess $addr_a"
  e="$(wait_ev c pair-failed 'true' 1)" || e=""
  if [ -n "$e" ] && [ "$(jq -r .error <<<"$e")" = typo ]; then typos=$((typos + 1)); continue; fi
  guessed="$guess"; break
done
echo "  C: $typos guesses refused locally by the code check before one passed it"
fa="$(wait_ev a pair-failed true 10)"
fc="$(wait_ev c pair-failed '.error != "typo"' 10)"
if jq -e '.error == "wrong-code" and .burned' >/dev/null <<<"$fa" && jq -e '.error == "aborted" and .peer_error == "wrong-code" and .burned' >/dev/null <<<"$fc"; then
  ok "a guess with the right nameplate and wrong words fails on both sides and burns the code"
else bad "a wrong guess fails on both sides and burns the code" "guess=$guessed a=$fa c=$fc"; fi
cmd c "pair-join $guessed $addr_a"
e="$(wait_ev c pair-failed '.error != "typo"' 5)"
jq -e '.error == "burned-or-busy"' >/dev/null <<<"$e" && ok "C cannot retry its burned guess" || bad "C cannot retry its burned guess" "$e"
cmd b "pair-join $code $addr_a"
e="$(wait_ev b pair-failed true 10)"
if [ -n "$e" ] && ! grep -q "\"peer\":\"$id_c\"" <(jq -c 'select(.event == "paired")' "$tmp/a.out"); then
  ok "the burned code no longer pairs, even with the right words ($(jq -r .error <<<"$e"))"
else bad "the burned code no longer pairs" "$e"; fi
if ! jq -e 'select(.event == "paired")' "$tmp/c.out" >/dev/null 2>&1; then ok "C never paired"; else bad "C never paired"; fi

# ---- 3: both restart: still paired, paired-only ping ----
port_a="$(sed 's|.*/tcp/\([0-9]*\)/.*|\1|' <<<"$addr_a")"
stop a; stop b
start a "$tmp/da" --device-name laptop --listen "/ip4/127.0.0.1/tcp/$port_a"
start b "$tmp/db" --device-name phone
cmd b devices
d="$(wait_ev b devices true 5)"
jq -e ".count == 1 and .peers[0] == \"$id_a\" and .states[0] == \"disconnected\"" >/dev/null <<<"$d" &&
  ok "after restart B still lists A (disconnected)" || bad "after restart B still lists A" "$d"
cmd b "ping $id_a"
p="$(wait_ev b ping true 10)"
jq -e '.rtt_us > 0' >/dev/null <<<"$p" && ok "paired-only ping works B -> A by id alone after restart (address from DATA_DIR/devices)" ||
  bad "paired-only ping B -> A after restart" "$p $(cat "$tmp/db/devices")"
cmd a "ping $id_b"
p="$(wait_ev a ping true 10)"
jq -e '.rtt_us > 0' >/dev/null <<<"$p" && ok "paired-only ping works A -> B" || bad "paired-only ping A -> B" "$p"
wait_ev b device-state ".peer == \"$id_a\" and .state == \"connected\"" 5 >/dev/null && ok "B: A connected again (device-state)" || bad "B: A connected again"
cmd c "ping $addr_a"
p="$(wait_ev c ping true 10)"
jq -e '.error == "LP2P_ERR_UNSUPPORTED"' >/dev/null <<<"$p" && ok "paired-only ping refused to unpaired C (unsupported)" || bad "paired-only ping refused to C" "$p"
wait_ev a inbound-stream-failed '.error == "LP2P_ERR_DENIED"' 5 >/dev/null && ok "A's gate denied C's stream (LP2P_ERR_DENIED)" || bad "A's gate denied C's stream" "$(grep inbound-stream "$tmp/a.out")"

# ---- 6: unpair tells the other side ----
cmd b "unpair $id_a"
u="$(wait_ev b unpaired true 5)"
jq -e '.ok' >/dev/null <<<"$u" && ok "unpair: ok" || bad "unpair: ok" "$u"
wait_ev a device-state ".peer == \"$id_b\" and .state == \"unpaired\"" 10 >/dev/null && ok "unpair reached the other side (A: unpaired)" ||
  bad "unpair reached the other side" "$(grep device-state "$tmp/a.out")"
cmd b "ping $id_a"
p="$(wait_ev b ping true 10)"
jq -e '.error == "LP2P_ERR_UNSUPPORTED"' >/dev/null <<<"$p" && ok "after unpair B's ping is refused" || bad "after unpair B's ping is refused" "$p"

# ---- 4: codes expire ----
stop a
start a "$tmp/da" --device-name laptop --pair-code-ttl 1
cmd a pair-start
code="$(wait_ev a pair-code true 5 | jq -r .code)"
e="$(wait_ev a pair-failed true 5)"
jq -e '.error == "expired"' >/dev/null <<<"$e" && ok "the code expires (--pair-code-ttl 1)" || bad "the code expires" "$e"
cmd b "pair-join $code $addr_a"
e="$(wait_ev b pair-failed true 10)"
[ -n "$e" ] && ok "joining an expired code fails ($(jq -r .error <<<"$e"))" || bad "joining an expired code fails"
stop a; stop b; stop c

# ---- 5: one-shot commands ----
"$node" pair --name desk --json --data-dir "$tmp/o1" >"$tmp/o1.out" 2>"$tmp/o1.err" &
o1=$!; pids+=($o1)
for _ in $(seq 200); do grep -q '"pair-code"' "$tmp/o1.out" 2>/dev/null && break; sleep 0.05; done
code="$(jq -r 'select(.event == "pair-code") | .code' "$tmp/o1.out")"
oaddr="$(jq -r 'select(.event == "listening") | .addr' "$tmp/o1.out" | head -n 1)"
"$node" pair "$code" --peer "$oaddr" --name tablet --json --data-dir "$tmp/o2" >"$tmp/o2.out" 2>"$tmp/o2.err"
rc2=$?
wait "$o1"; rc1=$?
if [ "$rc1" = 0 ] && [ "$rc2" = 0 ] && grep -q '"event":"paired"' "$tmp/o1.out" && grep -q '"event":"paired"' "$tmp/o2.out"; then
  ok "one-shot: lp2p-node pair / pair CODE --peer both exit 0 paired"
else bad "one-shot pair" "rc=$rc1/$rc2 $(tail -3 "$tmp/o1.out" "$tmp/o1.err" "$tmp/o2.out" "$tmp/o2.err")"; fi
out="$("$node" devices --data-dir "$tmp/o2")"
grep -q "desk" <<<"$out" && ok "lp2p-node devices lists the paired device" || bad "lp2p-node devices" "$out"
pid1="$(jq -r 'select(.event == "paired") | .peer' "$tmp/o2.out")"
"$node" unpair "$pid1" --data-dir "$tmp/o2" >"$tmp/u.out" 2>&1
rc=$?
out="$("$node" devices --data-dir "$tmp/o2")"
[ "$rc" = 0 ] && grep -q "devices: 0" <<<"$out" && ok "lp2p-node unpair forgets it (peer offline: told when it can)" || bad "lp2p-node unpair" "rc=$rc $(cat "$tmp/u.out") $out"
"$node" pair 123-xqzw-abandon-ability --data-dir "$tmp/o2" >"$tmp/bad.out" 2>&1
[ $? = 1 ] && grep -q "bad-code\|typo" "$tmp/bad.out" && ok "one-shot pair with a malformed code exits 1" || bad "malformed code" "$(cat "$tmp/bad.out")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
