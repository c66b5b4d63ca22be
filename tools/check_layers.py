#!/usr/bin/env python3
"""Checks that alloc/ is a stack of layers, as alloc/README.md draws it.

The README's layer diagram (the fenced block under "# alloc/") lists the
core's modules from the top down; a module is a file name without its
extension (arena.c and arena.h are the module "arena"; alloc_api.h belongs
to "alloc").  Every #include "alloc/X.h" in a module must name a module
drawn below it, and no file of alloc/ may include anything of runtime/ or
the public header.  Exits 1 with one line per violation.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
alloc = os.path.join(root, "alloc")
readme = open(os.path.join(alloc, "README.md")).read()
block = readme.split("```", 2)[1]
order = []  # top first
for line in block.splitlines():
    m = re.match(r"\s\s(\w+)\s", line)
    if m and not line.strip().startswith("runtime/"):
        order.append(m.group(1))
# Headers that share a module with another name.
alias = {"alloc_api": "alloc", "check": "log", "valgrind": "common"}
rank = {name: i for i, name in enumerate(order)}
errors = []
for f in sorted(os.listdir(alloc)):
    if not f.endswith((".c", ".h")):
        continue
    mod = alias.get(os.path.splitext(f)[0], os.path.splitext(f)[0])
    if mod not in rank:
        errors.append(f"alloc/{f}: module '{mod}' is not in alloc/README.md's diagram")
        continue
    for inc in re.findall(r'#include "([^"]+)"', open(os.path.join(alloc, f)).read()):
        if not inc.startswith("alloc/"):
            errors.append(f"alloc/{f}: includes {inc} (outside the core)")
            continue
        dep = os.path.splitext(os.path.basename(inc))[0]
        dep = alias.get(dep, dep)
        if dep == mod:
            continue
        if dep not in rank:
            errors.append(f"alloc/{f}: includes {inc}, not in the diagram")
        elif rank[dep] <= rank[mod]:
            errors.append(f"alloc/{f}: includes {inc}, which is not below '{mod}'")
for e in errors:
    print(e)
print(f"{len(order)} layers, {len(errors)} violations")
sys.exit(1 if errors else 0)
