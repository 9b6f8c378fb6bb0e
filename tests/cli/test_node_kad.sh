#!/usr/bin/env bash
# test_node_kad.sh - the Kademlia DHT in lp2p-node: four `listen` nodes (a; b and c bootstrap from
# a; d from c) answer the kad-* control commands with JSON events: kad-bootstrap at start,
# kad-put / kad-get of a /v/ record (namespace allowed with --kad-namespace), kad-provide /
# kad-find-providers of a CIDv1, kad-find-peer, kad-closest, kad-table; failures carry "error"
# (a namespace nobody validates, a peer nobody knows); a --kad-mode client node is in nobody's
# table; the one-shot `lp2p-node kad get|find-peer ... --bootstrap` exits 0/1 accordingly.
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

# jf JSON EXPR : evaluate a python expression over the event object e
jf() { python3 -c 'import json,sys; e=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null; }
# count NAME EVENT : number of events EVENT in NAME's output
count() { grep -c "\"event\":\"$2\"" "$tmp/$1.out" 2>/dev/null || true; }
# wait_nth NAME EVENT N [SEC] : prints the N-th EVENT line once it exists
wait_nth() {
  local i
  for ((i = 0; i < ${4:-20} * 10; i++)); do
    if [ "$(count "$1" "$2")" -ge "$3" ]; then grep "\"event\":\"$2\"" "$tmp/$1.out" | sed -n "$3p"; return 0; fi
    sleep 0.1
  done
  return 1
}
declare -A fd
# start NAME ARGS... : lp2p-node listen --json --control; sets addr and id
start() {
  local name="$1" f; shift
  mkfifo "$tmp/$name.in"
  exec {f}<>"$tmp/$name.in"
  fd[$name]=$f
  "$node" listen --json --control --data-dir "$tmp/data-${DATA_NAME:-$name}" "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  local line
  line="$(wait_nth "$name" listening 1)" || { bad "$name starts" "$(cat "$tmp/$name.err")"; return 1; }
  addr="$(jf "$line" 'e["addr"]')"
  id="${addr##*/p2p/}"
}
# ask NAME EVENT LINE : sends LINE, prints the resulting EVENT (the next one)
ask() {
  local n
  n=$(( $(count "$1" "$2") + 1 ))
  printf '%s\n' "$3" >&"${fd[$1]}"
  wait_nth "$1" "$2" "$n" 30
}
# expect NAME LINE EXPR : a check that EXPR holds for the event line
expect() {
  if [ "$(jf "$2" "$3")" = True ]; then ok "$1"; else bad "$1" "$2"; fi
}

start a --kad-namespace v; a_addr="$addr"; a_id="$id"
start b --kad-namespace v --bootstrap "$a_addr"; b_addr="$addr"; b_id="$id"
start c --kad-namespace v --bootstrap "$a_addr"; c_addr="$addr"; c_id="$id"
start d --kad-namespace v --bootstrap "$c_addr"; d_id="$id"
for n in b c d; do
  line="$(wait_nth $n kad-bootstrap 1)"
  expect "$n: kad-bootstrap at start succeeds" "$line" 'e["ok"] and e["count"] >= 1 and e["requests"] >= 1'
done
# a learns the others once they asked it something (check-before-add)
for _ in $(seq 50); do
  line="$(ask a kad-table kad-table)"
  [ "$(jf "$line" 'e["count"] >= 3')" = True ] && break
  sleep 0.2
done
expect "a: kad-table lists b, c and d, mode server" "$line" \
  "e['count'] == 3 and set(e['peers']) == {'$b_id', '$c_id', '$d_id'} and e['mode'] == 'server'"

line="$(ask d kad-put "kad-put /v/hello world")"
expect "d: kad-put /v/hello stores on the others" "$line" 'e["ok"] and e["stored"] >= 2'
line="$(ask b kad-get "kad-get /v/hello")"
expect "b: kad-get /v/hello finds the value" "$line" 'e["ok"] and e["text"] == "world" and e["value"] == "776f726c64"'
line="$(ask b kad-get "kad-get 0x2f762f68656c6c6f")"
expect "b: kad-get with a 0x-hex key" "$line" 'e["ok"] and e["text"] == "world"'
line="$(ask a kad-get "kad-get /x/nobody-validates-this")"
expect "a: kad-get in an unknown namespace fails with an error" "$line" \
  'not e["ok"] and e["error"] == "LP2P_ERR_UNSUPPORTED"'
line="$(ask a kad-put "kad-put /pk/notakey junk")"
expect "a: kad-put of an invalid /pk/ record is refused" "$line" 'not e["ok"] and "error" in e'

# a CIDv1 (raw, sha2-256) of some content
cid="$(python3 -c 'import hashlib,base64; d=hashlib.sha256(b"kad cli test").digest(); print("b"+base64.b32encode(bytes([1,0x55,0x12,0x20])+d).decode().lower().rstrip("="))')"
line="$(ask c kad-provide "kad-provide $cid")"
expect "c: kad-provide $cid" "$line" 'e["ok"] and e["stored"] >= 2'
line="$(ask d kad-find-providers "kad-find-providers $cid")"
expect "d: kad-find-providers finds c with its addresses" "$line" \
  "e['ok'] and '$c_id' in e['providers'] and any(a.endswith('/p2p/$c_id') for a in e['addrs'])"
line="$(ask a kad-find-providers "kad-find-providers notacid")"
expect "a: kad-find-providers with a bad CID fails" "$line" 'not e["ok"] and e["error"] == "LP2P_ERR_CID"'

line="$(ask b kad-find-peer "kad-find-peer $d_id")"
expect "b: kad-find-peer d gives its addresses" "$line" "e['ok'] and e['peer'] == '$d_id' and len(e['addrs']) >= 1"
ghost="12D3KooWLvFRjzUAYBu4D3PyXkvuacwZ4MousjN2gJ7fEF4e69df"
line="$(ask b kad-find-peer "kad-find-peer $ghost")"
expect "b: kad-find-peer of an unknown peer fails with NOT_FOUND" "$line" 'not e["ok"] and e["error"] == "LP2P_ERR_NOT_FOUND" and e["peers_contacted"] >= 1'
line="$(ask c kad-closest "kad-closest some-key")"
expect "c: kad-closest lists the others" "$line" "e['ok'] and e['count'] == 3 and '$c_id' not in e['peers']"

# a client: it queries but nobody adds it
start e --kad-mode client --kad-namespace v --bootstrap "$b_addr"; e_id="$id"
line="$(wait_nth e kad-bootstrap 1)"
expect "e (client): kad-bootstrap" "$line" 'e["ok"]'
line="$(ask e kad-get "kad-get /v/hello")"
expect "e (client): kad-get works" "$line" 'e["ok"] and e["text"] == "world"'
line="$(ask a kad-table kad-table)"
expect "e (client) is in nobody's table (a's)" "$line" "'$e_id' not in e['peers']"
line="$(ask e kad-table kad-table)"
expect "e (client): kad-table says client" "$line" "e['mode'] == 'client' and e['count'] >= 1"

# records survive a restart (DATA_DIR/kad-records): d stopped, started again on its data dir
d_pid="${pids[3]}"
printf 'quit\n' >&"${fd[d]}"
for _ in $(seq 100); do kill -0 "$d_pid" 2>/dev/null || break; sleep 0.1; done
if [ -f "$tmp/data-d/kad-records" ] && [ "$(stat -c %a "$tmp/data-d/kad-records")" = 600 ] &&
   grep -q "$(printf '/v/hello' | od -An -tx1 | tr -d ' \n')" "$tmp/data-d/kad-records"; then
  ok "d: DATA_DIR/kad-records holds /v/hello (mode 0600)"
else bad "d: DATA_DIR/kad-records" "$(ls -l "$tmp/data-d" 2>&1; cat "$tmp/data-d/kad-records" 2>&1)"; fi
# and so do the provider entries it holds (DATA_DIR/kad-providers): c's announcement of $cid
c_hex="$(python3 -c 'import sys
A = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
n = 0
for ch in sys.argv[1]: n = n * 58 + A.index(ch)
print(n.to_bytes((n.bit_length() + 7) // 8, "big").hex())' "$c_id")"
if [ -f "$tmp/data-d/kad-providers" ] && [ "$(stat -c %a "$tmp/data-d/kad-providers")" = 600 ] &&
   grep -q " 00$c_hex " "$tmp/data-d/kad-providers"; then
  ok "d: DATA_DIR/kad-providers holds c as provider (mode 0600)"
else bad "d: DATA_DIR/kad-providers" "$(ls -l "$tmp/data-d" 2>&1; cat "$tmp/data-d/kad-providers" 2>&1)"; fi
DATA_NAME=d start d2 --kad-namespace v
line="$(ask d2 kad-table kad-table)"
expect "d restarted: its record is back before it joined anything" "$line" 'e["records"] == 1 and e["count"] == 0'

# one-shot
out="$("$node" kad get /v/hello --bootstrap "$a_addr" --kad-namespace v --json 2>&1)"; rc=$?
if [ $rc = 0 ] && [ "$(jf "$out" 'e["event"] == "kad-get" and e["text"] == "world"')" = True ]; then
  ok "one-shot: lp2p-node kad get /v/hello --bootstrap a --json"
else bad "one-shot kad get" "rc=$rc $out"; fi
out="$("$node" kad find-peer "$d_id" --bootstrap "$a_addr" 2>&1)"; rc=$?
if [ $rc = 0 ] && grep -q "kad-find-peer: ok" <<<"$out" && grep -q "/ip4/127.0.0.1/tcp/" <<<"$out"; then
  ok "one-shot: lp2p-node kad find-peer d (text)"
else bad "one-shot kad find-peer" "rc=$rc $out"; fi
out="$("$node" kad find-peer "$ghost" --bootstrap "$a_addr" 2>&1)"; rc=$?
if [ $rc = 1 ] && grep -q "not found" <<<"$out"; then ok "one-shot: unknown peer exits 1"; else bad "one-shot ghost" "rc=$rc $out"; fi
out="$("$node" kad get /v/hello 2>&1)"; rc=$?
if [ $rc = 2 ]; then ok "one-shot without --bootstrap is a usage error"; else bad "one-shot usage" "rc=$rc $out"; fi
# (whole output first: grep -q closing the pipe early would fail the pipeline under pipefail)
out="$("$node" kad --help)"
grep -q "kad-find-providers" <<<"$out" && ok "lp2p-node kad --help lists the commands" || bad "kad --help" "$out"
out="$("$node" listen --help)"
grep -q -- "--kad-mode" <<<"$out" && ok "lp2p-node listen --help has the kad flags" || bad "listen --help" "$out"

for n in a b c d2 e; do printf 'quit\n' >&"${fd[$n]}"; done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
