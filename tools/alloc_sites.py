#!/usr/bin/env python3
"""Allocation sites of lib/ against the list of tests that fail each one.

Usage: alloc_sites.py SRCDIR [--write]

Finds every call of lbk_malloc / lbk_calloc in lib/*.c (the only ways lbkit
allocates: a direct malloc, calloc, realloc or strdup in lib/ is an error,
since it would bypass the caller's allocator hook), names each site
FILE:FUNCTION#N, and compares them with tests/alloc_sites.txt, whose lines
are "SITE TEST_FILE".  Fails when a site has no line (a new allocation
without a failure test), a line names no site (stale), or the named test
file does not walk allocation failures (no fail_alloc_reset in it).
--write prints a fresh list to fill in.  Run by meson test (suite unit).
"""
import os
import re
import sys

src = sys.argv[1]
write = "--write" in sys.argv
FUNC = re.compile(r"^[A-Za-z_][\w \*]*?\b(\w+)\s*\([^;]*$")
ALLOC = re.compile(r"\blbk_(?:malloc|calloc)\s*\(")
RAW = re.compile(r"(?<![\w.>])(?:malloc|calloc|realloc|strdup|aligned_alloc)\s*\(")

sites, raw = [], []
libdir = os.path.join(src, "lib")
for name in sorted(os.listdir(libdir)):
    if not name.endswith(".c"):
        continue
    func, count = "?", {}
    for lineno, line in enumerate(open(os.path.join(libdir, name)), 1):
        code = line.split("//")[0]
        m = FUNC.match(code)
        if m and not code.startswith(("static inline", "typedef")) and "=" not in code:
            func = m.group(1)
        if ALLOC.search(code) and name != "common.c" and not code.lstrip().startswith(("*", "/*")):
            count[func] = count.get(func, 0) + 1
            sites.append("lib/%s:%s#%d" % (name, func, count[func]))
        if RAW.search(code) and name != "common.c" and not code.lstrip().startswith(("*", "/*")):
            raw.append("lib/%s:%d: %s" % (name, lineno, line.strip()))

if write:
    for s in sites:
        print(s)
    sys.exit(0)

listed = {}
for line in open(os.path.join(src, "tests", "alloc_sites.txt")):
    line = line.split("#", 1)[0] if line.startswith("#") else line
    parts = line.split()
    if len(parts) == 2:
        listed[parts[0]] = parts[1]

ok = True
for r in raw:
    print("allocates around the hook:", r)
    ok = False
for s in sites:
    if s not in listed:
        print("allocation site without a failure test:", s)
        ok = False
for s, t in listed.items():
    if s not in sites:
        print("stale line (no such site):", s)
        ok = False
    path = os.path.join(src, t)
    if not os.path.exists(path) or "fail_alloc_reset" not in open(path).read():
        print("%s: %s does not walk allocation failures" % (s, t))
        ok = False
print("%d allocation sites in lib/, each failed by a test" % len(sites) if ok else "MISMATCH")
sys.exit(0 if ok else 1)
