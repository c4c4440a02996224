#!/usr/bin/env python3
"""Script test of lbkit-chord: each experiment's JSON has the documented
fields with sane values, tables print, and bad arguments fail with one line.

Usage: test_chord.py PATH/TO/lbkit-chord
"""
import json
import subprocess
import sys

exe = sys.argv[1]
failures = []


def run(*args):
    return subprocess.run([exe, *args], capture_output=True, text=True)


def check(cond, what):
    if not cond:
        failures.append(what)


def js(*args):
    p = run(*args, "--json")
    check(p.returncode == 0, "%s exited %d: %s" % (args, p.returncode, p.stderr))
    return json.loads(p.stdout)


p = js("paths", "--nodes", "64", "--lookups", "4000", "--seed", "3")
for f in ("mean_hops", "p1_hops", "p99_hops", "max_hops", "half_log2_nodes"):
    check(f in p, "paths: no field " + f)
check(p["p1_hops"] <= p["mean_hops"] <= p["p99_hops"] <= p["max_hops"],
      "paths: percentiles out of order: %s" % p)
check(abs(p["mean_hops"] - 3.0) < 0.75, "paths: mean %s not near 3" % p)
check(p == js("paths", "--nodes", "64", "--lookups", "4000", "--seed", "3"),
      "paths: same seed, different output")

k1 = js("keys", "--nodes", "200", "--keys", "40000")
k20 = js("keys", "--nodes", "200", "--keys", "40000", "--vnodes", "20")
for k in (k1, k20):
    for f in ("mean_keys", "p1_keys", "p99_keys", "max_keys", "empty_nodes"):
        check(f in k, "keys: no field " + f)
    check(k["mean_keys"] == 200.0, "keys: mean %s != 200" % k["mean_keys"])
    check(k["p1_keys"] <= k["p50_keys"] <= k["p99_keys"] <= k["max_keys"],
          "keys: percentiles out of order: %s" % k)
check(k20["p99_over_mean"] < k1["p99_over_mean"],
      "keys: virtual nodes did not even out the load")

f = js("failures", "--nodes", "300", "--succ-list", "10", "--fail", "0.3",
       "--lookups", "3000")
for fld in ("mean_hops", "p1_hops", "p99_hops", "mean_timeouts",
            "p99_timeouts", "failed_lookups", "wrong_owners"):
    check(fld in f, "failures: no field " + fld)
check(f["failed_nodes"] == 90, "failures: %s failed, want 90" % f["failed_nodes"])
check(f["failed_lookups"] == 0 and f["wrong_owners"] == 0,
      "failures: lookups failed or went wrong: %s" % f)
check(f["mean_timeouts"] > 0, "failures: no timeouts with 30% failed")

t = run("paths", "--nodes", "16", "--lookups", "100")
check(t.returncode == 0 and "mean hops" in t.stdout, "paths table: " + t.stdout)

for bad in (["paths", "--nodes", "0", "--lookups", "5"],
            ["paths", "--nodes", "10"],
            ["paths", "--nodes", "10", "--lookups", "x"],
            ["keys", "--nodes", "10", "--keys", "5", "--vnodes", "-1"],
            ["failures", "--nodes", "10", "--succ-list", "0", "--fail", "0.1",
             "--lookups", "5"],
            ["failures", "--nodes", "10", "--succ-list", "2", "--fail", "1.5",
             "--lookups", "5"],
            ["paths", "--bogus"], ["fly"], []):
    r = run(*bad)
    check(r.returncode != 0, "%s: exit 0" % bad)
    check(r.stderr.count("\n") == 1 and r.stdout == "",
          "%s: want one error line, got %r" % (bad, r.stderr))

for msg in failures:
    print("FAIL:", msg)
print("%d checks failed" % len(failures))
sys.exit(1 if failures else 0)
