#!/usr/bin/env bash
# test_msg_chaos.sh - issue 15, scenario 5: messaging and files that lose nothing on a bad network.
# Two hosts (network namespaces on one bridge), one lp2p-node each, listening on 127.0.0.1 only and
# reachable from the other host only through a msg_proxy in its own namespace (10.77.0.<i>:5000 ->
# 127.0.0.1:400<i>) that makes each direction a 1.5 MB/s link with a one-way delay of 25 ms, and cuts
# every connection (RST) every 1 to 2 s.
# The kernel here has no netem qdisc, so loss is iptables
# `-m statistic --mode random --probability P -j DROP` on eth0 (INPUT and OUTPUT, P = 0.02 each) inside
# both host namespaces (never the root namespace), and twice host a drops everything for 11 s (a silent
# partition, longer than the 10 s ack timeout). For a bounded chaos phase (60 s) each node sends 10,000
# messages (a steady stream over the first 45 s) and 5 files (1.0, 2.0, 3.1, 4.0, 5.2 MB: odd sizes,
# partial last chunks) to the other; then the loss rules go, the proxies stop cutting (the delay
# stays), and a bounded calm phase (90 s at most) waits until everything is acknowledged.
# Checked from the apps' view (msg_chaos.py, the driver, talks to both nodes through --api and waits
# only for their events): 0 lost, 0 duplicated to the app (message-received events and the inbox),
# every file received once with the sender's sha256; a summary line gives the counts, cuts, iptables
# drops and durations. About 65 s (also under ASan).
# Needs root and iptables (scripts/deps installs it); exits 77 (ctest SKIP) with the reason otherwise.
# Knobs (env): CHAOS_S (60), CHAOS_LOSS (0.02 per rule), CHAOS_DELAY_MS (25), CHAOS_CUT_MS (1000, plus
# 0..1000 ms jitter), CHAOS_RATE (1500000 bytes/s), CHAOS_MSGS (10000), CHAOS_CALM_MAX_S (90), CHAOS_PARTITION_EVERY_S (20, 0 = none),
# CHAOS_PARTITION_S (11); KEEP_TMP=1 keeps the logs.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib_netns.sh"
. "$here/lib_lan.sh"
tools="${LP2P_TOOLS_DIR:-$src/build/tests}"
proxy_exe="$tools/msg_proxy"
[ -x "$proxy_exe" ] || { echo "FAIL: msg_proxy not found at $proxy_exe"; echo "0 passed, 1 failed"; exit 1; }
netns_require
command -v iptables >/dev/null || { echo "SKIP: iptables is missing (scripts/deps installs it)"; exit 77; }

CHAOS_S="${CHAOS_S:-60}" LOSS="${CHAOS_LOSS:-0.02}" DELAY="${CHAOS_DELAY_MS:-25}" CUT="${CHAOS_CUT_MS:-1000}"
MSGS="${CHAOS_MSGS:-10000}" CALM_MAX="${CHAOS_CALM_MAX_S:-90}"
RATE="${CHAOS_RATE:-1500000}" PART_EVERY="${CHAOS_PARTITION_EVERY_S:-20}" PART_S="${CHAOS_PARTITION_S:-11}"
t_start=$SECONDS
netns_setup 2
# iptables must work inside the namespaces (it needs the nf_tables or legacy x_tables kernel side)
if ! out="$(nsx 1 iptables -A INPUT -i eth0 -m statistic --mode random --probability 0 -m comment \
    --comment lp2p-probe -j DROP 2>&1)"; then
  echo "SKIP: iptables cannot add a statistic rule in a namespace: $out"; exit 77
fi
nsx 1 iptables -D INPUT -i eth0 -m statistic --mode random --probability 0 -m comment --comment lp2p-probe -j DROP

# the files: 5 per direction, odd sizes (partial last chunks), 1 to 5 MB
mkdir -p "$lan_tmp/files"
sizes=(1048577 2000000 3145735 4000001 5242877)
files_a=() files_b=()
for k in 0 1 2 3 4; do
  head -c "${sizes[$k]}" /dev/urandom >"$lan_tmp/files/a2b-$((k + 1)).bin"
  head -c "${sizes[$k]}" /dev/urandom >"$lan_tmp/files/b2a-$((k + 1)).bin"
  files_a+=("$lan_tmp/files/a2b-$((k + 1)).bin"); files_b+=("$lan_tmp/files/b2a-$((k + 1)).bin")
done

# the nodes: 127.0.0.1 only (identify advertises addresses the other host cannot reach), retries
# start at 200 ms; enough attempts that the chaos cannot make dead letters of them
for i in 1 2; do
  name=$([ $i = 1 ] && echo a || echo b)
  lan_start "$name" "$i" --listen "/ip4/127.0.0.1/tcp/400$i" --api "$lan_tmp/$name.sock" \
    --msg-backoff 200 --msg-attempts 1000 ||
    { bad "node $name starts in host $i"; lan_finish; }
done
ok "two nodes, one per namespace, a=${lan_peer[a]} b=${lan_peer[b]}"

# chaos on: loss rules in both hosts, then the proxies (their cut timers start now). TCP sends one
# segment per packet here (gso_max_segs 1: veth would otherwise hand iptables 64 KB GSO packets, and
# one random drop would take out dozens of wire packets); a rule without target before each DROP
# counts the packets seen (lp2p-seen)
for i in 1 2; do
  ip -n "${netns_name[$i]}" link set eth0 gso_max_segs 1 || { bad "gso_max_segs 1 on host $i"; lan_finish; }
  for rule in "INPUT -i" "OUTPUT -o"; do
    set -- $rule
    nsx "$i" iptables -A "$1" "$2" eth0 -m comment --comment lp2p-seen &&
      nsx "$i" iptables -A "$1" "$2" eth0 -m statistic --mode random --probability "$LOSS" \
        -m comment --comment lp2p-chaos -j DROP || { bad "iptables loss rule in host $i"; lan_finish; }
  done
done
declare -A proxy_pid=()
for i in 1 2; do
  name=$([ $i = 1 ] && echo a || echo b)
  ip netns exec "${netns_name[$i]}" "$proxy_exe" --listen 5000 --bind "${netns_ip4[$i]}" --target "127.0.0.1:400$i" --delay-ms "$DELAY" --rate "$RATE" \
    --cut-every-ms "$CUT" --cut-jitter-ms 1000 --log-cuts 1 >"$lan_tmp/proxy-$name.out" 2>"$lan_tmp/proxy-$name.err" &
  proxy_pid[$name]=$!
  lan_pid[proxy-$name]=$! # killed with the nodes on exit
done
for name in a b; do
  for _ in $(seq 50); do [ -s "$lan_tmp/proxy-$name.out" ] && break; sleep 0.1; done
  [ "$(head -1 "$lan_tmp/proxy-$name.out")" = 5000 ] || { bad "proxy of $name listens" "$(cat "$lan_tmp/proxy-$name.err")"; lan_finish; }
done

cfg=$(python3 - "$lan_tmp" "${lan_peer[a]}" "${lan_peer[b]}" "${netns_name[1]}" "${netns_name[2]}" \
  "${proxy_pid[a]}" "${proxy_pid[b]}" "$CHAOS_S" "$LOSS" "$MSGS" "$CALM_MAX" "$PART_EVERY" "$PART_S" "${files_a[*]}" "${files_b[*]}" <<'EOF'
import json, sys
t, pa, pb, na, nb, xa, xb, chaos, loss, msgs, calm, pevery, plen, fa, fb = sys.argv[1:]
print(json.dumps({
    "sock": {"a": t + "/a.sock", "b": t + "/b.sock"},
    "peer": {"a": pa, "b": pb},
    "proxy_addr": {"a": "/ip4/10.77.0.1/tcp/5000/p2p/" + pa, "b": "/ip4/10.77.0.2/tcp/5000/p2p/" + pb},
    "ns": {"a": na, "b": nb},
    "proxy_pid": {"a": int(xa), "b": int(xb)},
    "proxy_out": {"a": t + "/proxy-a.out", "b": t + "/proxy-b.out"},
    "db": {"a": t + "/data-a/messages.db", "b": t + "/data-b/messages.db"},
    "chaos_s": float(chaos), "send_span_s": float(chaos) * 0.75, "batches": 200, "loss": float(loss),
    "n_msgs": int(msgs), "calm_max_s": float(calm),
    "partition_every_s": float(pevery), "partition_s": float(plen),
    "files": {"a": fa.split(), "b": fb.split()},
}))
EOF
)
python3 "$here/msg_chaos.py" "$cfg" | tee "$lan_tmp/driver.out"
drc=${PIPESTATUS[0]}
pass=$((pass + $(grep -c '^ok ' "$lan_tmp/driver.out")))
fail=$((fail + $(grep -c '^FAIL ' "$lan_tmp/driver.out")))
[ "$drc" = 0 ] || [ "$fail" -gt 0 ] || bad "the driver exits 0 (exit $drc)"
if [ "$fail" -gt 0 ]; then
  for name in a b; do
    echo "     --- $name: last stderr lines"; tail -5 "$lan_tmp/$name.err" | sed 's/^/       /'
  done
fi
for name in a b; do lan_stop "$name"; done
echo "     whole test: $((SECONDS - t_start)) s"
lan_finish
