#!/usr/bin/env python3
"""End-to-end test of lbkit-route.

Usage: test_route.py LBKIT_ROUTE [--golden]

Checks, for every --algo, that each key line gets one "key<TAB>backend"
line naming a listed backend of non-zero weight, deterministically; that the
bounded mode keeps every backend within ceil(c * m / n) after every key; that
bad input (unreadable file, bad weight, unknown algo, duplicate name, ...)
exits non-zero with a message on stderr and nothing on stdout; and that the
three compatibility modes agree key for key with this script's own
re-implementation of each peer (hashlib MD5, zlib CRC32), which is itself
checked against the peers' published answers: libketama's golden md5, the
libmemcached fixture and nginx_sample.csv (read from $LBK_SHARED_DIR/vectors
when present; those checks are skipped, and said so, when it is not).
"""
import bisect
import hashlib
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

ROUTE = sys.argv[1]
VECTORS = os.path.join(os.environ.get("LBK_SHARED_DIR", "/nonexistent"),
                       "vectors")
TMP = tempfile.mkdtemp(prefix="lbkit-route-test-")
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def run(args, keys):
    p = subprocess.run([ROUTE] + args, input="".join(k + "\n" for k in keys),
                       capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


def route(args, keys):
    rc, out, err = run(args, keys)
    check(rc == 0, "%s: exit %d (%s)" % (args, rc, err.strip()))
    lines = out.split("\n")
    check(lines[-1] == "", "%s: output ends with a newline" % args)
    pairs = [l.split("\t") for l in lines[:-1]]
    check(len(pairs) == len(keys), "%s: %d keys in, %d lines out"
          % (args, len(keys), len(pairs)))
    check(all(len(p) == 2 for p in pairs), "%s: key<TAB>backend" % args)
    check([p[0] for p in pairs] == keys, "%s: keys echoed in order" % args)
    return [p[1] for p in pairs]


# ---- peers, re-implemented ----------------------------------------------

def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def le32(b, i=0):
    return struct.unpack_from("<I", b, i)[0]


def md5(s):
    return hashlib.md5(s.encode()).digest()


def ketama_continuum(servers, libmemcached):
    """servers: [(host:port, weight)] -> sorted [(point, server index)]."""
    total = sum(w for _, w in servers if w)
    live = [(i, s, w) for i, (s, w) in enumerate(servers) if w]
    n = len(live)
    points = []
    for i, s, w in live:
        pct = f32(f32(w) / f32(total))
        if libmemcached:
            # every step in float32, then floor; 4 points per digest
            x = f32(f32(f32(pct * 160) / 4) * f32(n))
            digests = int(f32(x + f32(1e-10)) // 1)
            host, port = s.rsplit(":", 1)
            prefix = host if port == "11211" else s
        else:
            # float pct, the product in double, floorf (double -> float)
            digests = int(f32(pct * 40.0 * float(f32(n))) // 1)
            prefix = s
        for k in range(digests):
            d = md5("%s-%d" % (prefix, k))
            for h in range(4):
                points.append((le32(d, 4 * h), i))
    points.sort()  # ties by server index, as libmemcached orders them
    return points


def nginx_continuum(servers):
    points = []
    for i, (s, w) in enumerate(servers):
        if not w:
            continue
        host, port = s.rsplit(":", 1)
        base = host.encode() + b"\0" + port.encode()
        prev = 0
        for _ in range(160 * w):
            prev = zlib.crc32(base + struct.pack("<I", prev))
            points.append((prev, i))
    points.sort(key=lambda p: p[0])  # stable: equal values keep list order
    dedup = []
    for p in points:
        if not dedup or dedup[-1][0] != p[0]:
            dedup.append(p)
    return dedup


def owner(points, h):
    """First point >= h, wrapping: (point, server index)."""
    i = bisect.bisect_left(points, (h, -1))
    return points[i % len(points)]


def ketama_key(k):
    return le32(md5(k))


def nginx_key(k):
    return zlib.crc32(k.encode())


# ---- every algorithm: basic properties ------------------------------------

def test_all_algorithms():
    names = ["alpha", "beta", "gamma", "delta", "eps"]
    weights = [1, 3, 0, 2, 1]
    text = "# test backends\n\n" + "".join(
        "%s %d   # comment\n" % (n, w) for n, w in zip(names, weights))
    plain = write("plain.txt", text)
    compat = write("compat.txt", "".join(
        "10.1.0.%d:%d %d\n" % (i + 1, 11211 + i % 2, w)
        for i, w in enumerate(weights)))
    keys = ["key-%d" % i for i in range(3000)] + ["", "with space", "ünï"]
    for algo in ["ring", "maglev", "jump", "hrw", "bounded", "libketama",
                 "libmemcached", "nginx"]:
        f = compat if algo in ("libketama", "libmemcached", "nginx") else plain
        listed = open(f).read()
        got = route(["--algo", algo, f], keys)
        again = route(["--algo", algo, f], keys)
        check(got == again, "%s: deterministic" % algo)
        zero = "gamma" if f == plain else "10.1.0.3:11211"
        check(zero not in got, "%s: weight 0 takes no key" % algo)
        check(all(b in listed for b in got), "%s: listed backends" % algo)
        check(len(set(got)) >= 3, "%s: keys spread" % algo)
    check(route([plain], keys) == route(["--algo", "ring", plain], keys),
          "ring is the default")
    # Options change the mapping where they apply.
    check(route(["--algo", "maglev", "--table-size", "13", plain], keys)
          != route(["--algo", "maglev", plain], keys), "--table-size")
    check(route(["--algo", "hrw", "--seed", "7", plain], keys)
          != route(["--algo", "hrw", plain], keys), "--seed")
    check(route(["--algo", "ring", "--points", "3", plain], keys)
          != route(["--algo", "ring", plain], keys), "--points")
    # A CRLF key file routes like an LF one.
    crlf = subprocess.run([ROUTE, plain], input="a\r\nb\r\n",
                          capture_output=True, text=True, check=False)
    lf = subprocess.run([ROUTE, plain], input="a\nb\n",
                        capture_output=True, text=True, check=False)
    check(crlf.returncode == 0 and crlf.stdout == lf.stdout, "CRLF keys")


def test_bounded_capacity():
    path = write("bounded.txt", "".join("b%d 1\n" % i for i in range(6)))
    keys = ["hot"] * 200 + ["k%d" % i for i in range(400)]
    for factor in (100, 125, 200):
        got = route(["--algo", "bounded", "--balance-factor", str(factor),
                     path], keys)
        load = {}
        for m, b in enumerate(got, 1):
            load[b] = load.get(b, 0) + 1
            cap = -(-factor * m // (100 * 6))  # ceil(c * m / n)
            check(load[b] <= cap, "bounded c=%d: %s carries %d > %d at m=%d"
                  % (factor, b, load[b], cap, m))
        check(len(load) == 6, "bounded spreads the hot key")


# ---- errors ----------------------------------------------------------------

def test_errors():
    good = write("good.txt", "a 1\nb 2\n")
    cases = [
        (["--algo", "nosuch", good], "unknown algorithm"),
        ([os.path.join(TMP, "missing.txt")], "No such file"),
        ([TMP], ""),  # a directory: unreadable as a file
        ([write("w1.txt", "a x\n")], "bad weight"),
        ([write("w2.txt", "a -1\n")], "bad weight"),
        ([write("w3.txt", "a 4294967296\n")], "bad weight"),
        ([write("w4.txt", "a 1.5\n")], "bad weight"),
        ([write("dup.txt", "a 1\nb 1\na 2\n")], "dup.txt:3: duplicate"),
        ([write("extra.txt", "a 1 2\n")], "expected 'name [weight]'"),
        ([write("empty.txt", "# nothing\n\n")], "no backends"),
        ([write("long.txt", "x" * 300 + "\n")], "too long"),
        ([write("over.txt", "a 4294967295\nb 1\n")], "total weight"),
        (["--algo", "nginx", good], "malformed"),  # not host:port
        (["--algo", "maglev", "--table-size", "12", good], "not prime"),
        (["--algo", "maglev", "--table-size", "1", good], "not prime"),
        (["--algo", "bounded", "--balance-factor", "99", good], "range"),
        (["--algo", "bounded", "--balance-factor", "1.25", good],
         "percentage"),
        (["--algo", "hrw", "--table-size", "13", good], "does not apply"),
        (["--algo", "maglev", "--points", "10", good], "does not apply"),
        (["--algo", "ring", "--balance-factor", "150", good],
         "does not apply"),
        (["--algo", "nginx", "--seed", "1", good], "does not apply"),
        (["--points", "abc", good], "not a number"),
        ([], "expected one BACKENDS_FILE"),
        ([good, good], "expected one BACKENDS_FILE"),
        (["--bogus", good], ""),
    ]
    for args, msg in cases:
        rc, out, err = run(args, ["k"])
        check(rc != 0, "%s: non-zero exit" % args)
        check(out == "", "%s: nothing on stdout" % args)
        check(err.startswith("lbkit-route") or "unrecognized" in err,
              "%s: message on stderr (%r)" % (args, err))
        check(msg in err, "%s: stderr mentions %r (%r)" % (args, msg, err))
    # M < N: 3 backends, table of 2.
    three = write("three.txt", "a\nb\nc\n")
    rc, _, err = run(["--algo", "maglev", "--table-size", "2", three], ["k"])
    check(rc != 0 and "range" in err, "maglev M < N: %r" % err)
    # All weights 0: the build succeeds, the first key finds no backend.
    zero = write("zero.txt", "a 0\nb 0\n")
    for algo in ("ring", "maglev", "jump", "hrw", "bounded"):
        rc, out, err = run(["--algo", algo, zero], ["k"])
        check(rc == 1 and "no eligible backend" in err,
              "%s all weights 0: %d %r" % (algo, rc, err))
    rc, out, _ = run(["--help"], [])
    check(rc == 0 and "usage" in out, "--help")


# ---- compatibility modes against the peers ---------------------------------

def read_servers(path):
    servers = []
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].split()
        if line:
            servers.append((line[0], int(line[1]) if len(line) > 1 else 1))
    return servers


def test_libketama(golden=False):
    """libketama mode against the script's continuum.  With golden, all of
    libketama's test keys "0".."999999" and the md5 of its test output
    (several seconds: suite 'slow'); else the first 50000 keys."""
    path = os.path.join(VECTORS, "ketama.servers")
    if not os.path.exists(path):
        print("SKIP libketama golden test: %s absent" % path)
        servers = [("10.0.1.%d:11211" % i, w) for i, w in
                   enumerate([600, 300, 200, 350, 1000, 800, 950, 100], 1)]
    else:
        servers = read_servers(path)
    points = ketama_continuum(servers, libmemcached=False)
    check(len(points) == 1264, "libketama: 1264 points, got %d" % len(points))
    keys = [str(i) for i in range(1000000 if golden else 50000)]
    golden_md5 = hashlib.md5()
    golden_md5.update(b"\n")
    expect = []
    for k in keys:
        h = ketama_key(k)
        p, i = owner(points, h)
        golden_md5.update(("%u %u %s\n" % (h, p, servers[i][0])).encode())
        expect.append(servers[i][0])
    if golden:
        check(golden_md5.hexdigest() == "5672b131391f5aa2b280936aec1eea74",
              "the script's libketama reproduces the golden md5")
    sfile = write("ketama.txt", "".join("%s %d\n" % s for s in servers))
    got = route(["--algo", "libketama", sfile], keys)
    bad = sum(1 for a, b in zip(got, expect) if a != b)
    check(bad == 0, "libketama: %d of %d keys differ from the golden "
          "continuum" % (bad, len(keys)))


def c_unescape(s):
    return re.sub(r"\\(.)", lambda m: m.group(1), s)


def test_libmemcached():
    weights = [600, 300, 200, 350, 1000, 800, 950, 100]
    servers = [("10.0.1.%d:11211" % i, w) for i, w in enumerate(weights, 1)]
    points = ketama_continuum(servers, libmemcached=True)
    fixture = os.path.join(VECTORS, "libmemcached_ketama_fixture.hpp")
    if os.path.exists(fixture):
        rows = re.findall(r'\{"((?:[^"\\]|\\.)*)", (\d+)UL, (\d+)UL, '
                          r'"([\d.]+)"\}',
                          open(fixture).read().split("};")[0])  # 1st table
        check(len(rows) == 99, "fixture: 99 rows, got %d" % len(rows))
        keys = [c_unescape(r[0]) for r in rows]
        for k, (_, h1, h2, host) in zip(keys, rows):
            h = ketama_key(k)
            p, i = owner(points, h)
            check(h == int(h1) and p == int(h2)
                  and servers[i][0] == host + ":11211",
                  "script vs fixture for %r" % k)
    else:
        print("SKIP libmemcached fixture: %s absent" % fixture)
        keys = []
    keys += ["VDEAAAAA"] + ["lm-%d" % i for i in range(20000)]
    p, i = owner(points, ketama_key("VDEAAAAA"))
    check(p == points[0][0], "VDEAAAAA wraps to the first point")
    sfile = write("memcached.txt", "".join("%s %d\n" % s for s in servers))
    got = route(["--algo", "libmemcached", sfile], keys)
    expect = [servers[owner(points, ketama_key(k))[1]][0] for k in keys]
    bad = sum(1 for a, b in zip(got, expect) if a != b)
    check(bad == 0, "libmemcached: %d of %d keys differ" % (bad, len(keys)))
    # A non-default port keeps host:port in the point strings.
    mixed = [("10.2.0.%d:%d" % (i, 11211 if i % 2 else 11311), i)
             for i in range(1, 9)]
    points = ketama_continuum(mixed, libmemcached=True)
    sfile = write("mixed.txt", "".join("%s %d\n" % s for s in mixed))
    keys = ["mx-%d" % i for i in range(20000)]
    got = route(["--algo", "libmemcached", sfile], keys)
    expect = [mixed[owner(points, ketama_key(k))[1]][0] for k in keys]
    check(got == expect, "libmemcached with mixed ports")


def test_nginx():
    servers = [("10.0.0.%d:443" % i, 100) for i in range(1, 10)]
    points = nginx_continuum(servers)
    sfile = write("nginx.txt", "".join("%s %d\n" % s for s in servers))
    sample = os.path.join(VECTORS, "nginx_sample.csv")
    if os.path.exists(sample):
        rows = [l.rstrip("\n").rsplit(",", 1)
                for l in open(sample, encoding="utf-8") if l.strip()]
        check(len(rows) == 1001, "nginx sample: 1001 rows")
        keys = [r[0] for r in rows]
        expect = [servers[owner(points, nginx_key(k))[1]][0] for k in keys]
        check(expect == [r[1] for r in rows], "script vs nginx_sample.csv")
        got = route(["--algo", "nginx", sfile], keys)
        bad = sum(1 for a, r in zip(got, rows) if a != r[1])
        check(bad == 0, "nginx: %d of 1001 sample lines differ" % bad)
    else:
        print("SKIP nginx_sample.csv: %s absent" % sample)
    weighted = [("10.3.0.%d:%d" % (i, 80 + i), i % 4) for i in range(1, 12)]
    points = nginx_continuum(weighted)
    sfile = write("nginxw.txt", "".join("%s %d\n" % s for s in weighted))
    keys = ["/path/%d?q=%d" % (i, i * 7) for i in range(20000)]
    got = route(["--algo", "nginx", sfile], keys)
    expect = [weighted[owner(points, nginx_key(k))[1]][0] for k in keys]
    check(got == expect, "nginx with mixed weights and ports")


def main():
    if "--golden" in sys.argv[2:]:
        tests = [lambda: test_libketama(golden=True)]
    else:
        tests = [test_all_algorithms, test_bounded_capacity, test_errors,
                 test_libmemcached, test_nginx, test_libketama]
    for t in tests:
        before = failures
        t()
        print("%s %s" % ("ok  " if failures == before else "FAIL", t.__name__))
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
