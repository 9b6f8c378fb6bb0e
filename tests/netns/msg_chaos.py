#!/usr/bin/env python3
"""tests/netns/msg_chaos.py - the driver of test_msg_chaos.sh (issue 15, scenario 5), not a test itself.

Two lp2p-node processes (a, b) run in two network namespaces, each behind a msg_proxy of its own
(delay, cuts) and iptables random loss on the hosts' eth0. This driver talks to both nodes through
their --api sockets (one connection each: commands out, JSON events in, read as they come: every wait
below is for an event, with a deadline), and:
  chaos phase (bounded, cfg chaos_s): sends N messages and the files each way, spread over the phase,
    while the proxies cut every connection every few seconds, iptables drops packets at random and,
    every partition_every_s, host a drops everything for partition_s (a silent partition); at the end
    reads the iptables DROP counters, removes the loss rules and tells the proxies to stop cutting
    (SIGUSR1; they answer "calm cuts N");
  calm phase (bounded, cfg calm_max_s): waits until every message is acknowledged to its sender and
    every file delivered and received, drains the receivers' inboxes (the durable app view);
  then checks, from the apps' view: every id acknowledged to the sender is in the receiver's
  message-received events exactly once and in its inbox exactly once, every queued message was
  delivered (0 lost), no message-failed, every file received once with the sender's sha256 (the event's
  and the bytes on disk), and prints a summary.
Exit status 0 when every check passed. Output: "ok ..." / "FAIL ..." lines, then "summary: ...". """
import collections
import hashlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

cfg = json.loads(sys.argv[1])
T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def log(msg):
    print("     [%6.1f s] %s" % (now(), msg), flush=True)


class Node:
    def __init__(self, name, sock_path, peer_id):
        self.name = name
        self.peer_id = peer_id
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(sock_path)
        self.s.setblocking(False)
        self.inbuf = b""
        self.outbuf = b""
        self.closed = False
        self.queued = []                      # message ids, in order
        self.delivered = collections.Counter()
        self.failed = []
        self.received = collections.Counter()  # ids
        self.received_text = collections.Counter()
        self.received_id_text = {}
        self.inbox = collections.Counter()      # ids listed (and taken) by `inbox`
        self.inbox_busy = False
        self.inbox_last = None
        self.inbox_calls = 0
        self.files_queued = []
        self.files_delivered = collections.Counter()
        self.files_failed = []
        self.files_received = []                # event dicts
        self.files_retry = 0
        self.resumed = set()                    # incoming attempts resumed: (id, resumed_from > 0)
        self.conn_opened = 0
        self.conn_closed = 0
        self.errors = []

    def cmd(self, line):
        self.outbuf += (line + "\n").encode()

    def on_event(self, e):
        ev = e.get("event")
        if ev == "message-queued":
            self.queued.append(e["id"])
        elif ev == "message-delivered":
            self.delivered[e["id"]] += 1
        elif ev == "message-failed":
            self.failed.append(e)
        elif ev == "message-received":
            self.received[e["id"]] += 1
            self.received_text[e["text"]] += 1
            self.received_id_text[e["id"]] = e["text"]
        elif ev == "inbox-message":
            self.inbox[e["id"]] += 1
        elif ev == "inbox-done":
            self.inbox_busy = False
            self.inbox_last = e["count"]
        elif ev == "file-queued":
            self.files_queued.append(e["id"])
        elif ev == "file-delivered":
            self.files_delivered[e["id"]] += 1
        elif ev == "file-failed":
            self.files_failed.append(e)
        elif ev == "file-received":
            self.files_received.append(e)
        elif ev == "file-progress":
            # an incoming attempt starts with bytes == resumed_from; > 0: resumed from a verified chunk
            if not e.get("outgoing") and e.get("resumed_from", 0) > 0 and e.get("bytes") == e["resumed_from"]:
                self.resumed.add((e["id"], e["resumed_from"]))
        elif ev == "connection-opened":
            self.conn_opened += 1
        elif ev == "connection-closed":
            self.conn_closed += 1
        elif ev == "control-error":
            self.errors.append(e)

    def pending_inbox(self):
        return sum(self.received.values()) - sum(self.inbox.values())

    def start_inbox(self):
        self.inbox_busy = True
        self.inbox_calls += 1
        self.cmd("inbox")


nodes = {n: Node(n, cfg["sock"][n], cfg["peer"][n]) for n in ("a", "b")}
other = {"a": "b", "b": "a"}
sel = selectors.DefaultSelector()
for nd in nodes.values():
    sel.register(nd.s, selectors.EVENT_READ, nd)


def pump(timeout):
    """Serve both sockets for at most timeout seconds (returns early after any event)."""
    for nd in nodes.values():
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if nd.outbuf else 0)
        if not nd.closed:
            sel.modify(nd.s, ev, nd)
    for key, mask in sel.select(max(0.0, timeout)):
        nd = key.data
        if mask & selectors.EVENT_WRITE and nd.outbuf:
            try:
                k = nd.s.send(nd.outbuf)
                nd.outbuf = nd.outbuf[k:]
            except BlockingIOError:
                pass
        if mask & selectors.EVENT_READ:
            try:
                d = nd.s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not d:
                if not nd.closed:
                    nd.closed = True
                    sel.unregister(nd.s)
                    log("node %s closed its API connection (died, or dropped a client that fell behind)" % nd.name)
                continue
            nd.inbuf += d
            *lines, nd.inbuf = nd.inbuf.split(b"\n")
            for line in lines:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                nd.on_event(e)


def wait_until(pred, deadline):
    while not pred():
        left = deadline - now()
        if left <= 0 or all(nd.closed for nd in nodes.values()):
            return pred()
        pump(min(left, 0.5))
    return True


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def ns_iptables(ns, *args):
    return subprocess.run(["ip", "netns", "exec", ns, "iptables", *args], capture_output=True, text=True)


def counters(tag):
    """{host: packets} summed over the rules with comment tag (lp2p-chaos: the loss rules, dropped;
    lp2p-seen: the counting rules before them, every packet in and out of eth0)."""
    out = {}
    for name, ns in cfg["ns"].items():
        r = ns_iptables(ns, "-L", "-v", "-x", "-n")
        out[name] = sum(int(l.split()[0]) for l in r.stdout.splitlines() if "/* %s */" % tag in l)
    return out


N = cfg["n_msgs"]
files = cfg["files"]  # {"a": [paths], "b": [paths]} : what each node sends
want_sha = {n: {os.path.basename(p): sha256_file(p) for p in files[n]} for n in files}
chaos_s = cfg["chaos_s"]
send_span = cfg["send_span_s"]
batches = cfg["batches"]
per = N // batches
ok_all = True


def check(cond, what, detail=""):
    global ok_all
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        ok_all = False
        if detail:
            for l in str(detail).splitlines()[:20]:
                print("       " + l)


# ---- chaos phase ---------------------------------------------------------------------------------
# the first message of each side names the other by its proxy's address (into the peer store); the
# rest by peer id only
sent = {"a": 0, "b": 0}
files_sent = {"a": 0, "b": 0}
log("chaos phase: %d s; %d messages each way in %d batches over %d s; files %s" %
    (chaos_s, N, batches, send_span, {n: [os.path.getsize(p) for p in files[n]] for n in files}))
# partitions: every partition_every_s, host a drops everything on eth0 for partition_s (no RST, no
# FIN: connections stall, and a proxy cut during it is never seen by the far side until it heals)
part_every, part_len = cfg["partition_every_s"], cfg["partition_s"]
part_starts = [part_every * k for k in range(1, 100) if part_every > 0 and part_every * k + part_len <= chaos_s - 5]
part_on, partitions, part_drops = False, 0, 0


def partition(on):
    global part_on, partitions, part_drops
    if on == part_on:
        return
    ns = cfg["ns"]["a"]
    if not on:
        part_drops += counters("lp2p-partition")["a"]
    for chain, io in (("INPUT", "-i"), ("OUTPUT", "-o")):
        if on:
            ns_iptables(ns, "-I", chain, "1", io, "eth0", "-m", "comment", "--comment", "lp2p-partition", "-j", "DROP")
        else:
            ns_iptables(ns, "-D", chain, io, "eth0", "-m", "comment", "--comment", "lp2p-partition", "-j", "DROP")
    part_on = on
    partitions += on
    log("partition %s" % ("on" if on else "healed"))


while now() < chaos_s:
    t = now()
    partition(any(p0 <= t < p0 + part_len for p0 in part_starts))
    for n, nd in nodes.items():
        o = nodes[other[n]]
        k = min(batches, int(t / send_span * batches) + 1)  # batches due by now
        while sent[n] < min(N, k * per if k < batches else N):
            i = sent[n] + 1
            dest = cfg["proxy_addr"][other[n]] if i == 1 else o.peer_id
            nd.cmd("send %s %s2%s-%d" % (dest, n, other[n], i))
            sent[n] += 1
        kf = min(len(files[n]), int(t / send_span * len(files[n])) + 1)
        while files_sent[n] < kf:
            nd.cmd("send-file %s %s" % (o.peer_id, files[n][files_sent[n]]))
            files_sent[n] += 1
        # the receiving app takes its inbox now and then, as an app would (stays under the quota)
        if not nd.inbox_busy and nd.pending_inbox() >= 2000:
            nd.start_inbox()
    pump(min(0.25, max(0.0, chaos_s - now())))
partition(False)
drops, seen = counters("lp2p-chaos"), counters("lp2p-seen")
for ns in cfg["ns"].values():
    for chain, io in (("INPUT", "-i"), ("OUTPUT", "-o")):
        ns_iptables(ns, "-D", chain, io, "eth0", "-m", "statistic", "--mode", "random", "--probability",
                    str(cfg["loss"]), "-m", "comment", "--comment", "lp2p-chaos", "-j", "DROP")
left = counters("lp2p-chaos")
for pid in cfg["proxy_pid"].values():
    os.kill(pid, signal.SIGUSR1)
cuts = {}
for n, path in cfg["proxy_out"].items():  # each proxy answers "calm cuts N" (bounded wait)
    end = time.monotonic() + 10
    while n not in cuts and time.monotonic() < end:
        for l in open(path).read().splitlines():
            if l.startswith("calm cuts "):
                cuts[n] = int(l.split()[2])
        if n not in cuts:
            pump(0.05)
t_chaos = now()
log("chaos over: cuts %s, packets dropped by iptables %s of %s; a: %d/%d delivered, b: %d/%d delivered" %
    (cuts, drops, seen, len(nodes["a"].delivered), N, len(nodes["b"].delivered), N))
check(sent["a"] == N and sent["b"] == N and files_sent["a"] == len(files["a"]) and files_sent["b"] == len(files["b"]),
      "chaos: every message and file handed to the nodes during the chaos phase")
check(sum(left.values()) == 0 and all(n in cuts for n in cfg["proxy_pid"]),
      "chaos ended: loss rules removed (%s), both proxies calm (%s)" % (left, cuts))
check(all(drops.get(n, 0) > 0 and cuts.get(n, 0) > 0 for n in cfg["proxy_pid"]) and partitions == len(part_starts),
      "chaos happened: packets dropped on both hosts %s, connections cut by both proxies %s, %d partitions of %d s" %
      (drops, cuts, partitions, part_len))


# ---- calm phase ----------------------------------------------------------------------------------
def settled():
    for n, nd in nodes.items():
        o = nodes[other[n]]
        if len(nd.queued) < N or len(nd.delivered) < N or len(nd.files_delivered) < len(files[n]):
            return False
        if len(o.files_received) < len(files[n]) or len(o.received) < N:
            return False
    return True


calm_deadline = t_chaos + cfg["calm_max_s"]
done = wait_until(lambda: settled() or any(nd.failed or nd.files_failed for nd in nodes.values()), calm_deadline)
done = done and settled()
t_settled = now()
state = "; ".join("%s: queued %d delivered %d received-by-peer %d, files delivered %d received-by-peer %d" %
                  (n, len(nd.queued), len(nd.delivered), len(nodes[other[n]].received), len(nd.files_delivered),
                   len(nodes[other[n]].files_received)) for n, nd in nodes.items())
missing = []
for n, nd in nodes.items():
    o = nodes[other[n]]
    got = set(o.received_text)
    missing += ["%s2%s-%d" % (n, other[n], i) for i in range(1, N + 1) if "%s2%s-%d" % (n, other[n], i) not in got][:5]
check(done, "calm: everything acknowledged within %d s of the end of the chaos (%.1f s)" %
      (cfg["calm_max_s"], t_settled - t_chaos), state + ("\nfirst missing: %s" % missing if missing else ""))

# the receiving apps take the rest of their inboxes (the durable view: every message exactly once)
for nd in nodes.values():
    while True:
        if not wait_until(lambda: not nd.inbox_busy, now() + 15):
            break
        if nd.inbox_last == 0 and nd.pending_inbox() <= 0:
            break
        nd.start_inbox()
        nd.inbox_last = None
        if not wait_until(lambda: not nd.inbox_busy, now() + 15):
            break
        if nd.inbox_last == 0:
            break

# ---- checks from the apps' view -----------------------------------------------------------------
summary = []
for n, nd in nodes.items():
    o = nodes[other[n]]
    tag = "%s->%s" % (n, other[n])
    q = set(nd.queued)
    check(len(nd.queued) == N and len(q) == N, "%s: %d messages queued, ids unique" % (tag, len(q)))
    acked = set(nd.delivered)
    dup_acks = sum(c - 1 for c in nd.delivered.values())
    check(acked == q, "%s: every queued message acknowledged (message-delivered) to the sender: 0 lost (%d/%d)" %
          (tag, len(acked & q), N), "not acknowledged: %s" % sorted(q - acked)[:5])
    dup_recv = sum(c - 1 for c in o.received.values())
    check(acked <= set(o.received) and dup_recv == 0,
          "%s: every acknowledged id is in the receiver's message-received events exactly once (duplicates %d)" %
          (tag, dup_recv), "acked, never received: %s; received twice: %s" %
          (sorted(acked - set(o.received))[:5], [i for i, c in o.received.items() if c > 1][:5]))
    texts = ["%s-%d" % (tag.replace("->", "2"), i) for i in range(1, N + 1)]
    bad_text = [t for t in texts if o.received_text[t] != 1]
    check(not bad_text and set(o.received) == q,
          "%s: the receiver got exactly the %d texts sent, each once, with the sender's ids" % (tag, N),
          "texts not seen exactly once: %s" % bad_text[:5])
    dup_inbox = sum(c - 1 for c in o.inbox.values())
    check(set(o.inbox) == q and dup_inbox == 0,
          "%s: the receiver's inbox held every message exactly once (%d listed by %d inbox calls, duplicates %d)" %
          (tag, len(o.inbox), o.inbox_calls, dup_inbox), "missing from the inbox: %s" % sorted(q - set(o.inbox))[:5])
    check(not nd.failed and not nd.errors, "%s: no message-failed, no control-error" % tag,
          "\n".join(json.dumps(e) for e in (nd.failed + nd.errors)[:5]))
    # files
    names = collections.Counter(os.path.basename(e["path"]) for e in o.files_received)
    dup_files = sum(c - 1 for c in names.values()) + (len(o.files_received) - len(set(e["id"] for e in o.files_received)))
    verified = 0
    detail = []
    for e in o.files_received:
        base = os.path.basename(e["path"])
        disk = sha256_file(e["path"]) if os.path.exists(e["path"]) else "(missing)"
        if want_sha[n].get(base) == e["sha256"] == disk:
            verified += 1
        else:
            detail.append("%s: want %s event %s disk %s" % (base, want_sha[n].get(base), e["sha256"], disk))
    check(verified == len(files[n]) and len(o.files_received) == len(files[n]) and dup_files == 0,
          "%s: %d/%d files received once each, sha256 = the sender's (event and bytes on disk)" %
          (tag, verified, len(files[n])), "\n".join(detail))
    check(len(nd.files_delivered) == len(files[n]) and set(nd.files_delivered) == set(nd.files_queued)
          and all(c == 1 for c in nd.files_delivered.values()) and not nd.files_failed,
          "%s: every file-delivered to the sender once, no file-failed" % tag,
          "delivered %s failed %s" % (dict(nd.files_delivered), nd.files_failed[:3]))
    summary.append("%s %d msgs (%d dup, %d lost), %d/%d files verified (%d transfers resumed from a verified chunk)" %
                   (tag, len(set(o.received) & q), dup_recv + dup_inbox, len(q - acked), verified,
                    len(files[n]), len(o.resumed)))
conns = sum(nd.conn_opened for nd in nodes.values())


def retried(db):
    """(messages that needed a retry, most failed attempts of one message) from the sender's outbox (read
    only; the node keeps running)."""
    import sqlite3
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        r = c.execute("SELECT COUNT(*), COALESCE(MAX(attempts), 0) FROM outbox WHERE attempts > 0").fetchone()
        c.close()
        return r
    except Exception as e:  # informational only
        return ("?", str(e))


for i, n in enumerate(nodes):
    r = retried(cfg["db"][n])
    summary[i] += ", %s retried (at most %s failed attempts), %d repeated receipts" % (
        r[0], r[1], sum(c - 1 for c in nodes[n].delivered.values()))
print("summary: %s; cuts %s; packets dropped by iptables %s of %s seen on eth0 (loss %.3f per rule, INPUT "
      "and OUTPUT); %d partitions of %d s (%d packets dropped); connections opened %d; chaos %.0f s, settled %.1f s "
      "after, total %.1f s" % ("; ".join(summary), cuts, drops, seen, cfg["loss"], partitions, part_len, part_drops,
                               conns, t_chaos, t_settled - t_chaos, now()), flush=True)
sys.exit(0 if ok_all else 1)
