#!/usr/bin/env bash
# test_gossip_mixed.sh - a 30-node mixed gossipsub network over loopback TCP: lp2p-node
# processes plus js, go and rust ctl peers (PEERS-CONTRACT.md, --pubsub), every one subscribed
# to one topic, linked at random but sparsely (a random spanning tree + GOSSIP_CHORDS extra
# links, seed GOSSIP_SEED) so that most messages cross several implementations. Two publishers
# of every implementation publish two messages each; every subscriber must get every message
# exactly once (also after three more heartbeats of gossip), and never its own.
# Implementations whose peer is missing (go/rust not built, js ctl peer without --pubsub) are
# replaced by lp2p nodes and named in the output. Env (set by ctest): LP2P_NODE,
# LP2P_SOURCE_DIR; optional GOSSIP_NODES (30), GOSSIP_CHORDS (12), GOSSIP_SEED (7).
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"
impl=js
. "$(dirname "${BASH_SOURCE[0]}")/lib_peer.sh"
if ! declare -F start_ctl_peer >/dev/null; then
  echo "SKIP: lib_peer.sh has no ctl peers yet (start_ctl_peer; branch peers-jsgo)"; exit 77
fi
T=mixed
N="${GOSSIP_NODES:-30}" CHORDS="${GOSSIP_CHORDS:-12}"
RANDOM="${GOSSIP_SEED:-7}"

impls=()
grep -q -- "--pubsub" "$ctl" 2>/dev/null && [ -d "$src/tests/interop/node_modules/@libp2p/gossipsub" ] && impls+=(js) ||
  echo "note: js ctl peer has no --pubsub or @libp2p/gossipsub is not installed: no js nodes"
[ -x "$go_peer" ] && impls+=(go) || echo "note: go peer not built: no go nodes"
[ -x "$rust_peer" ] && impls+=(rust) || echo "note: rust peer not built: no rust nodes"
per=$((N / (${#impls[@]} + 2))) # lp2p gets the rest (at least 2/5 of the network with 3 others)

kind=() name=() addr=()
for ((i = 0; i < N; i++)); do
  k=lp2p
  for ((j = 0; j < ${#impls[@]}; j++)); do
    [ "$i" -ge $((N - (j + 1) * per)) ] && [ "$i" -lt $((N - j * per)) ] && k="${impls[$j]}"
  done
  kind[$i]=$k name[$i]="n$i-$k"
done
# interleave kinds along the index so the tree mixes them: shuffle
for ((i = N - 1; i > 0; i--)); do
  j=$((RANDOM % (i + 1)))
  t="${kind[$i]}"; kind[$i]="${kind[$j]}"; kind[$j]="$t"
done
for ((i = 0; i < N; i++)); do name[$i]="n$i-${kind[$i]}"; done

started=0
for ((i = 0; i < N; i++)); do
  n="${name[$i]}"
  if [ "${kind[$i]}" = lp2p ]; then
    start_lp2p "$n" --identity "$tmp/$n.key" --subscribe "$T"; addr[$i]="$laddr"
  else
    PEER_IMPL="${kind[$i]}" start_ctl_peer "$n" --pubsub; addr[$i]="$caddr"
    ctl_cmd "$n" "subscribe $T"
  fi
  [ -n "${addr[$i]}" ] && started=$((started + 1))
done
counts=""; for k in lp2p "${impls[@]}"; do c=0; for ((i = 0; i < N; i++)); do [ "${kind[$i]}" = "$k" ] && c=$((c + 1)); done; counts="$counts $k=$c"; done
echo "network:$counts (started in $SECONDS s)"
[ "$started" = "$N" ] && ok "all $N nodes started ($counts )" || { bad "all $N nodes started" "$started started"; finish; }

send() { # send INDEX LINE
  if [ "${kind[$1]}" = lp2p ]; then lp2p_cmd "${name[$1]}" "$2"; else ctl_cmd "${name[$1]}" "$2"; fi
}
declare -A linked=()
link() {
  local a="$1" b="$2"
  [ "$a" = "$b" ] && return 1
  [ -n "${linked[$a,$b]:-}${linked[$b,$a]:-}" ] && return 1
  linked[$a,$b]=1
  send "$a" "dial ${addr[$b]}"
}
nlinks=0
for ((i = 1; i < N; i++)); do link "$i" $((RANDOM % i)) && nlinks=$((nlinks + 1)); done
for ((c = 0; c < CHORDS * 4 && nlinks < N - 1 + CHORDS; c++)); do
  link $((RANDOM % N)) $((RANDOM % N)) && nlinks=$((nlinks + 1))
done
echo "links: $nlinks"
sleep 5 # connections up, subscriptions exchanged, a few heartbeats build the meshes

msgs=()
for k in lp2p "${impls[@]}"; do
  p=0
  for ((i = 0; i < N && p < 2; i++)); do
    [ "${kind[$i]}" = "$k" ] || continue
    for r in 1 2; do
      m="m-$k-n$i-$r"; msgs+=("$i:$m")
      send "$i" "publish $T $m"
    done
    p=$((p + 1))
  done
done
echo "messages: ${#msgs[@]} (published at $SECONDS s)"

# received NAME: "count data" lines of the gossip-messages of node NAME
received() { jq -r 'select(.event == "gossip-message") | .data' "$tmp/$1.out" 2>/dev/null | sort | uniq -c; }
complete() {
  local i e
  for ((i = 0; i < N; i++)); do
    local got; got="$(received "${name[$i]}" | wc -l)"
    e=0; for pm in "${msgs[@]}"; do [ "${pm%%:*}" = "$i" ] || e=$((e + 1)); done
    [ "$got" -ge "$e" ] || return 1
  done
}
t0="$(now_ms)"
for ((w = 0; w < 60; w++)); do complete && break; sleep 0.5; done
t1="$(now_ms)"
complete && ok "every subscriber got every message of the others ($((t1 - t0)) ms after the last publish)" || bad "every message everywhere within 30 s"
sleep 3 # more gossip rounds: late duplicates would be delivered now
missing=0 dup=0 own=0 detail=""
for ((i = 0; i < N; i++)); do
  r="$(received "${name[$i]}")"
  for pm in "${msgs[@]}"; do
    src="${pm%%:*}" m="${pm#*:}"
    c="$(awk -v m="$m" '$2 == m { print $1 }' <<<"$r")"; c="${c:-0}"
    if [ "$src" = "$i" ]; then
      [ "$c" = 0 ] || { own=$((own + 1)); detail="$detail ${name[$i]}:own:$m"; }
    elif [ "$c" = 0 ]; then missing=$((missing + 1)); detail="$detail ${name[$i]}:missing:$m"
    elif [ "$c" != 1 ]; then dup=$((dup + 1)); detail="$detail ${name[$i]}:x$c:$m"
    fi
  done
done
[ "$missing" = 0 ] && ok "no message missing at any subscriber" || bad "missing deliveries: $missing" "$detail"
[ "$dup" = 0 ] && ok "no message delivered twice" || bad "duplicate deliveries: $dup" "$detail"
[ "$own" = 0 ] && ok "no publisher got its own message" || bad "own messages delivered: $own" "$detail"
for k in "${impls[@]}"; do
  for ((i = 0; i < N; i++)); do [ "${kind[$i]}" = "$k" ] && { grep -q '"event":"error"' "$tmp/${name[$i]}.out" && echo "note: ${name[$i]} reported an error: $(grep -m1 '"event":"error"' "$tmp/${name[$i]}.out")"; }; done
done
finish
