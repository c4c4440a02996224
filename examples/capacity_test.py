#!/usr/bin/env python3
"""End-to-end test of lbkit-capacity: the pyworkforce worked example through
the command line (text and JSON), every sizing target, and bad input (one
line on stderr, non-zero exit, nothing on stdout).

Usage: capacity_test.py PATH/TO/lbkit-capacity
"""
import json
import subprocess
import sys

exe = sys.argv[1]
failures = 0


def run(*args):
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def close(got, want, tol=1e-12):
    return abs(got - want) <= tol * abs(want)


# pyworkforce / R ErlangC (REFERENCES.md): a = 10, N = 14, 20 s target.
L, M = repr(100 / 1800), repr(1 / 180)
rc, out, err = run("--arrival-rate", L, "--service-rate", M, "--servers", "14",
                   "--wait-threshold", "20", "--json")
check(rc == 0 and err == "", "json run exits 0 quietly: %d %r" % (rc, err))
obj = json.loads(out)
for field in ("servers", "offered_load", "utilization", "p_wait", "mean_wait",
              "mean_response", "mean_queue_length", "mean_in_system",
              "erlang_b", "p_wait_exceeds", "service_level"):
    check(field in obj, "field %s present" % field)
check(obj["servers"] == 14, "servers")
check(close(obj["p_wait"], 0.1741319335950498), "p_wait %r" % obj["p_wait"])
check(close(obj["service_level"], 0.8883500191794669), "service level")
check(close(obj["mean_wait"], 7.83593701177724), "ASA")
check(close(obj["utilization"], 0.7142857142857143), "occupancy")
check(close(obj["p_wait_exceeds"] + obj["service_level"], 1.0, 1e-15),
      "exceeds + level = 1")
check(close(obj["mean_response"], obj["mean_wait"] + 180), "W = Wq + 1/mu")
check(close(obj["mean_in_system"], obj["mean_response"] * 100 / 1800),
      "L = lambda W")

# Without a threshold the threshold fields are absent.
rc, out, _ = run("--arrival-rate", L, "--service-rate", M, "--servers", "14",
                 "--json")
obj = json.loads(out)
check("p_wait_exceeds" not in obj and "service_level" not in obj,
      "no threshold fields without --wait-threshold")

# Text output names every metric.
rc, out, _ = run("--arrival-rate", L, "--service-rate", M, "--servers", "14",
                 "--wait-threshold", "20")
check(rc == 0, "text run")
for label in ("servers", "utilization", "P(wait)", "mean wait", "Erlang B",
              "service level"):
    check(label in out, "text shows %s" % label)
check("0.1741319336" in out, "text shows P(wait)")

# Sizing: 14 is the smallest N with 80% answered within 20 s.
rc, out, _ = run("--arrival-rate", L, "--service-rate", M,
                 "--target-service-level", "20:0.8", "--json")
obj = json.loads(out)
check(rc == 0 and obj["servers"] == 14, "service-level sizing gives 14")
check(obj["service_level"] >= 0.8, "target met")

targets = [("--target-p-wait", "0.2", "p_wait", lambda v: v <= 0.2),
           ("--target-mean-wait", "5", "mean_wait", lambda v: v <= 5),
           ("--target-utilization", "0.6", "utilization", lambda v: v <= 0.6)]
for flag, value, field, ok in targets:
    rc, out, _ = run("--arrival-rate", L, "--service-rate", M, flag, value,
                     "--json")
    obj = json.loads(out)
    n = obj["servers"]
    check(rc == 0 and ok(obj[field]), "%s met" % flag)
    # N - 1 misses it (or is unstable)
    rc2, out2, _ = run("--arrival-rate", L, "--service-rate", M, "--servers",
                       str(n - 1), "--json")
    check(rc2 != 0 or not ok(json.loads(out2)[field]),
          "%s: N - 1 = %d misses" % (flag, n - 1))
    rc, out, _ = run("--arrival-rate", L, "--service-rate", M, flag, value)
    check(rc == 0 and "smallest N meeting the target: %d" % n in out,
          "%s text names N" % flag)

# Large loads are fast and sane.
rc, out, _ = run("--arrival-rate", "1e6", "--service-rate", "1",
                 "--target-p-wait", "0.2", "--json")
obj = json.loads(out)
check(rc == 0 and 1000000 < obj["servers"] < 1002000 and obj["p_wait"] <= 0.2,
      "a = 1e6 sizing: %r" % obj.get("servers"))

# Bad input: one line on stderr, non-zero exit, nothing on stdout.
bad = [
    [],
    ["--arrival-rate", "5", "--service-rate", "1"],
    ["--arrival-rate", "5", "--servers", "6"],
    ["--arrival-rate", "5x", "--service-rate", "1", "--servers", "6"],
    ["--arrival-rate", "nan", "--service-rate", "1", "--servers", "6"],
    ["--arrival-rate", "inf", "--service-rate", "1", "--servers", "6"],
    ["--arrival-rate", "-1", "--service-rate", "1", "--servers", "6"],
    ["--arrival-rate", " 5", "--service-rate", "1", "--servers", "6"],
    ["--arrival-rate", "", "--service-rate", "1", "--servers", "6"],
    ["--arrival-rate", "1e999", "--service-rate", "1", "--servers", "6"],
    ["--arrival-rate", "5", "--service-rate", "0", "--servers", "6"],
    ["--arrival-rate", "5", "--service-rate", "1", "--servers", "0"],
    ["--arrival-rate", "5", "--service-rate", "1", "--servers", "-3"],
    ["--arrival-rate", "5", "--service-rate", "1", "--servers", "2.5"],
    ["--arrival-rate", "5", "--service-rate", "1", "--servers", "5"],
    ["--arrival-rate", "5", "--service-rate", "1", "--servers", "99999999999"],
    ["--arrival-rate", "5", "--service-rate", "1", "--target-p-wait", "1"],
    ["--arrival-rate", "5", "--service-rate", "1", "--target-p-wait", "0"],
    ["--arrival-rate", "5", "--service-rate", "1", "--target-mean-wait", "-1"],
    ["--arrival-rate", "5", "--service-rate", "1", "--target-utilization",
     "1.5"],
    ["--arrival-rate", "5", "--service-rate", "1", "--target-service-level",
     "20"],
    ["--arrival-rate", "5", "--service-rate", "1", "--target-service-level",
     "20:1.2"],
    ["--arrival-rate", "5", "--service-rate", "1", "--target-service-level",
     "x:0.8"],
    ["--arrival-rate", "5", "--service-rate", "1", "--servers", "6",
     "--target-p-wait", "0.1"],
    ["--arrival-rate", "5", "--service-rate", "1", "--servers", "6",
     "--wait-threshold", "-2"],
    ["--arrival-rate", "5", "--service-rate", "1", "--servers", "6",
     "--frobnicate"],
    ["--arrival-rate", "5", "--service-rate", "1", "--servers"],
]
for args in bad:
    rc, out, err = run(*args)
    check(rc != 0, "%r exits non-zero" % args)
    check(out == "", "%r prints nothing on stdout" % args)
    check(err.count("\n") == 1 and err.startswith("lbkit-capacity: "),
          "%r: one line on stderr, got %r" % (args, err))

print("%d failures" % failures)
sys.exit(1 if failures else 0)
