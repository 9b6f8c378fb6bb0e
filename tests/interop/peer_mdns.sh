#!/usr/bin/env bash
# peer_mdns.sh - interop matrix, mDNS discovery (issue 10), against PEER_IMPL=js|go|rust in network
# namespaces (tests/netns/lib_netns.sh): lp2p-node `listen --mdns` on host 1, the peer's ctl mode
# `--mdns` (PEERS-CONTRACT.md) on host 2, one bridge between them. Cells, both directions:
#   mdns-ipv4   lp2p->X: lp2p-node reports peer-discovered for X with an /ip4/ address, then pings
#               X by peer id alone (the address came from mDNS);
#               X->lp2p: X reports peer-discovered for lp2p with an /ip4/ address, dials it
#               (<addr>/p2p/<id>) and pings lp2p.
#   mdns-ipv6   the same over IPv6 only (both listen on /ip6/::, lp2p with --mdns-family 6);
#               go and rust only: js @libp2p/mdns (multicast-dns) is IPv4-only.
#   mdns-expiry lp2p->X: X quits, lp2p reports peer-expired for it (X's goodbye packets);
#               X->lp2p: lp2p quits (goodbyes sent), X reports peer-expired.
#               Run only where the peer can: go sends goodbyes but go-libp2p's mdns Notifee has no
#               "lost" callback (X->lp2p n/a); rust-libp2p reports expiry but sends no goodbye, so it
#               would take its 360 s TTL (lp2p->X n/a), and ignores ours (X->lp2p is checked with a
#               lp2p node sending 3 s records instead); js sends no goodbye and reports no expiry.
#   (rust IPv6: the rust ctl peer uses libp2p-mdns Config::default(), whose enable_ipv6 is false.)
# The upstream implementations do not find each other (go-libp2p#2275); lp2p must find all three and
# be found by all three. Skips (77) where namespaces cannot be made or the peer is not built.
# Env (set by ctest): PEER_IMPL, LP2P_NODE, LP2P_SOURCE_DIR, LP2P_BUILD_DIR.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../netns/lib_netns.sh"
netns_require
. "$here/lib_node.sh"
. "$here/lib_peer.sh"
command -v jq >/dev/null || { echo "SKIP: jq is missing (scripts/deps installs it)"; exit 77; }
netns_setup 2

# ns_ctl NAME HOST ARGS... : the PEER_IMPL ctl peer inside host HOST (start_ctl_peer's contract)
ns_ctl() {
  local name="$1" host="$2" ev; shift 2
  local -a cmd
  case "$impl" in js) cmd=("$js" "$ctl") ;; go) cmd=("$go_peer" ctl) ;; rust) cmd=("$rust_peer" ctl) ;; esac
  _fifo "$name"
  nsx "$host" "${cmd[@]}" --timeout "${CTL_TIMEOUT:-300}" "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  cpid=$!
  _pids+=("$cpid")
  _ctl_pid[$name]=$cpid
  : >"$tmp/$name.used"
  cpeer=""
  if ev="$(ctl_wait "$name" listening true "${CTL_START_SEC:-30}")"; then cpeer="$(jq -r '.peerId // empty' <<<"$ev")"; fi
  [ -n "$cpeer" ] || { echo "       $impl ctl peer '$name' did not start:"; head -20 "$tmp/$name.err" | sed 's/^/       /'; }
}
# ns_lp2p NAME HOST ARGS... : lp2p-node listen --json --control inside host HOST; sets lpeer
ns_lp2p() {
  local name="$1" host="$2" ev; shift 2
  _fifo "$name"
  nsx "$host" "$node_exe" listen --json --control --data-dir "$tmp/data-$name" "$@" \
    <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  lpid=$!
  _pids+=("$lpid")
  _ctl_pid[$name]=$lpid
  : >"$tmp/$name.used"
  lpeer=""
  if ev="$(ctl_wait "$name" listening true 20)"; then lpeer="$(jq -r '.peer_id // empty' <<<"$ev")"; fi
  [ -n "$lpeer" ] || { echo "       lp2p-node '$name' did not start:"; head -20 "$tmp/$name.err" | sed 's/^/       /'; }
}

declare -A found=()
run_family() { # run_family 4|6
  local fam="$1" lis mf v pfx
  if [ "$fam" = 4 ]; then lis=/ip4/0.0.0.0/tcp/0 pfx=/ip4/; else lis=/ip6/::/tcp/0 pfx=/ip6/; fi
  local L="l$fam" X="x$fam" t0 ev addr
  t0=$(now_ms)
  ns_lp2p "$L" 1 --listen "$lis" --mdns --mdns-family "$fam"
  local lp="$lpeer"
  ns_ctl "$X" 2 --listen "$lis" --mdns
  local xp="$cpeer"
  # lp2p finds X
  case_begin "mdns-ipv$fam" "lp2p->X"
  if [ -z "$lp" ] || [ -z "$xp" ]; then
    bad "ipv$fam: both started"; case_end
  else
    if ev="$(ctl_wait "$L" peer-discovered ".peer == \"$xp\" and .source == \"mdns\" and any(.addrs[]; startswith(\"$pfx\"))" 20)"; then
      ok "ipv$fam: lp2p discovers $impl ($(( $(now_ms) - t0 )) ms after lp2p started): $(jq -c .addrs <<<"$ev")"
      found["lp2p>$impl>$fam"]=yes
      ctl_cmd "$L" "ping $xp"
      ev="$(ctl_wait "$L" ping ".peer == \"$xp\"" 20)"
      [ "$(jq -r '.rtt_us != null' <<<"$ev")" = true ] && ok "ipv$fam: lp2p pings $impl by peer id (mDNS address)" ||
        bad "ipv$fam: lp2p pings $impl" "$ev"
    else
      bad "ipv$fam: lp2p discovers $impl" "$(cat "$tmp/$L.out")"
      found["lp2p>$impl>$fam"]=no
    fi
    case_end
  fi
  # X finds lp2p
  case_begin "mdns-ipv$fam" "X->lp2p"
  if [ -n "$lp" ] && [ -n "$xp" ]; then
    if ev="$(ctl_wait "$X" peer-discovered ".peer == \"$lp\" and any(.addrs[]; startswith(\"$pfx\"))" 20)"; then
      ok "ipv$fam: $impl discovers lp2p: $(jq -c .addrs <<<"$ev")"
      found["$impl>lp2p>$fam"]=yes
      addr="$(jq -r "[.addrs[] | select(startswith(\"$pfx\"))][0]" <<<"$ev")"
      case "$addr" in */p2p/*) ;; *) addr="$addr/p2p/$lp" ;; esac
      ctl_cmd "$X" "dial $addr"
      ev="$(ctl_wait "$X" dialed true 20)"
      [ "$(jq -r .ok <<<"$ev")" = true ] && ok "ipv$fam: $impl dials lp2p at the discovered $addr" || bad "ipv$fam: $impl dials lp2p" "$ev"
      ctl_cmd "$X" "ping $lp"
      ev="$(ctl_wait "$X" ping true 20)"
      [ "$(jq -r .ok <<<"$ev")" = true ] && ok "ipv$fam: $impl pings lp2p" || bad "ipv$fam: $impl pings lp2p" "$ev"
    else
      bad "ipv$fam: $impl discovers lp2p" "$(grep -v '^{"event":"listening' "$tmp/$X.out" | head -20)"
      found["$impl>lp2p>$fam"]=no
    fi
  fi
  case_end
  if [ "$fam" = 4 ] && [ "$impl" = rust ]; then
    # rust-libp2p ignores goodbyes (it keeps max(current expiry, now + TTL)), so lp2p's TTL must
    # run out: a second lp2p node with 3 s records, discovered by rust, then gone
    case_begin mdns-expiry "X->lp2p"
    ns_lp2p "${L}t" 1 --listen "$lis" --mdns --mdns-family "$fam" --mdns-ttl 3
    local lt="$lpeer"
    if [ -n "$lt" ] && ctl_wait "$X" peer-discovered ".peer == \"$lt\"" 20 >/dev/null; then
      ctl_quit "${L}t" >/dev/null
      t0=$(now_ms)
      ctl_wait "$X" peer-expired ".peer == \"$lt\"" 20 >/dev/null &&
        ok "$impl reports lp2p expired once lp2p's 3 s records ran out ($(( $(now_ms) - t0 )) ms after it quit)" ||
        bad "$impl reports lp2p expired" "$(tail -5 "$tmp/$X.out")"
    else
      bad "$impl discovers the short-TTL lp2p node"
    fi
    case_end
  fi
  if [ "$fam" = 4 ] && [ "$impl" = go ]; then
    case_begin mdns-expiry "lp2p->X"
    ctl_quit "$X" >/dev/null
    ctl_wait "$L" peer-expired ".peer == \"$xp\"" 15 >/dev/null && ok "lp2p reports $impl expired after $impl quit (goodbye)" ||
      bad "lp2p reports $impl expired" "$(tail -5 "$tmp/$L.out")"
    case_end
  fi
  ctl_quit "$X" >/dev/null; ctl_quit "$L" >/dev/null
}

run_family 4
[ "$impl" = go ] && run_family 6
echo "discovery matrix ($impl):"
for fam in 4 6; do
  [ "$impl" = js ] && [ "$fam" = 6 ] && { echo "  IPv6: n/a (js @libp2p/mdns is IPv4-only)"; continue; }
  [ "$impl" = rust ] && [ "$fam" = 6 ] && { echo "  IPv6: n/a (the rust ctl peer's libp2p-mdns has enable_ipv6 false)"; continue; }
  echo "  IPv$fam: lp2p finds $impl: ${found["lp2p>$impl>$fam"]:-?}   $impl finds lp2p: ${found["$impl>lp2p>$fam"]:-?}"
done
peer_finish
