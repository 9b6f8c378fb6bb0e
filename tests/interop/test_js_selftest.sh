#!/usr/bin/env bash
# test_js_selftest.sh - proves the js side of the interop harness: two js-libp2p nodes
# (tests/interop/js/peer.mjs) on 127.0.0.1 run ping, identify, perf (1 MiB each way) and
# 50 concurrent echo streams on one connection, once with early muxer negotiation inside Noise
# and once with yamux negotiated through multistream-select; plus a fixed identity from
# keygen.mjs and a dial to the wrong peer id that must fail.
# Env (set by ctest): LP2P_SOURCE_DIR. Needs scripts/deps (pinned Node 22 + js-libp2p).
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
js="$src/scripts/node"
peer="$src/tests/interop/js/peer.mjs"
events="$src/tests/interop/js/events.mjs"
keygen="$src/tests/interop/js/keygen.mjs"

if ! "$js" --version >/dev/null 2>&1; then
  echo "FAIL: pinned Node is missing (run scripts/deps)"; echo "0 passed, 1 failed"; exit 1
fi

tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
pass=0 fail=0

# check NAME LOGFILE EXPR... : one test result per call, details on failure
check() {
  local name="$1" log="$2"; shift 2
  local out
  if out="$("$js" "$events" check "$log" --quiet "$@")"; then
    echo "ok   $name"; pass=$((pass + 1))
  else
    echo "FAIL $name"; printf '%s\n' "$out" | sed 's/^/       /'; fail=$((fail + 1))
    echo "       --- $log:"; sed 's/^/       /' "$log" | head -40
  fi
}

# start_server NAME ARGS... : starts peer.mjs listening on 127.0.0.1, sets $addr
start_server() {
  local name="$1"; shift
  "$js" "$peer" --listen /ip4/127.0.0.1/tcp/0 --timeout 120 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  addr="$("$js" "$events" wait "$tmp/$name.out" listening 20 addrs)" || addr=""
}

MiB=1048576
for mode in noise mss; do
  start_server "srv-$mode" --muxer-negotiation "$mode"
  if [ -z "$addr" ]; then
    echo "FAIL $mode: server did not start"; cat "$tmp/srv-$mode.err"; fail=$((fail + 1)); continue
  fi
  "$js" "$peer" --dial "$addr" --muxer-negotiation "$mode" --ping 3 --identify \
    --perf-upload $MiB --perf-download $MiB --streams 50 --timeout 60 >"$tmp/cli-$mode.out" 2>"$tmp/cli-$mode.err"
  rc=$?
  sleep 0.3 # let the server log the end of its handlers
  check "$mode: client exits 0" "$tmp/cli-$mode.out" "$rc === 0" "one('done').ok === true" "count('error') === 0"
  check "$mode: connection (noise + yamux, muxer via $mode)" "$tmp/cli-$mode.out" \
    "one('connection:open').encryption === '/noise'" "one('connection:open').muxer === '/yamux/1.0.0'" \
    "one('connection:open').muxerNegotiation === '$mode'" "one('connection:open').direction === 'outbound'"
  check "$mode: identify" "$tmp/cli-$mode.out" \
    "one('peer:identify').agentVersion.startsWith('js-libp2p/')" \
    "['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0', '/perf/1.0.0', '/lp2p-test/echo/1.0.0'].every(p => one('peer:identify').protocols.includes(p))" \
    "one('peer:identify').listenAddrs.length > 0" \
    "'$addr'.endsWith('/p2p/' + one('peer:identify').peer)"
  check "$mode: 3 pings" "$tmp/cli-$mode.out" "count('ping') === 3" "all('ping').every(p => p.rtt >= 0)"
  check "$mode: perf 1 MiB up + 1 MiB down" "$tmp/cli-$mode.out" \
    "one('perf').upload === $MiB" "one('perf').download === $MiB"
  check "$mode: 50 echo streams" "$tmp/cli-$mode.out" "one('echo').streams === 50" "one('echo').bytes === 50 * 4096"
  check "$mode: server side" "$tmp/srv-$mode.out" \
    "one('perf:served').received === $MiB" "one('perf:served').sent === $MiB" \
    "count('echo:served') === 50" "all('echo:served').every(e => e.bytes === 4096)" \
    "one('connection:open').direction === 'inbound'" "one('connection:open').muxerNegotiation === '$mode'" \
    "count('error') === 0"
done

# A fixed identity from keygen.mjs (secp256k1, to exercise a non-default key type) on a
# noise-mode listener; an mss-mode dialer against it must still end up on multistream-select.
want="$("$js" "$keygen" secp256k1 "$tmp/id.key")"
start_server srv-key --key "$tmp/id.key"
check "--key: peer id from keygen.mjs" "$tmp/srv-key.out" "one('listening').peerId === '$want'"
"$js" "$peer" --dial "$addr" --muxer-negotiation mss --ping 1 >"$tmp/cli-mixed.out" 2>&1
rc=$?
check "mixed: mss dialer vs noise listener" "$tmp/cli-mixed.out" "$rc === 0" "count('ping') === 1" \
  "one('connection:open').muxerNegotiation === 'mss'"

# Negative: dialing the right address with the wrong /p2p/ id must fail.
other="$("$js" "$keygen" Ed25519 "$tmp/other.key")"
wrong="${addr%/p2p/*}/p2p/$other"
"$js" "$peer" --dial "$wrong" --ping 1 --timeout 30 >"$tmp/cli-wrong.out" 2>&1
rc=$?
check "wrong peer id is rejected" "$tmp/cli-wrong.out" "$rc === 1" "one('error').where === 'dial'" \
  "count('ping') === 0" "one('done').ok === false"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
