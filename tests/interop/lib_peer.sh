# tests/interop/lib_peer.sh - the interop matrix's view of "the other peer" (sourced after
# lib_node.sh by tests/interop/peer_*.sh). PEER_IMPL=js|go|rust (default js) picks the peer;
# all three speak the contract of tests/interop/js/peer.mjs. Provides:
#   $impl $agent_prefix $early_muxer   the peer's name, its identify agent prefix, and whether it
#                                      offers yamux inside the Noise handshake (noise mode)
#   peer_run ARGS...                   run the peer in the foreground
#   peer_bg OUT ARGS...                run it in the background (stdout to OUT); sets bpid
#   start_peer NAME ARGS...            peer --listen 127.0.0.1 ARGS in the background; sets
#                                      paddr (first listen address with /p2p/), ppid, pid_of
#   peer_keygen TYPE FILE              write a key of TYPE (Ed25519 secp256k1 RSA ECDSA) the peer
#                                      can load; prints the peer id (fails if no tool can)
#   case_begin CASE DIR / case_end     one matrix cell: every ok/bad in between decides it.
#                                      DIR: "lp2p->X" (lp2p dials / acts) or "X->lp2p".
#                                      Results go to $matrix_dir/<case>.<impl>.<dir>.json; a failed
#                                      cell listed in known_failures.tsv is "known" (with the
#                                      upstream reason) and does not fail the test.
# A peer binary that is not built (scripts/test --no-go / --no-rust) makes the test exit 77
# (ctest SKIP) with the reason on stdout.
impl="${PEER_IMPL:-js}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/lp2p"
go_peer="${LP2P_GO_PEER:-$cache/bin/go-peer}"
rust_peer="${LP2P_RUST_PEER:-$cache/bin/rust-peer}"
matrix_dir="${LP2P_MATRIX_DIR:-${LP2P_BUILD_DIR:-$src/build}/interop-matrix}"
known_file="$src/tests/interop/known_failures.tsv"
known=0

case "$impl" in
  js) peer_cmd=("$js" "$peer"); agent_prefix="js-libp2p/"; early_muxer=1 ;;
  go) peer_cmd=("$go_peer"); agent_prefix="go-libp2p/"; early_muxer=1 ;;
  rust) peer_cmd=("$rust_peer"); agent_prefix="rust-libp2p/"; early_muxer=0 ;;
  *) echo "FAIL: PEER_IMPL must be js, go or rust (got '$impl')"; echo "0 passed, 1 failed"; exit 1 ;;
esac
if [ "$impl" != js ] && [ ! -x "${peer_cmd[0]}" ]; then
  echo "SKIP: the $impl peer is not built (${peer_cmd[0]} missing; scripts/deps builds it, scripts/test --no-$impl skips it)"
  exit 77
fi
mkdir -p "$matrix_dir"

peer_run() { "${peer_cmd[@]}" "$@"; }
# peer_bg OUT ARGS... : the peer in the background, stdout to OUT (stderr to OUT.err); sets bpid to the
# peer process itself (not a subshell: the tests signal it)
peer_bg() {
  local o="$1"; shift
  "${peer_cmd[@]}" "$@" >"$o" 2>"$o.err" &
  bpid=$!
  _pids+=("$bpid")
}

start_peer() {
  local name="$1"; shift
  "${peer_cmd[@]}" --listen /ip4/127.0.0.1/tcp/0 --timeout 300 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  ppid=$!
  _pids+=("$ppid")
  paddr="$(wait_event "$tmp/$name.out" listening 30 addrs)" || paddr=""
  [ -n "$paddr" ] || { echo "       $impl peer did not start:"; head -20 "$tmp/$name.err" | sed 's/^/       /'; }
}

# peer_keygen TYPE FILE: lp2p-node writes Ed25519/secp256k1/RSA keys in the canonical protobuf
# every implementation reads (test_js_keys.sh); ECDSA keys come from the go peer (--keygen).
peer_keygen() {
  local type="$1" file="$2"
  case "$type" in
    Ed25519|secp256k1|RSA)
      "$node_exe" id --identity "$file" --key-type "$(tr '[:upper:]' '[:lower:]' <<<"$type")" | head -n 1 ;;
    ECDSA)
      [ -x "$go_peer" ] || { echo "no ECDSA key generator (the go peer is not built)" >&2; return 1; }
      "$go_peer" --keygen ECDSA "$file" ;;
    *) return 1 ;;
  esac
}

_case="" _case_dir="" _case_fail0=0
case_begin() { _case="$1" _case_dir="$2" _case_fail0=$fail; }
case_end() {
  local status=pass reason="" fails=$((fail - _case_fail0))
  if [ "$fails" -gt 0 ]; then
    status=fail
    reason="$(awk -F'\t' -v i="$impl" -v c="$_case" -v d="$_case_dir" \
      '$1 == i && $2 == c && ($3 == d || $3 == "*") { print $4; exit }' "$known_file" 2>/dev/null)"
    if [ -n "$reason" ]; then
      status=known fail=$_case_fail0 known=$((known + 1))
      echo "KNOWN $_case ($impl, $_case_dir): $reason"
    fi
  fi
  local f="$matrix_dir/$_case.$impl.${_case_dir/->/-to-}.json"
  "$js" -e 'const [c, i, d, s, r] = process.argv.slice(1); console.log(JSON.stringify({ case: c, impl: i, dir: d, status: s, reason: r || undefined }))' \
    "$_case" "$impl" "$_case_dir" "$status" "$reason" >"$f"
}

peer_finish() {
  echo "$pass passed, $fail failed, $known known failures ($impl)"
  [ "$fail" = 0 ]
  exit $?
}

# lp2p's debug line for the way the muxer was agreed
mux_line() { [ "$1" = noise ] && echo "muxer from extension" || echo "muxer via multistream"; }
# the mode the peer actually uses when asked for MODE (rust has no early negotiation)
peer_mode() { [ "$1" = noise ] && [ "$early_muxer" = 1 ] && echo noise || echo mss; }
now_ms() { date +%s%3N; }

# ==== ctl peers (PEERS-CONTRACT.md; owner: peers-jsgo) ========================================
# The stdin-driven ctl mode of the three peers (kad, mdns, gossipsub, request-response):
#   start_ctl_peer NAME ARGS...   start the ctl peer of PEER_IMPL (js|go|rust; per call:
#                                 `PEER_IMPL=go start_ctl_peer b --kad server`) with ARGS, stdin
#                                 from the FIFO $tmp/NAME.in, stdout $tmp/NAME.out, stderr
#                                 $tmp/NAME.err; watchdog --timeout ${CTL_TIMEOUT:-600}. Waits for
#                                 "listening" and sets caddr (first listen addr with /p2p/),
#                                 cpeer (peer id), cpid (pid); empty caddr/cpeer = did not start.
#   ctl_cmd NAME LINE             send one command line
#   ctl_wait NAME EVENT [JQ-FILTER] [TIMEOUT]
#                                 wait (default 30 s) for the oldest event EVENT of NAME that
#                                 satisfies JQ-FILTER (a jq expression over the event object,
#                                 e.g. '.topic == "t" and .ok'; default true) and that no earlier
#                                 ctl_wait NAME returned; print it as one JSON line. Exit 1 on
#                                 timeout (message on stderr). Events are never consumed by
#                                 non-matching waits, so waiting for B then for an earlier A works.
#   ctl_count NAME EVENT [JQ-FILTER]   how many such events NAME has written so far (all of them)
#   ctl_poll NAME LINE EVENT JQ-FILTER [TIMEOUT]
#                                 send LINE (a query such as "kad-table" or "mesh t") every 0.5 s
#                                 until its result EVENT satisfies JQ-FILTER (e.g. '.count >= 1');
#                                 print that event; exit 1 on timeout (default 30 s). Every result it
#                                 reads is consumed.
#   ctl_quit NAME                 send quit and wait (max 10 s) for the process to exit
# Uses jq (scripts/deps installs it).
declare -A _ctl_pid=()
start_ctl_peer() {
  local name="$1"; shift
  local which="${PEER_IMPL:-$impl}" ev
  local -a cmd
  case "$which" in
    js) cmd=("$js" "$ctl") ;;
    go) cmd=("$go_peer" ctl) ;;
    rust) cmd=("$rust_peer" ctl) ;;
    *) echo "start_ctl_peer: PEER_IMPL must be js, go or rust (got '$which')" >&2; return 1 ;;
  esac
  _fifo "$name"
  "${cmd[@]}" --timeout "${CTL_TIMEOUT:-600}" "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  cpid=$!
  _pids+=("$cpid")
  _ctl_pid[$name]=$cpid
  : >"$tmp/$name.used"
  caddr="" cpeer=""
  if ev="$(ctl_wait "$name" listening true "${CTL_START_SEC:-30}")"; then
    cpeer="$(jq -r '.peerId // empty' <<<"$ev")"
    caddr="$(jq -r '[.addrs[] | select(contains("/p2p/"))][0] // empty' <<<"$ev")"
  fi
  [ -n "$caddr" ] || { echo "       $which ctl peer '$name' did not start:"; head -20 "$tmp/$name.err" | sed 's/^/       /'; }
}

ctl_cmd() { printf '%s\n' "$2" >&"${_fds[$1]}"; }

# _ctl_find NAME EVENT FILTER [all]: "LINENO JSON" of the first unused match (or the count with all)
_ctl_find() {
  local used="[$(cat "$tmp/$1.used" 2>/dev/null)]"
  jq -Rrn --arg ev "$2" --argjson used "$used" --arg mode "${4:-first}" "
    [inputs | (fromjson? // {})] | to_entries | map(.key += 1)
    | map(select(.value.event == \$ev and (try (.value | ($3)) catch false)))
    | if \$mode == \"all\" then length
      else map(select(.key as \$k | any(\$used[]; . == \$k) | not)) | first | select(. != null)
           | \"\\(.key) \\(.value | tojson)\" end" "$tmp/$1.out" 2>/dev/null
}

ctl_wait() {
  local name="$1" ev="$2" filter="${3:-true}" sec="${4:-30}" hit
  local end=$((SECONDS + sec))
  [ -n "$filter" ] || filter=true
  while :; do
    hit="$(_ctl_find "$name" "$ev" "$filter")"
    if [ -n "$hit" ]; then
      # a file, not a variable: ctl_wait usually runs in $(...)
      if [ -s "$tmp/$name.used" ]; then printf ',%s' "${hit%% *}"; else printf '%s' "${hit%% *}"; fi >>"$tmp/$name.used"
      printf '%s\n' "${hit#* }"
      return 0
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      echo "ctl_wait: no '$ev' event matching '$filter' from $name after $sec s" >&2
      return 1
    fi
    sleep 0.1
  done
}

ctl_count() { _ctl_find "$1" "$2" "${3:-true}" all; }

ctl_poll() {
  local name="$1" line="$2" ev="$3" filter="$4" sec="${5:-30}" got
  local end=$((SECONDS + sec))
  while :; do
    ctl_cmd "$name" "$line"
    got="$(ctl_wait "$name" "$ev" true 10)" || return 1
    if [ "$(jq -r "try ($filter) catch false" <<<"$got")" = true ]; then printf '%s\n' "$got"; return 0; fi
    if [ "$SECONDS" -ge "$end" ]; then
      echo "ctl_poll: '$line' on $name never gave $ev matching '$filter' in $sec s; last: $got" >&2
      return 1
    fi
    sleep 0.5
  done
}

ctl_quit() {
  local p="${_ctl_pid[$1]:-}" i
  ctl_cmd "$1" quit
  [ -n "$p" ] || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && { kill -9 "$p" 2>/dev/null; return 1; }
  wait "$p" 2>/dev/null
  return 0
}
# ==== end of ctl peers ========================================================================
