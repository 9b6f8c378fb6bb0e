#!/usr/bin/env bash
# test_hostile.sh - the hostile-peer suite: tests/tools/hostile_peer (our own C code speaking the
# wire formats directly) attacks `lp2p-node listen --echo` over 127.0.0.1 while a js-libp2p peer
# (ctl-peer.mjs) stays connected and pings it every ~200 ms. For every attack:
#   - the hostile peer sees the node react on the wire: the offending connection is closed, or
#     only the offending stream is reset while its connection keeps answering yamux pings;
#   - the node reports the reason: a JSON event (inbound-connection-failed {addr: our port},
#     connection-closed {peer: our id} or inbound-stream-failed {peer}) with the exact
#     LP2P_ERR_* code, and the same reason in its LP2P_LOG=debug log on stderr;
#   - the js peer's pings keep succeeding during and after each group of attacks, and its one
#     connection is never closed.
# Groups: 1 multistream-select (oversized/malformed lines, na flood), 2 Noise (truncated and
# corrupted handshake messages and transport frames), 3 identity (bad signatures and keys in the
# handshake payload; lp2p-node ping dialing a hostile listener whose key does not match the
# /p2p/ id), 4 yamux (window violations, stream id reuse and parity, bad version/type, SYN and
# ping floods, stream-level multistream abuse), 4b identify pushes with malformed messages,
# records and keys (only the push is rejected), 5 timeouts (slowloris at the handshake timeout,
# silent streams at the negotiation timeout, the pending-handshake limit, the inbound-connection
# limit with established connections), 6 a flood of 4000
# connections at once (limits apply, VmRSS stays bounded and returns to baseline, new
# connections work afterwards). At the end lp2p-node gets SIGINT and must exit 0 (under the
# ASan build that includes a clean LeakSanitizer report).
# The node runs with short timeouts and small limits set by its flags (--handshake-timeout 2000,
# --stream-timeout 2000, --max-pending 16, --max-inbound 32, --max-streams 64; the defaults are
# 10 s, 10 s, 64, 256, 512): the suite is faster, and every limit/timeout check proves that the
# flag reached the swarm (the waits are shorter than the defaults would need).
# Env (set by ctest): LP2P_NODE, LP2P_TOOLS_DIR, LP2P_SOURCE_DIR. Needs scripts/deps.
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"

hp="${LP2P_TOOLS_DIR:-$(dirname "$node_exe")/tests}/hostile_peer"
if [ ! -x "$hp" ]; then
  bad "hostile_peer tool not found at $hp"
  finish
fi
HANDSHAKE_MS=2000 NEGO_MS=2000 PENDING_LIMIT=16 INBOUND_LIMIT=32 STREAM_LIMIT=64
FLOOD=4000
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((FLOOD + 200)) ]; then
  FLOOD=$(($(ulimit -n) - 200))
  echo "       note: open-file limit $(ulimit -n), flood reduced to $FLOOD connections"
fi
asan=0
grep -q __asan_init "$node_exe" 2>/dev/null && asan=1
# VmRSS bounds (KiB): the normal build stays far below 64 MiB; ASan's shadow memory and
# allocator quarantine add a large constant
RSS_MAX=$((64 * 1024)) RSS_BACK=$((8 * 1024))
[ $asan = 1 ] && RSS_MAX=$((256 * 1024)) RSS_BACK=$((64 * 1024))

now_ms() { date +%s%3N; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$lpid/status" 2>/dev/null || echo 0; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$lpid/status" 2>/dev/null || echo 0; }

# ---- the node and the js peer ----
LP2P_LOG=debug start_lp2p srv --echo --handshake-timeout $HANDSHAKE_MS --stream-timeout $NEGO_MS \
  --max-pending $PENDING_LIMIT --max-inbound $INBOUND_LIMIT --max-streams $STREAM_LIMIT
[ -n "$laddr" ] || finish
port="${laddr#/ip4/127.0.0.1/tcp/}"; port="${port%%/*}"
lid="${laddr##*/p2p/}"
# js's connection monitor logs why it would abort the connection (ping timeout, too many ping
# streams); js-yamux sends GoAway code 0 for every abort, so its own reason is only in js.err
DEBUG="${DEBUG:-libp2p:connection-monitor*}" start_ctl js
[ -n "$jaddr" ] || finish
jid="${jaddr##*/p2p/}"
js_cmd js "dial $laddr"
wait_count "$tmp/js.out" "count('dialed') === 1" 20
check "setup: js-libp2p connected to lp2p-node" "$tmp/js.out" "one('dialed').ok === true" \
  "one('dialed').peer === '$lid'"
rss0="$(rss)"

# One ping at a time, a new stream each, ~200 ms apart, for the whole run.
pings() { grep -c '^{"event":"ping",' "$tmp/js.out"; }
ping_errors() { grep -c '^{"event":"ping:error"' "$tmp/js.out"; }
pinger() {
  local n i
  while kill -0 "$lpid" 2>/dev/null; do
    n=$(($(pings) + $(ping_errors)))
    js_cmd js "ping $lid"
    for ((i = 0; i < 200; i++)); do
      [ $(($(pings) + $(ping_errors))) -gt "$n" ] && break
      sleep 0.05
    done
    sleep 0.2
  done
}
pinger &
_pids+=("$!")

g_name="" g_ping0=0 g_err0=0 g_t0=0
group() { g_name="$1"; g_ping0=$(pings); g_err0=$(ping_errors); g_t0=$(now_ms); echo "---- $1"; }
group_end() { # js must have pinged during the group (>= 1 s long) and must ping again after it
  local i
  while [ $(($(now_ms) - g_t0)) -lt 1000 ]; do sleep 0.1; done
  local during=$(($(pings) - g_ping0)) target=$(($(pings) + 2))
  for ((i = 0; i < 150; i++)); do [ "$(pings)" -ge "$target" ] && break; sleep 0.1; done
  local errs=$(($(ping_errors) - g_err0))
  if [ "$during" -ge 1 ] && [ "$(pings)" -ge "$target" ] && [ "$errs" = 0 ]; then
    ok "$g_name: js kept pinging lp2p-node ($during pings during the attacks, 2 after, 0 failed)"
  else
    bad "$g_name: js kept pinging lp2p-node" "pings during: $during, after: $(($(pings) - target + 2)), errors: $errs
$(grep '"ping:error"' "$tmp/js.out" | tail -3)"
  fi
  if ! kill -0 "$lpid" 2>/dev/null; then
    bad "$g_name: lp2p-node is still running" "$(tail -20 "$tmp/srv.err")"
    finish
  fi
}

# ---- attacks ----
# run_hp FILE MODE ARGS... : runs the hostile peer against the node; output in FILE, rc in FILE.rc
run_hp() {
  local f="$1"; shift
  "$hp" "$@" --port "$port" >"$f" 2>&1
  echo $? >"$f.rc"
}

# judge LABEL KIND REASON FILE : the hostile peer's verdict and the node's report.
#   KIND pre    = before the upgrade: inbound-connection-failed {addr .../tcp/<our port>}
#        conn   = after the upgrade: connection-closed {peer <our id>, reason}
#        stream = one stream: inbound-stream-failed {peer <our id>, error}
#        push   = an identify push: identify-failed {peer <our id>, error}
judge() {
  local label="$1" kind="$2" reason="$3" f="$4"
  local rc lport hid verdict ev logre i found=0 logged=0
  rc="$(cat "$f.rc" 2>/dev/null)"
  lport="$(sed -n 's/^local-port //p' "$f" | head -1)"
  hid="$(sed -n 's/^peer-id //p' "$f" | head -1)"
  verdict="$(grep -E '^(ok|FAIL):' "$f" | tail -1)"
  if [ "$rc" != 0 ]; then
    bad "$label" "hostile peer: rc=$rc
$(cat "$f")"
    return
  fi
  case "$kind" in
    pre)
      ev="\"event\":\"inbound-connection-failed\",\"addr\":\"/ip4/127.0.0.1/tcp/$lport\",\"error\":\"$reason\""
      logre="<- /ip4/127.0.0.1/tcp/$lport peer [^ ]*: closed: $reason\$" ;;
    conn)
      ev="\"event\":\"connection-closed\",\"peer\":\"$hid\",.*\"reason\":\"$reason\""
      logre="peer $hid: closed: $reason\$" ;;
    stream)
      ev="\"event\":\"inbound-stream-failed\",\"peer\":\"$hid\",.*\"error\":\"$reason\""
      logre="stream [0-9]+ \\(in\\) peer $hid: negotiation failed .*$reason\$" ;;
    push)
      ev="\"event\":\"identify-failed\",\"peer\":\"$hid\",\"error\":\"$reason\""
      logre="identify: peer $hid: push rejected: $reason\$" ;;
  esac
  for ((i = 0; i < 30; i++)); do
    grep -q -- "$ev" "$tmp/srv.out" && found=1
    grep -Eq -- "$logre" "$tmp/srv.err" && logged=1
    [ $found = 1 ] && [ $logged = 1 ] && break
    sleep 0.1
  done
  if [ $found = 1 ] && [ $logged = 1 ]; then
    ok "$label -> $reason (${verdict#ok: })"
  else
    bad "$label -> $reason" "hostile peer: $verdict
node event $([ $found = 1 ] && echo found || echo MISSING): $ev
node log $([ $logged = 1 ] && echo found || echo MISSING): $logre
node events for this peer/port:
$(grep -E "tcp/$lport\"|${hid:-nohid}" "$tmp/srv.out" | tail -5)"
  fi
}

attack() { # attack LABEL KIND REASON MODE ARGS...
  local label="$1" kind="$2" reason="$3"; shift 3
  local f="$tmp/hp-$label.out"
  run_hp "$f" "$@"
  judge "$label" "$kind" "$reason" "$f"
}

# ---- 1: multistream-select ----
group "1 multistream-select"
attack mss-oversize pre LP2P_ERR_TOO_LARGE mss-oversize
attack mss-no-newline pre LP2P_ERR_PROTO mss-no-newline
attack mss-bad-varint pre LP2P_ERR_PROTO mss-bad-varint
attack mss-nul pre LP2P_ERR_PROTO mss-nul
attack mss-empty pre LP2P_ERR_PROTO mss-empty
attack mss-bad-header pre LP2P_ERR_UNSUPPORTED mss-bad-header
attack mss-na-flood pre LP2P_ERR_LIMIT mss-na-flood --count 100
na="$(sed -n 's/^na answers: //p' "$tmp/hp-mss-na-flood.out")"
[ "${na:-0}" -ge 1 ] && [ "${na:-99}" -le 32 ] && ok "mss-na-flood: $na 'na' answers before the cut (limit 32)" \
  || bad "mss-na-flood: 1..32 'na' answers before the cut" "got '${na}'"
group_end

# ---- 2: Noise ----
group "2 noise"
attack noise-msg1-short pre LP2P_ERR_HANDSHAKE noise-msg1-short
attack noise-msg1-zero pre LP2P_ERR_HANDSHAKE noise-msg1-zero
attack noise-msg1-max pre LP2P_ERR_HANDSHAKE noise-msg1-max
attack noise-msg1-truncated pre LP2P_ERR_EOF noise-msg1-truncated
attack noise-msg1-lowpoint pre LP2P_ERR_HANDSHAKE noise-msg1-lowpoint
attack noise-msg3-flip-static pre LP2P_ERR_DECRYPT noise-msg3-flip-static
attack noise-msg3-flip-tag pre LP2P_ERR_DECRYPT noise-msg3-flip-tag
attack noise-msg3-short pre LP2P_ERR_HANDSHAKE noise-msg3-short
attack noise-frame-flip conn LP2P_ERR_DECRYPT noise-frame-flip
attack noise-frame-zero conn LP2P_ERR_DECRYPT noise-frame-zero
attack noise-frame-short conn LP2P_ERR_DECRYPT noise-frame-short
attack noise-frame-max conn LP2P_ERR_DECRYPT noise-frame-max
attack noise-frame-replay conn LP2P_ERR_DECRYPT noise-frame-replay
attack noise-frame-truncated conn LP2P_ERR_EOF noise-frame-truncated
group_end

# ---- 3: identity ----
group "3 identity"
attack payload-badsig pre LP2P_ERR_SIGNATURE noise-payload --tamper badsig
attack payload-wrong-static pre LP2P_ERR_SIGNATURE noise-payload --tamper wrong-static
attack payload-other-key pre LP2P_ERR_SIGNATURE noise-payload --tamper other-key
attack payload-bad-key pre LP2P_ERR_SIGNATURE noise-payload --tamper bad-key
attack payload-no-sig pre LP2P_ERR_HANDSHAKE noise-payload --tamper no-sig
attack payload-no-key pre LP2P_ERR_HANDSHAKE noise-payload --tamper no-key
attack payload-garbage pre LP2P_ERR_HANDSHAKE noise-payload --tamper garbage
attack payload-muxer-junk pre LP2P_ERR_HANDSHAKE noise-payload --tamper muxer-junk
# our node dials a hostile listener: lp2p-node ping must fail with the right error
other="$("$node_exe" id --identity "$tmp/other.key" 2>/dev/null)"
dial_hostile() { # dial_hostile LABEL TAMPER EXPECT ID-OVERRIDE ERRTEXT
  local label="$1" tamper="$2" expect="$3" idmode="$4" errtext="$5" f="$tmp/hl-$1.out" addr hid target rc
  "$hp" listen --tamper "$tamper" --expect "$expect" --wait-ms 15000 >"$f" 2>&1 &
  local hpid=$!
  _pids+=("$hpid")
  for ((i = 0; i < 50; i++)); do grep -q '^listening' "$f" 2>/dev/null && break; sleep 0.1; done
  addr="$(awk '/^listening/ {print $2}' "$f")"
  hid="$(awk '/^listening/ {print $3}' "$f")"
  target="$addr/p2p/$([ "$idmode" = other ] && echo "$other" || echo "$hid")"
  "$node_exe" ping "$target" --timeout 10 >"$f.ping" 2>"$f.ping.err"
  rc=$?
  wait "$hpid"
  local hrc=$?
  local verdict
  verdict="$(grep -E '^(ok|FAIL):' "$f" | tail -1)"
  if [ -z "$errtext" ]; then # control run: the handshake itself is valid
    [ "$hrc" = 0 ] && ok "$label: lp2p-node accepts the hostile listener's valid handshake (${verdict#ok: })" \
      || bad "$label: lp2p-node accepts a valid handshake" "$(cat "$f" "$f.ping.err")"
    return
  fi
  if [ "$rc" = 1 ] && [ "$hrc" = 0 ] && grep -q "dial failed: $errtext" "$f.ping.err" \
    && ! grep -q Sanitizer "$f.ping.err"; then
    ok "$label: lp2p-node ping fails with '$errtext', aborts after msg2 (${verdict#ok: })"
  else
    bad "$label: lp2p-node ping fails with '$errtext'" "ping rc=$rc, hostile rc=$hrc
$(cat "$f.ping.err" "$f" | head -20)"
  fi
}
dial_hostile dial-mismatch none abort other "remote peer id mismatch"
dial_hostile dial-badsig badsig abort own "signature verification failed"
dial_hostile dial-wrong-static wrong-static abort own "signature verification failed"
dial_hostile dial-control none accept own ""
group_end

# ---- 4: yamux ----
group "4 yamux"
attack yamux-window-frame conn LP2P_ERR_WINDOW yamux-window-frame
attack yamux-window conn LP2P_ERR_WINDOW yamux-window
attack yamux-reuse-id conn LP2P_ERR_PROTO yamux-reuse-id
attack yamux-reuse-closed-id conn LP2P_ERR_PROTO yamux-reuse-closed-id
attack yamux-even-id conn LP2P_ERR_PROTO yamux-even-id
attack yamux-bad-version conn LP2P_ERR_PROTO yamux-bad-version
attack yamux-bad-type conn LP2P_ERR_PROTO yamux-bad-type
attack yamux-unknown-stream conn LP2P_ERR_PROTO yamux-unknown-stream
attack yamux-stream-zero conn LP2P_ERR_PROTO yamux-stream-zero
attack yamux-ping-flood conn LP2P_ERR_LIMIT yamux-ping-flood --count 3000000
attack stream-na-flood stream LP2P_ERR_LIMIT stream-na-flood --count 40
attack stream-oversize stream LP2P_ERR_TOO_LARGE stream-oversize
attack stream-bad-varint stream LP2P_ERR_PROTO stream-bad-varint
attack stream-nul stream LP2P_ERR_PROTO stream-nul
f="$tmp/hp-syn-flood.out"
run_hp "$f" yamux-syn-flood --count 700 --expect-open $STREAM_LIMIT
hid="$(sed -n 's/^peer-id //p' "$f" | head -1)"
refused="$(grep -c "\"event\":\"inbound-stream-failed\",\"peer\":\"$hid\",.*\"error\":\"LP2P_ERR_LIMIT\"" "$tmp/srv.out")"
if [ "$(cat "$f.rc")" = 0 ] && [ "$refused" -ge $((700 - STREAM_LIMIT)) ] && grep -q "inbound stream [0-9]* refused (max streams)" "$tmp/srv.err"; then
  ok "yamux-syn-flood: $(grep '^ok:' "$f" | sed 's/^ok: syn-flood: //'); node: $refused LP2P_ERR_LIMIT events"
else
  bad "yamux-syn-flood: excess SYNs reset with LP2P_ERR_LIMIT, connection alive" "$(cat "$f"; echo "limit events: $refused")"
fi
group_end

# ---- 4b: identify pushes (the protocol layer): only the push is rejected ----
group "4b identify push"
attack push-empty-record push LP2P_ERR_PROTO identify-push --tamper empty-record
attack push-garbage push LP2P_ERR_PROTO identify-push --tamper garbage
attack push-oversize push LP2P_ERR_TOO_LARGE identify-push --tamper oversize
attack push-too-many push LP2P_ERR_LIMIT identify-push --tamper too-many
attack push-other-key push LP2P_ERR_PEER_ID_MISMATCH identify-push --tamper other-key
attack push-record-other-key push LP2P_ERR_PEER_ID_MISMATCH identify-push --tamper record-other-key
attack push-record-badsig push LP2P_ERR_SIGNATURE identify-push --tamper record-badsig
group_end

# ---- 5: timeouts, slowloris, pending-handshake limit ----
group "5 timeouts and slowloris"
# the waits (timeout + 4 s) are far below the 10 s defaults: a node that ignored the flags fails
min=$((HANDSHAKE_MS - 500)) wait=$((HANDSHAKE_MS + 4000))
run_hp "$tmp/hp-nego-timeout.out" yamux-nego-timeout --count 4 --min-ms $((NEGO_MS - 500)) \
  --wait-ms $((NEGO_MS + 4000)) &
p1=$!
run_hp "$tmp/hp-slow-silent.out" slow-silent --min-ms $min --wait-ms $wait &
p2=$!
run_hp "$tmp/hp-slow-dribble.out" slow-dribble --interval-ms 400 --min-ms $min --wait-ms $wait &
p3=$!
run_hp "$tmp/hp-slow-noise.out" slow-noise --min-ms $min --wait-ms $wait &
p4=$!
wait $p1 $p2 $p3 $p4
judge slow-silent pre LP2P_ERR_TIMEOUT "$tmp/hp-slow-silent.out"
judge slow-dribble pre LP2P_ERR_TIMEOUT "$tmp/hp-slow-dribble.out"
judge slow-noise pre LP2P_ERR_TIMEOUT "$tmp/hp-slow-noise.out"
judge yamux-nego-timeout stream LP2P_ERR_TIMEOUT "$tmp/hp-nego-timeout.out"
hid="$(sed -n 's/^peer-id //p' "$tmp/hp-nego-timeout.out" | head -1)"
n="$(grep -c "\"event\":\"inbound-stream-failed\",\"peer\":\"$hid\",.*\"error\":\"LP2P_ERR_TIMEOUT\"" "$tmp/srv.out")"
[ "$n" = 5 ] && ok "yamux-nego-timeout: 5 inbound-stream-failed LP2P_ERR_TIMEOUT events" \
  || bad "yamux-nego-timeout: 5 inbound-stream-failed LP2P_ERR_TIMEOUT events" "got $n"
limit0="$(grep -c '"event":"inbound-connection-failed",.*"error":"LP2P_ERR_LIMIT"' "$tmp/srv.out")"
f="$tmp/hp-pending.out"
run_hp "$f" pending --count $((PENDING_LIMIT + 36)) --expect-open $PENDING_LIMIT --min-ms $min --wait-ms $wait
limit1="$(grep -c '"event":"inbound-connection-failed",.*"error":"LP2P_ERR_LIMIT"' "$tmp/srv.out")"
if [ "$(cat "$f.rc")" = 0 ] && [ $((limit1 - limit0)) = 36 ] && grep -q "refused: LP2P_ERR_LIMIT" "$tmp/srv.err"; then
  ok "pending: $(grep '^ok:' "$f" | sed 's/^ok: pending: //'); node: 36 LP2P_ERR_LIMIT refusals"
else
  bad "pending-handshake limit ($PENDING_LIMIT) enforced" "$(tail -3 "$f"; echo "LIMIT events: $((limit1 - limit0))")"
fi
# established connections up to --max-inbound (js holds one), every later one refused at accept
f="$tmp/hp-conns.out"
limit0="$(grep -c '"event":"inbound-connection-failed",.*"error":"LP2P_ERR_LIMIT"' "$tmp/srv.out")"
run_hp "$f" conns --count $((INBOUND_LIMIT + 8)) --expect-open $((INBOUND_LIMIT - 1))
limit1="$(grep -c '"event":"inbound-connection-failed",.*"error":"LP2P_ERR_LIMIT"' "$tmp/srv.out")"
if [ "$(cat "$f.rc")" = 0 ] && [ $((limit1 - limit0)) = 9 ]; then
  ok "inbound limit: $(grep '^ok:' "$f" | sed 's/^ok: conns: //'); node: 9 LP2P_ERR_LIMIT refusals"
else
  bad "inbound-connection limit ($INBOUND_LIMIT incl. js) enforced" "$(grep -E '^(conns|ok|FAIL)' "$f" | tail -3; echo "LIMIT events: $((limit1 - limit0))")"
fi
group_end

# ---- 6: connection flood ----
group "6 flood"
rss_before="$(rss)"
limit0="$(grep -c '"event":"inbound-connection-failed",.*"error":"LP2P_ERR_LIMIT"' "$tmp/srv.out")"
tmo0="$(grep -c '"event":"inbound-connection-failed",.*"error":"LP2P_ERR_TIMEOUT"' "$tmp/srv.out")"
f="$tmp/hp-flood.out"
run_hp "$f" flood --count "$FLOOD" --expect-open $PENDING_LIMIT --hold-ms 1500 --wait-ms 30000 &
fpid=$!
for ((i = 0; i < 600; i++)); do grep -q '^flood-holding' "$f" 2>/dev/null && break; sleep 0.1; done
rss_flood="$(rss)"
wait $fpid
limit1="$(grep -c '"event":"inbound-connection-failed",.*"error":"LP2P_ERR_LIMIT"' "$tmp/srv.out")"
tmo1="$(grep -c '"event":"inbound-connection-failed",.*"error":"LP2P_ERR_TIMEOUT"' "$tmp/srv.out")"
# The flood settles over several seconds (SYN/data retransmits past the 128 backlog), longer than
# the handshake timeout: kept (pending) connections then time out and free their slot for another
# one. So: everything over the pending limit is refused (LP2P_ERR_LIMIT), except at most one
# pending generation per handshake-timeout period that closes with LP2P_ERR_TIMEOUT instead.
settle="$(sed -n 's/^flood-holding .*settle-ms=//p' "$f" | head -1)"
limits=$((limit1 - limit0)) tmos=$((tmo1 - tmo0))
tmo_max=$((PENDING_LIMIT * ((${settle:-0} + 1500) / HANDSHAKE_MS + 1)))
if [ "$(cat "$f.rc")" = 0 ] && [ "$tmos" -le "$tmo_max" ] && [ "$limits" -ge $((FLOOD - PENDING_LIMIT - tmos)) ]; then
  ok "flood: $(grep '^ok:' "$f" | sed 's/^ok: flood: //'); node: $limits LP2P_ERR_LIMIT refusals, $tmos handshake timeouts (settle ${settle} ms)"
else
  bad "flood: $FLOOD connections, all but the $PENDING_LIMIT pending refused" "$(cat "$f"; echo "LIMIT events: $limits, TIMEOUT events: $tmos (at most $tmo_max)")"
fi
sleep 1
rss_after="$(rss)"
peak="$(hwm)"
echo "       VmRSS: start ${rss0} KiB, before flood ${rss_before} KiB, during ${rss_flood} KiB, after ${rss_after} KiB; VmHWM ${peak} KiB"
[ "$rss_flood" -gt 0 ] && [ "$peak" -lt "$RSS_MAX" ] && ok "flood: peak VmRSS ${peak} KiB < $((RSS_MAX / 1024)) MiB" \
  || bad "flood: peak VmRSS < $((RSS_MAX / 1024)) MiB" "VmHWM ${peak} KiB, during flood ${rss_flood} KiB"
[ "$rss_after" -gt 0 ] && [ "$rss_after" -le $((rss_before + RSS_BACK)) ] \
  && ok "flood: VmRSS back near baseline (${rss_after} KiB <= ${rss_before} + $((RSS_BACK / 1024)) MiB)" \
  || bad "flood: VmRSS back near baseline" "before ${rss_before} KiB, after ${rss_after} KiB"
"$node_exe" ping "$laddr" --count 2 --interval 100 >"$tmp/post-flood.ping" 2>&1 \
  && ok "flood: a new connection (lp2p-node ping) works afterwards" \
  || bad "flood: a new connection works afterwards" "$(cat "$tmp/post-flood.ping")"
group_end

# ---- the js connection survived everything; clean shutdown ----
check "js: one connection, never closed, no ping failed" "$tmp/js.out" "count('connection:close') === 0" \
  "count('ping:error') === 0" "count('ping') >= 20"
grep -q "connection:close" "$tmp/js.out" && { echo "       js.err (connection monitor):"; grep -iE "error|abort" "$tmp/js.err" | tail -10 | sed 's/^/       /'; }
check "lp2p-node: the js connection was opened once and never closed" "$tmp/srv.out" \
  "all('connection-opened').filter(e => e.peer === '$jid').length === 1" \
  "all('connection-closed').filter(e => e.peer === '$jid').length === 0"
echo "       js pings: $(pings) ok, $(ping_errors) failed"
stop_pid "$lpid" INT
if [ "$stop_rc" = 0 ] && ! grep -q "Sanitizer" "$tmp/srv.err"; then
  ok "lp2p-node exits 0 on SIGINT$([ $asan = 1 ] && echo ', LeakSanitizer clean')"
else
  bad "lp2p-node exits 0 on SIGINT, sanitizers quiet" "rc=$stop_rc
$(grep -A15 Sanitizer "$tmp/srv.err" | head -30)"
fi
finish
