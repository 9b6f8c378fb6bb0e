#!/usr/bin/env bash
# tests/netns/test_netns_lib.sh - lib_netns.sh works: 3 hosts on a bridge reach each other over IPv4,
# IPv6 and multicast (224.0.0.251 / ff02::fb port 5353, what mDNS needs), a host added later joins
# the LAN, a deleted host's processes are gone, and cleanup removes every namespace it made.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); [ $# -gt 1 ] && printf '%s\n' "$2" | head -20 | sed 's/^/       /'; return 0; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
. "$here/lib_netns.sh"
netns_setup 3

# recv I FAMILY GROUP|ADDR : one UDP datagram on port 5353 inside host I (4 s timeout), printed
py_recv='
import socket, struct, sys
fam, grp = sys.argv[1], sys.argv[2]
if fam == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 5353))
    if grp.startswith("224."):
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(grp) + socket.inet_aton("0.0.0.0"))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", 5353))
    if grp.startswith("ff"):
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, grp) + struct.pack("@I", socket.if_nametoindex("eth0")))
print("ready", flush=True)
s.settimeout(10)
d, a = s.recvfrom(2000)
print(d.decode(), a[0], flush=True)
'
py_send='
import socket, struct, sys
fam, dst, msg = sys.argv[1], sys.argv[2], sys.argv[3]
if fam == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    s.sendto(msg.encode(), (dst, 5353))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex("eth0"))
    s.sendto(msg.encode(), (dst, 5353, 0, socket.if_nametoindex("eth0")))
'
probe() { # probe NAME FROM TO FAMILY DST
  local name="$1" from="$2" to="$3" fam="$4" dst="$5" i
  nsx "$to" python3 -c "$py_recv" "$fam" "$dst" >"$tmp/$name" 2>&1 &
  local rp=$!
  for ((i = 0; i < 50; i++)); do grep -q ready "$tmp/$name" && break; sleep 0.1; done
  nsx "$from" python3 -c "$py_send" "$fam" "$dst" "hello-$name"
  wait "$rp"
  if grep -q "hello-$name" "$tmp/$name"; then ok "$name"; else bad "$name" "$(cat "$tmp/$name")"; fi
}
probe v4_unicast 1 2 4 "${netns_ip4[2]}"
probe v6_unicast 1 3 6 "${netns_ip6[3]}"
probe v4_multicast 2 3 4 224.0.0.251
probe v6_multicast 3 1 6 ff02::fb

netns_add_host
h="$NETNS_N"
[ "$h" = 4 ] && ok "add_host index" || bad "add_host index" "$h"
probe v4_multicast_new_host 1 4 4 224.0.0.251

nsx 4 sleep 100 &
sp=$!
t0=$SECONDS
netns_del_host 4
wait "$sp" 2>/dev/null
[ $((SECONDS - t0)) -lt 10 ] && ok "del_host kills its processes" || bad "del_host kills its processes"
ip netns list | grep -q "${_netns_tag}h4" && bad "del_host removes the namespace" || ok "del_host removes the namespace"

# cleanup: a child that sets up 2 hosts and exits leaves nothing behind; so does one killed by TERM
out="$(bash -c ". '$here/lib_netns.sh'; netns_setup 2; echo \$_netns_tag; nsx 1 sleep 100 & sleep 0.2; exit 3")"
rc=$?
tag="$(tail -n 1 <<<"$out")"
[ "$rc" = 3 ] && ok "exit status kept through the trap" || bad "exit status kept through the trap" "rc=$rc"
ip netns list | grep -q "$tag" && bad "cleanup on exit" "$(ip netns list | grep "$tag")" || ok "cleanup on exit"
bash -c ". '$here/lib_netns.sh'; netns_setup 1; echo \$_netns_tag >'$tmp/tag2'; sleep 30 & wait" &
cp=$!
for ((i = 0; i < 50; i++)); do [ -s "$tmp/tag2" ] && break; sleep 0.1; done
kill -TERM "$cp"; wait "$cp" 2>/dev/null
tag2="$(cat "$tmp/tag2")"
[ -n "$tag2" ] && ! ip netns list | grep -q "$tag2" && ok "cleanup on SIGTERM" || bad "cleanup on SIGTERM" "$(ip netns list)"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
