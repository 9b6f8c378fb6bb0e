#!/usr/bin/env bash
# peer_gossip.sh - interop matrix: gossipsub between lp2p-node and PEER_IMPL=js|go|rust ctl peers
# (PEERS-CONTRACT.md, --pubsub) over loopback TCP, in a line where each implementation has to
# relay the other's messages:
#
#     L1 (lp2p) --- X1 (impl) --- L2 (lp2p) --- X2 (impl)
#
#   gossip lp2p->X   L1 publishes: X1 (direct), L2 (relayed by X1) and X2 (relayed by L2) get it
#                    exactly once, with L1 as the author; L2 and X1 agree on the message id for
#                    the default from||seqno id (go; js and rust default ids are their own)
#   gossip X->lp2p   X2 publishes: L2 (direct), X1 (relayed by L2), L1 (relayed by X1) get it
#                    exactly once, with X2 as the author
#   gossip-mesh      lp2p's mesh holds the peer and the peer's mesh holds lp2p (both directions
#                    of GRAFT accepted)
# Env (set by ctest): PEER_IMPL, LP2P_NODE, LP2P_SOURCE_DIR, LP2P_BUILD_DIR.
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_peer.sh"
if ! declare -F start_ctl_peer >/dev/null; then
  echo "SKIP: lib_peer.sh has no ctl peers yet (start_ctl_peer; branch peers-jsgo)"; exit 77
fi
if [ "$impl" = js ] && { ! grep -q -- "--pubsub" "$ctl" 2>/dev/null || [ ! -d "$src/tests/interop/node_modules/@libp2p/gossipsub" ]; }; then
  echo "SKIP: the js ctl peer has no --pubsub or @libp2p/gossipsub is not installed (scripts/deps)"; exit 77
fi
T=lp2p-interop

# lp2p_mesh NAME: the number of peers in lp2p NAME's mesh of $T (asks, waits for the answer)
lp2p_mesh() {
  local n0; n0="$(grep -c '"event":"mesh"' "$tmp/$1.out")"
  lp2p_cmd "$1" "mesh $T"
  for _ in $(seq 50); do [ "$(grep -c '"event":"mesh"' "$tmp/$1.out")" -gt "$n0" ] && break; sleep 0.1; done
  grep '"event":"mesh"' "$tmp/$1.out" | tail -1 | jq '.peers | length'
}
# ctl_mesh NAME: the same for a ctl peer
ctl_mesh() {
  ctl_cmd "$1" "mesh $T"
  ctl_wait "$1" mesh ".topic == \"$T\"" 10 | jq '.peers | length'
}
wait_meshes() {
  local i
  for ((i = 0; i < 40; i++)); do
    [ "$(ctl_mesh x1)" -ge 2 ] && [ "$(lp2p_mesh l2)" -ge 2 ] && [ "$(lp2p_mesh l1)" -ge 1 ] && [ "$(ctl_mesh x2)" -ge 1 ] && return 0
    sleep 0.5
  done
  return 1
}
# lp2p_got NAME TEXT / ctl_got NAME TEXT: how many gossip-message events carry TEXT
lp2p_got() { jq -c "select(.event == \"gossip-message\" and .data == \"$2\")" "$tmp/$1.out" 2>/dev/null | grep -c . || true; }
ctl_got() { ctl_count "$1" gossip-message ".data == \"$2\""; }
wait_got() { # wait_got lp2p|ctl NAME TEXT
  local i
  for ((i = 0; i < 100; i++)); do [ "$("$1"_got "$2" "$3")" -ge 1 ] && return 0; sleep 0.1; done
  return 1
}

start_lp2p l1 --identity "$tmp/l1.key" --subscribe "$T"; l1addr="$laddr"; l1id="${laddr##*/p2p/}"
start_lp2p l2 --identity "$tmp/l2.key" --subscribe "$T"; l2addr="$laddr"
start_ctl_peer x1 --pubsub; x1addr="$caddr" x1id="$cpeer"
start_ctl_peer x2 --pubsub; x2addr="$caddr" x2id="$cpeer"
if [ -z "$l1addr" ] || [ -z "$l2addr" ] || [ -z "$x1addr" ] || [ -z "$x2addr" ]; then
  case_begin gossip "lp2p->X"; bad "all four nodes started"; case_end; peer_finish
fi
ctl_cmd x1 "subscribe $T"; ctl_cmd x2 "subscribe $T"
ctl_wait x1 subscribed ".ok" >/dev/null; ctl_wait x2 subscribed ".ok" >/dev/null
lp2p_cmd l1 "dial $x1addr"
lp2p_cmd l2 "dial $x1addr"
ctl_cmd x2 "dial $l2addr"
ctl_wait x2 dialed ".ok" 20 >/dev/null

case_begin gossip-mesh "lp2p->X"
if wait_meshes; then ok "meshes formed: $impl holds both lp2p nodes, lp2p holds $impl"; else
  bad "meshes formed" "x1 mesh $(ctl_mesh x1), l2 mesh $(lp2p_mesh l2), l1 mesh $(lp2p_mesh l1), x2 mesh $(ctl_mesh x2)"; fi
case_end

case_begin gossip "lp2p->X"
lp2p_cmd l1 "publish $T from-lp2p-1"
wait_got ctl x2 from-lp2p-1
lp2p_cmd l1 "publish $T from-lp2p-2"
wait_got ctl x2 from-lp2p-2
sleep 3 # gossip rounds: a second copy would arrive now
for m in from-lp2p-1 from-lp2p-2; do
  got="x1=$(ctl_got x1 $m) l2=$(lp2p_got l2 $m) x2=$(ctl_got x2 $m)"
  [ "$got" = "x1=1 l2=1 x2=1" ] && ok "$m exactly once on $impl, lp2p via $impl, $impl via lp2p" || bad "$m exactly once everywhere" "$got"
done
ev="$(ctl_wait x1 gossip-message '.data == "from-lp2p-1"' 1)"
[ "$(jq -r .from <<<"$ev")" = "$l1id" ] && ok "$impl sees lp2p as the author" || bad "$impl sees lp2p as the author" "$ev"
if [ "$impl" = go ]; then # js (public key protobuf || seqno) and rust (base58 id + decimal seqno) have ids of their own
  pid="$(grep '"event":"published"' "$tmp/l1.out" | head -1 | jq -r .id)"
  [ "$(jq -r .id <<<"$ev")" = "$pid" ] && ok "$impl computes lp2p's message id (from||seqno)" || bad "same message id" "lp2p $pid, $impl $(jq -r .id <<<"$ev")"
fi
case_end

case_begin gossip "X->lp2p"
ctl_cmd x2 "publish $T from-$impl-1"
wait_got lp2p l1 "from-$impl-1"
ctl_cmd x2 "publish $T from-$impl-2"
wait_got lp2p l1 "from-$impl-2"
sleep 3
for m in "from-$impl-1" "from-$impl-2"; do
  got="l2=$(lp2p_got l2 "$m") x1=$(ctl_got x1 "$m") l1=$(lp2p_got l1 "$m")"
  [ "$got" = "l2=1 x1=1 l1=1" ] && ok "$m exactly once on lp2p, $impl via lp2p, lp2p via $impl" || bad "$m exactly once everywhere" "$got"
done
from="$(jq -r "select(.event == \"gossip-message\" and .data == \"from-$impl-1\") | .from" "$tmp/l1.out" | head -1)"
[ "$from" = "$x2id" ] && ok "lp2p sees $impl as the author (signature verified)" || bad "author" "$from vs $x2id"
[ "$(ctl_got x2 "from-$impl-1")" = 0 ] && ok "$impl does not get its own message back" || bad "own message echoed"
case_end
ctl_quit x1; ctl_quit x2
peer_finish
