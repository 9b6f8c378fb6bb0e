#!/usr/bin/env bash
# peer_basic.sh - interop matrix, part 1, against PEER_IMPL=js|go|rust (tests/interop/lib_peer.sh),
# over real loopback TCP, both directions where both make sense:
#   ping            lp2p-node ping X x3 / X dials lp2p-node listen and pings x3
#   identify        each side sees the other's agent, protocol version, protocols, listen addresses
#   signed-record   the signed peer record in X's identify verifies in lp2p (rust: a peer started
#                   with --signed-record, rust-libp2p's opt-in; its default sends none)
#   identify-push   lp2p->X: a new lp2p listen address reaches X; X->lp2p: a protocol X starts
#                   handling after the connection is up reaches lp2p
#   key-<TYPE>      X's identity is Ed25519, secp256k1, RSA (and ECDSA for go/rust: js-libp2p 3.x
#                   cannot make a peer id from an ECDSA key): ping + identify with peer ids checked
#   muxer-noise-ext / muxer-mss   yamux agreed inside the Noise handshake (X offers it) / via
#                   multistream-select (X offers no muxer in Noise); lp2p's debug log and X's
#                   connection event must agree
#   wrong-peer-id   lp2p dials X at /p2p/<another id>: "remote peer id mismatch", X sees no
#                   connection
# Env (set by ctest): PEER_IMPL, LP2P_NODE, LP2P_SOURCE_DIR, LP2P_BUILD_DIR.
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_peer.sh"

types="Ed25519:noise secp256k1:mss RSA:noise"
[ "$impl" != js ] && types="$types ECDSA:mss"
own_protocols="['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0', '/perf/1.0.0', '/lp2p-test/echo/1.0.0']"
lp2p_protocols="['/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0', '/ipfs/ping/1.0.0', '/perf/1.0.0']"

for combo in $types; do
  type="${combo%%:*}" mode="${combo##*:}"
  pmode="$(peer_mode "$mode")"
  # ---- lp2p dials X ----
  case_begin "key-$type" "lp2p->X"
  if ! xid="$(peer_keygen "$type" "$tmp/x-$type.key")"; then
    bad "lp2p->$impl $type: key generated"; case_end; continue
  fi
  start_peer "x-$type" --key "$tmp/x-$type.key" --muxer-negotiation "$mode"
  if [ -z "$paddr" ]; then bad "lp2p->$impl $type: peer started"; case_end; continue; fi
  xlisten="${paddr%/p2p/*}"
  [ "${paddr##*/p2p/}" = "$xid" ] && ok "lp2p->$impl $type: peer id from the key file" \
    || bad "lp2p->$impl $type: peer id from the key file" "$paddr vs $xid"
  [ "$type" = Ed25519 ] && { case_end; case_begin ping "lp2p->X"; }
  LP2P_LOG=debug "$node_exe" ping "$paddr" --count 3 --interval 100 --json >"$tmp/ping-$type.out" 2>"$tmp/ping-$type.err"
  rc=$?
  check "lp2p->$impl $type: ping x3" "$tmp/ping-$type.out" "$rc === 0" \
    "count('ping') === 3" "all('ping').every(p => p.peer === '$xid' && p.rtt_us > 0)" "one('connected').peer === '$xid'"
  [ "$type" = Ed25519 ] && { case_end; case_begin identify "lp2p->X"; }
  "$node_exe" identify "$paddr" --json >"$tmp/id-$type.out" 2>"$tmp/id-$type.err"
  rc=$?
  check "lp2p->$impl $type: identify shows $impl's agent, protocols, listen addrs" "$tmp/id-$type.out" "$rc === 0" \
    "one('identify').peer === '$xid'" "String(one('identify').agent_version).startsWith('$agent_prefix')" \
    "one('identify').protocol_version === 'ipfs/0.1.0'" \
    "$own_protocols.every(p => one('identify').protocols.includes(p))" \
    "one('identify').listen_addrs.includes('$xlisten')" \
    "one('identify').observed_addr.startsWith('/ip4/127.0.0.1/tcp/')"
  [ "$rc" = 0 ] || echo "       lp2p identify stderr: $(head -c 300 "$tmp/id-$type.err")"
  wait_count "$tmp/x-$type.out" "all('peer:identify').length >= 2" 5
  check "lp2p->$impl $type: $impl identified lp2p (agent, protocols)" "$tmp/x-$type.out" \
    "all('peer:identify').filter(e => e.agentVersion === 'lp2p/0.1.0').length >= 1" \
    "all('peer:identify').every(e => $lp2p_protocols.every(p => e.protocols.includes(p)))" \
    "all('peer:identify').every(e => e.protocolVersion === 'ipfs/0.1.0')" "count('error') === 0"
  case_end
  if [ "$type" = Ed25519 ] || [ "$type" = secp256k1 ]; then
    [ "$mode" = noise ] && mcase=muxer-noise-ext || mcase=muxer-mss
    case_begin "$mcase" "lp2p->X"
    if grep -q "$(mux_line "$mode")" "$tmp/ping-$type.err"; then ok "lp2p->$impl: lp2p log shows muxer via $mode"
    else bad "lp2p->$impl: lp2p log shows muxer via $mode" "$(grep -i muxer "$tmp/ping-$type.err")"; fi
    check "lp2p->$impl: $impl's connections used muxer via $mode" "$tmp/x-$type.out" \
      "all('connection:open').length >= 2 && all('connection:open').every(c => c.direction === 'inbound' && c.muxerNegotiation === '$mode' && c.muxer === '/yamux/1.0.0')"
    case_end
  fi
  # wrong /p2p/ id (once, with the first key)
  if [ "$type" = Ed25519 ]; then
    case_begin wrong-peer-id "lp2p->X"
    other="$("$node_exe" id --identity "$tmp/other.key" | head -n 1)"
    wrong="$xlisten/p2p/$other"
    before="$(grep -c '"connection:open"' "$tmp/x-$type.out")"
    "$node_exe" ping "$wrong" >"$tmp/wrong.out" 2>"$tmp/wrong.err"
    rc=$?
    err="$(cat "$tmp/wrong.err")"
    if [ "$rc" = 1 ] && [[ "$err" == *"ping: ${wrong}: dial failed: remote peer id mismatch"* ]]; then
      ok "lp2p->$impl: /p2p/<wrong id> fails with the mismatch error"
    else bad "lp2p->$impl: /p2p/<wrong id> fails with the mismatch error" "rc=$rc stderr: $err"; fi
    sleep 0.3
    after="$(grep -c '"connection:open"' "$tmp/x-$type.out")"
    [ "$before" = "$after" ] && ok "lp2p->$impl: $impl saw no connection from the mismatched dial" \
      || bad "lp2p->$impl: $impl saw no connection from the mismatched dial ($before -> $after)"
    case_end
  fi
  stop_pid "$ppid" TERM

  # ---- X dials lp2p ----
  case_begin "key-$type" "X->lp2p"
  LP2P_LOG=debug start_lp2p "l-$type" --identity "$tmp/l-$type.key" --agent "lp2p-interop/$type"
  if [ -z "$laddr" ]; then bad "$impl->lp2p $type: lp2p-node started"; case_end; continue; fi
  lid="${laddr##*/p2p/}" llisten="${laddr%/p2p/*}"
  [ "$type" = Ed25519 ] && { case_end; case_begin ping "X->lp2p"; }
  # X stays connected (--serve) after its pings and identify until lp2p's own identify of X has an
  # outcome: X exiting at once raced lp2p's request (identify-failed: end of stream, under load)
  peer_bg "$tmp/xd-$type.out" --listen /ip4/127.0.0.1/tcp/0 --key "$tmp/x-$type.key" --dial "$laddr" --ping 3 \
    --identify --muxer-negotiation "$mode" --serve --timeout 60
  wait_count "$tmp/xd-$type.out" "count('done') >= 1" 60
  wait_count "$tmp/l-$type.out" "count('peer-identified') + count('identify-failed') >= 1" 10
  stop_pid "$bpid" TERM
  check "$impl->lp2p $type: $impl pings x3" "$tmp/xd-$type.out" \
    "one('done').ok === true" "count('ping') === 3" "count('error') === 0"
  [ "$type" = Ed25519 ] && { case_end; case_begin identify "X->lp2p"; }
  xl="$(wait_event "$tmp/xd-$type.out" listening 1 addrs)"; xl="${xl%/p2p/*}"
  check "$impl->lp2p $type: $impl identified lp2p (agent, protocols, listen addrs)" "$tmp/xd-$type.out" \
    "one('peer:identify').peer === '$lid'" "one('peer:identify').agentVersion === 'lp2p-interop/$type'" \
    "one('peer:identify').protocolVersion === 'ipfs/0.1.0'" \
    "$lp2p_protocols.every(p => one('peer:identify').protocols.includes(p))" \
    "one('peer:identify').listenAddrs.some(a => a.startsWith('$llisten'))"
  wait_count "$tmp/l-$type.out" "count('peer-identified') + count('identify-failed') >= 1" 10
  check "$impl->lp2p $type: lp2p saw $impl's identify (agent, protocols, listen addrs)" "$tmp/l-$type.out" \
    "one('connection-opened').direction === 'inbound'" "one('connection-opened').peer === '$xid'" \
    "String(one('peer-identified').agent_version).startsWith('$agent_prefix')" \
    "$own_protocols.every(p => (one('peer-identified').protocols || []).includes(p))" \
    "(one('peer-identified').listen_addrs || []).includes('$xl')" "count('identify-failed') === 0"
  case_end
  if [ "$type" = Ed25519 ] || [ "$type" = secp256k1 ]; then
    [ "$mode" = noise ] && mcase=muxer-noise-ext || mcase=muxer-mss
    case_begin "$mcase" "X->lp2p"
    if grep -q "$(mux_line "$mode")" "$tmp/l-$type.err"; then ok "$impl->lp2p: lp2p log shows muxer via $mode"
    else bad "$impl->lp2p: lp2p log shows muxer via $mode" "$(grep -i muxer "$tmp/l-$type.err")"; fi
    check "$impl->lp2p: $impl's connection used muxer via $mode" "$tmp/xd-$type.out" \
      "one('connection:open').muxerNegotiation === '$mode' && one('connection:open').muxer === '/yamux/1.0.0'"
    case_end
  fi
  stop_pid "$lpid" INT
done

# ---- signed peer records (X's, verified by lp2p), both directions ----
rec_args=()
[ "$impl" = rust ] && rec_args=(--signed-record)
case_begin signed-record "lp2p->X"
start_peer x-rec "${rec_args[@]}"
"$node_exe" identify "$paddr" --json >"$tmp/id-rec.out" 2>"$tmp/id-rec.err"
rc=$?
check "lp2p->$impl: $impl's signed peer record verifies in lp2p" "$tmp/id-rec.out" "$rc === 0" \
  "one('identify').signed_record === true" "one('identify').listen_addrs.includes('${paddr%/p2p/*}')"
[ "$rc" = 0 ] || echo "       lp2p identify stderr: $(head -c 300 "$tmp/id-rec.err")"
stop_pid "$ppid" TERM
case_end
case_begin signed-record "X->lp2p"
start_lp2p rec
# X stays connected (--serve) until lp2p's own identify of X has an outcome: X exiting right after
# ITS identify of lp2p would race lp2p's request (seen as identify-failed: connection reset)
peer_bg "$tmp/xrec.out" --listen /ip4/127.0.0.1/tcp/0 --dial "$laddr" --identify --serve "${rec_args[@]}" --timeout 60
wait_count "$tmp/rec.out" "count('peer-identified') + count('identify-failed') >= 1" 10
stop_pid "$bpid" TERM
check "$impl->lp2p: lp2p verified $impl's signed peer record" "$tmp/rec.out" \
  "one('peer-identified').signed_record === true" "count('identify-failed') === 0"
stop_pid "$lpid" INT
case_end

# ---- identify push, lp2p -> X: a new lp2p listen address ----
case_begin identify-push "lp2p->X"
start_lp2p push
lid="${laddr##*/p2p/}"
peer_bg "$tmp/xpush.out" --listen /ip4/127.0.0.1/tcp/0 --dial "$laddr" --identify --serve --timeout 120
xp=$bpid
wait_count "$tmp/xpush.out" "all('peer:identify').some(e => e.peer === '$lid')" 15
lp2p_cmd push "listen /ip4/127.0.0.1/tcp/0"
wait_count "$tmp/push.out" "count('listening') === 2" 10
second="$(grep '"listening"' "$tmp/push.out" | sed -n 2p | sed 's/.*"addr":"\([^"]*\)\/p2p\/.*/\1/')"
got_second="all('peer:identify').some(e => e.peer === '$lid' && e.listenAddrs.some(a => a === '$second' || a.startsWith('$second/')))"
wait_count "$tmp/xpush.out" "$got_second" 15
check "push lp2p->$impl: a new lp2p listen address reaches $impl" "$tmp/xpush.out" \
  "all('peer:identify').filter(e => e.peer === '$lid').length >= 2" "$got_second" "count('connection:open') === 1"
case_end
stop_pid "$xp" TERM

# ---- identify push, X -> lp2p: a protocol X starts handling after connecting ----
case_begin identify-push "X->lp2p"
peer_bg "$tmp/xpush2.out" --listen /ip4/127.0.0.1/tcp/0 --dial "$laddr" --identify --serve --handle-after 1500 \
  --timeout 120
xp=$bpid
wait_count "$tmp/push.out" "all('identify-push').some(e => e.protocols.includes('/lp2p-test/pushed/1.0.0'))" 15
check "push $impl->lp2p: a new $impl protocol reaches lp2p by identify push" "$tmp/push.out" \
  "all('identify-push').some(e => e.protocols.includes('/lp2p-test/pushed/1.0.0') && e.agent_version.startsWith('$agent_prefix'))"
case_end
stop_pid "$xp" TERM
stop_pid "$lpid" INT

peer_finish
