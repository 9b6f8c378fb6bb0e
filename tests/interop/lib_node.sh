# tests/interop/lib_node.sh - shared helpers for the lp2p-node <-> js-libp2p interop scripts
# (sourced, not a test itself). Provides:
#   $src $node_exe $js $peer $ctl $events $keygen $tmp   paths (tmp is removed on exit)
#   ok NAME / bad NAME [DETAIL]                            count a result
#   check NAME LOG EXPR...                                 events.mjs check over a JSON-lines log
#   start_lp2p NAME ARGS...    `lp2p-node listen --json ARGS` in the background, stdin from
#                              $tmp/NAME.in (a FIFO kept open: write commands with lp2p_cmd);
#                              waits for its first "listening" event; sets laddr, lpid
#   lp2p_cmd NAME LINE         send a --control command
#   start_js NAME ARGS...      peer.mjs --listen 127.0.0.1 ARGS in the background; sets jaddr, jpid
#   start_ctl NAME ARGS...     ctl-peer.mjs ARGS (stdin FIFO like start_lp2p); sets jaddr, jpid
#   js_cmd NAME LINE           send a ctl-peer command
#   wait_event LOG EVENT [SEC] [FIELD]   events.mjs wait
#   wait_count LOG EXPR SEC    poll until the events.mjs expression over LOG is true
#   finish                     print "N passed, N failed" and exit accordingly
# Every background process is killed on exit (trap), and node processes also exit when
# their parent goes away.
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node_exe="${LP2P_NODE:-$src/build/lp2p-node}"
js="$src/scripts/node"
peer="$src/tests/interop/js/peer.mjs"
ctl="$src/tests/interop/js/ctl-peer.mjs"
events="$src/tests/interop/js/events.mjs"
keygen="$src/tests/interop/js/keygen.mjs"
pass=0 fail=0

if ! "$js" --version >/dev/null 2>&1; then
  echo "FAIL: pinned Node is missing (run scripts/deps)"; echo "0 passed, 1 failed"; exit 1
fi
if [ ! -x "$node_exe" ]; then
  echo "FAIL: lp2p-node not found at $node_exe"; echo "0 passed, 1 failed"; exit 1
fi

tmp="$(mktemp -d)"
declare -a _pids=()
declare -A _fds=()
_cleanup() {
  for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${_pids[@]}"; do kill -0 "$p" 2>/dev/null && sleep 0.2 && kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] && echo "logs kept in $tmp" || rm -rf "$tmp"
}
trap _cleanup EXIT
export XDG_DATA_HOME="$tmp/xdg" # never touch the user's default identity

ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() {
  echo "FAIL $1"; fail=$((fail + 1))
  [ $# -gt 1 ] && printf '%s\n' "$2" | head -40 | sed 's/^/       /'
  return 0
}

# check NAME LOG EXPR... : one result per call; on failure show the failed expressions and the log
check() {
  local name="$1" log="$2"; shift 2
  local out
  if out="$("$js" "$events" check "$log" --quiet "$@")"; then
    ok "$name"
  else
    bad "$name" "$out"
    echo "       --- $log:"; head -c 6000 "$log" | sed 's/^/       /'
  fi
}

wait_event() { "$js" "$events" wait "$@"; }

# wait_count LOG EXPR SEC : true once EXPR (events.mjs binding syntax) holds (checked at least once)
wait_count() {
  local log="$1" expr="$2" sec="$3" i
  for ((i = 0; ; i++)); do
    "$js" "$events" check "$log" --quiet "$expr" >/dev/null 2>&1 && return 0
    [ "$i" -ge $((sec * 5)) ] && return 1
    sleep 0.2
  done
}

_fifo() { # _fifo NAME : creates $tmp/NAME.in and keeps a writer open on a new fd
  local f="$tmp/$1.in" fd
  mkfifo "$f"
  exec {fd}<>"$f"
  _fds[$1]=$fd
}

start_lp2p() {
  local name="$1"; shift
  _fifo "$name"
  ${LP2P_WRAP:-} "$node_exe" listen --json --control "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  lpid=$!
  _pids+=("$lpid")
  laddr="$(wait_event "$tmp/$name.out" listening "${LP2P_START_SEC:-20}" addr)" || laddr=""
  [ -n "$laddr" ] || { echo "       lp2p-node did not start:"; head -20 "$tmp/$name.err" | sed 's/^/       /'; }
}

lp2p_cmd() { printf '%s\n' "$2" >&"${_fds[$1]}"; }

start_js() {
  local name="$1"; shift
  "$js" "$peer" --listen /ip4/127.0.0.1/tcp/0 --timeout 300 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  jpid=$!
  _pids+=("$jpid")
  jaddr="$(wait_event "$tmp/$name.out" listening 30 addrs)" || jaddr=""
  [ -n "$jaddr" ] || { echo "       js peer did not start:"; head -20 "$tmp/$name.err" | sed 's/^/       /'; }
}

start_ctl() {
  local name="$1"; shift
  _fifo "$name"
  "$js" "$ctl" --timeout "${CTL_TIMEOUT:-600}" "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  jpid=$!
  _pids+=("$jpid")
  jaddr="$(wait_event "$tmp/$name.out" listening 30 addrs)" || jaddr=""
  [ -n "$jaddr" ] || { echo "       js ctl-peer did not start:"; head -20 "$tmp/$name.err" | sed 's/^/       /'; }
}

js_cmd() { printf '%s\n' "$2" >&"${_fds[$1]}"; }

# stop_pid PID [SIGNAL] : signal and wait (max 20 s); sets stop_rc
stop_pid() {
  local p="$1" sig="${2:-INT}" i
  kill -s "$sig" "$p" 2>/dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$p" 2>/dev/null; then kill -9 "$p" 2>/dev/null; fi
  wait "$p" 2>/dev/null; stop_rc=$?
}

finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" = 0 ]
  exit $?
}
