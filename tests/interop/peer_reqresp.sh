#!/usr/bin/env bash
# peer_reqresp.sh - interop matrix: request-response (one stream per request, JSON body, FIN,
# response read to EOF: rust-libp2p's request_response json codec) between lp2p (lp2p/reqresp.h,
# through tests/tools/rr_tool) and the ctl peer of PEER_IMPL=js|go|rust (PEERS-CONTRACT.md:
# `--reqresp PROTOCOL` answers {"echo": <request>, "from": <its id>}; {"omit": true} is dropped;
# {"sleep_ms": N} is answered after N ms), both directions:
#   reqresp           lp2p->X: a request gets X's echo with X's id; X saw the request
#                     X->lp2p: X's request gets lp2p's echo; lp2p reports the response sent
#   reqresp-omission  lp2p->X: X drops the channel -> RESPONSE_OMISSION (rust closes the stream
#                     without a body); X->lp2p: lp2p drops it -> X's request fails, lp2p reports
#                     response-omission
#   reqresp-timeout   lp2p->X: X answers after 3 s, lp2p's timeout is 500 ms -> timeout
#   reqresp-unsupported  lp2p->X on a protocol X does not serve -> unsupported-protocol
# Env (set by ctest): PEER_IMPL, LP2P_NODE, LP2P_SOURCE_DIR, LP2P_BUILD_DIR, LP2P_TOOLS_DIR.
. "$(dirname "${BASH_SOURCE[0]}")/lib_node.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_peer.sh"

rr="${LP2P_TOOLS_DIR:-${LP2P_BUILD_DIR:-$src/build}/tests}/rr_tool"
[ -x "$rr" ] || { echo "FAIL: rr_tool not built ($rr)"; echo "0 passed, 1 failed"; exit 1; }
command -v jq >/dev/null || { echo "SKIP: jq is missing (scripts/deps installs it)"; exit 77; }
if [ "$impl" = js ] && ! grep -q reqresp "$ctl"; then
  echo "SKIP: the js ctl peer has no --reqresp yet (PEERS-CONTRACT.md; peers-jsgo)"; exit 77
fi
P=/lp2p-test/json/1.0.0

# jqok NAME JSON FILTER : ok when FILTER (jq) holds for JSON
jqok() {
  if [ -n "$2" ] && jq -e "$3" >/dev/null 2>&1 <<<"$2"; then ok "$1"; else bad "$1" "got: ${2:-(nothing)}"; fi
}

start_ctl_peer x --reqresp "$P"
if [ -z "$caddr" ] && grep -q ERR_MODULE_NOT_FOUND "$tmp/x.err" 2>/dev/null; then
  echo "SKIP: the js ctl peer's packages are not installed (npm ci in tests/interop)"; exit 77
fi
if [ -z "$caddr" ]; then bad "$impl ctl peer started with --reqresp"; peer_finish; fi

# ---- lp2p -> X ----
case_begin reqresp "lp2p->X"
out="$("$rr" request "$caddr" "$P" '{"hello":"from lp2p","n":1}' 5000 2>"$tmp/rr1.err")"
rc=$?
jqok "lp2p->$impl: response with X's echo and id (rc=$rc)" "$out" \
  ".outcome == \"response\" and (.body | fromjson | .echo.hello == \"from lp2p\" and .echo.n == 1 and .from == \"$cpeer\")"
ev="$(ctl_wait x request '.body.hello == "from lp2p"' 10)"
jqok "lp2p->$impl: X saw the request from lp2p on $P" "$ev" ".protocol == \"$P\""
case_end

case_begin reqresp-omission "lp2p->X"
out="$("$rr" request "$caddr" "$P" '{"omit":true}' 5000 2>>"$tmp/rr1.err")"
jqok "lp2p->$impl: dropped channel -> response-omission" "$out" '.outcome == "response-omission"'
case_end

case_begin reqresp-timeout "lp2p->X"
out="$("$rr" request "$caddr" "$P" '{"sleep_ms":3000}' 500 2>>"$tmp/rr1.err")"
jqok "lp2p->$impl: answer after 3 s, timeout 500 ms -> timeout" "$out" '.outcome == "timeout" and .error == "LP2P_ERR_TIMEOUT"'
case_end

case_begin reqresp-unsupported "lp2p->X"
out="$("$rr" request "$caddr" /lp2p-test/not-served/1.0.0 '{}' 5000 2>>"$tmp/rr1.err")"
jqok "lp2p->$impl: protocol X does not serve -> unsupported-protocol" "$out" '.outcome == "unsupported-protocol"'
case_end

# ---- X -> lp2p ----
_fifo lp
"$rr" serve "$P" <"$tmp/lp.in" >"$tmp/lp.out" 2>"$tmp/lp.err" &
_pids+=($!)
for ((i = 0; i < 100; i++)); do grep -q '"listening"' "$tmp/lp.out" 2>/dev/null && break; sleep 0.1; done
laddr="$(jq -r 'select(.event == "listening") | .addr' "$tmp/lp.out" 2>/dev/null | head -n 1)"
lpeer="${laddr##*/p2p/}"
case_begin reqresp "X->lp2p"
if [ -z "$laddr" ]; then
  bad "X->lp2p: rr_tool serve started" "$(head -5 "$tmp/lp.err")"
else
  ctl_cmd x "dial $laddr"
  ctl_wait x dialed true 10 >/dev/null
  ctl_cmd x "request $lpeer $P {\"hello\":\"from $impl\"}"
  ev="$(ctl_wait x response true 15)"
  jqok "$impl->lp2p: response with lp2p's echo and id" "$ev" \
    ".ok == true and (.body | (if type == \"string\" then fromjson else . end) | .echo.hello == \"from $impl\" and .from == \"$lpeer\")"
  for ((i = 0; i < 50; i++)); do grep -q '"inbound"' "$tmp/lp.out" && break; sleep 0.1; done
  jqok "$impl->lp2p: lp2p reports the response sent" "$(grep '"inbound"' "$tmp/lp.out" | head -n 1)" \
    ".outcome == \"response\" and .peer == \"$cpeer\""
fi
case_end

case_begin reqresp-omission "X->lp2p"
if [ -n "$laddr" ]; then
  ctl_cmd x "request $lpeer $P {\"omit\":true}"
  ev="$(ctl_wait x response true 15)"
  jqok "$impl->lp2p: lp2p dropped the channel -> X's request fails" "$ev" '.ok == false'
  for ((i = 0; i < 50; i++)); do [ "$(grep -c '"inbound"' "$tmp/lp.out")" -ge 2 ] && break; sleep 0.1; done
  jqok "$impl->lp2p: lp2p reports response-omission" "$(grep '"inbound"' "$tmp/lp.out" | sed -n 2p)" \
    '.outcome == "response-omission"'
fi
case_end

ctl_quit x
peer_finish
