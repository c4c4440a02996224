#!/usr/bin/env python3
"""Turn `lbkit-bench --json` output into the markdown tables of
doc/BENCHMARKS.md: one table per module, one row per case, the four sizes
as columns of "ns/op (ratio to baseline)".

Usage: lbkit-bench --json > b.json; tools/bench_table.py b.json
"""
import json
import sys
from collections import OrderedDict

rows = json.load(open(sys.argv[1]))
mods = OrderedDict()
for r in rows:
    mod, _, variant = r["case"].partition("/")
    mods.setdefault(mod, OrderedDict()).setdefault(variant, []).append(r)


def cell(r):
    s = "%.1f" % r["ns_per_op"] if r["ns_per_op"] < 1e4 else "%.3g" % r["ns_per_op"]
    if "baseline_ns_per_op" in r and r["ns_per_op"] > 0:
        s += " (%.1f×)" % (r["baseline_ns_per_op"] / r["ns_per_op"])
    return s


for mod, variants in mods.items():
    sizes = sorted({r["n"] for v in variants.values() for r in v})
    print("\n### %s\n" % mod)
    print("| case | " + " | ".join("n = %d" % n for n in sizes) + " | bytes | baseline ns/op | other |")
    print("|---|" + "---|" * (len(sizes) + 3))
    for variant, rs in variants.items():
        by_n = {r["n"]: r for r in rs}
        cells = [cell(by_n[n]) if n in by_n else "" for n in sizes]
        last = rs[-1]
        base = "; ".join("%.1f" % by_n[n]["baseline_ns_per_op"] for n in sizes
                         if n in by_n and "baseline_ns_per_op" in by_n[n])
        bytes_ = "; ".join("%.0f" % by_n[n]["bytes"] for n in sizes
                           if n in by_n and "bytes" in by_n[n])
        extra = {k: v for k, v in last.items()
                 if k not in ("case", "n", "ns_per_op", "baseline_ns_per_op", "bytes")}
        other = ", ".join("%s %s" % (k, ("%.4g" % v) if isinstance(v, float) else v)
                          for k, v in extra.items())
        print("| %s | %s | %s | %s | %s |" % (variant, " | ".join(cells), bytes_ or "-",
                                             base or "-", other or ""))
