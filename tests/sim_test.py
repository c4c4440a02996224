#!/usr/bin/env python3
"""Checks lbkit-sim against exact queueing results (suite unit).

Usage: sim_test.py PATH/TO/lbkit-sim

- n = 1: M/M/1 mean time in system 1/(1 - lambda);
- random dispatch to n servers = n independent M/M/1 queues;
- the central queue = M/M/n, against Erlang C computed here by the stable
  recursion;
- Little's law: time-average number in system = lambda x W;
- determinism: the same seed gives the same output;
- balls into bins: the histogram accounts for every bin and ball, and two
  choices beat one;
- scenario mode: outlier ejection cuts the failures a failing backend
  causes, slow start lowers round-robin's time in system when a backend
  comes back cold, panic keeps a tier with 4 of 10 healthy out of overload,
  and a scenario run is deterministic per seed;
- bad arguments exit 2.
Each comparison allows 5 half-widths of the simulator's own 95% batch-means
confidence interval plus 1% (a false failure is vanishingly unlikely).
"""
import json
import subprocess
import sys

SIM = sys.argv[1]
failures = 0


def run(*args):
    r = subprocess.run([SIM] + list(args) + ["--json"], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit("lbkit-sim %s failed: %s" % (" ".join(args), r.stderr))
    return json.loads(r.stdout)


def check(cond, what):
    global failures
    print(("ok - " if cond else "FAIL - ") + what)
    if not cond:
        failures += 1


def close(r, exact, what):
    tol = 5 * r["ci95_mean_response"] + 0.01 * exact
    check(abs(r["mean_response"] - exact) <= tol,
          "%s: mean %.4f vs exact %.4f (tolerance %.4f)"
          % (what, r["mean_response"], exact, tol))
    little = r["little_lambda_w"]
    check(abs(r["mean_in_system"] - little) <= 0.03 * little,
          "%s: Little L = %.3f vs lambda W = %.3f" % (what, r["mean_in_system"], little))


def erlang_c(n, a):
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return n * b / (n - a * (1 - b))


lam = 0.5
for policy in ("random", "round_robin", "least_conn", "p2c", "central"):
    r = run("queue", "--policy", policy, "--servers", "1", "--load", str(lam),
            "--requests", "200000", "--warmup", "10000", "--seed", "7")
    close(r, 1 / (1 - lam), "M/M/1 via %s" % policy)

r = run("queue", "--policy", "random", "--servers", "4", "--load", "0.7",
        "--requests", "400000", "--warmup", "20000", "--seed", "3")
close(r, 1 / (1 - 0.7), "random dispatch = 4 independent M/M/1")

n, rho = 4, 0.7
a = n * rho
exact = erlang_c(n, a) / (n - a) + 1.0
r = run("queue", "--policy", "central", "--servers", str(n), "--load", str(rho),
        "--requests", "400000", "--warmup", "20000", "--seed", "5")
close(r, exact, "central queue = M/M/4 (Erlang C)")

r1 = run("queue", "--policy", "p2c", "--servers", "10", "--load", "0.9",
         "--requests", "50000", "--seed", "11")
r2 = run("queue", "--policy", "p2c", "--servers", "10", "--load", "0.9",
         "--requests", "50000", "--seed", "11")
for r in (r1, r2):
    r.pop("requests_per_second")
check(r1 == r2, "same seed, same result")
r3 = run("queue", "--policy", "p2c", "--servers", "10", "--load", "0.9",
         "--requests", "50000", "--seed", "12")
check(r3["mean_response"] != r1["mean_response"], "another seed, another run")

jsq = run("queue", "--policy", "least_conn", "--servers", "20", "--load", "0.9",
          "--requests", "200000", "--warmup", "10000", "--seed", "2")
rnd = run("queue", "--policy", "random", "--servers", "20", "--load", "0.9",
          "--requests", "200000", "--warmup", "10000", "--seed", "2")
cen = run("queue", "--policy", "central", "--servers", "20", "--load", "0.9",
          "--requests", "200000", "--warmup", "10000", "--seed", "2")
check(cen["mean_response"] < jsq["mean_response"] < rnd["mean_response"],
      "central %.3f < least_conn %.3f < random %.3f at n = 20, load 0.9"
      % (cen["mean_response"], jsq["mean_response"], rnd["mean_response"]))

b1 = run("balls", "--bins", "10000", "--balls", "10000", "--choices", "1", "--seed", "1")
b2 = run("balls", "--bins", "10000", "--balls", "10000", "--choices", "2", "--seed", "1")
for b in (b1, b2):
    h = b["histogram"]
    check(sum(h) == 10000 and sum(i * c for i, c in enumerate(h)) == 10000,
          "balls d=%d: histogram has every bin and ball" % b["choices"])
check(b2["max_load"] < b1["max_load"],
      "two choices lower the max load: %d < %d" % (b2["max_load"], b1["max_load"]))
check(b2["max_load"] <= 4, "d=2, n=10^4: max load %d <= 4" % b2["max_load"])

# Scenario mode: the resilience modules driven on simulated time.  The
# effects checked are large (an order of magnitude or more at these seeds),
# so each comparison is far outside the noise.
def scen(name, policy, *extra, requests="40000", seed="1", load="0.7"):
    return run("scenario", "--name", name, "--policy", policy, "--servers",
               "10", "--load", load, "--requests", requests, "--seed", seed,
               *extra)


f0 = scen("failing", "p2c")
f1 = scen("failing", "p2c", "--ejection")
check(f1["ejections"] >= 1 and f0["ejections"] == 0,
      "failing: the detector ejects (%d ejections)" % f1["ejections"])
check(f0["failed_fraction"] > 0.01 and
      f1["failed_fraction"] < f0["failed_fraction"] / 10,
      "failing: ejection cuts failed requests %.4f -> %.4f"
      % (f0["failed_fraction"], f1["failed_fraction"]))
check(f1["attempts_per_request"] < f0["attempts_per_request"],
      "failing: ejection cuts retries %.4f -> %.4f"
      % (f0["attempts_per_request"], f1["attempts_per_request"]))
c0 = scen("cold", "round_robin")
c1 = scen("cold", "round_robin", "--slow-start")
check(c1["mean_response"] + c1["ci95_mean_response"] < c0["mean_response"] / 2,
      "cold: slow start lowers round-robin's mean time %.3f -> %.3f"
      % (c0["mean_response"], c1["mean_response"]))
h0 = scen("half-down", "p2c", "--down-fail", "0", load="0.5")
h1 = scen("half-down", "p2c", "--down-fail", "0", "--panic", load="0.5")
check(h1["panic_fraction"] > 0.9 and h0["panic_fraction"] == 0,
      "half-down: panic is active with 4 of 10 healthy")
check(h1["mean_response"] < 3 and h0["mean_response"] > 30,
      "half-down: panic keeps the mean bounded %.3f vs overloaded %.3f"
      % (h1["mean_response"], h0["mean_response"]))
d1 = scen("drift", "thompson", requests="20000", seed="4")
d2 = scen("drift", "thompson", requests="20000", seed="4")
check(d1 == d2, "scenario: same seed, same result")
d3 = scen("drift", "thompson", requests="20000", seed="5")
check(d3["mean_response"] != d1["mean_response"],
      "scenario: another seed, another run")

for bad in (["scenario", "--name", "nope", "--policy", "p2c", "--servers", "10",
             "--load", "0.5", "--requests", "100", "--seed", "1"],
            ["scenario", "--name", "half-down", "--policy", "p2c", "--servers",
             "10", "--load", "0.5", "--requests", "100", "--down-fail", "2",
             "--seed", "1"],
            ["scenario", "--name", "failing", "--policy", "ring", "--servers",
             "10", "--load", "0.5", "--requests", "100", "--seed", "1"],
            ["queue", "--policy", "nope", "--servers", "2", "--load", "0.5",
             "--requests", "100", "--seed", "1"],
            ["queue", "--servers", "2", "--load", "1.5", "--requests", "100", "--seed", "1"],
            ["queue", "--servers", "0", "--load", "0.5", "--requests", "100", "--seed", "1"],
            ["queue", "--servers", "2", "--load", "nan", "--requests", "100", "--seed", "1"],
            ["balls", "--bins", "10", "--balls", "10", "--choices", "9", "--seed", "1"],
            ["queue", "--servers", "2", "--load", "0.5", "--requests", "100"]):
    r = subprocess.run([SIM] + bad, capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and r.stderr.startswith("lbkit-sim:"),
          "rejects %s" % " ".join(bad))

print("%d passed, %d failed" % (1 if failures == 0 else 0, 1 if failures else 0))
sys.exit(1 if failures else 0)
