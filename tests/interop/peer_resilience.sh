#!/usr/bin/env bash
# peer_resilience.sh - interop matrix, part 3, against PEER_IMPL=js|go|rust (tests/interop/lib_peer.sh):
#   junk-clients       raw TCP clients sending random bytes / a multistream+noise header followed by
#                      junk are dropped by lp2p while X keeps pinging it every 100 ms (X->lp2p)
#   simultaneous-dial  lp2p and X dial each other at the same wall-clock moment (X: --dial-at),
#                      3 rounds; both dials succeed and each side pings the other afterwards
#   peer-killed        X killed with SIGKILL -> connection-closed at once; X frozen with SIGSTOP ->
#                      connection-closed (LP2P_ERR_TIMEOUT) within the keep-alive bound (1 s + 1 s
#                      here); afterwards lp2p's peer table is empty. lp2p->X: lp2p dialed X;
#                      X->lp2p: X dialed lp2p
# Env (set by ctest): PEER_IMPL, LP2P_NODE, LP2P_SOURCE_DIR, LP2P_BUILD_DIR.
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_peer.sh"

# ---- junk clients while X pings ----
case_begin junk-clients "X->lp2p"
start_lp2p srv
port="${laddr#/ip4/127.0.0.1/tcp/}"; port="${port%%/*}"
peer_bg "$tmp/xping.out" --dial "$laddr" --ping 40 --ping-interval 100 --timeout 60
xp=$bpid
wait_count "$tmp/xping.out" "count('ping') >= 2" 15
closed=0 tried=0
junk() { # send the bytes on stdin over a raw connection; succeed if lp2p closes it within 5 s
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" || return 1
  cat >&$fd 2>/dev/null
  timeout 5 cat <&$fd >/dev/null 2>&1; local r=$?
  exec {fd}>&-
  [ $r != 124 ]
}
for i in 1 2 3; do
  tried=$((tried + 1)); head -c 65536 /dev/urandom | junk && closed=$((closed + 1))
  tried=$((tried + 1))
  { printf '\x13/multistream/1.0.0\n\x07/noise\n'; head -c 3000 /dev/urandom; } | junk && closed=$((closed + 1))
  tried=$((tried + 1))
  { printf '\x13/multistream/1.0.0\n\x07/noise\n\x00\x20'; head -c 32 /dev/urandom; printf '\xff\xff'; head -c 70000 /dev/zero; } \
    | junk && closed=$((closed + 1))
done
[ "$closed" = "$tried" ] && ok "junk: lp2p closed all $tried junk connections" \
  || bad "junk: lp2p closed all junk connections ($closed of $tried)"
wait "$xp"; rc=$?
check "junk: $impl's 40 pings (every 100 ms) all succeeded meanwhile" "$tmp/xping.out" "$rc === 0" \
  "count('ping') === 40" "count('error') === 0" "(i => i === -1 || i > ev.findIndex(e => e.event === 'done'))(ev.findIndex(e => e.event === 'connection:close'))"
check "junk: lp2p reported the failed inbound connections, kept $impl's connection" "$tmp/srv.out" \
  "count('inbound-connection-failed') >= $tried" "count('connection-opened') === 1"
stop_pid "$lpid" INT
case_end

# ---- simultaneous dial ----
case_begin simultaneous-dial "both"
LP2P_LOG=debug start_lp2p sim
lid="${laddr##*/p2p/}"
rounds=3
for r in $(seq $rounds); do
  at=$(( $(now_ms) + 1500 ))
  start_peer "xsim$r" --dial "$laddr" --dial-at "$at" --ping 3 --ping-interval 200 --serve
  xid="${paddr##*/p2p/}"
  left=$(( at - $(now_ms) ))
  [ "$left" -gt 0 ] && sleep "$(awk -v ms="$left" 'BEGIN { printf "%.3f", ms / 1000 }')"
  lp2p_cmd sim "dial $paddr"
  wait_count "$tmp/sim.out" "count('dialed') === $r" 15 || true
  wait_event "$tmp/xsim$r.out" done 20 >/dev/null
  lp2p_cmd sim "ping $xid"
  wait_count "$tmp/sim.out" "count('ping') === $r" 15 || true
  check "simultaneous dial round $r: $impl's dial and pings succeeded" "$tmp/xsim$r.out" \
    "one('done').ok === true" "count('ping') === 3" "count('error') === 0"
  stop_pid "$ppid" TERM
  wait_count "$tmp/sim.out" "count('connection-closed') >= $r" 10 || true
done
check "simultaneous dial: lp2p's dials all succeeded, lp2p pinged $impl each round" "$tmp/sim.out" \
  "count('dialed') === $rounds" "all('dialed').every(d => d.error === undefined)" \
  "count('ping') === $rounds" "all('ping').every(p => p.rtt_us > 0 && p.error === undefined)"
echo "       simultaneous dial: $(grep -c 'duplicate conn' "$tmp/sim.err") of $rounds rounds produced two connections (resolved by the swarm)"
stop_pid "$lpid" INT
case_end

# ---- peer death ----
start_lp2p life --keepalive-interval 1000 --keepalive-timeout 1000
for dir in "X->lp2p" "lp2p->X"; do
  case_begin peer-killed "$dir"
  for how in KILL STOP; do
    n="dead-${dir/->/-}-$how"
    if [ "$dir" = "X->lp2p" ]; then
      peer_bg "$tmp/$n.out" --dial "$laddr" --serve --timeout 120
      pid=$bpid
      did="$(wait_event "$tmp/$n.out" started 30 peerId)"
    else
      start_peer "$n"
      pid="$ppid" did="${paddr##*/p2p/}"
      lp2p_cmd life "dial $paddr"
    fi
    wait_count "$tmp/life.out" "all('connection-opened').some(e => e.peer === '$did')" 15
    sleep 1.5 # a few keep-alive rounds while alive
    t0=$(now_ms)
    kill -s "$how" "$pid"
    wait_count "$tmp/life.out" "all('connection-closed').some(e => e.peer === '$did')" 15
    dt=$(($(now_ms) - t0))
    if [ "$how" = KILL ]; then
      check "$dir: SIGKILLed $impl: connection-closed at once (${dt} ms), peer table empty" "$tmp/life.out" \
        "all('connection-closed').filter(e => e.peer === '$did').length === 1" \
        "['LP2P_ERR_EOF', 'LP2P_ERR_CONNRESET'].includes(all('connection-closed').find(e => e.peer === '$did').reason)" \
        "all('connection-closed').find(e => e.peer === '$did').peers === 0" "$dt < 2000"
    else
      check "$dir: SIGSTOPped $impl: connection-closed by keep-alive timeout in ${dt} ms (bound 2000 ms + poll)" \
        "$tmp/life.out" "all('connection-closed').filter(e => e.peer === '$did').length === 1" \
        "all('connection-closed').find(e => e.peer === '$did').reason === 'LP2P_ERR_TIMEOUT'" \
        "all('connection-closed').find(e => e.peer === '$did').peers === 0" "$dt <= 3500"
      kill -CONT "$pid" 2>/dev/null
      stop_pid "$pid" KILL
    fi
  done
  np=$(( $(grep -c '"event":"peers"' "$tmp/life.out") + 1 ))
  lp2p_cmd life peers
  wait_count "$tmp/life.out" "count('peers') === $np" 10
  check "$dir: lp2p's peers command reports an empty table" "$tmp/life.out" \
    "all('peers')[$((np - 1))].count === 0"
  case_end
done
stop_pid "$lpid" INT

peer_finish
