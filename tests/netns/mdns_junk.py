#!/usr/bin/env python3
"""tests/netns/mdns_junk.py - a raw UDP sender of malformed mDNS packets (for test_mdns_malformed.sh).

  mdns_junk.py mix SECONDS RATE     every kind below in turn, RATE packets/s, to 224.0.0.251 and
                                    ff02::fb port 5353 (from port 5353, like a real responder)
  mdns_junk.py flood SECONDS        random packets as fast as possible for SECONDS (IPv4)
  mdns_junk.py lenient              one response for a made-up peer whose packet also holds bad
                                    records: the good TXT string must still be discovered
Prints the number of packets sent per kind on exit.
"""
import os, random, socket, struct, sys, time

FAKE_ID = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"


def name(*labels):
    out = b""
    for l in labels:
        b = l.encode() if isinstance(l, str) else l
        out += bytes([len(b)]) + b
    return out + b"\0"


SVC = name("_p2p", "_udp", "local")


def hdr(qd, an, ns, ar, flags=0x8400, id_=0):
    return struct.pack(">HHHHHH", id_, flags, qd, an, ns, ar)


def rr(owner, typ, cls, ttl, rdata):
    return owner + struct.pack(">HHIH", typ, cls, ttl, len(rdata)) + rdata


def txt(*strings):
    return b"".join(bytes([len(s)]) + s for s in strings)


def good_response(inst="junkjunkjunkjunkjunkjunkjunkjunk", addr="/ip4/10.77.0.99/tcp/4001"):
    i = name(inst, "_p2p", "_udp", "local")
    return (hdr(0, 1, 0, 1) + rr(SVC, 12, 1, 120, i) +
            rr(i, 16, 1, 120, txt(("dnsaddr=%s/p2p/%s" % (addr, FAKE_ID)).encode())))


def kinds():
    g = good_response()
    i = name("loopyloopyloopyloopyloopyloopylo", "_p2p", "_udp", "local")
    yield "truncated", g[: random.randint(1, len(g) - 1)]
    yield "header-only", hdr(5, 5, 5, 5)
    yield "empty", b""
    # compression loops: a name that points at itself, and two names pointing at each other
    yield "self-pointer", hdr(1, 0, 0, 0, flags=0) + b"\xc0\x0c" + struct.pack(">HH", 12, 1)
    yield "pointer-cycle", hdr(0, 1, 0, 0) + b"\x01a\xc0\x0e" + b"\x01b\xc0\x0c" + struct.pack(">HHIH", 12, 1, 120, 2) + b"\xc0\x0c"
    yield "forward-pointer", hdr(1, 0, 0, 0, flags=0) + b"\xc0\x20" + struct.pack(">HH", 12, 1) + b"\0" * 20
    yield "pointer-out-of-packet", hdr(0, 1, 0, 0) + rr(b"\xc3\xff", 12, 1, 120, b"\xc0\x0c")
    # 255+ byte things: a TXT string claiming 255 bytes with 10 present, a 64-byte label, a name > 255
    yield "txt-overrun", hdr(0, 1, 0, 1) + rr(SVC, 12, 1, 120, i) + rr(i, 16, 1, 120, b"\xff" + b"dnsaddr=/x")
    yield "long-label", hdr(0, 1, 0, 0) + rr(b"\x40" + b"a" * 64 + b"\0", 12, 1, 120, i)
    yield "long-name", hdr(0, 1, 0, 0) + rr(b"".join(b"\x3f" + b"b" * 63 for _ in range(5)) + b"\0", 12, 1, 120, i)
    yield "dnsaddr-300", hdr(0, 1, 0, 1) + rr(SVC, 12, 1, 120, i) + rr(i, 16, 1, 120, b"\xff" + b"dnsaddr=/ip4/1.2.3.4/tcp/1" + b"x" * 229 + b"\x2d" + b"y" * 45)
    # wrong classes and types
    yield "ptr-class-chaos", hdr(0, 1, 0, 1) + rr(SVC, 12, 3, 120, i) + rr(i, 16, 3, 120, txt(b"dnsaddr=/ip4/10.77.0.98/tcp/1/p2p/" + FAKE_ID.encode()))
    yield "question-class-254", hdr(1, 0, 0, 0, flags=0) + SVC + struct.pack(">HH", 12, 254)
    yield "a-record-3-bytes", hdr(0, 1, 0, 0) + rr(name("x", "local"), 1, 1, 120, b"\x0a\x00\x00")
    yield "counts-lie", hdr(0, 65535, 65535, 65535) + rr(SVC, 12, 1, 120, i)
    yield "random", os.urandom(random.randint(12, 600))
    yield "query-flood", hdr(1, 0, 0, 0, flags=0) + SVC + struct.pack(">HH", 12, 1)


def sockets():
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    s4.bind(("0.0.0.0", 5353))
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    ifi = socket.if_nametoindex("eth0")
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifi)
    s6.bind(("::", 5353))
    return s4, s6, ifi


def main():
    mode = sys.argv[1]
    s4, s6, ifi = sockets()
    sent = {}

    def send(kind, pkt, v6=True):
        s4.sendto(pkt, ("224.0.0.251", 5353))
        if v6:
            s6.sendto(pkt, ("ff02::fb", 5353, 0, ifi))
        sent[kind] = sent.get(kind, 0) + 1

    if mode == "mix":
        secs, rate = float(sys.argv[2]), float(sys.argv[3])
        end = time.time() + secs
        while time.time() < end:
            for kind, pkt in kinds():
                send(kind, pkt)
                time.sleep(1.0 / rate)
    elif mode == "flood":
        end = time.time() + float(sys.argv[2])
        while time.time() < end:
            for _ in range(100):
                send("flood", os.urandom(random.randint(12, 200)), v6=False)
    elif mode == "lenient":
        i = name("lenientlenientlenientlenientlen1", "_p2p", "_udp", "local")
        pkt = (hdr(0, 1, 0, 4) + rr(SVC, 12, 1, 120, i) +
               rr(i, 16, 1, 120, txt(b"dnsaddr=/not/a/multiaddr")) +
               rr(i, 16, 3, 120, txt(b"dnsaddr=/ip4/10.77.0.97/tcp/1/p2p/" + FAKE_ID.encode())) +
               rr(i, 1, 1, 120, b"\x01\x02") +
               rr(i, 16, 1, 120, txt(b"junk", b"dnsaddr=/ip4/10.77.0.99/tcp/4001/p2p/" + FAKE_ID.encode())))
        send("lenient", pkt)
    print(" ".join("%s=%d" % kv for kv in sorted(sent.items())), flush=True)


main()
