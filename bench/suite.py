#!/usr/bin/env python3
"""Depot's benchmark suite: Depot against glibc, jemalloc, tcmalloc and
mimalloc, side by side, each preloaded into the same benchmark binaries.

    tools/bazelw run //bench                 # --quick: 24 minutes on the
                                             # 2-core VM shared with builds
    tools/bazelw run //bench -- --full       # 5 runs, 3 times the work
    tools/bazelw run //bench -- --runs=1     # fewer repetitions
    tools/bazelw run //bench -- --workloads=xfree-lifo,classes40 --no-micro
    tools/bazelw run //bench -- --threads=1,2,4,8

Each allocator runs each workload N times, interleaved (A B C D E, the
starting allocator rotating), and the median is reported with the spread.
Every timed workload runs at least 0.3 s per run in quick mode on a 2-core
VM (the suite notes any that ran shorter).  Reported per run: wall time of
the work (measured by the program), CPU time (user + system of the whole
child process, from wait4), and peak resident memory (the program's own
VmHWM: a child's ru_maxrss would include the RSS of the Python process it
was forked from, because Linux carries the old mm's high-water mark across
exec).  Memory probes (bench/workloads.c) report memory only.
Markdown goes to stdout and to bench/results/<date>-<host>.md, with a CSV
and PNG charts beside it.  Peers that are not installed are installed when
running as root (Debian packages), else skipped with a note.  The suite
reports its targets and never fails on them; it exits 1 when a run
crashed (or failed), after writing the results.
"""
import argparse
import csv
import datetime
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
# allocator -> (Debian package, library file name); glibc needs no preload.
PEERS = {
    "glibc": (None, None),
    "jemalloc": ("libjemalloc2", "libjemalloc.so.2"),
    "tcmalloc": ("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
    "mimalloc": ("libmimalloc2.0", "libmimalloc.so.2"),
}
# The timed workloads: (label, workload of bench/workloads.c, threads).
# threads: "T" is the suite's workload thread count (--workload-threads,
# default min(CPUs, 4) quick, CPUs full); "2xcpu" and "4xcpu" oversubscribe
# the machine, with the work per thread divided so that the total stays
# that of T threads.
WORKLOADS = [
    ("larson", "larson", "T"),
    ("xmalloc", "xmalloc", "T"),
    ("scratch", "scratch", "T"),
    ("scratch-warm", "scratch-warm", "T"),
    ("thrash", "thrash", "T"),
    ("thrash-many", "thrash-many", "T"),
    ("mstress", "mstress", "T"),
    ("large", "large", "T"),
    ("pyobject", "pyobject", "T"),
    ("histo-lifo", "histo-lifo", "T"),
    ("histo-fifo", "histo-fifo", "T"),
    ("xfree-lifo", "xfree-lifo", "T"),
    ("xfree-fifo", "xfree-fifo", "T"),
    ("xfree-fifo/2xcpu", "xfree-fifo", "2xcpu"),
    ("xfree-fifo/4xcpu", "xfree-fifo", "4xcpu"),
]
# Memory probes: (label, workload, threads, figure it prints or None).
PROBES = [
    ("thread-rss", "thread-rss", 16, "per_thread_kib"),
    ("classes40", "classes40", 1, "added_kib"),
    ("small-st", "small-st", 1, None),
    ("small-thread", "small-thread", 1, None),
]
MICRO_FILTER = "^(pair|batch100/mixed|realloc/growth|prodcons/2thr)"
SCALING_WORKLOADS = ["larson", "mstress", "thrash", "xfree-fifo"]
MIN_SECONDS = 0.3  # the shortest a timed workload may run in quick mode
# The issue's targets (reported, not enforced).
TARGET_TIME_GEOMEAN, TARGET_TIME_WORST, TARGET_RSS_GEOMEAN = 1.0, 1.25, 1.10
TARGET_PAIR, TARGET_BATCH, TARGET_THREAD_KIB = 40, 50, 256


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def find(name, *candidates):
    """The first existing path among candidates (runfiles, beside us)."""
    for c in candidates:
        if c and os.path.exists(c):
            return os.path.abspath(c)
    return None


def runfiles_path(rel):
    roots = [os.environ.get("RUNFILES_DIR"), HERE + ".runfiles",
             os.path.join(HERE, "suite.runfiles")]
    for r in roots:
        if r and os.path.exists(os.path.join(r, "depot", rel)):
            return os.path.join(r, "depot", rel)
    return None


def install_peers(names, extra):
    """Installs missing Debian packages when we are root; never fails."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    pkgs = [PEERS[n][0] for n in names if PEERS[n][0] and
            not os.path.exists(os.path.join(LIBDIR, PEERS[n][1]))]
    pkgs += [p for p, present in extra if not present]
    if not pkgs:
        return
    log("suite: installing %s" % " ".join(pkgs))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq"] + pkgs, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# Allocators that are Depot with a configuration: depot-prof is Depot with
# heap profiling on at the default sampling interval, to measure its cost
# (not in the default list: --allocators depot,depot-prof,...).
CONFIGURED = {"depot-prof": {"DEPOT_CONF": "prof=1"}}


def run(cmd, preload, timeout=600, env_extra=None):
    """Runs cmd with preload; returns (exit status, stdout, stderr, CPU
    seconds of the child: user + system, from wait4).  The exit status is
    negative for a signal (a crash), 124 for a timeout."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    if env_extra:
        env.update(env_extra)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        deadline = time.time() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                status = 124 << 8
                break
            time.sleep(0.005)
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), ru.ru_utime + ru.ru_stime


def rotated(names, k):
    k %= len(names)
    return names[k:] + names[:k]


class Results:
    """workload -> allocator -> list of samples, each a dict: time (lower is
    better; throughputs are stored as time per unit), rss (KiB or None),
    cpu (seconds or None), and the probe's own figure (extra)."""

    def __init__(self):
        self.data = {}
        self.units = {}
        self.kinds = {}  # micro, workload, server, probe
        self.extra = {}  # workload -> name of its extra figure
        self.failures = []  # (workload, allocator, what happened)

    def add(self, workload, alloc, t, rss, unit, kind, cpu=None, extra=None):
        self.data.setdefault(workload, {}).setdefault(alloc, []).append(
            {"time": t, "rss": rss, "cpu": cpu, "extra": extra})
        self.units[workload] = unit
        self.kinds[workload] = kind


def parse_result(out):
    """The fields of the workloads program's RESULT line, or None."""
    line = next((l for l in out.splitlines() if l.startswith("RESULT")), None)
    if not line:
        return None
    return dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv)


def failure(res, w, a, rc, err):
    what = "killed by signal %d" % -rc if rc < 0 else (
        "timed out" if rc == 124 else "exit %d" % rc)
    res.failures.append((w, a, what))
    log("suite: %s under %s failed (%s): %s" % (w, a, what, err.strip()[-300:]))


def workload_threads(spec, args):
    if spec == "T":
        return args.workload_threads
    if isinstance(spec, str) and spec.endswith("xcpu"):
        return int(spec[:-4]) * args.cpus
    return int(spec)


def run_one(args, res, label, w, threads, scale, a, lib, workloads_bin, kind, extra_key):
    cmd = [workloads_bin, w, "--threads", str(threads), "--scale", "%g" % scale]
    rc, out, err, cpu = run(cmd, lib, env_extra=CONFIGURED.get(a))
    f = parse_result(out)
    if rc != 0 or not f:
        failure(res, label, a, rc if rc else 1, err or "no RESULT line")
        return
    extra = int(f[extra_key]) if extra_key and extra_key in f else None
    res.add(label, a, float(f["seconds"]), int(f["peak_rss_kib"]), "s", kind, cpu, extra)
    if extra_key:
        res.extra[label] = extra_key


def run_workloads(args, res, names, libs, workloads_bin):
    for r in range(args.runs):
        for label, w, spec in WORKLOADS:
            t = workload_threads(spec, args)
            # Oversubscribed: the same total work as args.workload_threads.
            scale = args.scale * min(1.0, args.workload_threads / t)
            extra = "shared_workers" if w.startswith(("scratch", "thrash")) else None
            for a in rotated(names, r):
                run_one(args, res, label, w, t, scale, a, libs[a], workloads_bin,
                        "workload", extra)
        for label, w, t, extra in PROBES:
            for a in rotated(names, r):
                run_one(args, res, label, w, t, 1.0, a, libs[a], workloads_bin, "probe", extra)
        log("suite: workloads, run %d of %d done" % (r + 1, args.runs))


def run_micro(args, res, names, libs, micro_bin):
    for r in range(args.runs):
        for a in rotated(names, r):
            cmd = [micro_bin, "--benchmark_format=json",
                   "--benchmark_filter=" + MICRO_FILTER,
                   "--benchmark_min_time=%g" % args.min_time]
            rc, out, err, _ = run(cmd, libs[a], env_extra=CONFIGURED.get(a))
            if rc != 0:
                failure(res, "micro", a, rc, err)
                continue
            for b in json.loads(out)["benchmarks"]:
                if b.get("run_type") == "aggregate":
                    continue
                ns = b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
                name = "micro " + b["name"].replace("/real_time", "")
                res.add(name, a, ns, None, "ns", "micro")
        log("suite: microbenchmarks, run %d of %d done" % (r + 1, args.runs))


def run_scaling(args, res, names, libs, workloads_bin):
    """workload -> allocator -> threads -> median ops/s."""
    out = {}
    for w in SCALING_WORKLOADS:
        for t in args.threads:
            samples = {a: [] for a in names}
            for r in range(args.scaling_runs):
                for a in rotated(names, r):
                    cmd = [workloads_bin, w, "--threads", str(t), "--scale", "%g" % args.scale]
                    rc, o, err, _ = run(cmd, libs[a], env_extra=CONFIGURED.get(a))
                    f = parse_result(o)
                    if rc != 0 or not f:
                        failure(res, "%s/%dthr" % (w, t), a, rc if rc else 1, err)
                        continue
                    samples[a].append(int(f["ops"]) / float(f["seconds"]))
            for a in names:
                if samples[a]:
                    out.setdefault(w, {}).setdefault(a, {})[t] = statistics.median(samples[a])
        log("suite: thread scaling of %s done" % w)
    return out


def run_redis(args, res, names, redis_bench, peer_dir):
    if not redis_bench or not shutil.which("redis-server"):
        log("suite: redis-server not installed; the Redis comparison is skipped")
        return
    cmd = [redis_bench, "--runs", str(args.runs), "--requests", str(args.redis_requests), "--raw"]
    if peer_dir:
        cmd += ["--peer-dir", peer_dir]
    rc, out, err, _ = run(cmd, None, timeout=3600)
    if rc != 0:
        failure(res, "redis", "all", rc, err)
        return
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "RUN" and parts[1] in names:
            rps, rss = float(parts[2]), int(parts[3])
            if rps > 0:
                res.add("redis", parts[1], 1e9 / rps, rss, "ns/request", "server")


def run_icount(icount_script, peer_dir, libdepot):
    if not icount_script or not shutil.which("valgrind"):
        log("suite: valgrind is not installed; no instruction counts")
        return None
    env = {"DEPOT_LIB": os.path.abspath(libdepot)}
    if peer_dir:
        env["PEER_DIR"] = peer_dir
    rc, out, err, _ = run(["bash", icount_script], None, timeout=900, env_extra=env)
    if rc != 0:
        log("suite: the instruction count failed: %s" % err.strip()[-300:])
        return None
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("allocator", "---"):
            try:
                rows[cells[0]] = (float(cells[1]), float(cells[2]))
            except ValueError:
                pass
    return rows


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def median_of(samples, key):
    vals = [s[key] for s in samples]
    return statistics.median(vals) if vals and all(v is not None for v in vals) else None


def summarise(res, names):
    """Per workload and allocator: medians (time, CPU, RSS, extra), the
    spread of the time, and ratios to the best allocator.  A probe's time
    means nothing and gets no ratio."""
    table = {}
    for w, per in res.data.items():
        cells = {}
        for a, v in per.items():
            cells[a] = {"time": median_of(v, "time"), "cpu": median_of(v, "cpu"),
                        "rss": median_of(v, "rss"), "extra": median_of(v, "extra"),
                        "lo": min(s["time"] for s in v), "hi": max(s["time"] for s in v)}
        for key in ("time", "cpu", "rss", "extra"):
            vals = [c[key] for c in cells.values() if c[key] is not None]
            best = min(vals) if vals else None
            for c in cells.values():
                c[key + "_ratio"] = (c[key] / best if best and c[key] is not None and
                                     not (key == "time" and res.kinds[w] == "probe") else None)
        table[w] = cells
    return table


def versus_peers(table, res, w, key):
    """Depot's figure over the best peer's, or None."""
    cells = table[w]
    if "depot" not in cells or cells["depot"][key] is None:
        return None
    peers = [c[key] for a, c in cells.items()
             if a != "depot" and a not in CONFIGURED and c[key] is not None]
    if not peers or min(peers) <= 0:
        return None
    return cells["depot"][key] / min(peers)


def fmt_time(v, unit):
    if v is None:
        return "-"
    if unit == "s":
        return "%.3f s" % v
    if unit == "ns/request":
        return "%.0f req/s" % (1e9 / v)
    return "%.1f ns" % v


def fmt(v, f="%.2f"):
    return f % v if v is not None else "-"


def order(table, res):
    """Microbenchmarks by name, then the workloads and probes as listed."""
    rank = {"micro": 0, "workload": 1, "server": 2, "probe": 3}
    listed = [w[0] for w in WORKLOADS] + [p[0] for p in PROBES]
    return sorted(table, key=lambda k: (rank.get(res.kinds[k], 9),
                                        listed.index(k) if k in listed else 0, k))


def render_workload(out, w, table, res, names):
    unit, kind, extra = res.units[w], res.kinds[w], res.extra.get(w)
    out.append("\n## %s\n" % w)
    head = ["allocator"]
    if kind != "probe":
        head += ["throughput" if unit == "ns/request" else "time", "spread", "time / best"]
    if kind in ("workload", "probe"):
        head += ["CPU s"]
    if kind == "workload":
        head += ["CPU / best"]
    if kind != "micro":
        head += ["peak RSS MiB", "RSS / best"]
    if extra:
        head += [extra]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for a in names:
        if a not in table[w]:
            continue
        c = table[w][a]
        row = [a]
        if kind != "probe":
            lo, hi = (c["hi"], c["lo"]) if unit == "ns/request" else (c["lo"], c["hi"])
            row += [fmt_time(c["time"], unit), "%s..%s" % (fmt_time(lo, unit), fmt_time(hi, unit)),
                    fmt(c["time_ratio"])]
        if kind in ("workload", "probe"):
            row += [fmt(c["cpu"], "%.3f")]
        if kind == "workload":
            row += [fmt(c["cpu_ratio"])]
        if kind != "micro":
            row += [fmt(c["rss"] / 1024 if c["rss"] is not None else None, "%.1f"),
                    fmt(c["rss_ratio"])]
        if extra:
            row += [fmt(c["extra"], "%g")]
        out.append("| " + " | ".join(row) + " |")


def render_targets(out, table, res, names, icount):
    """Depot against the best peer of each workload, per workload and
    overall, with whether each target is met."""
    yes = lambda ok: "yes" if ok else "**no**"
    out.append("\n## Targets: Depot / best peer (reported, not enforced)\n")
    out.append("Per workload: time (target <= %.2f each), CPU time and peak RSS, "
               "each over the best of the peers in this run.\n" % TARGET_TIME_WORST)
    out.append("| workload | time / best peer | met | CPU / best peer | RSS / best peer |")
    out.append("|---|---|---|---|---|")
    times, mems = [], []
    for w in order(table, res):
        t = None if res.kinds[w] == "probe" else versus_peers(table, res, w, "time")
        cpu = None if res.kinds[w] == "probe" else versus_peers(table, res, w, "cpu")
        m = versus_peers(table, res, w, "rss")
        if t is None and m is None:
            continue
        if t is not None:
            times.append((t, w))
        if m is not None:
            mems.append(m)
        out.append("| %s | %s | %s | %s | %s |" % (w, fmt(t), "-" if t is None else
                                                  yes(t <= TARGET_TIME_WORST), fmt(cpu), fmt(m)))
    out.append("")
    out.append("| target | measured | met |")
    out.append("|---|---|---|")
    if times:
        g, worst = geomean([r for r, _ in times]), max(times)
        out.append("| time / best peer, geometric mean <= %.2f | %.3f | %s |" %
                   (TARGET_TIME_GEOMEAN, g, yes(g <= TARGET_TIME_GEOMEAN)))
        out.append("| no workload above %.2fx the best peer | worst %.2f (%s) | %s |" %
                   (TARGET_TIME_WORST, worst[0], worst[1], yes(worst[0] <= TARGET_TIME_WORST)))
    if mems:
        gm = geomean(mems)
        out.append("| peak RSS / best peer, geometric mean <= %.2f | %.3f | %s |" %
                   (TARGET_RSS_GEOMEAN, gm, yes(gm <= TARGET_RSS_GEOMEAN)))
    if "depot-prof" in names:
        pr = [table[w]["depot-prof"]["time"] / table[w]["depot"]["time"]
              for w in table if res.kinds[w] == "workload" and "depot" in table[w] and
              "depot-prof" in table[w]]
        if pr:
            gp = geomean(pr)
            out.append("| heap profiling on (prof=1, 512 KiB): time / Depot's, geometric "
                       "mean <= 1.02 | %.3f | %s |" % (gp, yes(gp <= 1.02)))
    probe = table.get("thread-rss", {}).get("depot")
    if probe and probe["extra"] is not None:
        out.append("| resident memory per thread (thread-rss) <= %d KiB | %g KiB | %s |" %
                   (TARGET_THREAD_KIB, probe["extra"], yes(probe["extra"] <= TARGET_THREAD_KIB)))
    shared = [(w, table[w]["depot"]["extra"]) for w in order(table, res)
              if res.extra.get(w) == "shared_workers" and "depot" in table[w] and
              table[w]["depot"]["extra"] is not None]
    if shared:
        n = sum(v for _, v in shared)
        out.append("| workers writing a line another worker writes (%s) = 0 | %s | %s |" % (
            ", ".join(w for w, _ in shared), " + ".join("%g" % v for _, v in shared), yes(n == 0)))
    if icount and "depot" in icount:
        p, b = icount["depot"]
        out.append("| instructions per 32-byte malloc+free pair <= %d | %.1f | %s |" %
                   (TARGET_PAIR, p, yes(p <= TARGET_PAIR)))
        out.append("| instructions per pair, 100 mixed blocks at a time <= %d | %.1f | %s |" %
                   (TARGET_BATCH, b, yes(b <= TARGET_BATCH)))


def render_prof_overhead(out, table, res):
    """Heap profiling's cost: depot-prof (prof=1) over depot (prof=0), the
    same library, per benchmark, medians of the interleaved runs."""
    rows = [w for w in order(table, res) if res.kinds[w] != "probe" and
            "depot" in table[w] and "depot-prof" in table[w]]
    if not rows:
        return
    out.append("\n## Heap profiling overhead\n")
    out.append("Depot with `prof=1` (sampling every 512 KiB on average) over Depot with "
               "`prof=0`, the same library: medians; above 1 is slower.\n")
    out.append("| benchmark | time ratio | CPU ratio |")
    out.append("|---|---|---|")
    # Two means: over the workloads (whole programs; the target's figure in
    # the targets table) and over every benchmark, the microbenchmarks too
    # (loops that allocate far faster than a program that uses its memory).
    times, cpus, wtimes = [], [], []
    for w in rows:
        on, off = table[w]["depot-prof"], table[w]["depot"]
        t = on["time"] / off["time"] if on["time"] and off["time"] else None
        c = on["cpu"] / off["cpu"] if on["cpu"] and off["cpu"] else None
        times += [t] if t else []
        cpus += [c] if c else []
        wtimes += [t] if t and res.kinds[w] == "workload" else []
        out.append("| %s | %s | %s |" % (w, fmt(t, "%.3f"), fmt(c, "%.3f")))
    out.append("| geometric mean, workloads | %s | %s |" % (
        fmt(geomean(wtimes) if wtimes else None, "%.3f"),
        fmt(geomean(cpus) if cpus else None, "%.3f")))
    out.append("| geometric mean, every benchmark | %s | - |" % (
        fmt(geomean(times) if times else None, "%.3f")))


def render(args, table, res, names, icount, scaling, machine):
    out = []
    out.append("# Depot benchmark suite\n")
    out.append("%s; %s mode (--scale %g): %d interleaved runs per allocator, median "
               "(min..max); workloads with %d threads unless named.\n" % (
                   machine, args.mode, args.scale, args.runs, args.workload_threads))
    missing = [n for n in ["depot", "glibc", "jemalloc", "tcmalloc", "mimalloc"] if n not in names]
    if missing:
        out.append("Not measured (not asked for, or not installed): %s.\n" %
                   ", ".join(missing))
    if res.failures:
        out.append("**Failed runs** (not in the tables): %s.\n" % "; ".join(
            "%s under %s: %s" % f for f in res.failures))
    short = sorted({w for w, per in res.data.items() if res.kinds[w] == "workload"
                    for v in per.values() for s in v if s["time"] < MIN_SECONDS})
    if short and args.mode == "quick":
        out.append("Shorter than %.1f s in some run (too short to measure well): %s.\n" %
                   (MIN_SECONDS, ", ".join(short)))
    for w in order(table, res):
        render_workload(out, w, table, res, names)
    if "depot" in names and "depot-prof" in names:
        render_prof_overhead(out, table, res)
    out.append("\n## Summary\n")
    out.append("Ratios to the best allocator of each workload (1.00 = the best); "
               "geometric means over the workloads (time: not the memory probes).\n")
    out.append("| allocator | time ratio (geomean) | worst workload | CPU ratio (geomean) "
               "| RSS ratio (geomean) |")
    out.append("|---|---|---|---|---|")
    for a in names:
        rs = [(table[w][a]["time_ratio"], w) for w in table
              if a in table[w] and table[w][a]["time_ratio"] is not None]
        cs = [table[w][a]["cpu_ratio"] for w in table if a in table[w]]
        ms = [table[w][a]["rss_ratio"] for w in table if a in table[w]]
        worst = max(rs) if rs else (float("nan"), "-")
        out.append("| %s | %.2f | %.2f (%s) | %.2f | %.2f |" % (
            a, geomean([r for r, _ in rs]), worst[0], worst[1], geomean(cs), geomean(ms)))
    if "depot" in names and len(names) > 1:
        render_targets(out, table, res, names, icount)
    if icount:
        out.append("\n## Fast path: instructions per malloc+free pair (callgrind)\n")
        out.append("| allocator | 32-byte pair | mixed 8..508, 100 at a time |")
        out.append("|---|---|---|")
        for a, (p, m) in icount.items():
            out.append("| %s | %.1f | %.1f |" % (a, p, m))
    if scaling:
        out.append("\n## Thread scaling (operations per second, median)\n")
        for w, per in scaling.items():
            ts = sorted({t for a in per for t in per[a]})
            out.append("\n%s\n" % w)
            out.append("| allocator | " + " | ".join("%d threads" % t for t in ts) + " |")
            out.append("|---|" + "---|" * len(ts))
            for a in names:
                if a in per:
                    out.append("| %s | " % a + " | ".join(
                        "%.2fM" % (per[a][t] / 1e6) if t in per[a] else "-" for t in ts) + " |")
    return "\n".join(out) + "\n"


def write_csv(path, res):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "allocator", "run", "time", "unit", "cpu_s", "peak_rss_kib",
                    "extra", "extra_value"])
        for wl, per in res.data.items():
            for a, v in per.items():
                for i, s in enumerate(v):
                    w.writerow([wl, a, i, "%.6g" % s["time"], res.units[wl],
                                "" if s["cpu"] is None else "%.4f" % s["cpu"],
                                "" if s["rss"] is None else s["rss"],
                                res.extra.get(wl, ""), "" if s["extra"] is None else s["extra"]])


def chart(path, table, names, scaling, scaling_path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("suite: matplotlib is not installed (python3-matplotlib); no chart")
        return False
    ws = sorted(table)
    fig, axes = plt.subplots(2, 1, figsize=(max(10, len(ws) * 0.9), 9))
    width = 0.8 / len(names)
    for k, a in enumerate(names):
        xs = [i + (k - len(names) / 2) * width + width / 2 for i in range(len(ws))]
        axes[0].bar(xs, [(table[w][a]["time_ratio"] or 0) if a in table[w] else 0 for w in ws],
                    width, label=a)
        axes[1].bar(xs, [(table[w][a]["rss_ratio"] or 0) if a in table[w] else 0 for w in ws],
                    width, label=a)
    for ax, title in zip(axes, ["time / best (lower is better)",
                                "peak RSS / best (lower is better)"]):
        ax.set_xticks(range(len(ws)))
        ax.set_xticklabels(ws, rotation=30, ha="right", fontsize=8)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_title(title)
        ax.set_yscale("log")
        ax.legend(fontsize=8, ncol=len(names))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    if scaling:
        fig, axes = plt.subplots(1, len(scaling), figsize=(5 * len(scaling), 4))
        if len(scaling) == 1:
            axes = [axes]
        for ax, (w, per) in zip(axes, scaling.items()):
            for a in names:
                if a in per:
                    ts = sorted(per[a])
                    ax.plot(ts, [per[a][t] / 1e6 for t in ts], marker="o", label=a)
            ax.set_title(w)
            ax.set_xlabel("threads")
            ax.set_ylabel("M operations / s")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(scaling_path, dpi=110)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the default")
    mode.add_argument("--full", action="store_true", help="5 runs, 3 times the work")
    mode.add_argument("--smoke", action="store_true",
                      help="a check that the suite works (tests): tiny work, 1 run, "
                           "no microbenchmarks, Redis, scaling sweep or instruction counts")
    p.add_argument("--runs", type=int, help="runs per allocator (default 3 quick, 5 full)")
    p.add_argument("--scale", type=float, help="work per run (default 1 quick, 3 full)")
    p.add_argument("--threads", default=None,
                   help="thread counts to sweep, e.g. 1,2,4,8 (default 1..CPUs)")
    p.add_argument("--workload-threads", type=int,
                   help="threads of the workloads (default min(CPUs, 4) quick, CPUs full)")
    p.add_argument("--allocators", default="depot,glibc,jemalloc,tcmalloc,mimalloc")
    p.add_argument("--workloads", help="only these workloads and probes (labels, comma-separated)")
    p.add_argument("--no-install", action="store_true", help="do not install missing peers")
    p.add_argument("--no-redis", action="store_true")
    p.add_argument("--no-micro", action="store_true")
    p.add_argument("--no-icount", action="store_true")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--out", help="results folder (default bench/results in the workspace)")
    p.add_argument("--peer-dir", help="folder with the peers' libraries (default %s)" % LIBDIR)
    p.add_argument("--libdepot"), p.add_argument("--workloads-bin"), p.add_argument("--micro-bin")
    args = p.parse_args()
    args.mode = "full" if args.full else "smoke" if args.smoke else "quick"
    if args.runs is not None and args.runs < 1:
        p.error("--runs wants at least 1")
    if args.scale is not None and not 0 < args.scale <= 1000:
        p.error("--scale wants a number in (0, 1000]")
    args.runs = args.runs or {"full": 5, "quick": 3, "smoke": 1}[args.mode]
    args.scale = args.scale or {"full": 3.0, "quick": 1.0, "smoke": 0.01}[args.mode]
    args.min_time = 0.5 if args.full else 0.3
    args.redis_requests = 100000 if args.full else 20000
    args.scaling_runs = 3 if args.full else 1
    if args.smoke:
        args.no_micro = args.no_redis = args.no_icount = args.no_scaling = True
    if args.workloads:
        only = set(w.strip() for w in args.workloads.split(",") if w.strip())
        known = set(w[0] for w in WORKLOADS) | set(w[0] for w in PROBES)
        if only - known:
            p.error("unknown workload %s; known: %s" % (", ".join(sorted(only - known)),
                                                        ", ".join(sorted(known))))
        WORKLOADS[:] = [w for w in WORKLOADS if w[0] in only]
        PROBES[:] = [w for w in PROBES if w[0] in only]
    args.cpus = cpus = os.cpu_count() or 2
    args.workload_threads = args.workload_threads or (min(cpus, 4) if not args.full else cpus)
    if args.threads:
        try:
            args.threads = [int(t) for t in args.threads.strip("=").split(",") if t]
        except ValueError:
            p.error("--threads wants numbers separated by commas, e.g. 1,2,4")
    else:
        args.threads, t = [], 1
        while t <= cpus:
            args.threads.append(t)
            t *= 2
    peer_dir = args.peer_dir or LIBDIR

    libdepot = find("libdepot.so", args.libdepot, runfiles_path("libdepot.so"),
                    os.path.join(HERE, "..", "libdepot.so"), os.path.join(HERE, "libdepot.so"))
    workloads_bin = find("workloads", args.workloads_bin, runfiles_path("bench/workloads"),
                         os.path.join(HERE, "workloads"))
    micro_bin = find("micro", args.micro_bin, runfiles_path("bench/micro"),
                     os.path.join(HERE, "micro"))
    redis_bench = find("redis_bench", runfiles_path("bench/redis_bench"),
                       os.path.join(HERE, "redis_bench.sh"))
    icount = find("fastpath_icount.sh", runfiles_path("bench/fastpath_icount.sh"),
                  os.path.join(HERE, "fastpath_icount.sh"))
    if not (libdepot and workloads_bin and (micro_bin or args.no_micro)):
        sys.exit("suite: libdepot.so, workloads or micro not found (build them first)")

    wanted = [a.strip() for a in args.allocators.split(",") if a.strip()]
    if not args.no_install:
        have = lambda b: shutil.which(b) is not None
        try:
            import matplotlib  # noqa: F401
            mpl = True
        except ImportError:
            mpl = False
        install_peers([a for a in wanted if a in PEERS],
                      [("python3-matplotlib", mpl), ("redis-server", have("redis-server")),
                       ("redis-tools", have("redis-benchmark")), ("valgrind", have("valgrind"))])
    libs, names = {}, []
    for a in wanted:
        if a == "depot" or a in CONFIGURED:
            libs[a] = libdepot
        elif a in PEERS:
            lib = PEERS[a][1] and os.path.join(peer_dir, PEERS[a][1])
            if lib and not os.path.exists(lib):
                log("suite: %s is not installed (%s); skipped" % (a, lib))
                continue
            libs[a] = lib
        else:
            log("suite: unknown allocator %s; skipped" % a)
            continue
        names.append(a)
    if not names:
        sys.exit("suite: no allocator to measure")

    start = time.time()
    res = Results()
    if not args.no_micro:
        run_micro(args, res, names, libs, micro_bin)
    run_workloads(args, res, names, libs, workloads_bin)
    if not args.no_redis:
        run_redis(args, res, names, redis_bench, args.peer_dir)
    scaling = {} if args.no_scaling else run_scaling(args, res, names, libs, workloads_bin)
    icount_rows = None if args.no_icount else run_icount(icount, args.peer_dir, libdepot)
    table = summarise(res, names)

    host = socket.gethostname()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "unknown CPU")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d")
    machine = "%s, %s, %d CPUs, %s, measured %s in %.0f s" % (
        host, cpu, cpus, os.uname().release, stamp, time.time() - start)
    md = render(args, table, res, names, icount_rows, scaling, machine)

    outdir = args.out or os.path.join(os.environ.get("BUILD_WORKSPACE_DIRECTORY", os.getcwd()),
                                      "bench", "results")
    os.makedirs(outdir, exist_ok=True)
    base = os.path.join(outdir, "%s-%s" % (stamp, host))
    png, scaling_png = base + ".png", base + "-scaling.png"
    if chart(png, table, names, scaling, scaling_png):
        md += "\n![time and memory ratios](%s)\n" % os.path.basename(png)
        if scaling:
            md += "\n![thread scaling](%s)\n" % os.path.basename(scaling_png)
    with open(base + ".md", "w") as f:
        f.write(md)
    write_csv(base + ".csv", res)
    print(md)
    log("suite: wrote %s.md, .csv and charts" % base)
    if res.failures:
        log("suite: %d run(s) failed" % len(res.failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
