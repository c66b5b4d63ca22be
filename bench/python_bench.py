#!/usr/bin/env python3
"""Python workloads on CPython's allocators and on Depot, interleaved.

    tools/bazelw build //runtime/python:package
    python3 bench/python_bench.py [--runs=5] [--scale=1.0] [--out=FILE.md]

Each workload (dict, list and str churn, JSON round-trips, object creation)
runs in a fresh /usr/bin/python3 under each mode, the modes interleaved run
after run:
  pymalloc        CPython's default
  malloc (glibc)  PYTHONMALLOC=malloc: every domain on glibc's malloc
  depot.install() the mem and object domains put on Depot at start-up
  depot run       python3 -m depot run's setting: libdepot.so preloaded
                  and PYTHONMALLOC=malloc (every domain and the C library)
The time is the workload's own (perf_counter around it, start-up excluded);
the memory is the child's peak RSS (wait4).  Medians; ratios to pymalloc.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"

WORKLOADS = {
    "dict churn": """
for r in range(int(40 * S)):
    d = {}
    for i in range(20000):
        d["k%d" % i] = i
    for i in range(0, 20000, 2):
        del d["k%d" % i]
    d2 = {k: v * 2 for k, v in d.items()}
    del d, d2
""",
    "list churn": """
for r in range(int(60 * S)):
    a = []
    for i in range(20000):
        a.append([i, i + 1])
    b = [x[0] for x in a if x[0] % 3]
    while a:
        a.pop()
    c = b[::2] + b[1::2]
    del a, b, c
""",
    "str churn": """
for r in range(int(40 * S)):
    parts = ["word%d" % i for i in range(10000)]
    s = " ".join(parts)
    t = s.upper().split()
    u = [p.replace("WORD", "w") + str(i) for i, p in enumerate(t)]
    v = ",".join(u)[::-1]
    del parts, s, t, u, v
""",
    "json round-trip": """
import json
doc = {"items": [{"id": i, "name": "item%d" % i, "tags": ["a", "b", str(i)],
                  "price": i * 1.25, "ok": i % 2 == 0} for i in range(2000)]}
for r in range(int(25 * S)):
    text = json.dumps(doc)
    back = json.loads(text)
    assert back["items"][7]["id"] == 7
    del text, back
""",
    "object creation": """
class Point:
    __slots__ = ("x", "y")
    def __init__(self, x, y):
        self.x = x; self.y = y
class Node:
    def __init__(self, v, nxt):
        self.v = v; self.nxt = nxt
for r in range(int(30 * S)):
    pts = [Point(i, i) for i in range(20000)]
    head = None
    for i in range(20000):
        head = Node(i, head)
    tups = [(i, str(i)) for i in range(20000)]
    del pts, head, tups
""",
}

CHILD = """
import sys, time
S = float(sys.argv[2])
if sys.argv[1] == "install":
    import depot
    depot.install()
code = compile(sys.argv[3], "workload", "exec")
t0 = time.perf_counter()
exec(code, {"S": S, "__name__": "workload"})
sys.stdout.write("%.6f\\n" % (time.perf_counter() - t0))
"""


def modes(site, lib):
    base = {k: v for k, v in os.environ.items()
            if k not in ("LD_PRELOAD", "PYTHONMALLOC", "DEPOTMALLOC")}
    base["PYTHONPATH"] = site
    return [
        ("pymalloc", "plain", dict(base)),
        ("malloc (glibc)", "plain", dict(base, PYTHONMALLOC="malloc")),
        ("depot.install()", "install", dict(base)),
        ("depot run", "plain", dict(base, PYTHONMALLOC="malloc",
                                    LD_PRELOAD=lib)),
    ]


def run_one(env, how, scale, code):
    p = subprocess.Popen([PY, "-c", CHILD, how, str(scale), code], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"workload failed ({p.returncode}): {err.decode()}")
    return float(out), usage.ru_maxrss / 1024.0  # MiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--site", default=os.path.join(
        ROOT, "bazel-bin/runtime/python/tree/lib/python3/dist-packages"))
    ap.add_argument("--out", help="also write the Markdown table here")
    a = ap.parse_args()
    libdir = os.path.join(os.path.dirname(os.path.dirname(a.site)))
    libs = [f for f in os.listdir(libdir) if f.startswith("libdepot.so")]
    if not os.path.isdir(os.path.join(a.site, "depot")) or not libs:
        raise SystemExit(f"no depot package in {a.site}: run "
                         "tools/bazelw build //runtime/python:package")
    lib = os.path.join(libdir, libs[0])
    ms = modes(a.site, lib)
    res = {(w, m[0]): ([], []) for w in WORKLOADS for m in ms}
    start = time.time()
    for r in range(a.runs):
        for w, code in WORKLOADS.items():
            order = ms if r % 2 == 0 else ms[::-1]  # interleaved, alternated
            for name, how, env in order:
                t, rss = run_one(env, how, a.scale, code)
                res[(w, name)][0].append(t)
                res[(w, name)][1].append(rss)
        print(f"run {r + 1}/{a.runs} done ({time.time() - start:.0f} s)",
              file=sys.stderr)
    names = [m[0] for m in ms]
    lines = [f"Python workloads, {a.runs} interleaved runs, medians "
             f"(time in s / peak RSS in MiB; ratio to pymalloc)", "",
             "| workload | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    geo = {n: [[], []] for n in names}
    for w in WORKLOADS:
        t0 = statistics.median(res[(w, "pymalloc")][0])
        r0 = statistics.median(res[(w, "pymalloc")][1])
        cells = []
        for n in names:
            t = statistics.median(res[(w, n)][0])
            m = statistics.median(res[(w, n)][1])
            geo[n][0].append(t / t0)
            geo[n][1].append(m / r0)
            cells.append(f"{t:.3f} s ({t / t0:.2f}) / {m:.0f} MiB "
                         f"({m / r0:.2f})")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    lines.append("| geomean of ratios | " + " | ".join(
        f"time {statistics.geometric_mean(geo[n][0]):.2f}, RSS "
        f"{statistics.geometric_mean(geo[n][1]):.2f}" for n in names) + " |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
