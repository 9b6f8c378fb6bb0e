#!/usr/bin/env bash
# tests/netns/test_mdns_malformed.sh - hostile mDNS traffic on the LAN (issue 10): a raw UDP sender
# (mdns_junk.py) multicasts truncated packets, compression loops, 255+ byte strings and names,
# wrong classes, lying counts and random bytes (IPv4 and IPv6) while lp2p-node hosts start and
# discover each other; then a flood; then a response mixing bad records with one good string.
# The hosts keep discovering, keep running, count what they dropped, and accept nothing bad.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib_netns.sh"
netns_require
. "$here/lib_lan.sh"
netns_setup 4
L=(--listen /ip4/0.0.0.0/tcp/4001 --listen /ip6/::/tcp/4001)
fake=12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq

lan_start a 1 "${L[@]}" --mdns || bad "host a starts"
nsx 3 python3 "$here/mdns_junk.py" mix 6 60 >"$lan_tmp/junk.out" 2>&1 &
jpid=$!
sleep 1 # the junk is flowing before b starts
lan_start b 2 "${L[@]}" --mdns || bad "host b starts"
pa="${lan_peer[a]}" pb="${lan_peer[b]}"
lan_wait a "e['event'] == 'peer-discovered' and e['peer'] == '$pb'" 10 >/dev/null &&
  lan_wait b "e['event'] == 'peer-discovered' and e['peer'] == '$pa'" 10 >/dev/null &&
  ok "2 hosts discover each other while malformed packets flow" || bad "discovery under malformed traffic" "$(cat "$lan_tmp/a.out" "$lan_tmp/b.out")"
lan_cmd a "ping $pb"
lan_wait a "e['event'] == 'ping' and e.get('peer') == '$pb' and 'rtt_us' in e" 10 >/dev/null && ok "and ping" || bad "ping under malformed traffic"
wait "$jpid"
echo "       sent: $(cat "$lan_tmp/junk.out")"
grep -q "self-pointer=" "$lan_tmp/junk.out" && ok "the junk sender ran every kind" || bad "junk sender" "$(cat "$lan_tmp/junk.out")"
for x in a b; do
  kill -0 "${lan_pid[$x]}" 2>/dev/null && ok "host $x survived" || bad "host $x died" "$(tail -20 "$lan_tmp/$x.err")"
done
lan_cmd a mdns
l="$(lan_wait a "e['event'] == 'mdns'" 5)"
python3 -c 'import json,sys; e=json.loads(sys.argv[1]); sys.exit(0 if e["malformed"] > 50 and e["records_dropped"] > 0 else 1)' "$l" &&
  ok "malformed packets and bad records were counted and dropped: $l" || bad "counters" "$l"
n="$(lan_count a "e['event'] == 'peer-discovered' and e['peer'] != '$pb'")"
[ "$n" = 0 ] && ok "nothing from the junk was taken as a peer (wrong class, bad strings)" || bad "junk accepted" "$(grep peer-discovered "$lan_tmp/a.out")"

# a flood from one sender (as fast as it can for 4 s) while a new host starts: the flood is
# limited per source, so the new host is discovered (and discovers) as usual meanwhile
nsx 3 python3 "$here/mdns_junk.py" flood 4 >"$lan_tmp/flood.out" 2>&1 &
fpid=$!
lan_start c 4 "${L[@]}" --mdns || bad "host c starts"
pc="${lan_peer[c]}"
lan_wait a "e['event'] == 'peer-discovered' and e['peer'] == '$pc'" 10 >/dev/null &&
  lan_wait c "e['event'] == 'peer-discovered' and e['peer'] == '$pa'" 10 >/dev/null &&
  ok "during a flood a new host discovers and is discovered" || bad "discovery during the flood"
kill -0 "$fpid" 2>/dev/null && ok "(the flood was still running then)" || bad "the flood had ended before" "$(cat "$lan_tmp/flood.out")"
wait "$fpid"
lan_cmd a mdns
l="$(lan_wait a "e['event'] == 'mdns' and e['flood_dropped'] > 1000" 5)" && ok "flood counted: $l" || bad "flood counters" "$(grep '"mdns"' "$lan_tmp/a.out")"

# leniency: bad records in a packet drop only themselves
nsx 3 python3 "$here/mdns_junk.py" lenient >/dev/null 2>&1
lan_wait a "e['event'] == 'peer-discovered' and e['peer'] == '$fake' and e['addrs'] == ['/ip4/10.77.0.99/tcp/4001']" 5 >/dev/null &&
  ok "a response with bad records still yields its one good address (and only it)" || bad "leniency" "$(grep peer-discovered "$lan_tmp/a.out")"
lan_finish
