"""Depot, the allocator, from Python.

    import depot
    depot.install()            # mem and object domains on Depot, now
    depot.active()             # what Depot serves in this process
    depot.stats()              # statistics: per domain, per size class, heaps
    depot.trim()               # return free memory to the OS
    depot.config()             # the effective configuration
    pool = depot.Pool()        # memory tied to an object's life (a heap)
    block = pool.alloc(4096)   # memoryview(block): no copy

    python3 -m depot run [--debug] [--conf k=v,...] script.py args...

See the README's "From Python and Cython" for what each call guarantees.
"""
import os as _os

from ._depot import (  # noqa: F401
    FREE_THREADED,
    Block,
    Pool,
    active,
    config,
    dump_profile,
    set_option,
    stats,
    trim,
    uninstall,
    version,
)
from ._depot import install as _install

__all__ = [
    "install", "uninstall", "active", "stats", "trim", "config",
    "set_option", "dump_profile", "version", "Pool", "Block", "get_include",
]


def install(domains=("mem", "object")):
    """Puts CPython's domains ("mem", "object") on Depot in this running
    interpreter (PyMem_SetAllocator).  Blocks made before stay valid: their
    frees and reallocs go to the allocator that made them.  Returns a dict
    domain -> what was done (installing twice changes nothing; under
    PYTHONMALLOC=debug Depot goes beneath CPython's debug hooks; over
    another hook Depot goes above it, and sends it the blocks it made).

    Refused while tracemalloc traces: when it stops (at the latest at
    exit) tracemalloc puts back the allocator it saved, which would take
    Depot away from the blocks Depot made.  Install first, then start
    tracemalloc: it then traces Depot's blocks, and stopping it puts Depot
    back."""
    import _tracemalloc
    if _tracemalloc.is_tracing():
        raise RuntimeError(
            "depot.install: tracemalloc is tracing; when it stops (at the "
            "latest at exit) it puts back the allocator it saved, which "
            "would take Depot away from the blocks Depot made.  Call "
            "depot.install() first, then tracemalloc.start() (it then "
            "traces Depot's blocks)")
    return _install(domains)


def get_include():
    """The directory to give Cython (-I) so that `from depot cimport ...`
    finds depot's declarations (this package's __init__.pxd)."""
    return _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
