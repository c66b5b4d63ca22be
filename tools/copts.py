#!/usr/bin/env python3
"""Prints the compiler flags a Bazel build would give a source file, for the
recipes that run the compiler themselves (bench/build.sh,
tools/build_libdepot.sh), so that each flag is written once:

  tools/copts.py [--config NAME]... c|c++ [LIST]...

The flags of every target come from .bazelrc's `build` lines (--copt, and
--conlyopt or --cxxopt by language), then those of each --config NAME's
`build:NAME` lines, then each LIST named from tools/copts.bzl (e.g.
DEPOT_CORE_COPTS, or DEPOT_SO_LINKOPTS, the link's), a $(location //dir:f)
in it written as the file's path.  One flag per word, on one line.
"""
import os
import re
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bazelrc_flags(command, lang):
    """--copt and the language's --conlyopt/--cxxopt words of the `command`
    lines (e.g. build, build:opt) of .bazelrc."""
    own = "--conlyopt=" if lang == "c" else "--cxxopt="
    out = []
    with open(os.path.join(ROOT, ".bazelrc")) as f:
        for line in f:
            words = shlex.split(line, comments=True)
            if not words or words[0] != command:
                continue
            for w in words[1:]:
                for prefix in ("--copt=", own):
                    if w.startswith(prefix):
                        out.append(w[len(prefix):])
    return out


def bzl_lists():
    scope = {}
    with open(os.path.join(ROOT, "tools", "copts.bzl")) as f:
        exec(compile(f.read(), "tools/copts.bzl", "exec"), scope)
    return scope


def main(argv):
    configs = []
    while argv[:1] == ["--config"] and len(argv) >= 2:
        configs.append(argv[1])
        argv = argv[2:]
    if not argv or argv[0] not in ("c", "c++"):
        sys.exit(__doc__.strip())
    lang, names = argv[0], argv[1:]
    flags = bazelrc_flags("build", lang)
    for c in configs:
        flags += bazelrc_flags("build:" + c, lang)
    lists = bzl_lists()
    for n in names:
        if n not in lists:
            sys.exit("copts.py: tools/copts.bzl has no list %s" % n)
        flags += [re.sub(r"\$\(location //([^:]*):([^)]*)\)",
                         lambda m: os.path.join(ROOT, m.group(1), m.group(2)), f)
                  for f in lists[n]]
    print(" ".join(flags))


if __name__ == "__main__":
    main(sys.argv[1:])
