#!/usr/bin/env bash
# peer_bulk.sh - interop matrix, part 2, against PEER_IMPL=js|go|rust (tests/interop/lib_peer.sh):
#   perf-64MiB   /perf/1.0.0 64 MiB up + 64 MiB down, both directions; exact byte counts checked
#                by the client AND the server of each run
#   streams-200  200 concurrent echo streams (/lp2p-test/echo/1.0.0, 64 KiB each, distinct content
#                per stream) opened by X on one connection to `lp2p-node listen --echo`, every byte
#                verified by X (X->lp2p only: lp2p-node has no echo client)
# Env (set by ctest): PEER_IMPL, LP2P_NODE, LP2P_SOURCE_DIR, LP2P_BUILD_DIR.
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_peer.sh"

MiB=1048576
N=$((64 * MiB))

# ---- X -> lp2p: perf, then 200 echo streams, on one connection ----
start_lp2p srv --echo
case_begin perf-64MiB "X->lp2p"
if [ -n "$laddr" ]; then
  peer_run --dial "$laddr" --perf-upload $N --perf-download $N --streams 200 --echo-bytes 65536 \
    --timeout 240 >"$tmp/x-client.out" 2>"$tmp/x-client.err"
  rc=$?
  check "$impl->lp2p: perf 64 MiB up + 64 MiB down ($impl counts)" "$tmp/x-client.out" \
    "one('perf').upload === $N" "one('perf').download === $N" "all('error').every(e => e.where !== 'perf')"
  wait_count "$tmp/srv.out" "count('perf-served') === 1" 10
  check "$impl->lp2p: lp2p served exactly 64 MiB each way" "$tmp/srv.out" \
    "one('perf-served').upload === $N" "one('perf-served').download === $N" "one('perf-served').error === undefined"
  case_end
  case_begin streams-200 "X->lp2p"
  check "$impl->lp2p: 200 concurrent echo streams, content verified, one connection" "$tmp/x-client.out" "$rc === 0" \
    "one('echo').streams === 200" "one('echo').bytes === 200 * 65536" "count('connection:open') === 1" \
    "count('error') === 0"
  echo "       $impl->lp2p: $(grep '"perf"' "$tmp/x-client.out" | head -c 300)"
  stop_pid "$lpid" INT
  [ "$stop_rc" = 0 ] && ok "$impl->lp2p: lp2p-node exits 0 on SIGINT" || bad "$impl->lp2p: lp2p-node exits 0 on SIGINT (rc=$stop_rc)"
else
  bad "$impl->lp2p: lp2p-node started"
  case_end; case_begin streams-200 "X->lp2p"; bad "$impl->lp2p: lp2p-node started"
fi
case_end

# ---- lp2p -> X: perf ----
case_begin perf-64MiB "lp2p->X"
start_peer x-srv
if [ -n "$paddr" ]; then
  "$node_exe" perf "$paddr" --upload 64M --download 64M --json >"$tmp/c-perf.out" 2>"$tmp/c-perf.err"
  rc=$?
  check "lp2p->$impl: perf 64 MiB up + 64 MiB down (lp2p counts)" "$tmp/c-perf.out" "$rc === 0" \
    "one('perf').upload === $N" "one('perf').download === $N" "Number(one('perf').seconds) > 0"
  [ -s "$tmp/c-perf.err" ] && bad "lp2p->$impl: perf stderr empty" "$(cat "$tmp/c-perf.err")"
  wait_count "$tmp/x-srv.out" "count('perf:served') === 1" 10
  check "lp2p->$impl: $impl served exactly 64 MiB each way" "$tmp/x-srv.out" \
    "one('perf:served').received === $N" "one('perf:served').sent === $N" "count('error') === 0"
  echo "       lp2p->$impl: $(grep '"perf"' "$tmp/c-perf.out" | sed 's/.*"upload_mib_s":"\([^"]*\)","download_mib_s":"\([^"]*\)".*/up \1 MiB\/s, down \2 MiB\/s/')"
else
  bad "lp2p->$impl: $impl peer started"
fi
case_end

peer_finish
