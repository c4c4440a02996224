#!/usr/bin/env python3
"""The shared library exports exactly the lbk_ symbols of the version script,
and those are exactly the functions declared LBK_API in the public headers.

Usage: check_exports.py LIBLBKIT.so LBKIT.map INCLUDE_DIR [--unbuilt=A,B]

--unbuilt lists modules that were not built (an optional adapter whose
dependency is missing, or -Dskip_modules): their headers (A.h, B.h) are
installed but their functions are not in the library, so those headers are
left out of the comparison.
"""
import glob
import os
import re
import subprocess
import sys

lib, mapfile, incdir = sys.argv[1:4]
unbuilt = set()
for arg in sys.argv[4:]:
    if arg.startswith("--unbuilt="):
        unbuilt.update(m for m in arg[len("--unbuilt="):].split(",") if m)

out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                     capture_output=True, text=True).stdout
exported = set()
for line in out.splitlines():
    parts = line.split()
    if len(parts) >= 3 and parts[1] in "TtDdBbRrVvWw":
        exported.add(parts[2].split("@")[0])
exported.discard("LBKIT_0.1")

mapped = set(re.findall(r"^\s+(lbk_\w+);", open(mapfile).read(), re.M))

declared = set()
for h in glob.glob(incdir + "/*.h"):
    if os.path.basename(h)[:-2] in unbuilt:
        continue
    text = open(h).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)          # comments
    text = re.sub(r"^\s*#.*?(?<!\\)$", "", text, flags=re.M | re.S)  # cpp
    for decl in re.findall(r"LBK_API\b([^;{]*?)\(", text, re.S):
        declared.add(re.findall(r"(lbk_\w+)\s*$", decl.strip())[0])

ok = True
bad = sorted(s for s in exported if not s.startswith("lbk_"))
if bad:
    print("exported without the lbk_ prefix:", bad)
    ok = False
for a, an, b, bn in ((exported, "exported", mapped, "in the version script"),
                     (mapped, "in the version script", declared, "declared LBK_API"),
                     (declared, "declared LBK_API", exported, "exported")):
    missing = sorted(a - b)
    if missing:
        print("%s but not %s: %s" % (an, bn, missing))
        ok = False
print("%d symbols exported, script and headers agree" % len(exported) if ok else "MISMATCH")
sys.exit(0 if ok else 1)
