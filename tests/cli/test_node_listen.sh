#!/usr/bin/env bash
# test_node_listen.sh - `lp2p-node listen` on its own (no js): listen addresses printed with their
# /p2p/<id> suffix, one per stdout line, flushed while the node runs; the default address
# (loopback, a free port) and identity (the file `lp2p-node id` uses); several --listen incl.
# IPv6; --json events; the --control channel (peers, ping of an unknown peer, quit); SIGTERM and
# SIGINT give exit 0; lp2p-node ping/identify between two lp2p nodes; the limit/timeout flags (parsing,
# rejection, --max-pending and --handshake-timeout reaching the swarm); usage errors.
# Env (set by ctest): LP2P_NODE (binary), LP2P_SOURCE_DIR.
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node="${LP2P_NODE:-$src/build/lp2p-node}"
if [ ! -x "$node" ]; then
  echo "FAIL: lp2p-node not found at $node"; echo "0 passed, 1 failed"; exit 1
fi
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/xdg"
mkdir -p "$HOME"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | head -20 | sed 's/^/       /'; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1" "${3:-}"; fi; }

# wait_lines FILE N : until FILE has N lines (5 s)
wait_lines() { for _ in $(seq 50); do [ "$(wc -l <"$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
# stop PID SIG : sets src_rc
stop() { kill -s "$2" "$1"; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; wait "$1"; rc=$?; }

id_re='12D3KooW[1-9A-HJ-NP-Za-km-z]{44}'

# ---- defaults: loopback, free port, the default identity ----
"$node" listen >"$tmp/d.out" 2>"$tmp/d.err" &
pid=$!; pids+=($pid)
wait_lines "$tmp/d.out" 1
line="$(head -n 1 "$tmp/d.out")"
check "default: first line is /ip4/127.0.0.1/tcp/<port>/p2p/<id> while running" \
  '[[ "$line" =~ ^/ip4/127\.0\.0\.1/tcp/[1-9][0-9]*/p2p/$id_re$ ]] && kill -0 $pid' "$line"
want="$("$node" id)"
check "default: identity is the one 'lp2p-node id' uses" '[ "${line##*/p2p/}" = "$want" ]' "$line vs $want"
check "default: identity file created" '[ -f "$XDG_DATA_HOME/lp2p/identity.key" ]'
stop $pid TERM
check "SIGTERM: exit 0, 'stopped' line, stderr empty" \
  '[ $rc = 0 ] && [ "$(tail -n 1 "$tmp/d.out")" = stopped ] && [ ! -s "$tmp/d.err" ]' "rc=$rc $(cat "$tmp/d.err")"

# ---- several addresses, IPv6, explicit identity of another type ----
"$node" listen --listen /ip4/127.0.0.1/tcp/0 --listen /ip6/::1/tcp/0 --identity "$tmp/s.key" --key-type secp256k1 \
  >"$tmp/m.out" 2>"$tmp/m.err" &
pid=$!; pids+=($pid)
wait_lines "$tmp/m.out" 2
sid="$("$node" id --identity "$tmp/s.key")"
l1="$(sed -n 1p "$tmp/m.out")" l2="$(sed -n 2p "$tmp/m.out")"
check "two --listen: one line each, secp256k1 id" \
  '[[ "$l1" == /ip4/127.0.0.1/tcp/*/p2p/$sid ]] && [[ "$l2" == /ip6/::1/tcp/*/p2p/$sid ]] && [[ "$sid" == 16Uiu2* ]]' \
  "$l1 | $l2 | $sid"

# ---- lp2p <-> lp2p: ping and identify over both addresses ----
out="$("$node" ping "$l2" --count 2 --interval 10 2>&1)"; r=$?
check "ping over IPv6 between two lp2p nodes" '[ $r = 0 ] && [ "$(grep -c "^pong from $sid: seq=" <<<"$out")" = 2 ]' "$out"
out="$("$node" identify "$l1" 2>&1)"; r=$?
check "identify between two lp2p nodes" \
  '[ $r = 0 ] && grep -q "^peer_id: $sid$" <<<"$out" && grep -q "^key_type: secp256k1$" <<<"$out" && grep -q "^agent_version: lp2p/" <<<"$out" && grep -q "^  /ipfs/ping/1.0.0$" <<<"$out" && grep -q "^signed_peer_record: yes" <<<"$out"' "$out"
stop $pid INT
check "SIGINT: exit 0" '[ $rc = 0 ]' "rc=$rc $(cat "$tmp/m.err")"
"$node" listen --identity "$tmp/s.key" --key-type ed25519 >"$tmp/x.out" 2>"$tmp/x.err"; r=$?
check "existing identity of another --key-type: error" \
  '[ $r = 1 ] && [ "$(wc -l <"$tmp/x.err")" = 1 ] && grep -q "holds a secp256k1 key, not ed25519" "$tmp/x.err"' "$(cat "$tmp/x.err")"

# ---- --json and --control ----
mkfifo "$tmp/c.in"
exec 7<>"$tmp/c.in"
"$node" listen --json --control --identity "$tmp/c.key" <"$tmp/c.in" >"$tmp/c.out" 2>"$tmp/c.err" &
pid=$!; pids+=($pid)
wait_lines "$tmp/c.out" 1
check "--json: listening event" \
  'grep -Eq "^\{\"event\":\"listening\",\"addr\":\"/ip4/127.0.0.1/tcp/[0-9]+/p2p/$id_re\",\"peer_id\":\"$id_re\"\}$" "$tmp/c.out"' \
  "$(cat "$tmp/c.out")"
echo peers >&7
echo "ping 12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq" >&7
echo "bogus" >&7
wait_lines "$tmp/c.out" 4
check "--control: peers (empty), ping of an unknown peer fails, unknown command" \
  'grep -q "^{\"event\":\"peers\",\"count\":0,\"peers\":\[\]}$" "$tmp/c.out" && grep -q "\"event\":\"ping\",\"peer\":\"12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq\",\"error\":\"LP2P_ERR_NOT_CONNECTED\"" "$tmp/c.out" && grep -q "\"event\":\"control-error\",\"line\":\"bogus\"" "$tmp/c.out"' \
  "$(cat "$tmp/c.out")"
echo quit >&7
for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
wait $pid; rc=$?
check "--control quit: exit 0, stopping/stopped events" \
  '[ $rc = 0 ] && grep -q "{\"event\":\"stopping\",\"signal\":0}" "$tmp/c.out" && [ "$(tail -n 1 "$tmp/c.out")" = "{\"event\":\"stopped\"}" ]' \
  "rc=$rc $(tail -3 "$tmp/c.out")"

# ---- usage ----
"$node" listen --help >"$tmp/h.out"
"$node" listen --listen /ip4/999.0.0.1/tcp/0 --identity "$tmp/c.key" >/dev/null 2>"$tmp/u.err"; r=$?
check "bad --listen address: usage error" '[ $r = 2 ] && grep -q "bad listen address" "$tmp/u.err"' "$(cat "$tmp/u.err")"
"$node" listen --idle-timeout x >/dev/null 2>"$tmp/u.err"; r=$?
check "bad --idle-timeout: usage error" '[ $r = 2 ]' "$(cat "$tmp/u.err")"
# limit/timeout flags: plain non-negative decimals <= 2^32-1, anything else is a usage error
for o in max-inbound max-pending handshake-timeout stream-timeout max-streams; do
  bads=""
  for v in x -1 1.5 4294967296 " 5" 12k ""; do
    "$node" listen "--$o=$v" --identity "$tmp/c.key" >/dev/null 2>"$tmp/u.err"; r=$?
    [ $r = 2 ] && [ "$(wc -l <"$tmp/u.err")" = 1 ] || bads="$bads [$v]: rc=$r $(cat "$tmp/u.err")"
  done
  "$node" listen --$o 7 --bogus >/dev/null 2>"$tmp/u.err"; r=$? # a good value: the parser goes on to --bogus
  grep -q "unknown option '--bogus'" "$tmp/u.err" || bads="$bads [7]: $(cat "$tmp/u.err")"
  "$node" listen --$o x >/dev/null 2>"$tmp/u.err"
  grep -q "^lp2p-node: listen: bad --$o 'x'$" "$tmp/u.err" || bads="$bads message: $(cat "$tmp/u.err")"
  grep -Eq "^  --$o (N|MS) +.*\(default [0-9]+, 0 = " "$tmp/h.out" || bads="$bads not in --help"
  check "--$o: bad values rejected (usage error), documented in --help" '[ -z "$bads" ]' "$bads"
done
"$node" listen --max-inbound 0 --max-pending 4294967295 --handshake-timeout 0 --stream-timeout 1 --max-streams 0 \
  --identity "$tmp/c.key" >"$tmp/z.out" 2>"$tmp/z.err" &
pid=$!; pids+=($pid)
wait_lines "$tmp/z.out" 1
check "limit flags: 0 and 2^32-1 are accepted" 'kill -0 $pid && grep -q "/p2p/" "$tmp/z.out"' "$(cat "$tmp/z.err")"
stop $pid TERM
# the values reach the swarm: --max-pending 1 refuses a second silent connection at once,
# --handshake-timeout 400 closes the first one after ~0.4 s (the default is 10 s)
"$node" listen --json --max-pending 1 --handshake-timeout 400 --identity "$tmp/c.key" >"$tmp/l.out" 2>"$tmp/l.err" &
pid=$!; pids+=($pid)
wait_lines "$tmp/l.out" 1
lport="$(sed -n 's|.*"addr":"/ip4/127.0.0.1/tcp/\([0-9]*\)/p2p/.*|\1|p' "$tmp/l.out" | head -1)"
exec 8<>"/dev/tcp/127.0.0.1/$lport"
sleep 0.1
exec 9<>"/dev/tcp/127.0.0.1/$lport"
t0=$(date +%s%3N)
for _ in $(seq 50); do grep -q '"error":"LP2P_ERR_TIMEOUT"' "$tmp/l.out" && break; sleep 0.05; done
t1=$(date +%s%3N)
exec 8>&- 9>&-
check "--max-pending 1: the second silent connection is refused (LP2P_ERR_LIMIT)" \
  '[ "$(grep -c "\"event\":\"inbound-connection-failed\",.*\"error\":\"LP2P_ERR_LIMIT\"" "$tmp/l.out")" = 1 ]' "$(cat "$tmp/l.out")"
check "--handshake-timeout 400: the first one is closed with LP2P_ERR_TIMEOUT within 2.5 s" \
  '[ "$(grep -c "\"event\":\"inbound-connection-failed\",.*\"error\":\"LP2P_ERR_TIMEOUT\"" "$tmp/l.out")" = 1 ] && [ $((t1 - t0)) -lt 2500 ]' \
  "after $((t1 - t0)) ms: $(cat "$tmp/l.out")"
stop $pid TERM
"$node" listen extra >/dev/null 2>"$tmp/u.err"; r=$?
check "positional argument: usage error" '[ $r = 2 ] && grep -q "unexpected argument" "$tmp/u.err"' "$(cat "$tmp/u.err")"
"$node" --help >"$tmp/h.out"
check "top-level help lists the new commands" \
  '( for c in listen ping identify perf; do grep -q "^  $c " "$tmp/h.out" || exit 1; done )' "$(cat "$tmp/h.out")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
