#!/usr/bin/env python3
"""Depot's benchmark suite: Depot against glibc, jemalloc, tcmalloc and
mimalloc, side by side, each preloaded into the same benchmark binaries.

    tools/bazelw run //bench                 # --quick: a few minutes
    tools/bazelw run //bench -- --full       # 5 runs, full sizes
    tools/bazelw run //bench -- --threads=1,2,4,8

Each allocator runs each workload N times, interleaved (A B C D E, the
starting allocator rotating), and the median is reported with the spread.
Markdown goes to stdout and to bench/results/<date>-<host>.md, with a CSV
and PNG charts beside it.  Peers that are not installed are installed when
running as root (Debian packages), else skipped with a note.  The suite
reports its targets; it never fails on them.
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
WORKLOADS = ["larson", "xmalloc", "scratch", "thrash", "mstress", "large", "pyobject"]
MICRO_FILTER = "^(pair|batch100/mixed|realloc/growth|prodcons/2thr)"
SCALING_WORKLOADS = ["larson", "mstress", "thrash"]


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
# heap profiling on at the default sampling interval, to measure its cost.
CONFIGURED = {"depot-prof": {"DEPOT_CONF": "prof=1"}}


def run(cmd, preload, timeout=600, env_extra=None):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    if env_extra:
        env.update(env_extra)
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def rotated(names, k):
    k %= len(names)
    return names[k:] + names[:k]


class Results:
    """workload -> allocator -> list of (time, rss_kib or None); lower time
    is better (throughputs are stored as seconds per unit)."""

    def __init__(self):
        self.data = {}
        self.units = {}
        self.kinds = {}

    def add(self, workload, alloc, t, rss, unit, kind):
        self.data.setdefault(workload, {}).setdefault(alloc, []).append((t, rss))
        self.units[workload] = unit
        self.kinds[workload] = kind


def run_workloads(args, res, names, libs, workloads_bin):
    for r in range(args.runs):
        for w in WORKLOADS:
            for a in rotated(names, r):
                cmd = [workloads_bin, w, "--threads", str(args.workload_threads),
                       "--scale", str(args.scale)]
                rc, out, err = run(cmd, libs[a], env_extra=CONFIGURED.get(a))
                line = next((l for l in out.splitlines() if l.startswith("RESULT")), None)
                if rc != 0 or not line:
                    log("suite: %s under %s failed (exit %d): %s" % (w, a, rc, err.strip()[-200:]))
                    continue
                f = dict(kv.split("=") for kv in line.split()[2:])
                res.add(w, a, float(f["seconds"]), int(f["peak_rss_kib"]), "s", "workload")
        log("suite: workloads, run %d of %d done" % (r + 1, args.runs))


def run_micro(args, res, names, libs, micro_bin):
    for r in range(args.runs):
        for a in rotated(names, r):
            cmd = [micro_bin, "--benchmark_format=json",
                   "--benchmark_filter=" + MICRO_FILTER,
                   "--benchmark_min_time=%g" % args.min_time]
            rc, out, err = run(cmd, libs[a], env_extra=CONFIGURED.get(a))
            if rc != 0:
                log("suite: micro under %s failed: %s" % (a, err.strip()[-200:]))
                continue
            for b in json.loads(out)["benchmarks"]:
                if b.get("run_type") == "aggregate":
                    continue
                ns = b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
                name = "micro " + b["name"].replace("/real_time", "")
                res.add(name, a, ns, None, "ns", "micro")
        log("suite: microbenchmarks, run %d of %d done" % (r + 1, args.runs))


def run_scaling(args, names, libs, workloads_bin):
    """workload -> allocator -> threads -> median ops/s."""
    out = {}
    for w in SCALING_WORKLOADS:
        for t in args.threads:
            samples = {a: [] for a in names}
            for r in range(args.scaling_runs):
                for a in rotated(names, r):
                    cmd = [workloads_bin, w, "--threads", str(t), "--scale", str(args.scale)]
                    rc, o, _ = run(cmd, libs[a], env_extra=CONFIGURED.get(a))
                    line = next((l for l in o.splitlines() if l.startswith("RESULT")), None)
                    if rc == 0 and line:
                        f = dict(kv.split("=") for kv in line.split()[2:])
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
    rc, out, err = run(cmd, None, timeout=3600)
    if rc != 0:
        log("suite: the Redis comparison failed: %s" % err.strip()[-300:])
        return
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "RUN" and parts[1] in names:
            rps, rss = float(parts[2]), int(parts[3])
            if rps > 0:
                res.add("redis", parts[1], 1e9 / rps, rss, "ns/request", "server")


def run_icount(icount_script, peer_dir, libdepot):
    if not icount_script or not shutil.which("valgrind"):
        return None
    env = {"DEPOT_LIB": os.path.abspath(libdepot)}
    if peer_dir:
        env["PEER_DIR"] = peer_dir
    rc, out, err = run(["bash", icount_script], None, timeout=900, env_extra=env)
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
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def summarise(res, names):
    """Per workload: median time and RSS per allocator, ratios to the best."""
    table = {}
    for w, per in res.data.items():
        med = {a: statistics.median(t for t, _ in v) for a, v in per.items()}
        rss = {a: statistics.median(r for _, r in v) for a, v in per.items()
               if all(r is not None for _, r in v)}
        spread = {a: (min(t for t, _ in v), max(t for t, _ in v)) for a, v in per.items()}
        best = min(med.values())
        best_rss = min(rss.values()) if rss else None
        table[w] = {a: {"time": med[a], "lo": spread[a][0], "hi": spread[a][1],
                        "ratio": med[a] / best,
                        "rss": rss.get(a),
                        "rss_ratio": rss[a] / best_rss if rss and best_rss else None}
                    for a in med}
    return table


def fmt_time(v, unit):
    if unit == "s":
        return "%.3f s" % v
    if unit == "ns/request":
        return "%.0f req/s" % (1e9 / v)
    return "%.1f ns" % v


def render(args, table, res, names, icount, scaling, machine):
    out = []
    out.append("# Depot benchmark suite\n")
    out.append("%s; %s mode: %d interleaved runs per allocator, median (min..max); "
               "workloads with %d threads.\n" % (machine, "full" if args.full else "quick",
                                                  args.runs, args.workload_threads))
    missing = [n for n in ["depot", "glibc", "jemalloc", "tcmalloc", "mimalloc"] if n not in names]
    if missing:
        out.append("Not measured (not installed): %s.\n" % ", ".join(missing))
    for w in sorted(table, key=lambda k: (res.kinds[k], k)):
        unit = res.units[w]
        out.append("\n## %s\n" % w)
        out.append("| allocator | %s | spread | time / best | peak RSS MiB | RSS / best |" %
                   ("throughput" if unit == "ns/request" else "time"))
        out.append("|---|---|---|---|---|---|")
        for a in names:
            if a not in table[w]:
                continue
            c = table[w][a]
            rss = "%.1f" % (c["rss"] / 1024) if c["rss"] is not None else "-"
            rr = "%.2f" % c["rss_ratio"] if c["rss_ratio"] is not None else "-"
            lo, hi = (c["hi"], c["lo"]) if unit == "ns/request" else (c["lo"], c["hi"])
            out.append("| %s | %s | %s..%s | %.2f | %s | %s |" % (
                a, fmt_time(c["time"], unit), fmt_time(lo, unit),
                fmt_time(hi, unit), c["ratio"], rss, rr))
    out.append("\n## Summary\n")
    out.append("Ratios to the best allocator of each workload (1.00 = the best); "
               "geometric means over the workloads.\n")
    out.append("| allocator | time ratio (geomean) | worst workload | RSS ratio (geomean) |")
    out.append("|---|---|---|---|")
    for a in names:
        rs = [(table[w][a]["ratio"], w) for w in table if a in table[w]]
        ms = [table[w][a]["rss_ratio"] for w in table if a in table[w] and
              table[w][a]["rss_ratio"] is not None]
        worst = max(rs) if rs else (float("nan"), "-")
        out.append("| %s | %.2f | %.2f (%s) | %.2f |" % (a, geomean([r for r, _ in rs]),
                                                        worst[0], worst[1], geomean(ms)))
    # Targets: Depot against the best *peer* of each workload.
    peers = [a for a in names if a != "depot" and a not in CONFIGURED]
    if "depot" in names and peers:
        ratios, mem = [], []
        for w in table:
            if "depot" not in table[w]:
                continue
            best_peer = min((table[w][a]["time"] for a in peers if a in table[w]), default=None)
            if best_peer:
                ratios.append((table[w]["depot"]["time"] / best_peer, w))
            peer_rss = [table[w][a]["rss"] for a in peers if a in table[w] and
                        table[w][a]["rss"] is not None]
            if peer_rss and table[w]["depot"]["rss"] is not None:
                mem.append(table[w]["depot"]["rss"] / min(peer_rss))
        g = geomean([r for r, _ in ratios])
        worst = max(ratios)
        gm = geomean(mem)
        out.append("\n## Targets (reported, not enforced)\n")
        out.append("| target | measured | met |")
        out.append("|---|---|---|")
        if "depot-prof" in names:
            pr = [table[w]["depot-prof"]["time"] / table[w]["depot"]["time"]
                  for w in table if "depot" in table[w] and "depot-prof" in table[w]]
            gp = geomean(pr)
            out.append("| heap profiling on (prof=1, 512 KiB): time / Depot's, "
                       "geometric mean <= 1.02 | %.3f | %s |" % (gp, "yes" if gp <= 1.02 else "no"))
        out.append("| Depot's time / best peer, geometric mean <= 1.0 | %.2f | %s |" %
                   (g, "yes" if g <= 1.0 else "no"))
        out.append("| no workload slower than the best peer by more than 1.25x | "
                   "worst %.2f (%s) | %s |" % (worst[0], worst[1],
                                                "yes" if worst[0] <= 1.25 else "no"))
        out.append("| Depot's peak RSS / best peer, geometric mean <= 1.1 | %.2f | %s |" %
                   (gm, "yes" if gm <= 1.1 else "no"))
        if icount and "depot" in icount and "mimalloc" in icount:
            d, m = icount["depot"][0], icount["mimalloc"][0]
            out.append("| 32-byte malloc+free: fewer instructions than mimalloc | "
                       "%.0f vs %.0f | %s |" % (d, m, "yes" if d < m else "no"))
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
        w.writerow(["workload", "allocator", "run", "time", "unit", "peak_rss_kib"])
        for wl, per in res.data.items():
            for a, v in per.items():
                for i, (t, r) in enumerate(v):
                    w.writerow([wl, a, i, "%.6g" % t, res.units[wl], "" if r is None else r])


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
        axes[0].bar(xs, [table[w][a]["ratio"] if a in table[w] else 0 for w in ws],
                    width, label=a)
        axes[1].bar(xs, [table[w][a]["rss_ratio"] or 0 if a in table[w] else 0 for w in ws],
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
    mode.add_argument("--quick", action="store_true", help="the default: a few minutes")
    mode.add_argument("--full", action="store_true", help="5 runs at full size")
    p.add_argument("--runs", type=int, help="runs per allocator (default 3 quick, 5 full)")
    p.add_argument("--threads", default=None,
                   help="thread counts to sweep, e.g. 1,2,4,8 (default 1..CPUs)")
    p.add_argument("--allocators",
                   default="depot,depot-prof,glibc,jemalloc,tcmalloc,mimalloc")
    p.add_argument("--no-install", action="store_true", help="do not install missing peers")
    p.add_argument("--no-redis", action="store_true")
    p.add_argument("--out", help="results folder (default bench/results in the workspace)")
    p.add_argument("--peer-dir", help="folder with the peers' libraries (default %s)" % LIBDIR)
    p.add_argument("--libdepot"), p.add_argument("--workloads-bin"), p.add_argument("--micro-bin")
    args = p.parse_args()
    args.runs = args.runs or (5 if args.full else 3)
    args.scale = 1.0 if args.full else 0.25
    args.min_time = 0.2 if args.full else 0.05
    args.redis_requests = 100000 if args.full else 20000
    args.scaling_runs = 3 if args.full else 1
    cpus = os.cpu_count() or 2
    args.workload_threads = min(cpus, 4) if not args.full else cpus
    if args.threads:
        args.threads = [int(t) for t in args.threads.strip("=").split(",") if t]
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
    if not (libdepot and workloads_bin and micro_bin):
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

    start = time.time()
    res = Results()
    run_micro(args, res, names, libs, micro_bin)
    run_workloads(args, res, names, libs, workloads_bin)
    if not args.no_redis:
        run_redis(args, res, names, redis_bench, args.peer_dir)
    scaling = run_scaling(args, names, libs, workloads_bin)
    icount_rows = run_icount(icount, args.peer_dir, libdepot)
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


if __name__ == "__main__":
    main()
