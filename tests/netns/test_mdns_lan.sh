#!/usr/bin/env bash
# tests/netns/test_mdns_lan.sh - lp2p-node `listen --mdns` on a LAN of network namespaces (issue 10):
#   1. 2 hosts discover each other (IPv4 and IPv6 addresses, never loopback or 0.0.0.0), then ping;
#   2. 5 hosts all discover each other, then every host pings every other one by peer id alone;
#   3. a host that quits is expired by the others (goodbye);
#   4. a host killed with -9 (no goodbye) is expired once its short TTL (--mdns-ttl 3) ran out;
#   5. a host that adds a listen address is re-announced with it;
#   6. --mdns-dial connects by itself.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib_netns.sh"
netns_require
. "$here/lib_lan.sh"
netns_setup 6
L=(--listen /ip4/0.0.0.0/tcp/4001 --listen /ip6/::/tcp/4001)
t0=$(date +%s%N)

# ---- 1. two hosts
lan_start a 1 "${L[@]}" --mdns || bad "host a starts"
lan_start b 2 "${L[@]}" --mdns || bad "host b starts"
pa="${lan_peer[a]}" pb="${lan_peer[b]}"
if lan_wait a "e['event'] == 'peer-discovered' and e['peer'] == '$pb' and e['source'] == 'mdns'" 5 >/dev/null &&
   lan_wait b "e['event'] == 'peer-discovered' and e['peer'] == '$pa'" 5 >/dev/null; then
  ok "2 hosts discover each other ($(( ($(date +%s%N) - t0) / 1000000 )) ms after the first start)"
else
  bad "2 hosts discover each other" "$(cat "$lan_tmp/a.out" "$lan_tmp/b.out")"
fi
lan_wait a "e['event'] == 'peer-discovered' and e['peer'] == '$pb' and any(x.startswith('/ip4/${netns_ip4[2]}/tcp/4001') for x in e['addrs'])" 5 >/dev/null &&
lan_wait a "e['event'] == 'peer-discovered' and e['peer'] == '$pb' and any(x.startswith('/ip6/${netns_ip6[2]}/tcp/4001') for x in e['addrs'])" 5 >/dev/null &&
  ok "the IPv4 and the IPv6 address are both discovered" || bad "IPv4 + IPv6 addresses" "$(cat "$lan_tmp/a.out")"
n="$(lan_count a "e['event'] == 'peer-discovered' and any(('/127.' in x or '/::1/' in x or '/0.0.0.0/' in x or '/::/' in x or '/fe80' in x) for x in e['addrs'])")"
[ "$n" = 0 ] && ok "no loopback, unspecified or link-local address advertised" || bad "loopback/unspecified advertised" "$(cat "$lan_tmp/a.out")"
lan_cmd a "ping $pb"
lan_wait a "e['event'] == 'ping' and e.get('peer') == '$pb' and 'rtt_us' in e" 10 >/dev/null && ok "a pings b by peer id (address from mDNS)" ||
  bad "a pings b" "$(cat "$lan_tmp/a.out")"

# ---- 2. five hosts (a, b + c, d, e; d with a 3 s TTL for step 4)
lan_start c 3 "${L[@]}" --mdns || bad "host c starts"
lan_start d 4 "${L[@]}" --mdns --mdns-ttl 3 || bad "host d starts"
lan_start e 5 "${L[@]}" --mdns || bad "host e starts"
all=(a b c d e)
missing=""
for x in "${all[@]}"; do
  for y in "${all[@]}"; do
    [ "$x" = "$y" ] && continue
    lan_wait "$x" "e['event'] == 'peer-discovered' and e['peer'] == '${lan_peer[$y]}'" 10 >/dev/null || missing+=" $x-/->$y"
  done
done
[ -z "$missing" ] && ok "5 hosts: every host discovers the 4 others" || bad "5 hosts discover each other:$missing"
for x in "${all[@]}"; do
  for y in "${all[@]}"; do [ "$x" = "$y" ] || lan_cmd "$x" "ping ${lan_peer[$y]}"; done
done
pings=""
for x in "${all[@]}"; do
  for y in "${all[@]}"; do
    [ "$x" = "$y" ] && continue
    lan_wait "$x" "e['event'] == 'ping' and e.get('peer') == '${lan_peer[$y]}' and 'rtt_us' in e" 15 >/dev/null || pings+=" $x->$y"
  done
done
[ -z "$pings" ] && ok "5 hosts: 20 pings by peer id succeed" || bad "5 hosts ping each other:$pings"
self="$(lan_count a "e['event'] == 'peer-discovered' and e['peer'] == '$pa'")"
[ "$self" = 0 ] && ok "a host never discovers itself" || bad "a host discovered itself"

# ---- 3. goodbye
pe="${lan_peer[e]}"
lan_stop e
gone=""
for x in a b c d; do
  lan_wait "$x" "e['event'] == 'peer-expired' and e['peer'] == '$pe'" 3 >/dev/null || gone+=" $x"
done
[ -z "$gone" ] && ok "a host that quits is expired by the 4 others at once (goodbye)" || bad "goodbye expiry missing at:$gone"

# ---- 4. TTL expiry (d sends 3 s records and dies without a goodbye). d has lived for several of its
# TTLs by now: the others' refresh queries (80 %/90 % of the TTL) kept it alive meanwhile.
pd="${lan_peer[d]}"
sleep 4 # (d lives through more than one more TTL: nothing may expire it meanwhile)
early=0
for x in a b c; do early=$((early + $(lan_count "$x" "e['event'] == 'peer-expired' and e['peer'] == '$pd'"))); done
[ "$early" = 0 ] && ok "a live host with 3 s records is never expired (refresh queries)" || bad "live host with a short TTL expired $early times"
before=$(date +%s%N)
lan_stop d KILL
late=""
for x in a b c; do
  lan_wait "$x" "e['event'] == 'peer-expired' and e['peer'] == '$pd'" 10 >/dev/null || late+=" $x"
done
ms=$(( ($(date +%s%N) - before) / 1000000 ))
if [ -z "$late" ] && [ "$ms" -le 5000 ]; then ok "a killed host is expired by its TTL (3 s records; all 3 saw it within $ms ms)"
else bad "TTL expiry (missing at:$late, after $ms ms)"; fi

# ---- 5. a new listen address is announced
lan_cmd a "listen /ip4/0.0.0.0/tcp/4555"
new=""
for x in b c; do
  lan_wait "$x" "e['event'] == 'peer-discovered' and e['peer'] == '$pa' and any('/tcp/4555' in y for y in e['addrs'])" 5 >/dev/null || new+=" $x"
done
[ -z "$new" ] && ok "a host's new listen address is re-announced to the others" || bad "re-announce missing at:$new" "$(cat "$lan_tmp/b.out")"

# ---- 6. --mdns-dial
lan_start f 6 "${L[@]}" --mdns-dial || bad "host f starts"
pf="${lan_peer[f]}"
conn=""
for x in a b c; do
  lan_wait f "e['event'] == 'connection-opened' and e['peer'] == '${lan_peer[$x]}'" 10 >/dev/null || conn+=" $x"
done
[ -z "$conn" ] && ok "--mdns-dial connects to every discovered host" || bad "--mdns-dial did not connect to:$conn" "$(cat "$lan_tmp/f.out")"

lan_cmd b mdns
l="$(lan_wait b "e['event'] == 'mdns'" 5)" && ok "mdns counters: $l" || bad "mdns command"
lan_finish
