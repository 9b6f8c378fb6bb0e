#!/usr/bin/env bash
# test_rust_ctl.sh - self-check of `rust-peer ctl` (tests/interop/rust/src/ctl.rs, the contract in
# PEERS-CONTRACT.md) with rust peers only: three ctl peers A (kad server, bootstrap for the others), B and C.
#   kad: routing tables fill from --bootstrap + identify; B puts a record, C gets it; B provides a CID, C
#        finds B as its provider; C finds B's addresses with kad-find-peer; kad-closest; kad-get of a
#        missing key fails
#   gossipsub: A, B, C subscribe, B publishes, A and C deliver (from = B, data intact)
#   request-response: C -> A on the first --reqresp protocol (rust-libp2p's request_response) and on
#        the second (libp2p-stream path): echo + from, {"omit":true} -> no answer, {"sleep_ms":N} -> late
#   ping, peers, quit (stopped + exit 0), stdin EOF ends the peer
#   mDNS: two --mdns peers discover each other (rust-libp2p's mDNS skips loopback interfaces: this case
#        needs a multicast-capable non-loopback interface and is reported as skipped without one)
# Skips (exit 77) when the rust peer is not built.
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$src/tests/interop/lib_node.sh"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/lp2p"
rust_peer="${LP2P_RUST_PEER:-$cache/bin/rust-peer}"
if [ ! -x "$rust_peer" ]; then
  echo "SKIP: the rust peer is not built ($rust_peer missing; scripts/deps builds it)"
  exit 77
fi

# ---- a small local driver (lib_peer.sh's start_ctl_peer/ctl_cmd/ctl_wait are the shared ones) ------
# rstart NAME ARGS... : rust-peer ctl ARGS, stdin from a FIFO; sets raddr (first addr) and rpeer
rstart() {
  local name="$1"; shift
  _fifo "$name"
  echo 0 >"$tmp/$name.seen"
  # the child closes every FIFO writer the shell holds (its own too): stdin EOF must reach the peers
  local closes="" n
  for n in "${!_fds[@]}"; do closes+=" ${_fds[$n]}>&-"; done
  eval "\"\$rust_peer\" ctl --timeout 300 \"\$@\" <\"\$tmp/\$name.in\" >\"\$tmp/\$name.out\" 2>\"\$tmp/\$name.err\" $closes &"
  _pids+=("$!")
  eval "${name}_pid=$!"
  local l
  l="$(rwait "$name" listening 'True' 20)" || { echo "       $name did not start:"; head -20 "$tmp/$name.err" | sed 's/^/       /'; return 1; }
  raddr="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["addrs"][0])' "$l")"
  rpeer="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["peerId"])' "$l")"
}
rcmd() { printf '%s\n' "$2" >&"${_fds[$1]}"; }
# rwait NAME EVENT PYEXPR SEC : the next EVENT line after the last one returned (for NAME; the cursor is
# kept in $tmp/NAME.seen, so it survives $(...)) for which the python expression PYEXPR over `e` holds
rwait() {
  local name="$1" ev="$2" expr="$3" sec="${4:-10}" out
  out="$(python3 - "$tmp/$name.out" "$ev" "$expr" "$sec" "$(cat "$tmp/$name.seen")" <<'EOF'
import json, sys, time
f, ev, expr, sec, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
deadline = time.time() + sec
while True:
    with open(f) as fh:
        lines = fh.read().split('\n')[:-1]
    for i in range(start, len(lines)):
        try:
            e = json.loads(lines[i])
        except Exception:
            continue
        if e.get('event') == ev and eval(expr, {}, {'e': e}):
            print(i + 1); print(lines[i]); sys.exit(0)
    if time.time() > deadline:
        sys.exit(1)
    time.sleep(0.05)
EOF
)" || return 1
  echo "${out%%$'\n'*}" >"$tmp/$name.seen"
  printf '%s\n' "${out#*$'\n'}"
}
# expect NAME CMDLINE EVENT PYEXPR [SEC] : send, wait for the result, ok/bad on PYEXPR
expect() {
  local name="$1" line="$2" ev="$3" expr="$4" sec="${5:-15}" got
  rcmd "$name" "$line"
  if got="$(rwait "$name" "$ev" 'True' "$sec")"; then
    if python3 -c 'import json,sys; e=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$got" "$expr"; then
      ok "$name: $line"
    else
      bad "$name: $line" "$got"
    fi
  else
    bad "$name: $line (no $ev event in $sec s)" "$(tail -5 "$tmp/$name.out"; tail -5 "$tmp/$name.err")"
  fi
  last="$got"
}
field() { python3 -c 'import json,sys; print(eval(sys.argv[2], {}, {"e": json.loads(sys.argv[1])}))' "$1" "$2"; }

RR=/lp2p-test/rr/1.0.0 RR2=/lp2p-test/rr2/1.0.0
rstart A --kad server --pubsub --reqresp $RR --reqresp $RR2 || finish
a_addr="$raddr" a_peer="$rpeer"
rstart B --kad server --pubsub --bootstrap "$a_addr" || finish
b_peer="$rpeer"
rstart C --kad server --pubsub --reqresp $RR --bootstrap "$a_addr" || finish
c_peer="$rpeer"

# routing tables: B and C have A (from --bootstrap); A learns B and C from identify
for n in B C; do
  rwait $n connection:open "e['peer'] == '$a_peer'" 10 >/dev/null && ok "$n dialed its --bootstrap peer" || bad "$n dialed A"
done
for ((i = 0; i < 50; i++)); do
  rcmd A kad-table
  t="$(rwait A kad-table True 5)"
  [ "$(field "$t" "e['count']")" -ge 2 ] && break
  sleep 0.2
done
python3 -c 'import json,sys; e=json.loads(sys.argv[1]); assert {p["peer"] for p in e["peers"]} >= set(sys.argv[2:])' "$t" "$b_peer" "$c_peer" \
  && ok "A's routing table has B and C (identify -> kad)" || bad "A's routing table" "$t"
expect B kad-table kad-table "any(p['peer'] == '$a_peer' and p['addrs'] for p in e['peers'])"

# records: B puts, C gets (C never received the PUT: it asks A or B)
key="$(printf '/lp2p-test/%s' "$RANDOM$RANDOM" | xxd -p | tr -d '\n')"
val="$(printf 'value from B' | xxd -p | tr -d '\n')"
expect B "kad-put $key $val" kad-put "e['ok'] is True"
rstart D --kad client --bootstrap "$a_addr" || finish
d_peer="$rpeer"
rwait D connection:open "e['peer'] == '$a_peer'" 10 >/dev/null && ok "D (kad client) dialed A" || bad "D dialed A"
expect D "kad-get $key" kad-get "e['ok'] is True and e['value'] == '$val' and e.get('from') in ('$a_peer', '$b_peer', '$c_peer')"
expect C "kad-get $key" kad-get "e['ok'] is True and e['value'] == '$val'"
expect A kad-table kad-table "'$d_peer' not in [p['peer'] for p in e['peers']]"   # a client is not routable
expect C "kad-get 00ff00ff" kad-get "e['ok'] is False and e['error']"
expect C "kad-put zz 00" kad-put "e['ok'] is False and 'hex' in e['error']"

# providers: B provides, C finds B (with addresses)
cid=bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy
expect B "kad-provide $cid" kad-provide "e['ok'] is True"
expect C "kad-find-providers $cid" kad-find-providers "e['ok'] is True and any(p['peer'] == '$b_peer' and p['addrs'] for p in e['providers'])"
expect C "kad-find-providers QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG" kad-find-providers "e['ok'] is True and e['providers'] == []"
expect C "kad-provide notacid" kad-provide "e['ok'] is False"

# peers: C finds B (through A), closest peers to a key
expect C "kad-find-peer $b_peer" kad-find-peer "e['ok'] is True and e['peer'] == '$b_peer' and e['addrs']"
expect C "kad-closest $key" kad-closest "e['ok'] is True and '$a_peer' in e['peers']"
expect A kad-bootstrap kad-bootstrap "e['ok'] is True"

# gossipsub: everyone subscribes; B publishes once its mesh has a peer
for n in A B C; do expect $n "subscribe lp2p-test-topic" subscribed "e['ok'] is True and e['topic'] == 'lp2p-test-topic'"; done
for ((i = 0; i < 50; i++)); do
  rcmd B "mesh lp2p-test-topic"
  m="$(rwait B mesh True 5)"
  [ "$(field "$m" "len(e['peers'])")" -ge 1 ] && break
  sleep 0.2
done
[ "$(field "$m" "len(e['peers'])")" -ge 1 ] && ok "B's mesh for the topic has a peer" || bad "B's mesh" "$m"
expect B "publish lp2p-test-topic hello from B, ünïcode" published "e['ok'] is True and e['id']"
for n in A C; do
  got="$(rwait $n gossip-message "e['topic'] == 'lp2p-test-topic'" 10)" && \
    [ "$(field "$got" "e['from'] == '$b_peer' and e['data'] == 'hello from B, ünïcode'")" = True ] \
    && ok "$n delivered B's message" || bad "$n delivered B's message" "$got"
done
expect C "publish no-one-here x" published "e['ok'] is False and e['error']"

# request-response (answer rule of the contract)
expect C "request $a_peer $RR {\"n\":1,\"s\":\"x\"}" response \
  "e['ok'] is True and e['via'] == 'request-response' and e['body'] == {'echo': {'n': 1, 's': 'x'}, 'from': '$a_peer'}"
rwait A request "e['protocol'] == '$RR' and e['body'] == {'n': 1, 's': 'x'} and e['peer'] == '$c_peer'" 5 >/dev/null \
  && ok "A reported the request" || bad "A reported the request"
expect C "request $a_peer $RR2 [1,2,3]" response \
  "e['ok'] is True and e['via'] == 'stream' and e['body'] == {'echo': [1, 2, 3], 'from': '$a_peer'}"
expect C "request $a_peer $RR {\"omit\":true}" response "e['ok'] is False and e['error']"
expect C "request $a_peer $RR2 {\"omit\":true}" response "e['ok'] is False and e['error']"
t0=$(date +%s%N)
expect C "request $a_peer $RR {\"sleep_ms\":700}" response "e['ok'] is True and e['body']['echo'] == {'sleep_ms': 700}"
dt=$((($(date +%s%N) - t0) / 1000000))
[ "$dt" -ge 700 ] && ok "the sleep_ms answer came after ${dt} ms (>= 700)" || bad "sleep_ms answer after ${dt} ms"
expect C "request $b_peer $RR {}" response "e['ok'] is False and e['error']"   # B serves no protocol
expect C "request $a_peer $RR not-json" response "e['ok'] is False and 'JSON' in e['error']"

# ping, peers, errors, quit
expect C "ping $a_peer" ping "e['ok'] is True and e['rtt'] >= 0"
expect C "ping $a_peer" ping "e['ok'] is True and e['rtt'] >= 0"
expect C peers peers "'$a_peer' in e['peers'] and e['count'] == len(e['peers'])"
expect C "dial /ip4/127.0.0.1/tcp/1/p2p/$a_peer" dialed "e['ok'] is False and e['error']"
rcmd C "no-such-command"
rwait C error "e['where'] == 'command'" 5 >/dev/null && ok "unknown command -> error event" || bad "unknown command"
rcmd B quit
rwait B stopped True 5 >/dev/null && ok "quit -> stopped" || bad "quit -> stopped"
stop_pid_wait() { local i; for ((i = 0; i < 50; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; ! kill -0 "$1" 2>/dev/null; }
stop_pid_wait "$B_pid" && { wait "$B_pid"; [ $? = 0 ]; } && ok "B exited 0" || bad "B exited 0"
eval "exec ${_fds[C]}>&-"   # C's stdin closes: it must stop
stop_pid_wait "$C_pid" && ok "stdin EOF ends the peer" || bad "C still running after stdin EOF"

# mDNS: rust-libp2p's mDNS skips loopback interfaces; it needs a multicast-capable interface
if ip -o -4 addr show scope global 2>/dev/null | grep -q . && ip -o link show 2>/dev/null | grep -v LOOPBACK | grep -q MULTICAST; then
  rstart M1 --mdns || finish
  m1="$rpeer"
  rstart M2 --mdns --mdns-dial || finish
  m2="$rpeer"
  rwait M1 peer-discovered "e['peer'] == '$m2' and e['source'] == 'mdns' and e['addrs']" 20 >/dev/null \
    && ok "mDNS: M1 discovered M2" || bad "mDNS: M1 discovered M2" "$(cat "$tmp/M1.out")"
  rwait M2 connection:open "e['peer'] == '$m1'" 20 >/dev/null && ok "mDNS: M2 dialed M1 (--mdns-dial)" \
    || bad "mDNS: M2 dialed M1" "$(cat "$tmp/M2.out")"
else
  echo "skip mDNS: no multicast-capable non-loopback interface (rust-libp2p's mDNS ignores loopback)"
fi
finish
