#!/usr/bin/env bash
# test_node_perf_streams.sh - bulk transfer and stream concurrency between lp2p-node and js-libp2p:
#   perf (/perf/1.0.0) 64 MiB up + 64 MiB down in both directions, exact byte counts checked by
#   the client AND the server of each run;
#   200 concurrent echo streams (/lp2p-test/echo/1.0.0, 64 KiB each, distinct content per stream)
#   opened by js on one connection to `lp2p-node listen --echo`, every byte verified by js.
# Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR. Needs scripts/deps (Node 22 + js-libp2p).
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"

MiB=1048576
N=$((64 * MiB))

# ---- js -> lp2p: perf + 200 echo streams on one connection ----
start_lp2p srv --echo
if [ -n "$laddr" ]; then
  "$js" "$peer" --dial "$laddr" --perf-upload $N --perf-download $N --streams 200 --echo-bytes 65536 \
    --timeout 240 >"$tmp/js-client.out" 2>"$tmp/js-client.err"
  rc=$?
  check "js->lp2p: perf 64 MiB up + 64 MiB down (js counts)" "$tmp/js-client.out" "$rc === 0" \
    "one('perf').upload === $N" "one('perf').download === $N" "count('error') === 0"
  check "js->lp2p: 200 concurrent echo streams, content verified" "$tmp/js-client.out" \
    "one('echo').streams === 200" "one('echo').bytes === 200 * 65536" "count('connection:open') === 1"
  wait_count "$tmp/srv.out" "count('perf-served') === 1" 10
  check "js->lp2p: lp2p served exactly 64 MiB each way" "$tmp/srv.out" \
    "one('perf-served').upload === $N" "one('perf-served').download === $N" "one('perf-served').error === undefined" \
    "count('connection-opened') === 1"
  rate="$("$js" -e "const l=require('fs').readFileSync('$tmp/js-client.out','utf8').split('\n').filter(Boolean).map(JSON.parse).find(e=>e.event==='perf'); if(l) console.log('up ' + (64/l.uploadSeconds).toFixed(1) + ' MiB/s, down ' + (64/l.downloadSeconds).toFixed(1) + ' MiB/s, echo ' + JSON.stringify(require('fs').readFileSync('$tmp/js-client.out','utf8').split('\n').filter(Boolean).map(JSON.parse).find(e=>e.event==='echo')?.seconds) + ' s')")"
  echo "       js->lp2p: $rate"
  stop_pid "$lpid" INT
  [ "$stop_rc" = 0 ] && ok "js->lp2p: lp2p-node exits 0 on SIGINT" || bad "js->lp2p: lp2p-node exits 0 on SIGINT (rc=$stop_rc)"
else
  bad "js->lp2p: lp2p-node started"
fi

# ---- lp2p -> js: perf ----
start_js js-srv
if [ -n "$jaddr" ]; then
  "$node_exe" perf "$jaddr" --upload 64M --download 64M --json >"$tmp/c-perf.out" 2>"$tmp/c-perf.err"
  rc=$?
  check "lp2p->js: perf 64 MiB up + 64 MiB down (lp2p counts)" "$tmp/c-perf.out" "$rc === 0" \
    "one('perf').upload === $N" "one('perf').download === $N" "Number(one('perf').seconds) > 0"
  [ -s "$tmp/c-perf.err" ] && bad "lp2p->js: perf stderr empty" "$(cat "$tmp/c-perf.err")"
  wait_count "$tmp/js-srv.out" "count('perf:served') === 1" 10
  check "lp2p->js: js served exactly 64 MiB each way" "$tmp/js-srv.out" \
    "one('perf:served').received === $N" "one('perf:served').sent === $N" "count('error') === 0"
  echo "       lp2p->js: $(grep '"perf"' "$tmp/c-perf.out" | sed 's/.*"upload_mib_s":"\([^"]*\)","download_mib_s":"\([^"]*\)".*/up \1 MiB\/s, down \2 MiB\/s/')"
  # plain output names the counts too
  "$node_exe" perf "$jaddr" --upload 1000 --download 3k >"$tmp/c-perf2.out" 2>&1
  rc=$?
  if [ "$rc" = 0 ] && grep -q '^upload: 1000 bytes' "$tmp/c-perf2.out" && grep -q '^download: 3072 bytes' "$tmp/c-perf2.out"; then
    ok "lp2p->js: perf text output with exact counts"
  else
    bad "lp2p->js: perf text output with exact counts (rc=$rc)" "$(cat "$tmp/c-perf2.out")"
  fi
else
  bad "lp2p->js: js node started"
fi

finish
