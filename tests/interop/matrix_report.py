#!/usr/bin/env python3
"""matrix_report.py - print the interop matrix (case x implementation x direction) from the
cells the tests/interop/peer_*.sh tests wrote, and write a JSON copy.

Usage: tests/interop/matrix_report.py [MATRIX_DIR] [--json FILE]
  MATRIX_DIR  default: build/interop-matrix (each cell: <case>.<impl>.<dir>.json)
  --json      default: MATRIX_DIR/matrix.json
Cells: pass, FAIL, known (a failure listed in tests/interop/known_failures.tsv, reason in the
notes), "-" (not run: peer not built or test not run), "n/a" (no such direction).
Exit status: 1 if any cell failed (known failures do not count), else 0.
"""
import json
import os
import sys

CASES = ["ping", "identify", "signed-record", "identify-push", "perf-64MiB", "streams-200",
         "key-Ed25519", "key-secp256k1", "key-RSA", "key-ECDSA", "muxer-noise-ext", "muxer-mss",
         "wrong-peer-id", "junk-clients", "simultaneous-dial", "peer-killed",
         "mdns-ipv4", "mdns-ipv6", "mdns-expiry",
         "kad-find-node", "kad-closest", "kad-pk-record", "kad-providers",
         "kad-mixed-value", "kad-mixed-providers", "kad-mixed-find-peer",
         "gossip", "gossip-mesh",
         "reqresp", "reqresp-omission", "reqresp-timeout", "reqresp-unsupported"]
IMPLS = ["js", "go", "rust"]
DIRS = ["lp2p->X", "X->lp2p"]
# directions a case has (others print n/a)
ONLY = {"streams-200": ["X->lp2p"], "wrong-peer-id": ["lp2p->X"], "junk-clients": ["X->lp2p"],
        "simultaneous-dial": ["both"], "gossip-mesh": ["lp2p->X"], "reqresp-timeout": ["lp2p->X"],
        "reqresp-unsupported": ["lp2p->X"]}
NOT_FOR = {("js", "key-ECDSA"): "js-libp2p 3.x cannot derive a peer id from an ECDSA key",
           ("js", "mdns-ipv6"): "js @libp2p/mdns (multicast-dns) is IPv4-only",
           ("rust", "mdns-ipv6"): "the rust ctl peer runs libp2p-mdns with Config::default() (enable_ipv6 false)",
           ("js", "mdns-expiry"): "js @libp2p/mdns sends no goodbye and reports no expiry"}
# (impl, case) -> the only directions run
ONLY_FOR = {("go", "mdns-expiry"): ["lp2p->X"], ("rust", "mdns-expiry"): ["X->lp2p"]}


def main():
    args = sys.argv[1:]
    out_json = None
    if "--json" in args:
        i = args.index("--json")
        out_json = args[i + 1]
        del args[i:i + 2]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    mdir = args[0] if args else os.path.join(root, "build", "interop-matrix")
    out_json = out_json or os.path.join(mdir, "matrix.json")
    cells = {}
    if os.path.isdir(mdir):
        for f in sorted(os.listdir(mdir)):
            if f.endswith(".json") and f != "matrix.json":
                try:
                    with open(os.path.join(mdir, f)) as fh:
                        c = json.load(fh)
                    cells[(c["case"], c["impl"], c["dir"])] = c
                except (OSError, ValueError, KeyError):
                    pass
    cols = [(i, d) for i in IMPLS for d in DIRS]
    head = ["case"] + [f"{i} {d.replace('X', i)}" for i, d in cols]
    rows, notes, failed = [], [], 0
    # a case some test wrote but CASES does not name is shown too (after the others), never hidden
    extra = sorted({k[0] for k in cells} - set(CASES))
    for case in CASES + extra:
        row = [case]
        for impl, d in cols:
            dirs = ONLY_FOR.get((impl, case), ONLY.get(case, DIRS))
            if case == "simultaneous-dial":
                d_eff = "both" if d == "lp2p->X" else None
            else:
                d_eff = d if d in dirs else None
            if (impl, case) in NOT_FOR:
                row.append("n/a")
                if d == "lp2p->X":
                    notes.append(f"{case} / {impl}: {NOT_FOR[(impl, case)]}")
                continue
            if d_eff is None:
                row.append("n/a" if case != "simultaneous-dial" else "(both)")
                continue
            c = cells.get((case, impl, d_eff))
            if c is None:
                row.append("-")
            elif c["status"] == "pass":
                row.append("pass")
            elif c["status"] == "known":
                row.append("known")
                notes.append(f"{case} / {impl} {d_eff}: known failure: {c.get('reason', '')}")
            else:
                row.append("FAIL")
                failed += 1
        rows.append(row)
    widths = [max(len(r[k]) for r in [head] + rows) for k in range(len(head))]
    line = lambda r: "| " + " | ".join(v.ljust(widths[k]) for k, v in enumerate(r)) + " |"
    print("interop matrix (lp2p vs js / go / rust; lp2p->X: lp2p dials or acts, X->lp2p: the peer does)")
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    for n in sorted(set(notes)):
        print("  " + n)
    counts = {}
    for c in cells.values():
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    print("cells: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + f"; {failed} failing")
    with open(out_json, "w") as fh:
        json.dump({"columns": head[1:], "rows": rows, "cells": list(cells.values()), "notes": sorted(set(notes))},
                  fh, indent=1)
    print(f"json: {out_json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
