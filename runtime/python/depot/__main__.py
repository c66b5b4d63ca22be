"""python3 -m depot: run a program on Depot, or say what Depot serves.

    python3 -m depot run [--debug] [--conf k=v,...] [--stats] [--lib PATH]
                         [--force] script.py [args...]
    python3 -m depot run [options] -m module [args...]
    python3 -m depot active          # depot.active() of this interpreter

`run` starts the program again (exec) in this Python with libdepot.so in
LD_PRELOAD (put first) and PYTHONMALLOC=malloc, so that the C library's
malloc, and through it all three of CPython's domains, are Depot's.  Before
the program's first line it checks that this took effect: if not, it says
why and exits with status 126 (unless --force).  Exit status: the
program's; 126 when Depot is not in use, 2 for bad usage.
"""
import json
import os
import runpy
import sys

EXIT_USAGE, EXIT_NO_DEPOT = 2, 126
CHILD = "_run_child"  # the re-executed half (not for users)

USAGE = """usage: python3 -m depot run [options] script.py [args...]
       python3 -m depot run [options] -m module [args...]
       python3 -m depot active
Runs a Python program with Depot as its allocator (LD_PRELOAD and
PYTHONMALLOC=malloc) and checks, before the program starts, that Depot
really serves it.
  --debug         DEPOTMALLOC=debug: Depot's debug checks on every block
  --conf k=v,...  Depot configuration (DEPOT_CONF; see the README)
  --stats         print Depot's statistics at exit (stats=1)
  --lib PATH      the libdepot.so to preload (default: the one this
                  module uses)
  --force         run even if Depot is not in use
Exit status: the program's; 126 if Depot is not in use; 2 for bad usage."""


def usage_error(msg):
    print(f"depot run: {msg}\n{USAGE}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def parse(argv):
    opts = {"debug": False, "conf": [], "stats": False, "lib": None,
            "force": False}
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-m":
        a = argv[i]
        if a == "--":
            i += 1
            break
        if a in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        if a in ("--debug", "--stats", "--force"):
            opts[a[2:]] = True
        elif a in ("--conf", "--lib"):
            if i + 1 >= len(argv):
                usage_error(f"{a} needs a value")
            i += 1
            if a == "--conf":
                opts["conf"].append(argv[i])
            else:
                opts["lib"] = argv[i]
        elif a.startswith("--conf="):
            opts["conf"].append(a[len("--conf="):])
        elif a.startswith("--lib="):
            opts["lib"] = a[len("--lib="):]
        else:
            usage_error(f"unknown option {a}")
        i += 1
    if i >= len(argv):
        usage_error("no program to run")
    if argv[i] == "-m" and i + 1 >= len(argv):
        usage_error("-m needs a module")
    return opts, argv[i:]


def run(argv):
    opts, program = parse(argv)
    lib = opts["lib"]
    if lib is None:
        import depot
        lib = depot.active()["library"]
    if not lib:
        print("depot run: cannot tell where libdepot.so is; give --lib",
              file=sys.stderr)
        sys.exit(EXIT_NO_DEPOT)
    env = dict(os.environ)
    lib = os.path.abspath(lib)
    env["LD_PRELOAD"] = lib + (":" + env["LD_PRELOAD"]
                               if env.get("LD_PRELOAD") else "")
    env["PYTHONMALLOC"] = "malloc"
    conf = [c for c in [env.get("DEPOT_CONF", "")] + opts["conf"] if c]
    if opts["stats"]:
        conf.append("stats=1")
    if conf:
        env["DEPOT_CONF"] = ",".join(conf)
    if opts["debug"]:
        env["DEPOTMALLOC"] = "debug"
    env["DEPOT_PY_RUN"] = "force" if opts["force"] else "check"
    env["DEPOT_PY_RUN_LIB"] = lib
    args = [sys.executable, "-m", "depot", CHILD] + program
    try:
        os.execve(sys.executable, args, env)
    except OSError as e:
        print(f"depot run: cannot run {sys.executable}: {e}", file=sys.stderr)
        sys.exit(127)


def not_in_use(active):
    """Why Depot does not serve this process ([] if it does)."""
    why = []
    lib = os.environ.get("DEPOT_PY_RUN_LIB", "libdepot.so")
    if not active["c_family"]:
        why.append(f"malloc is not Depot's: LD_PRELOAD={lib} did not take "
                   "effect (not a libdepot.so, a path the loader could not "
                   "open, or a Python that brings its own malloc)")
    for domain, who in sorted(active["python"].items()):
        if active["c_family"] and not who.startswith("depot"):
            why.append(f"CPython's {domain} domain is served by {who}, not by "
                       "malloc (PYTHONMALLOC=malloc was not honoured: -E or "
                       "-I, or a free-threaded build)")
    return why


def child(program):
    mode = os.environ.pop("DEPOT_PY_RUN", "check")
    import depot
    why = not_in_use(depot.active())
    os.environ.pop("DEPOT_PY_RUN_LIB", None)
    if why:
        print("depot run: Depot is not in use in this process:",
              file=sys.stderr)
        for w in why:
            print(f"  - {w}", file=sys.stderr)
        if mode != "force":
            print("depot run: stopping (status 126); --force runs it anyway",
                  file=sys.stderr)
            sys.exit(EXIT_NO_DEPOT)
    # The child's environment stays as it is: programs this one starts run
    # on Depot too, as depot-run's do.
    if program[0] == "-m":
        sys.argv = program[1:]
        runpy.run_module(program[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = program
        sys.path[0] = os.path.dirname(os.path.abspath(program[0]))
        runpy.run_path(program[0], run_name="__main__")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else EXIT_USAGE
    if argv[0] == "run":
        run(argv[1:])
    elif argv[0] == CHILD:
        child(argv[1:])
    elif argv[0] == "active":
        import depot
        print(json.dumps(depot.active(), indent=2, sort_keys=True))
    else:
        usage_error(f"unknown command {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
