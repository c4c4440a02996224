#!/usr/bin/env python3
"""Every C example in README.md compiles against lbkit and runs (exit 0).

Usage: check_readme.py README.md INCLUDE_DIR LIBLBKIT.a [SANITIZE [coverage]]
SANITIZE is meson's b_sanitize value, so a sanitized library links.
"""
import os
import re
import subprocess
import sys
import tempfile

readme, incdir, lib = sys.argv[1:4]
san = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] not in ("", "none") else None
extra = ["-fsanitize=" + san] if san else []
if len(sys.argv) > 5 and sys.argv[5] == "coverage":
    extra.append("--coverage")
blocks = re.findall(r"```c\n(.*?)```", open(readme).read(), re.S)
failed = 0
with tempfile.TemporaryDirectory() as tmp:
    for i, code in enumerate(blocks):
        src = os.path.join(tmp, "ex%d.c" % i)
        exe = os.path.join(tmp, "ex%d" % i)
        open(src, "w").write(code)
        r = subprocess.run(["cc", "-std=c11", "-Wall", "-Werror"] + extra + ["-I", incdir, src,
                            lib, "-lxxhash", "-lm", "-lpthread", "-o", exe],
                           capture_output=True, text=True)
        if r.returncode == 0:
            r = subprocess.run([exe], capture_output=True, text=True, timeout=30)
        ok = r.returncode == 0
        failed += not ok
        print("%s - README example %d%s" % ("ok" if ok else "FAIL", i + 1,
              "" if ok else ": " + r.stderr[-400:]))
print("%d passed, %d failed" % (len(blocks) - failed, failed))
sys.exit(1 if failed or not blocks else 0)
