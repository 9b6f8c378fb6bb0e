#!/usr/bin/env bash
# test_node_errors.sh - failures of the lp2p-node client commands are one stderr line that names
# the cause, with a non-zero exit (usage errors: 2, everything else: 1):
#   dialing a js node at /p2p/<wrong id> (ping, identify, perf) -> "remote peer id mismatch"
#   a closed port -> "connection refused"; a silent TCP server -> "timed out"
#   a server that sends junk instead of multistream -> "dial failed: ..."
#   a js node without /perf/1.0.0 -> "protocol not supported"
#   missing/bad MADDR, bad sizes -> usage errors; --help on every command -> exit 0
# Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR. Needs scripts/deps (Node 22 + js-libp2p).
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"

run() { "$node_exe" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; err="$(cat "$tmp/err")"; out="$(cat "$tmp/out")"; }
one_line() { [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [[ "$err" == "lp2p-node: "* ]]; }
expect_fail() { # NAME RC PATTERN
  if [ "$rc" = "$2" ] && one_line && [[ "$err" == *"$3"* ]]; then ok "$1"
  else bad "$1" "rc=$rc (want $2), stderr: $err"; fi
}

# ---- peer id mismatch against a real js node ----
start_ctl js --no-perf
other="$("$js" "$keygen" Ed25519 "$tmp/other.key")"
wrong="${jaddr%/p2p/*}/p2p/$other"
run ping "$wrong"
expect_fail "ping /p2p/<wrong id>: peer id mismatch" 1 "ping: ${wrong}: dial failed: remote peer id mismatch"
run identify "$wrong"
expect_fail "identify /p2p/<wrong id>: peer id mismatch" 1 "identify: ${wrong}: dial failed: remote peer id mismatch"
run perf "$wrong" --upload 10 --download 10
expect_fail "perf /p2p/<wrong id>: peer id mismatch" 1 "perf: ${wrong}: dial failed: remote peer id mismatch"
check "js saw no successful connection from the mismatched dials" "$tmp/js.out" "count('connection:open') === 0"

# ---- protocol not supported (the js node has no perf) ----
run perf "$jaddr" --upload 1 --download 1
expect_fail "perf against a node without /perf/1.0.0" 1 "perf failed after 0 bytes up, 0 bytes down: protocol not supported"
run ping "$jaddr"
[ "$rc" = 0 ] && ok "ping still works against that node" || bad "ping still works against that node" "$err"

# ---- unreachable / silent / junk servers ----
port="$("$js" -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
run ping "/ip4/127.0.0.1/tcp/$port"
expect_fail "closed port: connection refused" 1 "dial failed: connection refused"

"$js" -e "
const net = require('net');
const mk = (f) => new Promise(r => { const s = net.createServer(f); s.listen(0, '127.0.0.1', () => r(s.address().port)) });
(async () => {
  const silent = await mk(() => {});
  const junk = await mk((c) => { c.on('error', () => {}); c.end(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n' + 'x'.repeat(3000))) });
  console.log(silent + ' ' + junk);
  setInterval(() => { if (process.ppid === 1) process.exit(0) }, 500);
})()" >"$tmp/servers.out" 2>&1 &
_pids+=($!)
for i in $(seq 50); do [ -s "$tmp/servers.out" ] && break; sleep 0.1; done
read -r silent junk <"$tmp/servers.out"
t0=$(date +%s)
run ping "/ip4/127.0.0.1/tcp/$silent" --timeout 2
t1=$(date +%s)
expect_fail "silent server: timed out" 1 "timed out"
[ $((t1 - t0)) -le 5 ] && ok "silent server: --timeout 2 honoured ($((t1 - t0)) s)" || bad "silent server: --timeout honoured ($((t1 - t0)) s)"
run identify "/ip4/127.0.0.1/tcp/$junk"
expect_fail "junk server: dial fails with a reason" 1 "dial failed: "

# ---- usage ----
for c in listen ping identify perf; do
  run "$c" --help
  if [ "$rc" = 0 ] && [[ "$out" == "Usage: lp2p-node $c"* ]] && [ -z "$err" ]; then ok "$c --help"; else bad "$c --help" "$out$err"; fi
done
run ping
expect_fail "ping without MADDR: usage error" 2 "missing MADDR"
run identify /ip4/1.2.3.4/tcp/99999
expect_fail "identify with a bad MADDR: usage error" 2 "bad address"
run perf "$jaddr" --upload 10
expect_fail "perf without --download: usage error" 2 "--upload and --download are required"
run perf "$jaddr" --upload 10x --download 1
expect_fail "perf with a bad size: usage error" 2 "bad --upload size"
run ping "$jaddr" "$jaddr"
expect_fail "two MADDRs: usage error" 2 "unexpected argument"
run ping "$jaddr" --count 0
expect_fail "--count 0: usage error" 2 "--count needs a positive integer"
run listen --listen /ip4/127.0.0.1/udp/1 --identity "$tmp/k"
expect_fail "listen on an unsupported transport" 1 "cannot listen on /ip4/127.0.0.1/udp/1"

finish
