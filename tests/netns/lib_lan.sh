# tests/netns/lib_lan.sh - lp2p-node hosts on a netns LAN (sourced after lib_netns.sh; needs python3).
#   lan_start NAME I ARGS...   `lp2p-node listen --json --control ARGS` inside host I, stdin from a
#                              FIFO (write with lan_cmd), stdout to $lan_tmp/NAME.out; waits for the
#                              first "listening" event; sets lan_peer[NAME] (peer id), lan_pid[NAME]
#   lan_cmd NAME LINE          one control line
#   lan_wait NAME EXPR [SEC]   waits (default 10 s) until some JSON event line of NAME's output makes
#                              the python expression EXPR true (the event is `e`, a dict); prints
#                              that line; fails (1) on timeout
#   lan_count NAME EXPR        number of event lines of NAME for which EXPR holds
#   lan_stop NAME [SIG]        signal (default: `quit` on the control FIFO) and wait (max 10 s)
#   ok / bad / lan_finish      counting, like lib_node.sh
# Everything started here is killed by pid on exit (before lib_netns.sh removes the namespaces).
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node_exe="${LP2P_NODE:-$src/build/lp2p-node}"
pass=0 fail=0
lan_tmp="$(mktemp -d)"
declare -A lan_peer=() lan_pid=() _lan_fd=()
if [ ! -x "$node_exe" ]; then echo "FAIL: lp2p-node not found at $node_exe"; echo "0 passed, 1 failed"; exit 1; fi
command -v python3 >/dev/null || { echo "SKIP: python3 is missing"; exit 77; }
_lan_cleanup() {
  local p
  for p in "${lan_pid[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${lan_pid[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "${KEEP_TMP:-}" ] && echo "logs kept in $lan_tmp" || rm -rf "$lan_tmp"
}
trap _lan_cleanup EXIT
export XDG_DATA_HOME="$lan_tmp/xdg"

ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() {
  echo "FAIL $1"; fail=$((fail + 1))
  [ $# -gt 1 ] && printf '%s\n' "$2" | head -30 | sed 's/^/       /'
  return 0
}
lan_finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

_lan_py='
import json, sys, time
path, expr, sec, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
code = compile(expr, "expr", "eval")
end = time.time() + sec
while True:
    n = 0
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        try:
            hit = eval(code, {"e": e})
        except Exception:
            hit = False
        if hit:
            if mode == "wait":
                print(line); sys.exit(0)
            n += 1
    if mode == "count":
        print(n); sys.exit(0)
    if time.time() >= end:
        sys.exit(1)
    time.sleep(0.05)
'
lan_wait() { python3 -c "$_lan_py" "$lan_tmp/$1.out" "$2" "${3:-10}" wait; }
lan_count() { python3 -c "$_lan_py" "$lan_tmp/$1.out" "$2" 0 count; }

lan_start() {
  local name="$1" host="$2" fd; shift 2
  mkfifo "$lan_tmp/$name.in"
  exec {fd}<>"$lan_tmp/$name.in"
  _lan_fd[$name]=$fd
  ip netns exec "${netns_name[$host]}" ${LP2P_WRAP:-} "$node_exe" listen --json --control \
    --data-dir "$lan_tmp/data-$name" "$@" <"$lan_tmp/$name.in" >"$lan_tmp/$name.out" 2>"$lan_tmp/$name.err" &
  lan_pid[$name]=$!
  local l
  l="$(lan_wait "$name" 'e["event"] == "listening"' 20)" || {
    echo "       $name did not start:"; head -20 "$lan_tmp/$name.err" | sed 's/^/       /'; return 1; }
  lan_peer[$name]="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["peer_id"])' "$l")"
}

lan_cmd() { printf '%s\n' "$2" >&"${_lan_fd[$1]}"; }

lan_stop() {
  local name="$1" sig="${2:-}" p="${lan_pid[$1]}" i
  if [ -z "$sig" ]; then lan_cmd "$name" quit; else kill -s "$sig" "$p" 2>/dev/null; fi
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  unset 'lan_pid[$name]'
}
