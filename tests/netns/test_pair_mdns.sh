#!/usr/bin/env bash
# tests/netns/test_pair_mdns.sh - pairing on a LAN of network namespaces, found by mDNS (issue 11):
# hosts a and b run `lp2p-node listen --mdns`; a shows a code (pair-start), b types it
# (pair-join CODE, no address): a's mDNS record carries the nameplate's tag (TXT
# "lp2p-pair=<hex>", lp2p_pairing_add_mdns_rendezvous), and b's candidates are the mDNS peers
# carrying the tag of the typed nameplate. A third host c runs its own pairing session at the
# same time (another nameplate: 4 digits) and is never contacted by b (no device-state for c on
# b, no session on c). 10 pairings: p50 printed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib_netns.sh"
netns_require
. "$here/lib_lan.sh"
netns_setup 3
L=(--listen /ip4/0.0.0.0/tcp/4001)

lan_start a 1 "${L[@]}" --mdns --device-name host-a || bad "host a starts"
lan_start b 2 "${L[@]}" --mdns --device-name host-b || bad "host b starts"
lan_start c 3 "${L[@]}" --mdns --device-name host-c --pair-nameplate-digits 4 || bad "host c starts"
pa="${lan_peer[a]}" pb="${lan_peer[b]}" pc="${lan_peer[c]}"
lan_wait b "e['event'] == 'peer-discovered' and e['peer'] == '$pa'" 10 >/dev/null &&
  lan_wait b "e['event'] == 'peer-discovered' and e['peer'] == '$pc'" 10 >/dev/null &&
  ok "b discovers a and c by mDNS" || bad "b discovers a and c" "$(cat "$lan_tmp/b.out")"

times=()
for run in $(seq 10); do
  lan_cmd c pair-start
  lan_cmd a pair-start
  for ((i = 0; i < 500; i++)); do [ "$(grep -c '"event":"pair-code"' "$lan_tmp/a.out")" -ge "$run" ] && break; sleep 0.01; done
  code="$(python3 -c 'import json,sys; print([json.loads(l)["code"] for l in open(sys.argv[1]) if "\"pair-code\"" in l][-1])' "$lan_tmp/a.out")"
  t0=$(date +%s%N)
  lan_cmd b "pair-join $code"
  for ((i = 0; i < 2000; i++)); do
    n="$(grep -c '"event":"paired"\|"event":"pair-failed"' "$lan_tmp/b.out")"
    [ "$n" -ge "$run" ] && break
    sleep 0.01
  done
  times+=($(( ($(date +%s%N) - t0) / 1000000 )))
done
np="$(grep -c '"event":"paired"' "$lan_tmp/b.out")"
na="$(grep -c '"event":"paired"' "$lan_tmp/a.out")"
[ "$np" = 10 ] && [ "$na" = 10 ] && ok "10 pairings over mDNS (a and b both report paired)" ||
  bad "10 pairings over mDNS" "b: $np a: $na $(grep pair "$lan_tmp/b.out" | tail -5)"
grep '"event":"paired"' "$lan_tmp/b.out" | grep -q "\"peer\":\"$pa\".*\"name\":\"host-a\"\|\"name\":\"host-a\".*\"peer\":\"$pa\"" &&
  ok "b paired with a (host-a)" || bad "b paired with a" "$(grep paired "$lan_tmp/b.out" | head -2)"
[ "$(grep -c '"event":"paired"' "$lan_tmp/c.out")" = 0 ] && ok "c never paired" || bad "c never paired"
[ "$(grep -c '"event":"pair-code"' "$lan_tmp/c.out")" -ge 10 ] && ok "c ran its own pairing sessions meanwhile" || bad "c ran its own sessions" "$(grep pair "$lan_tmp/c.out" | tail -3)"
! grep '"event":"device-state"' "$lan_tmp/b.out" | grep -q "\"peer\":\"$pc\"" &&
  ok "b never contacted c (another nameplate's tag): no device-state for c" ||
  bad "b never contacted c" "$(grep device-state "$lan_tmp/b.out" | grep "$pc" | head -3)"
! grep '"event":"device-state"' "$lan_tmp/c.out" | grep -q '"state":"pairing"' &&
  ok "c never ran a PAKE session" || bad "c never ran a PAKE session" "$(grep device-state "$lan_tmp/c.out" | head -3)"
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "  pairing over mDNS on a namespace LAN (pair-join -> paired, incl. control I/O), 10 runs: p50 ${sorted[4]} ms, min ${sorted[0]} ms, max ${sorted[9]} ms"
lan_cmd b devices
lan_wait b "e['event'] == 'devices' and e['count'] == 1 and e['peers'][0] == '$pa'" 5 >/dev/null && ok "b's devices: a" || bad "b's devices" "$(grep devices "$lan_tmp/b.out")"
lan_finish
