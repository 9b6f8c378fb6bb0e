#!/usr/bin/env bash
# test_limits.sh - resource limits under attack (issue 13): a peer must not be able to make the node hold
# memory it did not agree to. `lp2p-node listen --echo` runs with a node budget (--max-memory) and a
# per-peer budget; tests/tools/hostile_streams (an lp2p client that never grants yamux window) and
# tests/tools/hostile_peer (raw frames) attack it:
#   perf-1x500    one connection, 500 /perf/1.0.0 streams each asking for 1 GiB
#   perf-16x100   16 connections (16 peers) x 100 such streams
#   echo-1x500    500 echo streams, 1 MiB written to each, the echo never read
#   all-1x500     500 streams over every protocol the node serves, none read
#   nego-1x500    500 streams that each go through 32 refused 900-byte proposals first
#   half-nego     400 streams that never finish negotiating (hostile_peer yamux-nego-timeout)
# For each: the node's VmRSS (peak, from /proc: VmHWM after clear_refs) grows by no more than the node
# budget plus FIXED (below), and by no more than what the resource manager charged at its peak (the node
# scope's memory_peak, reset before the case) plus FIXED: whatever the attacker makes the node hold is
# charged, and nothing it holds escapes the budget; a perf client (another peer) downloads at no less than a third of its unloaded rate
# while the attacker holds its streams, and after the attacker disconnects VmRSS returns near its
# baseline (within BACK of both the case's starting RSS and the first baseline). The `limits` control command reports the configured limits and, once every attacker is
# gone, a node usage of exactly 0 (every charge released). Figures are printed ("rss: ...").
# Env (set by ctest): LP2P_NODE, LP2P_TOOLS_DIR, LP2P_SOURCE_DIR.
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"

tools="${LP2P_TOOLS_DIR:-$(dirname "$node_exe")/tests}"
hs="$tools/hostile_streams" hp="$tools/hostile_peer"
for t in "$hs" "$hp"; do [ -x "$t" ] || { bad "tool not found: $t"; finish; }; done
asan=0
grep -q __asan_init "$node_exe" 2>/dev/null && asan=1
MAX_MEM_MIB=48 PEER_MIB=16 NEGO_MS=3000
# bounds (KiB). FIXED: what the node holds beyond its charges, whatever the peers do: the free seal
# buffers (at most LP2P__SW_WBUF_POOL = 5 x 256 KiB, the node's own), the allocator's headers and page
# rounding of a few thousand live blocks, heap fragmentation between them (lp2p-node pins glibc's mmap
# threshold so that freed rings leave the heap; without that, up to 6.5 MiB over the charged peak was
# seen under load); measured with it, under load: at most ~1.9 MiB over the charged peak (every case, 9 runs). Peak growth <= budget + FIXED and <= charged peak + FIXED;
# afterwards back within BACK of the baseline. ASan's quarantine and shadow memory need much more.
FIXED=$((4 * 1024)) BACK=$((3 * 1024))
PEAK_MAX=$((MAX_MEM_MIB * 1024 + FIXED))
[ $asan = 1 ] && PEAK_MAX=$((512 * 1024)) FIXED=$((512 * 1024))

rss() { awk '/^VmRSS/ {print $2}' "/proc/$lpid/status" 2>/dev/null || echo 0; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$lpid/status" 2>/dev/null || echo 0; }
reset_hwm() { echo 5 >"/proc/$lpid/clear_refs" 2>/dev/null; }

start_lp2p srv --echo --max-memory ${MAX_MEM_MIB}M --max-memory-per-peer ${PEER_MIB}M --stream-timeout $NEGO_MS
[ -n "$laddr" ] || finish
port="${laddr#/ip4/127.0.0.1/tcp/}"; port="${port%%/*}"

# a perf download by another peer; prints MiB/s (0 on failure)
perf_rate() {
  local f="$tmp/perf.$1.out"
  timeout 60 "$node_exe" perf "$laddr" --upload 0 --download "$2" --json >"$f" 2>&1 \
    && sed -n 's/.*"download_mib_s":"\([0-9.]*\)".*/\1/p' "$f" | head -1 || echo 0
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# node usage from the `limits` command (JSON; ARG: e.g. reset-peak): prints "memory memory_limit memory_peak"
# of the node scope
node_usage() {
  local n i
  n="$(grep -c '"event":"limits"' "$tmp/srv.out")"
  lp2p_cmd srv "limits${1:+ $1}"
  for ((i = 0; i < 50; i++)); do
    [ "$(grep -c '"event":"limits"' "$tmp/srv.out")" -gt "$n" ] && break
    sleep 0.1
  done
  grep '"event":"limits"' "$tmp/srv.out" | tail -1 |
    sed -n 's/.*"node":{[^}]*"memory":\([0-9]*\),"memory_limit":\([0-9]*\),"memory_peak":\([0-9]*\).*/\1 \2 \3/p'
}

rate0="$(perf_rate base 64M)"
if ge "$rate0" 1; then ok "unloaded perf download: $rate0 MiB/s"; else bad "unloaded perf download" "$(cat "$tmp/perf.base.out")"; fi
sleep 0.5
base="$(rss)"
echo "       baseline VmRSS ${base} KiB"

# attack NAME CMD... : runs the attacker in the background until it prints "stalled" (or, for
# hostile_peer, ~1 s), measures, waits for it to leave, and checks the figures
attack() {
  local name="$1"; shift
  local out="$tmp/att.$name.out" i
  node_usage reset-peak >/dev/null
  reset_hwm
  local b0; b0="$(rss)"
  "$@" >"$out" 2>&1 &
  local apid=$!
  for ((i = 0; i < 600; i++)); do
    grep -q '^stalled\|nego-timeout' "$out" && break
    [ "$name" = half-nego ] && [ $i -ge 10 ] && break
    kill -0 $apid 2>/dev/null || break
    sleep 0.1
  done
  local held; held="$(rss)"
  local u; u="$(node_usage)"
  local during; during="$(perf_rate "$name" 32M)"
  wait $apid; local arc=$?
  local peak; peak="$(hwm)"
  local charged; charged="$(node_usage)"; charged="${charged##* }"; charged=$((charged / 1024)) # KiB
  local after="$held"
  for ((i = 0; i < 50; i++)); do # up to 5 s for the allocator trim that follows a burst
    after="$(rss)"
    [ "$after" -le $((base + 2048)) ] && break
    sleep 0.1
  done
  echo "       rss: $name: before ${b0} KiB, peak ${peak} KiB (+$((peak - b0))), after ${after} KiB;" \
    "usage while held: ${u%% *} B, charged peak $charged KiB; perf while held ${during} MiB/s"
  if [ $arc = 0 ]; then ok "$name: attacker ran ($(tail -1 "$out"))"; else bad "$name: attacker failed" "$(cat "$out")"; fi
  if [ $((peak - b0)) -le $PEAK_MAX ]; then ok "$name: peak RSS growth $((peak - b0)) KiB <= $PEAK_MAX"
  else bad "$name: peak RSS growth $((peak - b0)) KiB > $PEAK_MAX"; fi
  if [ $((peak - b0)) -le $((charged + FIXED)) ]; then
    ok "$name: peak RSS growth $((peak - b0)) KiB <= charged peak $charged KiB + $FIXED"
  else bad "$name: peak RSS growth $((peak - b0)) KiB > charged peak $charged KiB + $FIXED (memory held uncharged)"; fi
  if [ $asan = 1 ]; then # freed memory stays in ASan's quarantine and size-class caches, not in glibc's heap
    echo "       $name: RSS return not asserted under ASan (its allocator keeps what was freed; the normal build asserts it)"
  elif [ "$after" -le $((b0 + BACK)) ] && [ "$after" -le $((base + BACK)) ]; then
    ok "$name: RSS back near baseline (${after} KiB; before ${b0}, first baseline ${base})"
  else bad "$name: RSS after the attack ${after} KiB > min(${b0}, ${base}) + ${BACK}"; fi
  printf '| %s | %s | %s (+%s) | %s | %s (%+d vs first baseline) | %s | %s |\n' "$name" "$b0" "$peak" \
    "$((peak - b0))" "$charged" "$after" "$((after - base))" "$((MAX_MEM_MIB * 1024))" "$during" >>"$tmp/table"
  if ge "$during" "$(awk -v r="$rate0" 'BEGIN { print r / 3 }')"; then ok "$name: other peer served (${during} MiB/s)"
  else bad "$name: other peer's perf ${during} MiB/s < a third of ${rate0}" "$(cat "$tmp/perf.$name.out")"; fi
}

attack perf-1x500 "$hs" perf --addr "$laddr" --streams 500 --hold-ms 1500
attack perf-16x100 "$hs" perf --addr "$laddr" --conns 16 --streams 100 --hold-ms 1500
attack echo-1x500 "$hs" echo --addr "$laddr" --streams 500 --hold-ms 1500
attack all-1x500 "$hs" all --addr "$laddr" --streams 500 --hold-ms 1500
attack nego-1x500 "$hs" nego --addr "$laddr" --streams 500 --hold-ms 1500
attack half-nego "$hp" yamux-nego-timeout --port "$port" --count 400 --min-ms 0 --wait-ms $((NEGO_MS + 4000))

echo "       RSS figures (KiB; charged = the node scope's memory_peak during the case; budget = --max-memory;"
echo "       perf = another peer's download while the attacker held on, MiB/s; unloaded ${rate0}):"
echo "       | case | before | peak | charged | after | budget | perf |"
sed 's/^/       /' "$tmp/table"

# the flags reached the swarm, and every charge was released once the attackers left
u="$(node_usage)"
read -r _ ulim _ <<<"$u"
[ "$ulim" = $((MAX_MEM_MIB * 1024 * 1024)) ] && ok "limits: node memory_limit = --max-memory" \
  || bad "limits: node memory_limit" "$u"
for ((i = 0; i < 30 && ${u%% *} != 0; i++)); do sleep 0.2; u="$(node_usage)"; done
[ "${u%% *}" = 0 ] && ok "limits: node usage back to 0 bytes" || bad "limits: node usage after the attacks" "$u"
grep -q '"scope":"peer"' "$tmp/srv.out" && ok "limits: per-peer scopes reported" \
  || bad "limits: no peer scope in any report" "$(grep '"event":"limits"' "$tmp/srv.out" | head -3)"

stop_pid "$lpid" INT
[ "$stop_rc" = 0 ] && ok "lp2p-node exits 0 on SIGINT" || bad "lp2p-node exit status $stop_rc" "$(tail -20 "$tmp/srv.err")"
finish
