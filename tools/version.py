#!/usr/bin/env python3
"""Print lbkit's version or ABI number as read from include/lbkit/version.h."""
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()


def get(name):
    m = re.search(r"#define\s+%s\s+(\d+)" % name, text)
    if not m:
        sys.exit("version.h: %s not found" % name)
    return m.group(1)


if sys.argv[2] == "abi":
    print(get("LBK_ABI_VERSION"))
else:
    print(".".join(get("LBK_VERSION_" + p) for p in ("MAJOR", "MINOR", "PATCH")))
