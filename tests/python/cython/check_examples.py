"""Runs the Cython examples (built by cython_test.sh) and checks that their
memory is Depot's: the stats of the mem domain move with them."""
import gc
import sys

import depot

import carray
import poolobj
import someobj


def mem_blocks():
    return depot.stats()["domains"]["mem"]["total"]["blocks_in_use"]


noise = carray.random_noise(1000)
assert len(noise) == 1000 and all(isinstance(x, float) for x in noise)
assert carray.squares(1000) == sum(i * i for i in range(1000))
print("ok: the C array in try/finally (DepotMem_Malloc/Free, DepotMem_New)")

before = mem_blocks()
objs = [someobj.SomeMemory(100) for _ in range(1000)]
assert mem_blocks() - before >= 1000, "the objects' memory is Depot's"
for o in objs[:10]:
    o.resize(5000)
    o.fill(2.0)
    assert o.total() == 10000.0
    o.resize(3)
    assert o.total() == 6.0, "resize kept the contents"
del objs, o
gc.collect()
assert mem_blocks() - before < 50, "__dealloc__ gave it back"
print("ok: the extension type: __cinit__, resize, __dealloc__ on Depot")

pool = depot.Pool()
objs = [poolobj.PoolMemory(pool, 64) for _ in range(100)]
assert pool.blocks == 100
objs[0].fill(1.5)
v = objs[0].view()
assert v[63] == 1.5 and len(v) == 64, "a view of the block, no copy"
v.release()
objs[0].resize(10000)
objs[0].fill(0.5)
assert objs[0].total() == 5000.0
del objs
gc.collect()
assert pool.blocks == 0, "their __dealloc__ freed the blocks"
keep = poolobj.PoolMemory(pool, 8)
held = keep.view()  # a view outlives the object: the pool keeps the block
del keep
gc.collect()
assert pool.blocks == 1
del held, pool
gc.collect()
print("ok: the same type on a depot.Pool")
import counting_hook
counting_hook.install()
old = [("o%d" % i, [i]) for i in range(20000)]
r = depot.install()
assert "another allocator hook" in r["object"], r
assert depot.active()["python"]["object"].startswith("depot (object"), r
before = counting_hook.forwarded_frees()
del old
gc.collect()
forwarded = counting_hook.forwarded_frees() - before
assert forwarded >= 40000, ("the hook's blocks went back to it", forwarded)
new = [("n%d" % i, [i]) for i in range(20000)]
before = counting_hook.forwarded_frees()
del new
gc.collect()
assert counting_hook.forwarded_frees() - before < 1000, "Depot's stayed Depot's"
r = depot.uninstall()
assert r["object"].startswith("draining") or r["object"].startswith("restored"), r
print(f"ok: depot.install() over another hook: {forwarded} of its blocks "
      "went back to it")
if len(sys.argv) > 1 and sys.argv[1] == "heap":
    import ctypes
    import heap_per_object
    d = heap_per_object.Document(b"cython-doc")
    addrs = [d.add(b"node %d" % i) for i in range(1000)]
    assert d.stats() == (1000, "cython-doc"), d.stats()
    h = depot.stats()["heaps"]["cython-doc"]
    assert h["blocks_in_use"] == 1000 and h["node"] == -1, h
    a = d.grow(addrs[7], 4096)
    assert ctypes.string_at(a) == b"node 7", ctypes.string_at(a)
    d.drop(a)
    assert d.stats()[0] == 999, d.stats()
    d.clear()
    assert d.stats()[0] == 0, d.stats()
    d.add(b"after reset")
    del d
    assert "cython-doc" not in depot.stats()["heaps"], depot.stats()["heaps"]
    try:
        heap_per_object.Document(b"small", 1 << 16).add(b"x" * (1 << 20))
    except MemoryError:
        pass
    else:
        raise AssertionError("a heap past its limit")
    print("ok: a heap per object (DepotHeap_* from depot.pxd; options, "
          "stats, realloc, free, reset, destroy, limit)")
print("PASS")
