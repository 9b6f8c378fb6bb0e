#!/usr/bin/env python3
"""bench/mdns_bench.py - mDNS discovery benchmark driver (run by bench/mdns_bench inside namespaces
that script made). Implementations: lp2p (lp2p-node listen --mdns), js / go / rust (the ctl peers of
tests/interop, --mdns). Output: one JSON object on stdout.

  timing  --impl I --ns A B --runs N    N times: start a node of I in A, then one in B; the time from
                                        B's spawn to the moment both have discovered each other
                                        (also from B's "listening" line); both stopped after each run
  traffic --impl I --ns A B S --warmup S --window S
                                        a pair of I in A and B; a listener in S counts every mDNS
                                        multicast datagram (IPv4 224.0.0.251 and IPv6 ff02::fb, port
                                        5353) per source address during the window that follows the
                                        warm-up: packets and bytes per minute per node, queries and
                                        responses apart, and each packet's time (s from the start)
"""
import json, os, select, socket, struct, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE = os.environ.get("LP2P_NODE", os.path.join(ROOT, "build", "lp2p-node"))
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lp2p", "bin")


def cmd_for(impl, tmp, timeout=600):
    if impl == "lp2p":
        return [NODE, "listen", "--json", "--control", "--data-dir", tmp, "--listen", "/ip4/0.0.0.0/tcp/0", "--mdns"]
    if impl == "js":
        return [os.path.join(ROOT, "scripts", "node"), os.path.join(ROOT, "tests", "interop", "js", "ctl-peer.mjs"),
                "--listen", "/ip4/0.0.0.0/tcp/0", "--mdns", "--timeout", str(int(timeout))]
    return [os.path.join(CACHE, impl + "-peer"), "ctl", "--listen", "/ip4/0.0.0.0/tcp/0", "--mdns", "--timeout",
            str(int(timeout))]


class Proc:
    def __init__(self, impl, ns, tmp, timeout=600):
        self.t_spawn = time.monotonic()
        self.p = subprocess.Popen(["ip", "netns", "exec", ns] + cmd_for(impl, tmp, timeout), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        self.buf = b""
        self.peer = None
        self.t_listen = None
        self.found = {}  # peer -> time first discovered

    def pump(self):
        chunk = os.read(self.p.stdout.fileno(), 65536)
        if not chunk:
            return False
        now = time.monotonic()
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                e = json.loads(line)
            except ValueError:
                continue
            ev = e.get("event")
            if ev == "listening" and self.peer is None:
                self.peer = e.get("peer_id") or e.get("peerId")
                self.t_listen = now
            elif ev == "peer-discovered" and e.get("peer") not in self.found:
                self.found[e.get("peer")] = now
        return True

    def stop(self):
        try:
            self.p.stdin.write(b"quit\n")
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def pump_until(procs, cond, timeout):
    end = time.monotonic() + timeout
    while not cond():
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([p.p.stdout for p in procs if p.p.stdout], [], [], min(left, 0.5))
        for p in procs:
            if p.p.stdout in r and not p.pump():
                p.p.stdout.close()
                p.p.stdout = None
    return True


def pct(v, q):
    v = sorted(v)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(round(q / 100.0 * len(v) + 0.5)) - 1))  # nearest rank
    return v[k]


def timing(impl, a, b, runs, tmp):
    spawn, listen, fails, sides = [], [], 0, []
    for i in range(runs):
        pa = Proc(impl, a, os.path.join(tmp, "a%d" % i))
        if not pump_until([pa], lambda: pa.peer is not None, 30):
            pa.stop(); fails += 1; continue
        pb = Proc(impl, b, os.path.join(tmp, "b%d" % i))
        ok = pump_until([pa, pb], lambda: pb.peer is not None and pb.peer in pa.found and pa.peer in pb.found, 30)
        if ok:
            done = max(pa.found[pb.peer], pb.found[pa.peer])
            spawn.append((done - pb.t_spawn) * 1000)
            listen.append((done - pb.t_listen) * 1000)
            sides.append([round((pa.found[pb.peer] - pb.t_listen) * 1000), round((pb.found[pa.peer] - pb.t_listen) * 1000)])
        else:
            fails += 1
        pa.stop(); pb.stop()
        time.sleep(0.2)
    r = lambda x: None if x is None else round(x, 1)
    return {"impl": impl, "runs": runs, "ok": len(spawn), "failed": fails,
            "from_spawn_ms": {"p50": r(pct(spawn, 50)), "p99": r(pct(spawn, 99)), "max": r(max(spawn) if spawn else None)},
            "from_listening_ms": {"p50": r(pct(listen, 50)), "p99": r(pct(listen, 99)), "max": r(max(listen) if listen else None)},
            "samples_from_listening_ms": [round(x) for x in listen],
            "a_finds_b_b_finds_a_ms": sides}


def traffic(impl, a, b, s, warmup, window, tmp):
    # the counting listener runs inside S (a child python process)
    sniff = subprocess.Popen(["ip", "netns", "exec", s, sys.executable, os.path.abspath(__file__), "_sniff",
                              str(warmup), str(window)], stdout=subprocess.PIPE)
    time.sleep(0.5)
    life = warmup + window + 120  # the ctl peers exit after --timeout seconds
    pa = Proc(impl, a, os.path.join(tmp, "ta"), life)
    pb = Proc(impl, b, os.path.join(tmp, "tb"), life)
    pump_until([pa, pb], lambda: pb.peer is not None and pa.peer is not None and pb.peer in pa.found and pa.peer in pb.found, 30)
    discovered = pb.peer in pa.found and pa.peer in pb.found
    # keep reading the nodes' output while the listener counts (a full pipe would stall a node)
    pump_until([pa, pb], lambda: sniff.poll() is not None, warmup + window + 60)
    out = sniff.communicate()[0]
    pa.stop(); pb.stop()
    counts = json.loads(out)
    mins = window / 60.0
    nodes, counts_by_node = {}, {}
    for label, ns in (("A", a), ("B", b)):
        addrs = ip_addrs(ns)
        mine = [v for k, v in counts.items() if k in addrs]
        tot = lambda f: sum(v[f] for v in mine)
        counts_by_node[label] = {"packets": tot("packets"), "bytes": tot("bytes")}
        nodes[label] = {"packets_per_min": round(tot("packets") / mins, 1), "bytes_per_min": round(tot("bytes") / mins),
                        "queries": tot("queries"), "query_bytes": tot("query_bytes"),
                        "responses": tot("responses"), "response_bytes": tot("response_bytes"),
                        "packet_times_s": sorted(t for v in mine for t in v["times"])}
    other = {k: v for k, v in counts.items() if not any(k in ip_addrs(ns) for ns in (a, b))}
    return {"impl": impl, "warmup_s": warmup, "window_s": window, "discovered": discovered, "nodes": nodes,
            "unattributed": other,
            "packets_per_min_per_node": round(sum(n["packets"] for n in counts_by_node.values()) / 2 / mins, 2),
            "bytes_per_min_per_node": round(sum(n["bytes"] for n in counts_by_node.values()) / 2 / mins, 1)}


def ip_addrs(ns):
    out = subprocess.run(["ip", "-n", ns, "-o", "addr", "show", "dev", "eth0"], capture_output=True, text=True).stdout
    return {w.split("/")[0] for line in out.splitlines() for i, w in enumerate(line.split())
            if i > 0 and line.split()[i - 1] in ("inet", "inet6")}


def sniff(warmup, window):
    ifi = socket.if_nametoindex("eth0")
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s4.bind(("0.0.0.0", 5353))
    s4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4si", socket.inet_aton("224.0.0.251"), b"\0" * 4, ifi))
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s6.bind(("::", 5353))
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, "ff02::fb") + struct.pack("@I", ifi))
    start = time.monotonic() + warmup
    end = start + window
    counts = {}
    while True:
        now = time.monotonic()
        if now >= end:
            break
        r, _, _ = select.select([s4, s6], [], [], end - now)
        for s in r:
            d, addr = s.recvfrom(65535)
            if time.monotonic() < start:
                continue
            src = addr[0].split("%")[0]
            c = counts.setdefault(src, {"packets": 0, "bytes": 0, "queries": 0, "query_bytes": 0,
                                        "responses": 0, "response_bytes": 0, "times": []})
            c["packets"] += 1
            c["bytes"] += len(d)
            kind = "responses" if len(d) >= 4 and d[2] & 0x80 else "queries"
            c[kind] += 1
            c["query_bytes" if kind == "queries" else "response_bytes"] += len(d)
            c["times"].append(round(time.monotonic() - start + warmup, 1))
    print(json.dumps(counts))


def main():
    a = sys.argv[1:]
    if a[0] == "_sniff":
        sniff(float(a[1]), float(a[2]))
        return
    opts, i = {}, 1
    while i < len(a):
        if a[i] == "--ns":
            ns = []
            i += 1
            while i < len(a) and not a[i].startswith("--"):
                ns.append(a[i]); i += 1
            opts["ns"] = ns
            continue
        opts[a[i][2:]] = a[i + 1]
        i += 2
    tmp = opts.get("tmp", "/tmp")
    if a[0] == "timing":
        res = timing(opts["impl"], opts["ns"][0], opts["ns"][1], int(opts.get("runs", 20)), tmp)
    else:
        res = traffic(opts["impl"], opts["ns"][0], opts["ns"][1], opts["ns"][2], float(opts.get("warmup", 65)),
                      float(opts.get("window", 120)), tmp)
    print(json.dumps(res), flush=True)


main()
