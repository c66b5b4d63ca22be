"""Checks of the depot module in one interpreter, run by python_module_test.sh
in several ways (plainly, preloaded, under `python3 -m depot run`, under
PYTHONMALLOC=debug, over tracemalloc).  `module_check.py CHECK...` runs the
named checks in order; each raises AssertionError with what it saw."""
import gc
import json
import os
import sys
import threading
import weakref

import depot


def say(msg):
    print(f"ok: {msg}", flush=True)


def check(cond, msg, seen=None):
    if not cond:
        raise AssertionError(f"{msg} (seen: {seen!r})")


def plain_active():
    a = depot.active()
    check(a["c_family"] is None, "malloc is glibc's without LD_PRELOAD", a)
    check(a["installed"] == [], "nothing installed yet", a)
    for d in ("raw", "mem", "object"):
        check(not a["python"][d].startswith("depot"), f"{d} is not Depot's", a)
    check(a["library"] and "libdepot.so" in a["library"], "library path", a)
    say(f"active() plainly: {json.dumps(a['python'])}")


def preload_active():
    a = depot.active()
    check(a["c_family"] == "preload", "LD_PRELOAD: the C family is Depot's", a)
    for d in ("raw", "mem", "object"):
        check(a["python"][d].startswith("depot (raw domain"),
              f"PYTHONMALLOC=malloc: {d} goes through malloc to Depot", a)
    say("active() preloaded: C family and every domain through malloc")


def debug_active():
    a = depot.active()
    check(a["depot_debug"], "--debug: Depot's debug mode", a)
    check(a["c_family"] == "preload", "preloaded", a)
    say("active() under depot run --debug: debug mode on")


def make_garbage(n):
    """Blocks of both domains: strings and tuples (object), list item
    arrays (mem), bytearrays, dicts."""
    return [("s%d" % i * (1 + i % 7), [i] * (i % 9), bytearray(i % 300),
             {"k": i}) for i in range(n)]


def install_and_free_old_blocks_from_threads():
    old = [make_garbage(2000) for _ in range(8)]
    grow = [list(range(50)) for _ in range(2000)]  # realloc'd after install
    r = depot.install()
    check(set(r) == {"mem", "object"}, "install() reports both domains", r)
    check("installed" in r["object"], "installed", r)
    before = depot.stats()["installed"]

    def drop(chunk):
        while chunk:
            chunk.pop()
        for g in grow[:1000] if chunk is old[0] else grow[1000:]:
            g.extend(range(100))  # a realloc of a block pymalloc made

    threads = [threading.Thread(target=drop, args=(old[i],))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    del old, grow
    gc.collect()
    after = depot.stats()["installed"]
    freed = after["object"]["foreign_frees"] - before["object"]["foreign_frees"]
    check(freed >= 8 * 2000 * 3, "old blocks went back to pymalloc", after)
    a = depot.active()
    check(a["python"]["object"].startswith("depot (object"), "object on Depot",
          a)
    check(a["python"]["mem"].startswith("depot (mem"), "mem on Depot", a)
    say(f"install(); {freed} blocks made before it freed from 8 threads "
        "by the allocator that made them")


def install_twice():
    r = depot.install()
    check(all(v.startswith("already installed") for v in r.values()),
          "a second install() changes nothing", r)
    say("install() twice: " + r["object"])


def stats_show_traffic():
    s0 = depot.stats()
    keep = ["x%d" % i * 3 for i in range(100000)]
    s1 = depot.stats()
    live = (s1["installed"]["object"]["live_blocks"] -
            s0["installed"]["object"]["live_blocks"])
    used = (s1["domains"]["object"]["total"]["blocks_in_use"] -
            s0["domains"]["object"]["total"]["blocks_in_use"])
    check(live >= 100000, "100000 strings live in Depot's object domain",
          live)
    check(used >= 90000, "Depot's statistics see them", used)
    check(any(c["blocks_in_use"] for c in s1["domains"]["object"]["classes"]),
          "per size class rows", s1["domains"]["object"]["classes"][:2])
    del keep
    depot.trim()
    say(f"stats(): +{live} live blocks through the router, +{used} in use in "
        "the object domain")


def uninstall_drains_then_reinstall():
    keep = ["y%d" % i for i in range(1000)]
    r = depot.uninstall()
    check(r["object"].startswith("draining: "), "live blocks: draining", r)
    a = depot.active()
    check(not a["python"]["object"].startswith("depot"),
          "new objects come from the previous allocator", a)
    check("object (draining)" in a["installed"], "active() says draining", a)
    del keep  # Depot's blocks, freed while draining: back to Depot
    gc.collect()
    r = depot.install()
    check(r["object"].startswith("installed again"), "reinstall", r)
    say("uninstall() with live blocks: " + r["object"])


def uninstall_restores_when_nothing_is_live():
    r = depot.install(domains=["mem"])
    r = depot.uninstall()
    check(r == {"mem": "restored the previous allocator"},
          "mem domain, nothing allocated: restored", r)
    a = depot.active()
    check(a["installed"] == [], "nothing installed", a)
    say("uninstall() with no live block: " + r["mem"])


def bad_arguments():
    for bad in ("mem", ["raw"], ["heap"], [1]):
        try:
            depot.install(domains=bad)
        except (TypeError, ValueError) as e:
            check("mem" in str(e) and "object" in str(e), "says what is "
                  "accepted", str(e))
        else:
            raise AssertionError(f"install(domains={bad!r}) accepted")
    say("install() refuses bad domains (raw: why)")


def debug_hooks():
    a = depot.active()
    check(a["python_debug_hooks"], "PYTHONMALLOC=debug seen", a)
    old = make_garbage(3000)
    r = depot.install()
    check(r["object"] == "installed under CPython's debug hooks", "under", r)
    a = depot.active()
    check(a["python"]["object"].startswith("depot (object"), "on Depot", a)
    check(a["python_debug_hooks"], "hooks still on", a)
    del old
    gc.collect()
    keep = make_garbage(3000)
    del keep
    say("PYTHONMALLOC=debug: Depot goes beneath CPython's debug hooks; old "
        "blocks freed through them")


def debug_hooks_catch_overflow():
    """Run alone, expected to die: CPython's debug hooks must still catch a
    write past the end of a block Depot made."""
    import ctypes
    depot.install()
    b = bytearray(24)  # 25 bytes of the object domain (a trailing NUL)
    check(depot.active()["python"]["object"].startswith("depot"), "Depot", b)
    addr = ctypes.addressof((ctypes.c_char * 24).from_buffer(b))
    ctypes.memset(addr + 25, 0x41, 2)  # into the hooks' trailing pad
    del b
    gc.collect()
    say("the overflow was not caught")


def over_tracemalloc():
    import tracemalloc
    tracemalloc.start()
    try:
        depot.install()
    except RuntimeError as e:
        check("tracemalloc.start()" in str(e), "says what to do", str(e))
    else:
        raise AssertionError("install() under a running tracemalloc")
    tracemalloc.stop()
    old = make_garbage(2000)
    r = depot.install()
    tracemalloc.start()  # above Depot: it traces Depot's blocks
    new = make_garbage(2000)
    traced = tracemalloc.get_traced_memory()[0]
    check(traced > 100000, "tracemalloc sees Depot's blocks", traced)
    del old
    gc.collect()
    r = depot.uninstall()
    check(r["object"].startswith("draining"), "drains under a hook", r)
    tracemalloc.stop()  # puts Depot's router back
    del new
    gc.collect()
    a = depot.active()
    check("object (draining)" in a["installed"], "still draining", a)
    say("tracemalloc: refused under it, traced over Depot, stopped safely")


def pool():
    p = depot.Pool()
    b = p.alloc(64)
    check(len(b) == 64 and b.address % 16 == 0, "64 aligned bytes", b)
    m = memoryview(b)
    m[:5] = b"hello"
    check(bytes(memoryview(b)[:5]) == b"hello", "same memory, no copy", b)
    check(m.obj is b and not m.readonly, "a writable view of the block", m)
    for op in (lambda: b.resize(10), b.free):
        try:
            op()
        except BufferError as e:
            check("views" in str(e), "says why", str(e))
        else:
            raise AssertionError("resize/free with a live view")
    m.release()
    b.resize(100000)
    check(bytes(memoryview(b)[:5]) == b"hello", "resize keeps contents", b)
    b.free()
    try:
        memoryview(b)
    except BufferError:
        pass
    else:
        raise AssertionError("a view of a freed block")
    try:
        b.resize(5)
    except ValueError as e:
        check("freed" in str(e), "freed block", str(e))
    blocks = [p.alloc(1000) for _ in range(1000)]
    check(p.blocks == 1000, "the pool counts its blocks", p.blocks)
    check(p.name.startswith("depot.Pool-"), "a pool's heap name", p.name)
    h = depot.stats()["heaps"][p.name]
    check(h == p.stats(), "stats() lists the pool's heap", (h, p.stats()))
    check(h["blocks_in_use"] == 1000 and h["bytes_in_use"] >= 1000 * 1000,
          "the heap holds the blocks", h)
    name, ref = p.name, weakref.ref(p)
    del p, blocks, b, m, op
    gc.collect()
    check(ref() is None, "the pool was collected", None)
    check(name not in depot.stats()["heaps"], "its heap went with it",
          depot.stats()["heaps"])
    # Options: a name, a limit (MemoryError past it, counted), a node.
    p = depot.Pool(name="pool-test", limit=1 << 20)
    check(p.name == "pool-test", "named", p.name)
    keep = [p.alloc(4096) for _ in range(16)]
    try:
        p.alloc(4 << 20)
    except MemoryError:
        pass
    else:
        raise AssertionError("an allocation past the pool's limit")
    h = depot.stats()["heaps"]["pool-test"]
    check(h["limit_bytes"] == 1 << 20 and h["limit_hits"] >= 1,
          "the limit refused it", h)
    check(p.blocks == 16, "the pool's blocks are intact", p.blocks)
    q = depot.Pool(name="pool-test")
    check({"pool-test", "pool-test (2)"} <= set(depot.stats()["heaps"]),
          "a repeated name is told apart", list(depot.stats()["heaps"]))
    check(depot.Pool(node=0).stats()["node"] == 0, "bound to node 0", None)
    for kw, exc in (({"node": -1}, ValueError), ({"node": 1 << 20}, ValueError),
                    ({"limit": 0}, ValueError), ({"name": ""}, ValueError),
                    ({"name": "x" * 48}, ValueError), ({"name": 5}, TypeError),
                    ({"size": 1}, TypeError)):
        try:
            depot.Pool(**kw)
        except exc as e:
            check(str(e), "says why", kw)
        else:
            raise AssertionError(f"Pool(**{kw}) accepted")
    del p, q, keep
    try:
        import numpy
    except ImportError:
        numpy = None
    if numpy is not None:
        p = depot.Pool()
        b = p.alloc(80)
        a = numpy.frombuffer(b, dtype=numpy.float64)
        a[:] = 1.5
        check(memoryview(b).cast("d")[9] == 1.5, "numpy over a block", a)
    say("Pool: one heap each, buffer protocol without a copy, resize, free, "
        "collected with its blocks, node/limit/name, in stats()['heaps']" +
        ("" if numpy else " (numpy not installed)"))


def config_and_options():
    c = depot.config()
    check(c["tcache_max_bytes"] and "stats" in c, "configuration keys", c)
    check(not any(k.startswith("stats.") for k in c), "no statistics", c)
    depot.set_option("purge_delay_ms", "250")
    check(depot.config()["purge_delay_ms"] == "250", "set", None)
    for name, value, exc in (("no_such_key", "1", KeyError),
                             ("purge_delay_ms", "soon", ValueError),
                             ("numa", "off", ValueError)):
        try:
            depot.set_option(name, value)
        except exc as e:
            check(name in str(e), "the error names the key", str(e))
        else:
            raise AssertionError(f"set_option({name}, {value}) accepted")
    check(len(depot.version()) == 3, "version", depot.version())
    say("config() and set_option(): keys, run-time changes, clear errors")


def dump_profile():
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "depot.prof")
    if os.path.exists(path):
        os.unlink(path)
    if "prof=1" not in os.environ.get("DEPOT_CONF", ""):
        try:
            depot.dump_profile(path)
        except RuntimeError as e:
            check("prof=1" in str(e), "says how to turn profiling on", str(e))
        else:
            raise AssertionError("dump_profile() wrote a profile with profiling off")
        check(not os.path.exists(path), "no file with profiling off")
        say("dump_profile(): a clear error with profiling off")
        return
    depot.install()  # the bytearrays' storage comes from Depot
    keep = [bytearray(4096) for _ in range(4096)]  # 16 MiB live: sampled
    depot.dump_profile(path)
    with open(path) as f:
        text = f.read()
    check(text.startswith("heap profile:"), "pprof's header", text[:80])
    check("MAPPED_LIBRARIES:" in text, "the mappings for symbols")
    check(" @ 0x" in text, "sampled stacks", text[:400])
    del keep
    say("dump_profile(): wrote a heap profile pprof reads")


def main():
    for name in sys.argv[1:]:
        globals()[name]()
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
