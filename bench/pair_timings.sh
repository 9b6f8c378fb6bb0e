#!/usr/bin/env bash
# bench/pair_timings.sh - pairing timings for the issue-11 note: p50 of 10 pairings each
#   - LAN: two network-namespace hosts, found by mDNS (tests/netns/test_pair_mdns.sh; needs root)
#   - DHT: two lp2p-node processes on loopback through a Kademlia bootstrap node
#     (tests/cli/test_node_pair_dht.sh)
#   - direct: the joiner is given the initiator's address (tests/cli/test_node_pair.sh)
# Each time: pair-join CODE sent on the joiner's control input -> its "paired" event (dial,
# Noise, CPace, confirmation, sealed device info, registry write, control I/O).
# Run it under the shared CPU lock on a busy machine: flock /tmp/lp2p-cpu.lock bench/pair_timings.sh
# Env: LP2P_NODE (default build/lp2p-node).
set -uo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LP2P_NODE="${LP2P_NODE:-$src/build/lp2p-node}" LP2P_SOURCE_DIR="$src"
rc=0
for t in tests/netns/test_pair_mdns.sh tests/cli/test_node_pair_dht.sh tests/cli/test_node_pair.sh; do
  out="$(bash "$src/$t" 2>&1)" || rc=1
  line="$(grep -m1 ' p50 ' <<<"$out")"
  if [ -n "$line" ]; then echo "${line#  }"; else echo "$t: no timing ($(tail -1 <<<"$out"))"; fi
done
exit $rc
