#!/usr/bin/env bash
# bench/gossip_compare.sh - the gossipsub comparison of issue 12: run it under the shared CPU lock.
#  1. bench_gossip --peers js,go,rust: 50 lp2p nodes (one process, one loop) + one js, one go and one rust
#     ctl peer in the same network, each dialed by 4 lp2p nodes; every implementation publishes (lp2p: a
#     random lp2p node). Per publisher: latency publish -> last lp2p subscriber (p50/p99), delivery ratio,
#     duplicates per delivered message counted by the lp2p routers, msg/s back to back.
#  2. go-peer bench gossip: the same 50-node graph and phases with go-libp2p-pubsub hosts only (one process,
#     GOMAXPROCS 1 like lp2p's single loop): go's own router's duplicates and latency.
#  3. like for like: bench_gossip --go-params --count K --burst M: 50 lp2p nodes with go-libp2p-pubsub's
#     default parameters (D_lo 5 and no peer scoring, where lp2p's defaults differ), the same graph,
#     message counts and phases as 2 (duplicates counted the same way: copies of a seen message per
#     delivered message, stragglers 300 ms after each phase included).
# Usage: bench/gossip_compare.sh BUILD_DIR [OUT_DIR]   (BUILD_DIR: a Release build with bench_gossip)
# Env: LP2P_GO_PEER (go-peer with `bench gossip`), LP2P_RUST_PEER, GOSSIP_COUNT (200), GOSSIP_BURST (500).
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:?usage: bench/gossip_compare.sh BUILD_DIR [OUT_DIR]}"
out="${2:-$build/gossip-compare}"
mkdir -p "$out"
go_peer="${LP2P_GO_PEER:-${XDG_CACHE_HOME:-$HOME/.cache}/lp2p/bin/go-peer}"
K="${GOSSIP_COUNT:-200}" M="${GOSSIP_BURST:-500}"
"$build/bench/bench_gossip" --peers js,go,rust --ext-count "$K" --ext-burst "$M" --json "$out/mixed.jsonl" \
  >"$out/mixed.md" 2>"$out/mixed.err" || { cat "$out/mixed.err" >&2; exit 1; }
"$go_peer" bench gossip --nodes 50 --count "$K" --burst "$M" --procs 1 >"$out/go1.jsonl" 2>"$out/go1.err" || true
"$go_peer" bench gossip --nodes 50 --count "$K" --burst "$M" --procs 2 >"$out/go2.jsonl" 2>"$out/go2.err" || true
"$build/bench/bench_gossip" --go-params --count "$K" --burst "$M" --json "$out/lp2p-goparams.jsonl" \
  >"$out/lp2p-goparams.md" 2>"$out/lp2p-goparams.err" || { cat "$out/lp2p-goparams.err" >&2; exit 1; }
grep -v '^| .* publisher:' "$out/mixed.md" | grep -v '^$' | grep -v '^| benchmark\|^|---|---:|---:|$' || true
python3 - "$out" <<'EOF'
import json, sys, os
out = sys.argv[1]
mixed = {}
for l in open(os.path.join(out, "mixed.jsonl")):
    r = json.loads(l)
    if " publisher: " in r["name"]:
        impl, what = r["name"].split(" publisher: ", 1)
        mixed.setdefault(impl, {})[what] = r["value"]
def go(f):
    d = {}
    try:
        for l in open(os.path.join(out, f)):
            r = json.loads(l); d[r["phase"]] = r
    except (OSError, ValueError):
        pass
    return d
g1, g2 = go("go1.jsonl"), go("go2.jsonl")
lp = mixed.get("lp2p", {})
P99 = "latency to last subscriber p99 (1 KiB)"; P50 = "latency to last subscriber p50 (1 KiB)"
print("\n| network, publisher | p50 ms | p99 ms | lp2p p99 / this p99 | delivered | dup/msg | msg/s (burst) | burst delivered |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for impl in ["lp2p", "js", "go", "rust"]:
    m = mixed.get(impl)
    if not m: continue
    print("| 50 lp2p + js/go/rust, %s publishes | %.1f | %.1f | %.2f | %.4f | %.2f | %.0f | %.4f |" % (
        impl, m[P50] * 1e3, m[P99] * 1e3, lp.get(P99, 0) / m[P99] if m[P99] else 0,
        m["delivery ratio (one at a time)"], m["duplicates per delivered message"],
        m["throughput 1 KiB messages (all delivered)"], m["delivery ratio (burst)"]))
for name, g in (("GOMAXPROCS 1", g1), ("GOMAXPROCS 2", g2)):
    if "latency" not in g: continue
    L, B = g["latency"], g.get("burst", {})
    print("| 50 go-libp2p-pubsub (%s), go publishes | %.1f | %.1f | %.2f | %.4f | %.2f | %.0f | %.4f |" % (
        name, L["p50"] * 1e3, L["p99"] * 1e3, lp.get(P99, 0) / L["p99"] if L["p99"] else 0, L["ratio"], L["dups"],
        B.get("rate", 0), B.get("ratio", 0)))
if "latency" in g1 and lp:
    print("\nduplicates per delivered message: lp2p routers %.2f vs go routers %.2f (ratio %.2f; delivery %.4f vs %.4f)" % (
        lp["duplicates per delivered message"], g1["latency"]["dups"],
        lp["duplicates per delivered message"] / g1["latency"]["dups"] if g1["latency"]["dups"] else 0,
        lp["delivery ratio (one at a time)"], g1["latency"]["ratio"]))
# like for like: 50 lp2p (go parameters) vs 50 go on the same graph
ll = {}
try:
    for l in open(os.path.join(out, "lp2p-goparams.jsonl")):
        r = json.loads(l); ll[r["name"]] = r["value"]
except (OSError, ValueError):
    pass
if ll:
    print("\nlike for like (50 nodes, same graph, go-libp2p-pubsub parameters on both sides):\n")
    print("| network | p50 ms | p99 ms | delivered | dup/msg | burst msg/s | burst delivered | burst dup/msg |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("| 50 lp2p (--go-params) | %.1f | %.1f | %.4f | %.2f | %.0f | %.4f | %.2f |" % (
        ll[P50] * 1e3, ll[P99] * 1e3, ll.get("delivery ratio (one at a time)", 0),
        ll["duplicates per delivered message"], ll["throughput 1 KiB messages (all delivered to 49)"],
        ll.get("delivery ratio (burst)", 0), ll["duplicates per delivered message (burst)"]))
    for name, g in (("GOMAXPROCS 1", g1), ("GOMAXPROCS 2", g2)):
        if "latency" not in g: continue
        L, B = g["latency"], g.get("burst", {})
        print("| 50 go-libp2p-pubsub (%s) | %.1f | %.1f | %.4f | %.2f | %.0f | %.4f | %.2f |" % (
            name, L["p50"] * 1e3, L["p99"] * 1e3, L["ratio"], L["dups"], B.get("rate", 0), B.get("ratio", 0),
            B.get("dups", 0)))
    if "latency" in g1:
        print("\nlike for like duplicates per delivered message: lp2p %.2f vs go %.2f (delivery %.4f vs %.4f)" % (
            ll["duplicates per delivered message"], g1["latency"]["dups"],
            ll.get("delivery ratio (one at a time)", 0), g1["latency"]["ratio"]))
EOF
