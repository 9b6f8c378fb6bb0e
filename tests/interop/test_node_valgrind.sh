#!/usr/bin/env bash
# test_node_valgrind.sh - clean shutdown: `lp2p-node listen --echo` runs under
# valgrind --leak-check=full --error-exitcode=1 while a js peer connects, pings, identifies, runs
# a small perf and 20 echo streams, and lp2p pings js back over the same connection; then
# SIGINT. Required: exit 0, no memory errors, no definitely/indirectly/possibly lost bytes.
# With an ASan build of lp2p-node (valgrind cannot run it) the same scenario runs natively and
# LeakSanitizer does the leak check at exit (a leak makes the exit status non-zero).
# Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR. Needs scripts/deps (Node 22 + js-libp2p).
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"

# grep reads all of ldd's output: with pipefail, "grep -q" could SIGPIPE ldd and fail the test.
lddout="$(ldd "$node_exe" 2>/dev/null)"
if [[ "$lddout" == *libasan* ]]; then
  mode=asan
  export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=1"
elif command -v valgrind >/dev/null; then
  mode=valgrind
  LP2P_WRAP="valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --error-exitcode=1 --log-file=$tmp/vg.log"
  LP2P_START_SEC=90
else
  bad "valgrind is not installed (needed for a non-ASan lp2p-node)"; finish
fi
echo "       checker: $mode"

start_lp2p vg --echo --identity "$tmp/vg.key"
if [ -z "$laddr" ]; then bad "lp2p-node listen started under $mode"; finish; fi
lid="${laddr##*/p2p/}"
"$js" "$peer" --listen /ip4/127.0.0.1/tcp/0 --dial "$laddr" --ping 3 --identify --perf-upload 1048576 \
  --perf-download 1048576 --streams 20 --hold 4000 --timeout 120 >"$tmp/js.out" 2>"$tmp/js.err" &
jpid=$!
_pids+=("$jpid")
jid="$(wait_event "$tmp/js.out" listening 30 peerId)"
wait_count "$tmp/js.out" "count('echo') === 1 || count('done') === 1" 90
lp2p_cmd vg "ping $jid"
wait_count "$tmp/vg.out" "count('ping') === 1" 30
wait "$jpid"; rc=$?
check "js client: pings, identify, perf, echo all succeeded against lp2p under $mode" "$tmp/js.out" "$rc === 0" \
  "one('done').ok === true" "count('ping') === 3" "one('peer:identify').peer === '$lid'" \
  "one('perf').download === 1048576" "one('echo').streams === 20"
check "lp2p under $mode: served, identified js, pinged it back" "$tmp/vg.out" \
  "one('perf-served').upload === 1048576" "count('peer-identified') === 1" "one('ping').rtt_us > 0"

stop_pid "$lpid" INT
[ "$stop_rc" = 0 ] && ok "SIGINT: lp2p-node under $mode exits 0" || bad "SIGINT: lp2p-node under $mode exits 0 (rc=$stop_rc)" "$(tail -30 "$tmp/vg.err")"
check "SIGINT: shutdown events" "$tmp/vg.out" "one('stopping').signal === 2" "count('stopped') === 1"
if [ "$mode" = valgrind ]; then
  if grep -q "ERROR SUMMARY: 0 errors" "$tmp/vg.log" && ! grep -Eq "(definitely|indirectly|possibly) lost: [1-9]" "$tmp/vg.log"; then
    ok "valgrind: 0 errors, nothing lost ($(grep -o 'in use at exit: [0-9,]* bytes' "$tmp/vg.log"))"
  else
    bad "valgrind: 0 errors, nothing lost" "$(grep -A3 -E 'ERROR SUMMARY|lost:|Invalid|uninitialised' "$tmp/vg.log" | head -40)"
  fi
else
  if grep -q "LeakSanitizer" "$tmp/vg.err"; then bad "LeakSanitizer: no leaks" "$(head -40 "$tmp/vg.err")"
  else ok "LeakSanitizer: no leaks"; fi
fi

finish
