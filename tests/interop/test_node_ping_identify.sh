#!/usr/bin/env bash
# test_node_ping_identify.sh - lp2p-node <-> js-libp2p 3.x over real loopback TCP, both directions:
#   lp2p -> js: `lp2p-node ping` and `lp2p-node identify` against a js node whose identity is
#               Ed25519, secp256k1 and RSA in turn; js reports lp2p's identify (agent, protocols)
#   js -> lp2p: a listening js node dials `lp2p-node listen` (identity Ed25519, secp256k1, RSA),
#               pings it and requires its identify; lp2p reports js's identify (agent, protocols,
#               listen addresses) as a JSON event
# and each side sees the other's agent version, protocols and listen addresses. The muxer is
# agreed inside Noise (early negotiation) in some runs and via multistream-select in others
# (js --muxer-negotiation mss); which one was used is checked on both sides (js event field,
# lp2p LP2P_LOG=debug line). Signed peer records are checked both ways: js's verifies in lp2p
# (signed_record), and js only reports peer:identify for lp2p if lp2p's record verified.
# Identify push, both ways: a new lp2p listen address reaches js, a new js protocol reaches lp2p.
# Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR. Needs scripts/deps (Node 22 + js-libp2p).
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"

mux_line() { # the lp2p debug line for a muxer mode
  [ "$1" = noise ] && echo "muxer from extension" || echo "muxer via multistream"
}

# ---- lp2p dials js ----
for combo in Ed25519:noise secp256k1:mss RSA:noise; do
  type="${combo%%:*}" mode="${combo##*:}"
  jid="$("$js" "$keygen" "$type" "$tmp/js-$type.key")"
  start_js "js-$type" --key "$tmp/js-$type.key" --muxer-negotiation "$mode"
  if [ -z "$jaddr" ]; then bad "lp2p->js $type: js node started"; continue; fi
  jlisten="${jaddr%/p2p/*}"

  LP2P_LOG=debug "$node_exe" ping "$jaddr" --count 3 --interval 100 --json >"$tmp/ping-$type.out" 2>"$tmp/ping-$type.err"
  rc=$?
  check "lp2p->js $type ($mode): ping x3 exits 0" "$tmp/ping-$type.out" "$rc === 0" \
    "count('ping') === 3" "all('ping').every(p => p.peer === '$jid' && p.rtt_us > 0)" \
    "one('done').pings === 3" "one('connected').peer === '$jid'"
  if grep -q "$(mux_line "$mode")" "$tmp/ping-$type.err"; then ok "lp2p->js $type: lp2p log shows muxer via $mode"
  else bad "lp2p->js $type: lp2p log shows muxer via $mode" "$(grep -i muxer "$tmp/ping-$type.err")"; fi

  "$node_exe" identify "$jaddr" --json >"$tmp/id-$type.out" 2>"$tmp/id-$type.err"
  rc=$?
  check "lp2p->js $type: identify shows js agent, protocols, listen addrs" "$tmp/id-$type.out" "$rc === 0" \
    "one('identify').peer === '$jid'" "one('identify').agent_version.startsWith('js-libp2p/')" \
    "one('identify').protocol_version === 'ipfs/0.1.0'" \
    "['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0', '/perf/1.0.0', '/lp2p-test/echo/1.0.0'].every(p => one('identify').protocols.includes(p))" \
    "one('identify').listen_addrs.includes('$jlisten')" \
    "one('identify').observed_addr.startsWith('/ip4/127.0.0.1/tcp/')"
  sleep 0.3
  check "lp2p->js $type: js identified lp2p (agent, protocols) with muxer via $mode" "$tmp/js-$type.out" \
    "all('peer:identify').filter(e => e.agentVersion === 'lp2p/0.1.0').length >= 1" \
    "all('peer:identify').every(e => ['/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0', '/ipfs/ping/1.0.0', '/perf/1.0.0'].every(p => e.protocols.includes(p)))" \
    "all('peer:identify').every(e => e.protocolVersion === 'ipfs/0.1.0')" \
    "all('connection:open').length >= 2 && all('connection:open').every(c => c.direction === 'inbound' && c.muxerNegotiation === '$mode')" \
    "count('error') === 0"
  stop_pid "$jpid" TERM
done

# ---- js dials lp2p ----
for combo in ed25519:noise secp256k1:noise rsa:mss; do
  type="${combo%%:*}" mode="${combo##*:}"
  LP2P_LOG=debug start_lp2p "c-$type" --identity "$tmp/c-$type.key" --key-type "$type" --agent "lp2p-interop/$type"
  if [ -z "$laddr" ]; then bad "js->lp2p $type: lp2p-node started"; continue; fi
  lid="${laddr##*/p2p/}"
  llisten="${laddr%/p2p/*}"
  want="$("$node_exe" id --identity "$tmp/c-$type.key")"
  [ "$want" = "$lid" ] && ok "js->lp2p $type: listen address carries the identity's peer id" \
    || bad "js->lp2p $type: listen address carries the identity's peer id" "$laddr vs $want"

  "$js" "$peer" --listen /ip4/127.0.0.1/tcp/0 --dial "$laddr" --ping 3 --identify --muxer-negotiation "$mode" \
    --timeout 60 >"$tmp/jd-$type.out" 2>"$tmp/jd-$type.err"
  rc=$?
  jl="$(wait_event "$tmp/jd-$type.out" listening 1 addrs)"
  jl="${jl%/p2p/*}"
  check "js->lp2p $type ($mode): js pings x3 and identifies lp2p" "$tmp/jd-$type.out" "$rc === 0" \
    "one('done').ok === true" "count('ping') === 3" "count('error') === 0" \
    "one('peer:identify').peer === '$lid'" "one('peer:identify').agentVersion === 'lp2p-interop/$type'" \
    "one('peer:identify').protocolVersion === 'ipfs/0.1.0'" \
    "['/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0', '/ipfs/ping/1.0.0', '/perf/1.0.0'].every(p => one('peer:identify').protocols.includes(p))" \
    "one('peer:identify').listenAddrs.some(a => a.startsWith('$llisten'))" \
    "one('connection:open').muxerNegotiation === '$mode' && one('connection:open').muxer === '/yamux/1.0.0'"
  wait_count "$tmp/c-$type.out" "count('peer-identified') >= 1" 10
  check "js->lp2p $type: lp2p saw js's identify (agent, protocols, listen addrs, verified signed record)" "$tmp/c-$type.out" \
    "one('connection-opened').direction === 'inbound'" \
    "one('peer-identified').agent_version.startsWith('js-libp2p/')" \
    "['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0', '/perf/1.0.0'].every(p => one('peer-identified').protocols.includes(p))" \
    "one('peer-identified').listen_addrs.includes('$jl')" \
    "one('peer-identified').observed_addr === '$llisten'" \
    "one('peer-identified').signed_record === true" "count('identify-failed') === 0"
  if grep -q "$(mux_line "$mode")" "$tmp/c-$type.err"; then ok "js->lp2p $type: lp2p log shows muxer via $mode"
  else bad "js->lp2p $type: lp2p log shows muxer via $mode" "$(grep -i muxer "$tmp/c-$type.err")"; fi
  stop_pid "$lpid" INT
  [ "$stop_rc" = 0 ] && ok "js->lp2p $type: SIGINT exits 0" || bad "js->lp2p $type: SIGINT exits 0 (rc=$stop_rc)"
done

# ---- identify push, both ways ----
start_lp2p push
lid="${laddr##*/p2p/}"
start_ctl jpush
js_cmd jpush "dial $laddr"
wait_count "$tmp/push.out" "count('peer-identified') === 1" 15
wait_count "$tmp/jpush.out" "all('peer:identify').some(e => e.peer === '$lid')" 15
lp2p_cmd push "listen /ip4/127.0.0.1/tcp/0"
wait_count "$tmp/push.out" "count('listening') === 2" 10
second="$(grep '"listening"' "$tmp/push.out" | sed -n 2p | sed 's/.*"addr":"\([^"]*\)\/p2p\/.*/\1/')"
got_second="all('peer:identify').some(e => e.peer === '$lid' && e.listenAddrs.some(a => a === '$second' || a.startsWith('$second/')))"
wait_count "$tmp/jpush.out" "$got_second" 15
check "push lp2p->js: a new lp2p listen address reaches js by identify push (new signed record seq)" "$tmp/jpush.out" \
  "all('peer:identify').filter(e => e.peer === '$lid').length >= 2" "$got_second" \
  "all('peer:identify').filter(e => e.peer === '$lid').every(e => Number(e.signedRecordSeq) > 1.6e12)" \
  "new Set(all('peer:identify').filter(e => e.peer === '$lid').map(e => e.signedRecordSeq)).size >= 2" \
  "count('connection:open') === 1"
js_cmd jpush "handle /lp2p-test/pushed/1.0.0"
wait_count "$tmp/push.out" "all('identify-push').some(e => e.protocols.includes('/lp2p-test/pushed/1.0.0'))" 15
check "push js->lp2p: a new js protocol reaches lp2p by identify push" "$tmp/push.out" \
  "all('identify-push').some(e => e.protocols.includes('/lp2p-test/pushed/1.0.0'))" \
  "all('identify-push').every(e => e.agent_version.startsWith('js-libp2p/'))" \
  "count('connection-closed') === 0"
# `lp2p-node listen --dial`: a second lp2p node dials the js node at start
jp="$jpid" pushpid="$lpid"
start_lp2p dialer --dial "$jaddr"
did="${laddr##*/p2p/}"
wait_count "$tmp/dialer.out" "count('dialed') === 1" 15
check "listen --dial: lp2p dials js at start" "$tmp/dialer.out" \
  "one('dialed').peer === '${jaddr##*/p2p/}'" "one('dialed').error === undefined" \
  "one('connection-opened').direction === 'outbound'"
wait_count "$tmp/jpush.out" "all('connection:open').some(c => c.peer === '$did' && c.direction === 'inbound')" 10
check "listen --dial: js sees the inbound connection" "$tmp/jpush.out" \
  "all('connection:open').some(c => c.peer === '$did' && c.direction === 'inbound')"
stop_pid "$lpid" INT
stop_pid "$jp" TERM
stop_pid "$pushpid" INT

finish
