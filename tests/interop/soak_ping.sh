#!/usr/bin/env bash
# soak_ping.sh - soak run (not part of ctest): `lp2p-node listen` (use a Release build) serves a
# js-libp2p peer that pings it every 100 ms (a new stream per ping) for 10 minutes. Records the
# node's VmRSS (/proc/PID/status) at start (listening, no peer), after a 10 s warm-up, every
# 30 s, and at the end, and the ping outcome. Fails if any ping failed, the connection dropped,
# or RSS grew by more than SOAK_MAX_GROWTH_KB (default 2048) between warm-up and end.
#
# Usage: tests/interop/soak_ping.sh            (env: LP2P_NODE, SOAK_SECONDS=600,
#                                                SOAK_INTERVAL_MS=100, SOAK_MAX_GROWTH_KB=2048,
#                                                SOAK_LOG=FILE for the RSS samples)
# Default binary: build-proto-release/lp2p-node, then build/lp2p-node.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/../.." && pwd)"
if [ -z "${LP2P_NODE:-}" ]; then
  for b in "$src/build-proto-release/lp2p-node" "$src/build-release/lp2p-node" "$src/build/lp2p-node"; do
    [ -x "$b" ] && { LP2P_NODE="$b"; break; }
  done
fi
export LP2P_NODE LP2P_SOURCE_DIR="$src"
. "$here/lib_node.sh"

secs="${SOAK_SECONDS:-600}"
interval="${SOAK_INTERVAL_MS:-100}"
max_growth="${SOAK_MAX_GROWTH_KB:-2048}"
log="${SOAK_LOG:-$tmp/rss.csv}"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

echo "soak: $node_exe, pings every $interval ms for $secs s"
start_lp2p soak --idle-timeout 0
[ -n "$laddr" ] || { bad "lp2p-node started"; finish; }
rss_start="$(rss "$lpid")"
echo "t_s,rss_kb" >"$log"
echo "0,$rss_start" >>"$log"
CTL_TIMEOUT=$((secs + 300)) start_ctl pinger
js_cmd pinger "pingloop $laddr $interval $secs"
sleep 10
rss_warm="$(rss "$lpid")"
echo "10,$rss_warm" >>"$log"
t=10 rss_max="$rss_warm"
while [ "$t" -lt "$secs" ]; do
  step=$((secs - t < 30 ? secs - t : 30))
  sleep "$step"; t=$((t + step))
  r="$(rss "$lpid")"
  [ -n "$r" ] || break
  echo "$t,$r" >>"$log"
  [ "$r" -gt "$rss_max" ] && rss_max="$r"
done
wait_event "$tmp/pinger.out" pingloop 60 >/dev/null
rss_end="$(rss "$lpid")"
echo "$secs,$rss_end (after the last ping)" >>"$log"
summary="$(grep '"pingloop"' "$tmp/pinger.out")"
echo "soak: pings: $summary"
echo "soak: VmRSS start ${rss_start} kB, after warm-up ${rss_warm} kB, max ${rss_max} kB, end ${rss_end} kB"
check "soak: every ping succeeded" "$tmp/pinger.out" "one('pingloop').failed === 0" \
  "one('pingloop').ok >= $((secs * 1000 / interval / 2))" "count('connection:close') === 0"
check "soak: lp2p kept the connection" "$tmp/soak.out" "count('connection-opened') === 1" \
  "count('connection-closed') === 0"
growth=$((rss_end - rss_warm))
[ "$growth" -le "$max_growth" ] && ok "soak: RSS growth after warm-up ${growth} kB <= ${max_growth} kB" \
  || bad "soak: RSS growth after warm-up ${growth} kB > ${max_growth} kB"
stop_pid "$lpid" INT
[ "$stop_rc" = 0 ] && ok "soak: lp2p-node exits 0" || bad "soak: lp2p-node exits 0 (rc=$stop_rc)"
[ -z "${SOAK_LOG:-}" ] && cat "$log"
finish
