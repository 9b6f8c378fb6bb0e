#!/usr/bin/env bash
# peer_kad.sh - interop matrix, Kademlia (/ipfs/kad/1.0.0), against PEER_IMPL=js|go|rust through the
# ctl peers (PEERS-CONTRACT.md), over loopback TCP. A small network: L and M are lp2p-node listen
# (kad server), X and T the other implementation's ctl peer (--kad server). X bootstraps from L,
# M and T from X, so each side's tables hold the other side. Cells, both directions:
#   kad-find-node     lp2p->X: L finds T (known through X) / X->lp2p: X finds M
#   kad-closest       GET_CLOSEST_PEERS: L's result holds X and T / X's holds L and M
#   kad-pk-record     PUT_VALUE + GET_VALUE of a /pk/ record: L puts its key, X gets it back /
#                     X puts its key, L and M get it back (lp2p as holder)
#   kad-providers     ADD_PROVIDER + GET_PROVIDERS: L provides, X finds L (with an address) /
#                     X provides, L finds X
# Env (set by ctest): PEER_IMPL, LP2P_NODE, LP2P_SOURCE_DIR, LP2P_BUILD_DIR.
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_peer.sh"

if [ "$impl" = js ] && ! grep -q 'kad-find-peer' "$ctl"; then
  echo "SKIP: the js ctl peer ($ctl) does not implement the kad commands yet"
  exit 77
fi
command -v jq >/dev/null || { echo "SKIP: jq is missing (scripts/deps installs it)"; exit 77; }

# lp2p nodes: their JSON events are read with ctl_wait too
start_l() { # NAME ARGS...
  local name="$1"; shift
  start_lp2p "$name" --data-dir "$tmp/data-$name" "$@"
  : >"$tmp/$name.used"
}
# the /pk/ record of a peer id whose multihash is an identity hash of its public key (Ed25519):
# prints "KEYHEX VALUEHEX"
pk_record() {
  python3 - "$1" <<'EOF'
import sys
A = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
n = 0
for c in sys.argv[1]:
    n = n * 58 + A.index(c)
b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
mh = b'\0' * (len(sys.argv[1]) - len(sys.argv[1].lstrip('1'))) + b
assert mh[0] == 0 and mh[1] == len(mh) - 2, 'not an identity multihash'
print((b'/pk/' + mh).hex(), mh[2:].hex())
EOF
}
cid_of() { python3 -c 'import hashlib,base64,sys; d=hashlib.sha256(sys.argv[1].encode()).digest(); print("b"+base64.b32encode(bytes([1,0x55,0x12,0x20])+d).decode().lower().rstrip("="))' "$1"; }
jqt() { jq -e "$2" <<<"$1" >/dev/null 2>&1; }
# ask_l NAME EVENT LINE [SEC]: an lp2p command and its event
ask_l() { lp2p_cmd "$1" "$3"; ctl_wait "$1" "$2" true "${4:-60}"; }
ask_x() { ctl_cmd "$1" "$3"; ctl_wait "$1" "$2" true "${4:-60}"; }

start_l L
l_addr="$laddr" l_id="${laddr##*/p2p/}"
[ -n "$l_addr" ] || { bad "lp2p node L started"; peer_finish; }
start_ctl_peer X --kad server --bootstrap "$l_addr"
x_addr="$caddr" x_id="$cpeer"
[ -n "$x_addr" ] || { bad "$impl ctl peer X started"; peer_finish; }
start_l M --bootstrap "$x_addr"
m_id="${laddr##*/p2p/}"
start_ctl_peer T --kad server --bootstrap "$x_addr"
t_id="$cpeer"
[ -n "$t_id" ] && [ -n "$m_id" ] || { bad "M and T started"; peer_finish; }

# everyone joins: M's automatic bootstrap, then a bootstrap on X, T and L
ev="$(ctl_wait M kad-bootstrap true 60)"
jqt "$ev" '.ok' && ok "M (lp2p) bootstraps through X ($impl)" || bad "M bootstraps through X" "$ev"
ev="$(ask_x X kad-bootstrap kad-bootstrap)"
jqt "$ev" '.ok' || echo "       X kad-bootstrap: $ev"
ev="$(ask_x T kad-bootstrap kad-bootstrap)"
jqt "$ev" '.ok' || echo "       T kad-bootstrap: $ev"
ev="$(ask_l L kad-bootstrap kad-bootstrap)"
jqt "$ev" '.ok' || echo "       L kad-bootstrap: $ev"
# L's table holds X once X answered L's check
for _ in $(seq 50); do
  ev="$(ask_l L kad-table kad-table 10)"
  jqt "$ev" ".peers | index(\"$x_id\")" && break
  sleep 0.2
done
jqt "$ev" ".peers | index(\"$x_id\")" && ok "L's routing table holds X ($impl) after identify + check" \
  || bad "L's routing table holds X" "$ev"
ev="$(ask_x X kad-table kad-table 10)"
# (peers: ids, or {peer, addrs} objects as the rust peer writes them)
jqt "$ev" ".peers | map(if type == \"object\" then .peer else . end) | index(\"$l_id\")" && ok "X's ($impl) routing table holds L" || bad "X's routing table holds L" "$ev"

# ---- FIND_NODE ----
case_begin kad-find-node "lp2p->X"
ev="$(ask_l L kad-find-peer "kad-find-peer $t_id")"
jqt "$ev" ".ok and .peer == \"$t_id\" and (.addrs | length) >= 1 and .requests >= 1" \
  && ok "lp2p->$impl: L finds T ($impl) with its addresses" || bad "lp2p->$impl: L finds T" "$ev"
case_end
case_begin kad-find-node "X->lp2p"
ev="$(ask_x X kad-find-peer "kad-find-peer $m_id")"
jqt "$ev" ".ok and (.addrs | length) >= 1" && ok "$impl->lp2p: X finds M (lp2p) with its addresses" \
  || bad "$impl->lp2p: X finds M" "$ev"
case_end

# ---- GET_CLOSEST_PEERS ----
case_begin kad-closest "lp2p->X"
ev="$(ask_l L kad-closest "kad-closest 0x6b61642d696e7465726f70")"
jqt "$ev" ".ok and (.peers | index(\"$x_id\")) and (.peers | index(\"$t_id\")) and (.peers | index(\"$m_id\"))" \
  && ok "lp2p->$impl: L's closest peers hold X, T and M" || bad "lp2p->$impl: L's closest peers" "$ev"
case_end
case_begin kad-closest "X->lp2p"
ev="$(ask_x X kad-closest "kad-closest 6b61642d696e7465726f70")"
jqt "$ev" ".ok and (.peers | index(\"$l_id\")) and (.peers | index(\"$m_id\"))" \
  && ok "$impl->lp2p: X's closest peers hold L and M" || bad "$impl->lp2p: X's closest peers" "$ev"
case_end

# ---- PUT_VALUE / GET_VALUE of /pk/ records ----
case_begin kad-pk-record "lp2p->X"
read -r lk lv < <(pk_record "$l_id")
ev="$(ask_l L kad-put "kad-put 0x$lk 0x$lv")"
jqt "$ev" '.ok and .stored >= 1' && ok "lp2p->$impl: L puts its /pk/ record" || bad "lp2p->$impl: L puts /pk/" "$ev"
ev="$(ask_x X kad-get "kad-get $lk")"
jqt "$ev" ".ok and (.value | ascii_downcase) == \"$lv\"" && ok "lp2p->$impl: X gets L's /pk/ record" \
  || bad "lp2p->$impl: X gets L's /pk/ record" "$ev"
ev="$(ask_x T kad-get "kad-get $lk")"
jqt "$ev" ".ok and (.value | ascii_downcase) == \"$lv\"" && ok "lp2p->$impl: T gets L's /pk/ record" \
  || bad "lp2p->$impl: T gets L's /pk/ record" "$ev"
case_end
case_begin kad-pk-record "X->lp2p"
read -r xk xv < <(pk_record "$x_id")
ev="$(ask_x X kad-put "kad-put $xk $xv")"
jqt "$ev" '.ok' && ok "$impl->lp2p: X puts its /pk/ record" || bad "$impl->lp2p: X puts /pk/" "$ev"
ev="$(ask_l M kad-get "kad-get 0x$xk")"
jqt "$ev" ".ok and .value == \"$xv\"" && ok "$impl->lp2p: M gets X's /pk/ record" || bad "$impl->lp2p: M gets X's /pk/" "$ev"
ev="$(ask_l L kad-get "kad-get 0x$xk")"
jqt "$ev" ".ok and .value == \"$xv\"" && ok "$impl->lp2p: L gets X's /pk/ record" || bad "$impl->lp2p: L gets X's /pk/" "$ev"
case_end

# ---- ADD_PROVIDER / GET_PROVIDERS ----
case_begin kad-providers "lp2p->X"
cid1="$(cid_of "provided by lp2p $$")"
ev="$(ask_l L kad-provide "kad-provide $cid1")"
jqt "$ev" '.ok and .stored >= 1' && ok "lp2p->$impl: L provides $cid1" || bad "lp2p->$impl: L provides" "$ev"
ev="$(ask_x X kad-find-providers "kad-find-providers $cid1")"
jqt "$ev" ".ok and ([.providers[] | select(.peer == \"$l_id\" and (.addrs | length) >= 1)] | length) == 1" \
  && ok "lp2p->$impl: X finds L as provider, with its addresses" || bad "lp2p->$impl: X finds L as provider" "$ev"
ev="$(ask_x T kad-find-providers "kad-find-providers $cid1")"
jqt "$ev" ".ok and ([.providers[] | select(.peer == \"$l_id\")] | length) == 1" \
  && ok "lp2p->$impl: T finds L as provider" || bad "lp2p->$impl: T finds L as provider" "$ev"
case_end
case_begin kad-providers "X->lp2p"
cid2="$(cid_of "provided by $impl $$")"
ev="$(ask_x X kad-provide "kad-provide $cid2")"
jqt "$ev" '.ok' && ok "$impl->lp2p: X provides $cid2" || bad "$impl->lp2p: X provides" "$ev"
ev="$(ask_l M kad-find-providers "kad-find-providers $cid2")"
jqt "$ev" ".ok and (.providers | index(\"$x_id\")) and ([.addrs[] | select(endswith(\"/p2p/$x_id\"))] | length) >= 1" \
  && ok "$impl->lp2p: M finds X as provider, with its addresses" || bad "$impl->lp2p: M finds X as provider" "$ev"
ev="$(ask_l L kad-find-providers "kad-find-providers $cid2")"
jqt "$ev" ".ok and (.providers | index(\"$x_id\"))" && ok "$impl->lp2p: L finds X as provider" \
  || bad "$impl->lp2p: L finds X as provider" "$ev"
case_end

grep -h '"event":"error"' "$tmp/X.out" "$tmp/T.out" 2>/dev/null | head -5 | sed 's/^/       X\/T error event: /'
lp2p_cmd L quit; lp2p_cmd M quit; ctl_quit X; ctl_quit T
peer_finish
