#!/usr/bin/env bash
# test_kad_mixed.sh - one Kademlia DHT over loopback TCP made of 50 lp2p swarms in ONE process
# (tests/tools/kad_net) plus a go, a js and a rust node (the ctl peers, PEERS-CONTRACT.md, --kad
# server). The go node bootstraps from an lp2p node and an lp2p node (kept out of the lp2p-only
# bootstrap) bootstraps from the go node; js and rust bootstrap from lp2p nodes. Then, for every
# querier Q in {lp2p, go, js, rust} and every holder H in {lp2p, go, js, rust}:
#   - PUT_VALUE: Q puts a /pk/ record whose key is closer to H than to any other node of the
#     network (ground by kad_net), so a correct lookup must store it on H; H is asked directly
#     (one GET_VALUE sent straight to it) and must answer the record itself; the next
#     implementation after Q gets the value through the DHT.
#   - ADD_PROVIDER: the same with a provider key: H must hold Q as provider (one GET_PROVIDERS
#     straight to H), the next implementation finds Q as provider.
#   - FIND_NODE: Q finds a peer of every other implementation (with addresses).
# Matrix cells (tests/interop/matrix_report.py): kad-mixed-value, kad-mixed-providers and
# kad-mixed-find-peer for js/go/rust, "lp2p->X" = lp2p queries and X holds / is found,
# "X->lp2p" = X queries and lp2p holds / is found. Env (set by ctest): LP2P_NODE,
# LP2P_SOURCE_DIR, LP2P_TOOLS_DIR; optional KAD_NODES (50), KAD_MIXED_BUDGET (240 s: queries
# after that fail at once). About 35 s when all goes well.
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"
impl=js
. "$(dirname "${BASH_SOURCE[0]}")/lib_peer.sh"
command -v jq >/dev/null || { echo "SKIP: jq is missing (scripts/deps installs it)"; exit 77; }
grep -q 'kad-find-peer' "$ctl" || { echo "SKIP: the js ctl peer has no kad commands"; exit 77; }
[ -x "$go_peer" ] || { echo "SKIP: the go peer is not built ($go_peer)"; exit 77; }
[ -x "$rust_peer" ] || { echo "SKIP: the rust peer is not built ($rust_peer)"; exit 77; }
kad_net="${LP2P_TOOLS_DIR:-${LP2P_BUILD_DIR:-$src/build}/tests}/kad_net"
[ -x "$kad_net" ] || { echo "FAIL: $kad_net is not built"; echo "0 passed, 1 failed"; exit 1; }
N="${KAD_NODES:-50}"
jqt() { [ -n "$1" ] && jq -e "$2" <<<"$1" >/dev/null 2>&1; }

# ---- the 50 lp2p swarms (the last one stays out of the lp2p bootstrap) ----
_fifo H
"$kad_net" --nodes "$N" --isolated 1 <"$tmp/H.in" >"$tmp/H.out" 2>"$tmp/H.err" &
_pids+=($!)
: >"$tmp/H.used"
ready="$(ctl_wait H ready true 120)" || { bad "$N lp2p swarms in one process"; cat "$tmp/H.err" | head; finish; }
mapfile -t lp_ids < <(jq -r '.peers[]' <<<"$ready")
mapfile -t lp_addrs < <(jq -r '.addrs[]' <<<"$ready")
jqt "$ready" ".booted == $((N - 2))" && ok "$N lp2p swarms up, $((N - 2)) bootstrapped among themselves in $(jq .ms <<<"$ready") ms" \
  || bad "lp2p swarms bootstrapped" "$ready"
# host NODE-less command + its event
hq() { printf '%s\n' "$2" >&"${_fds[H]}"; ctl_wait H "$1" "${3:-true}" "${4:-30}"; }

# ---- go, js and rust nodes ----
PEER_IMPL=go start_ctl_peer G --kad server --bootstrap "${lp_addrs[0]}"
g_addr="$caddr" g_id="$cpeer"
PEER_IMPL=js start_ctl_peer J --kad server --bootstrap "${lp_addrs[1]}"
j_addr="$caddr" j_id="$cpeer"
PEER_IMPL=rust start_ctl_peer R --kad server --bootstrap "${lp_addrs[2]}"
r_addr="$caddr" r_id="$cpeer"
[ -n "$g_id" ] && [ -n "$j_id" ] && [ -n "$r_id" ] && ok "go, js and rust nodes started" || { bad "go, js and rust nodes started"; finish; }
for p in "$g_id" "$j_id" "$r_id"; do hq known "known $p" >/dev/null; done

declare -A name_of=([lp2p]=H [go]=G [js]=J [rust]=R)
declare -A id_of=([go]="$g_id" [js]="$j_id" [rust]="$r_id")
declare -A addr_of=([go]="$g_addr" [js]="$j_addr" [rust]="$r_addr")
LQ=10 LH=20 LP=30 LT=25 LLATE=$((N - 1)) # lp2p querier, holder, prober, find target, late joiner
id_of[lp2p]="${lp_ids[$LH]}" addr_of[lp2p]="${lp_addrs[$LH]}"
impls=(lp2p go js rust)

# the other implementations join: go bootstraps from lp2p (and js/rust too)
for x in go js rust; do
  n="${name_of[$x]}"
  ctl_cmd "$n" kad-bootstrap
  ev="$(ctl_wait "$n" kad-bootstrap true 60)"
  jqt "$ev" '.ok' && ok "$x bootstraps from an lp2p node" || bad "$x bootstraps from an lp2p node" "$ev"
done
for x in go js rust; do
  n="${name_of[$x]}" want=10
  ev="$(ctl_poll "$n" kad-table kad-table ".count >= $want" 30)"
  jqt "$ev" ".count >= $want" && ok "$x's routing table holds $(jq .count <<<"$ev") peers (lp2p ones learned through the DHT)" \
    || bad "$x's routing table fills" "$ev"
done
# and the lp2p nodes hold them (identify shows kad + they answered a check)
for x in go js rust; do
  ev=""
  for _ in $(seq 60); do ev="$(hq in-tables "in-tables ${id_of[$x]}")"; jqt "$ev" '.count >= 5' && break; sleep 0.5; done
  jqt "$ev" '.count >= 5' && ok "$x is in $(jq .count <<<"$ev") lp2p routing tables" || bad "$x enters lp2p routing tables" "$ev"
done
# vice versa: the late lp2p node knows only the go node and bootstraps from it
hq add "add $LLATE $g_addr" ".node == $LLATE" >/dev/null
ev="$(hq bootstrap "bootstrap $LLATE" ".node == $LLATE" 60)"
jqt "$ev" '.ok' && ok "an lp2p node bootstraps from the go node" || bad "lp2p bootstraps from go" "$ev"
ev="$(hq table "table $LLATE" ".node == $LLATE")"
jqt "$ev" ".count >= 10 and (.peers | index(\"$g_id\")) and (.peers | index(\"${lp_ids[0]}\") or index(\"${lp_ids[5]}\") or index(\"${lp_ids[9]}\") or (length >= 12))" \
  && ok "its table holds the go node and $(jq .count <<<"$ev") peers found through it" || bad "late lp2p node's table" "$ev"

# ---- one query by implementation Q: prints its result event ----
# q IMPL OP ARGS...   OP: put KEY VAL | get KEY | provide MH CID | find-providers MH CID | find-peer PEER
q() {
  local x="$1" op="$2"; shift 2
  # a broken peer must not keep the test (and the machine's CPU lock) for long: past the budget,
  # every remaining query fails at once
  if [ "$SECONDS" -gt "${KAD_MIXED_BUDGET:-240}" ]; then echo '{"ok":false,"error":"test time budget spent"}'; return; fi
  if [ "$x" = lp2p ]; then
    case "$op" in
      provide|find-providers) hq "$op" "$op $LQ $1" ".node == $LQ" 40 ;;
      *) hq "$op" "$op $LQ $*" ".node == $LQ" 40 ;;
    esac
  else
    local n="${name_of[$x]}" line
    case "$op" in
      provide|find-providers) line="kad-$op $2" ;;
      *) line="kad-$op $*" ;;
    esac
    ctl_cmd "$n" "$line"
    ctl_wait "$n" "kad-$op" true 40
  fi
}
next_of() { case "$1" in lp2p) echo go ;; go) echo js ;; js) echo rust ;; rust) echo lp2p ;; esac; }
# matrix cells: cellfail[case|impl|dir]
declare -A cellfail=() cellrun=()
mark() { # mark CASE Q H PASSED(0/1): counts towards lp2p->X when Q is lp2p, X->lp2p when H is lp2p
  local c="$1" qq="$2" h="$3" good="$4" k=""
  if [ "$qq" = lp2p ] && [ "$h" != lp2p ]; then k="$c|$h|lp2p->X"; fi
  if [ "$h" = lp2p ] && [ "$qq" != lp2p ]; then k="$c|$qq|X->lp2p"; fi
  [ -n "$k" ] || return 0
  cellrun[$k]=1
  [ "$good" = 1 ] || cellfail[$k]=1
}

# ---- PUT_VALUE / GET_VALUE ----
for qq in "${impls[@]}"; do
  for h in "${impls[@]}"; do
    rd="$(next_of "$qq")"
    g="$(hq grind-pk "grind-pk ${id_of[$h]}")"
    key="$(jq -r .key <<<"$g")" val="$(jq -r .value <<<"$g")"
    good=1
    ev="$(q "$qq" put "$key" "$val")"
    jqt "$ev" '.ok' || { good=0; bad "$qq puts a /pk/ record meant for $h" "$ev"; }
    pr="$(hq probe "probe $LP ${addr_of[$h]} get $key" ".node == $LP")"
    jqt "$pr" ".ok and (.value | ascii_downcase) == \"$val\"" || { good=0; bad "$h holds the record $qq put (asked directly)" "$pr"; }
    ev="$(q "$rd" get "$key")"
    jqt "$ev" ".ok and (.value | ascii_downcase) == \"$val\"" || { good=0; bad "$rd gets the record $qq put (held by $h)" "$ev"; }
    [ "$good" = 1 ] && ok "value: $qq puts, $h holds it, $rd gets it"
    mark kad-mixed-value "$qq" "$h" "$good"
    mark kad-mixed-value "$qq" "$rd" "$good"
  done
done

# ---- ADD_PROVIDER / GET_PROVIDERS ----
for qq in "${impls[@]}"; do
  qid="${id_of[$qq]}"
  [ "$qq" = lp2p ] && qid="${lp_ids[$LQ]}"
  for h in "${impls[@]}"; do
    rd="$(next_of "$qq")"
    g="$(hq grind-mh "grind-mh ${id_of[$h]}")"
    mh="$(jq -r .mh <<<"$g")" cid="$(jq -r .cid <<<"$g")"
    good=1
    ev="$(q "$qq" provide "$mh" "$cid")"
    jqt "$ev" '.ok' || { good=0; bad "$qq provides a key meant for $h" "$ev"; }
    pr="$(hq probe "probe $LP ${addr_of[$h]} prov $mh" ".node == $LP")"
    jqt "$pr" ".ok and (.providers | index(\"$qid\"))" || { good=0; bad "$h holds $qq as provider (asked directly)" "$pr"; }
    ev="$(q "$rd" find-providers "$mh" "$cid")"
    jqt "$ev" ".ok and ([.providers[] | select(.peer == \"$qid\")] | length) == 1" \
      || { good=0; bad "$rd finds $qq as provider (held by $h)" "$ev"; }
    [ "$good" = 1 ] && ok "providers: $qq provides, $h holds it, $rd finds it"
    mark kad-mixed-providers "$qq" "$h" "$good"
    mark kad-mixed-providers "$qq" "$rd" "$good"
  done
done

# ---- FIND_NODE ----
id_of[lp2p]="${lp_ids[$LT]}"
for qq in "${impls[@]}"; do
  for t in "${impls[@]}"; do
    [ "$qq" = "$t" ] && continue
    ev="$(q "$qq" find-peer "${id_of[$t]}")"
    if jqt "$ev" '.ok and (.addrs | length) >= 1'; then ok "find-peer: $qq finds $t"; good=1
    else bad "find-peer: $qq finds $t" "$ev"; good=0; fi
    mark kad-mixed-find-peer "$qq" "$t" "$good"
  done
done

for k in "${!cellrun[@]}"; do
  IFS='|' read -r c x d <<<"$k"
  st=pass; [ -n "${cellfail[$k]:-}" ] && st=fail
  printf '{"case":"%s","impl":"%s","dir":"%s","status":"%s"}\n' "$c" "$x" "$d" "$st" >"$matrix_dir/$c.$x.${d/->/-to-}.json"
done
ev="$(hq stats stats)"
echo "lp2p swarms: $(jq -c '{served, cpu_us, rss_kb, records}' <<<"$ev") after $SECONDS s"
for n in G J R; do grep -h '"event":"error"' "$tmp/$n.out" 2>/dev/null | head -3 | sed "s/^/       $n error event: /"; done
for n in G J R; do ctl_quit "$n"; done
printf 'quit\n' >&"${_fds[H]}"
finish
