#!/usr/bin/env bash
# test_node_api.sh - `lp2p-node listen --api PATH` as a daemon: the unix socket is mode 0600; two
# clients at once send --control commands and each gets its own answers (ping of a real second
# node, dial, peers) while node events (listening, connection-opened) reach both; a bad line gets
# control-error and the node keeps serving; a client that disconnects mid-line or floods a line
# without newline (> 64 KiB: control-error, then dropped) does not hurt the node; a second node
# refuses a PATH held by a live node; a stale socket file (crash) is replaced; SIGTERM removes the
# socket; --data-dir is created 0700 and holds identity.key; the default identity is unchanged;
# --control on stdin keeps working next to --api; --help documents both.
# Clients are python3 (scripts/deps installs it). Env (set by ctest): LP2P_NODE, LP2P_SOURCE_DIR.
set -uo pipefail
src="${LP2P_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
node="${LP2P_NODE:-$src/build/lp2p-node}"
if [ ! -x "$node" ]; then
  echo "FAIL: lp2p-node not found at $node"; echo "0 passed, 1 failed"; exit 1
fi
py="$(command -v python3)" || { echo "FAIL: python3 not found (scripts/deps installs it)"; echo "0 passed, 1 failed"; exit 1; }
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/xdg"
mkdir -p "$HOME"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | head -30 | sed 's/^/       /'; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1" "${3:-}"; fi; }
wait_lines() { for _ in $(seq 50); do [ "$(wc -l <"$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
wait_sock() { for _ in $(seq 50); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }
stop() { kill -s "$2" "$1"; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; wait "$1"; rc=$?; }

# ---- a second node to ping and dial ----
"$node" listen --identity "$tmp/peer.key" >"$tmp/peer.out" 2>"$tmp/peer.err" &
ppid_=$!; pids+=($ppid_)
wait_lines "$tmp/peer.out" 1
peer_addr="$(head -n 1 "$tmp/peer.out")"
peer_id="${peer_addr##*/p2p/}"

# ---- the daemon: --api, --data-dir, text stdout, --control on stdin too ----
sock="$tmp/run/api.sock"
mkdir -p "$tmp/run"
mkfifo "$tmp/c.in"
exec 7<>"$tmp/c.in"
"$node" listen --api "$sock" --data-dir "$tmp/data/sub" --control <"$tmp/c.in" >"$tmp/d.out" 2>"$tmp/d.err" &
pid=$!; pids+=($pid)
wait_lines "$tmp/d.out" 1
wait_sock "$sock"
check "--api: the socket exists while the node runs, mode 0600" \
  '[ -S "$sock" ] && [ "$(stat -c %a "$sock")" = 600 ]' "$(ls -l "$sock" 2>&1) $(cat "$tmp/d.err")"
check "--data-dir: created with mode 0700 (parents too), identity.key inside" \
  '[ "$(stat -c %a "$tmp/data")" = 700 ] && [ "$(stat -c %a "$tmp/data/sub")" = 700 ] && [ -f "$tmp/data/sub/identity.key" ] && [ ! -e "$XDG_DATA_HOME/lp2p/identity.key" ]' \
  "$(ls -la "$tmp/data" "$tmp/data/sub" 2>&1)"
my_id="$("$node" id --identity "$tmp/data/sub/identity.key")"
check "--data-dir: the node's identity is DIR/identity.key" 'grep -q "/p2p/$my_id$" "$tmp/d.out"' "$(head -2 "$tmp/d.out") vs $my_id"

cat >"$tmp/clients.py" <<'EOF'
import socket, sys, time
sock_path, peer_addr, peer_id = sys.argv[1], sys.argv[2], sys.argv[3]
results = []
def check(name, cond, info=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else "\n       " + str(info)[:1500]), flush=True)

class Client:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(sock_path)
        self.buf = b""
        self.lines = []
    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else (data + "\n").encode())
    def expect(self, *subs, timeout=8.0):
        """first line (new or already seen) containing every substring, else None"""
        end = time.time() + timeout
        while True:
            for l in self.lines:
                if all(x in l for x in subs):
                    return l
            left = end - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return None
            if not d:
                return None
            self.buf += d
            while b"\n" in self.buf:
                l, self.buf = self.buf.split(b"\n", 1)
                self.lines.append(l.decode())
    def closed(self, timeout=8.0):
        """True once the node closed the connection (events before it are kept)"""
        end = time.time() + timeout
        while time.time() < end:
            self.s.settimeout(max(0.01, end - time.time()))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not d:
                return True
            self.buf += d
            while b"\n" in self.buf:
                l, self.buf = self.buf.split(b"\n", 1)
                self.lines.append(l.decode())
        return False

a, b = Client(), Client()
# both at once: each sends commands, each gets its own answers
a.send("ping " + peer_addr)
b.send("peers")
pa = a.expect('"event":"ping"', '"peer":"%s"' % peer_id, '"rtt_us":')
check("client A: ping of a second node answered (rtt_us)", pa is not None, a.lines)
pb = b.expect('"event":"peers"')
check("client B: peers answered at the same time", pb is not None, b.lines)
# node events reach both
check("node event connection-opened reaches both clients",
      a.expect('"event":"connection-opened"', peer_id) is not None and
      b.expect('"event":"connection-opened"', peer_id) is not None, (a.lines, b.lines))
b.send("dial " + peer_addr)
db = b.expect('"event":"dialed"', '"peer":"%s"' % peer_id)
check("client B: dial answered with the peer id", db is not None, b.lines)
a.send("listen /ip4/127.0.0.1/tcp/0")
check("listen from A: the listening event reaches A and B",
      a.expect('"event":"listening"') is not None and b.expect('"event":"listening"') is not None, (a.lines, b.lines))
# a command's result goes to the client that sent it only
check("results are per client: B got no ping result, A no peers/dialed result",
      b.expect('"event":"ping"', timeout=0.3) is None and a.expect('"event":"peers"', timeout=0.01) is None
      and a.expect('"event":"dialed"', timeout=0.01) is None, (a.lines, b.lines))
# a bad line: control-error to that client, the node keeps serving the other one
a.send("bogus words here")
ea = a.expect('"event":"control-error"', '"line":"bogus words"')
check("bad line: control-error to the client that sent it", ea is not None, a.lines)
b.lines.clear()
b.send("peers")
pb = b.expect('"event":"peers"', '"count":1')
check("after A's bad line the node still serves B (peers, count 1)", pb is not None, b.lines)
a.lines.clear()
a.send("peers")
check("... and A too", a.expect('"event":"peers"', '"count":1') is not None, a.lines)
# a client disconnecting mid-line
c = Client()
c.send(b"ping 12D3Koo")
c.s.close()
# a client flooding without newline: control-error, then dropped
f = Client()
sent = 0
try:
    chunk = b"x" * 8192
    while sent < 200 * 1024:
        f.s.sendall(chunk)
        sent += len(chunk)
except (BrokenPipeError, ConnectionResetError):
    pass
fe = f.expect('"event":"control-error"', "line too long")
check("flood without newline (> 64 KiB): control-error with the line's start", fe is not None and '"line":"xxxx' in fe,
      f.lines)
check("... then the node closes that client", f.closed(), f.lines)
b.lines.clear()
b.send("ping " + peer_id)
check("after a mid-line disconnect and a flood the node still serves B", b.expect('"event":"ping"', '"rtt_us":') is not None,
      b.lines)
# many quick clients, each with one command
okc = 0
for i in range(20):
    x = Client()
    x.send("peers")
    if x.expect('"event":"peers"') is not None:
        okc += 1
    x.s.close()
check("20 successive clients each get an answer", okc == 20, okc)
# a client that half-closes after its command still gets the answer
h = Client()
h.send("peers")
h.s.shutdown(socket.SHUT_WR)
check("a client that half-closes after its command still gets the answer", h.expect('"event":"peers"') is not None, h.lines)
# both still connected: the stop is announced to them
a.lines.clear()
b.lines.clear()
print("READY", flush=True)
sys.stdin.readline()  # the shell sends SIGTERM to the node, then a line here
check("SIGTERM: both clients get the stopping event, then EOF",
      a.expect('"event":"stopping"', '"signal":15') is not None and b.expect('"event":"stopping"') is not None
      and a.closed() and b.closed(), (a.lines, b.lines))
EOF

mkfifo "$tmp/py.in"
exec 6<>"$tmp/py.in"
"$py" "$tmp/clients.py" "$sock" "$peer_addr" "$peer_id" <"$tmp/py.in" >"$tmp/py.out" 2>&1 &
pypid=$!; pids+=($pypid)
for _ in $(seq 600); do grep -q '^READY$' "$tmp/py.out" && break; kill -0 $pypid 2>/dev/null || break; sleep 0.1; done

# --control on stdin next to --api: its results go to stdout (text mode here)
echo peers >&7
for _ in $(seq 50); do grep -q '^peers: 1$' "$tmp/d.out" && break; sleep 0.1; done
check "--control on stdin keeps working with --api (text stdout)" 'grep -q "^peers: 1$" "$tmp/d.out"' "$(cat "$tmp/d.out")"
check "stdout stays text with --api (no JSON there)" '! grep -q "^{" "$tmp/d.out"' "$(head -5 "$tmp/d.out")"

# a second node on the same PATH: refused, the first one's socket untouched
"$node" listen --api "$sock" --identity "$tmp/x.key" >"$tmp/x.out" 2>"$tmp/x.err"; r=$?
check "a PATH held by a live node: refused (exit 1, one line)" \
  '[ $r = 1 ] && [ "$(wc -l <"$tmp/x.err")" = 1 ] && grep -q "in use by a running node" "$tmp/x.err" && [ -S "$sock" ]' \
  "rc=$r $(cat "$tmp/x.err")"

stop $pid TERM
echo go >&6
wait $pypid
grep -E '^(ok|FAIL) |^       ' "$tmp/py.out" | while IFS= read -r l; do echo "$l"; done
pass=$((pass + $(grep -c '^ok ' "$tmp/py.out"))); fail=$((fail + $(grep -c '^FAIL ' "$tmp/py.out")))
[ "$(grep -c '^ok \|^FAIL ' "$tmp/py.out")" -eq 15 ] || bad "client script ran to its end" "$(tail -20 "$tmp/py.out")"
check "SIGTERM: exit 0, the socket file is removed, stderr empty" \
  '[ $rc = 0 ] && [ ! -e "$sock" ] && [ ! -s "$tmp/d.err" ]' "rc=$rc $(ls -la "$tmp/run") $(cat "$tmp/d.err")"

# ---- a stale socket file (a node that crashed) is replaced ----
"$node" listen --api "$sock" --json --identity "$tmp/k2.key" >"$tmp/s.out" 2>"$tmp/s.err" &
pid=$!; pids+=($pid)
wait_lines "$tmp/s.out" 1
wait_sock "$sock"
kill -9 $pid; wait $pid 2>/dev/null
check "SIGKILL leaves the socket file behind (the stale case)" '[ -S "$sock" ]'
"$node" listen --api "$sock" --json --identity "$tmp/k2.key" >"$tmp/s.out" 2>"$tmp/s.err" &
pid=$!; pids+=($pid)
wait_lines "$tmp/s.out" 1
out="$("$py" - "$sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1]); s.sendall(b"peers\n")
s.settimeout(8); buf = b""
while b"\n" not in buf:
    d = s.recv(4096)
    if not d: break
    buf += d
print(buf.decode().strip())
EOF
)"
check "a stale socket file is replaced: the new node serves on it" \
  '[[ "$out" == "{\"event\":\"peers\",\"count\":0,\"peers\":[]}" ]] && [ "$(stat -c %a "$sock")" = 600 ]' "$out $(cat "$tmp/s.err")"
stop $pid INT
check "SIGINT: exit 0, socket removed" '[ $rc = 0 ] && [ ! -e "$sock" ]' "rc=$rc"

# ---- PATH that is not a socket; default data dir and identity unchanged ----
echo keep >"$tmp/file"
"$node" listen --api "$tmp/file" --identity "$tmp/k3.key" >/dev/null 2>"$tmp/f.err"; r=$?
check "--api on a regular file: refused, the file is kept" \
  '[ $r = 1 ] && grep -q "is not a socket" "$tmp/f.err" && [ "$(cat "$tmp/file")" = keep ]' "rc=$r $(cat "$tmp/f.err")"
"$node" listen >"$tmp/def.out" 2>"$tmp/def.err" &
pid=$!; pids+=($pid)
wait_lines "$tmp/def.out" 1
want="$("$node" id)"
check "no --data-dir: \$XDG_DATA_HOME/lp2p (0700) with the identity 'lp2p-node id' uses" \
  '[ "$(stat -c %a "$XDG_DATA_HOME/lp2p")" = 700 ] && [ -f "$XDG_DATA_HOME/lp2p/identity.key" ] && grep -q "/p2p/$want$" "$tmp/def.out"' \
  "$(ls -la "$XDG_DATA_HOME/lp2p") $(head -1 "$tmp/def.out") vs $want"
stop $pid TERM

"$node" listen --help >"$tmp/h.out"
check "--help documents --api and --data-dir" \
  'grep -q "^  --api PATH " "$tmp/h.out" && grep -q "^  --data-dir DIR " "$tmp/h.out" && grep -q "^--api PATH serves" "$tmp/h.out" && grep -q "^--data-dir DIR holds" "$tmp/h.out"' \
  "$(cat "$tmp/h.out")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
