# depot.pxd: Cython declarations of Depot's C API (<depot/depot.h>),
# shipped with the depot package (installed as depot/__init__.pxd, so that
# `from depot cimport DepotMem_Malloc, DepotMem_Free` works with the
# package's parent directory on Cython's include path: depot.get_include()).
# Compile the C that Cython writes with -I PREFIX/include and link -ldepot
# (or let the depot package's _depot.so bring libdepot.so into the process
# first: `import depot` before your module).
#
# The contract is CPython's PyMem_* one: zero-byte requests give distinct
# non-NULL pointers, a failed Realloc keeps the block, Free(NULL) does
# nothing, every function is thread-safe and may be called without the GIL
# (hence `nogil`).  A block must be freed by its own domain's Free.

from libc.stddef cimport size_t
from libc.stdint cimport int32_t, uint32_t, uint64_t

cdef extern from "depot/depot.h" nogil:
    # ---- version
    int DEPOT_VERSION_MAJOR
    int DEPOT_VERSION_MINOR
    int DEPOT_VERSION_PATCH
    unsigned DepotMem_Version()

    # ---- the three domains
    void *DepotMem_RawMalloc(size_t size)
    void *DepotMem_RawCalloc(size_t nelem, size_t elsize)
    void *DepotMem_RawRealloc(void *ptr, size_t new_size)
    void DepotMem_RawFree(void *ptr)

    void *DepotMem_Malloc(size_t size)
    void *DepotMem_Calloc(size_t nelem, size_t elsize)
    void *DepotMem_Realloc(void *ptr, size_t new_size)
    void DepotMem_Free(void *ptr)

    void *DepotObject_Malloc(size_t size)
    void *DepotObject_Calloc(size_t nelem, size_t elsize)
    void *DepotObject_Realloc(void *ptr, size_t new_size)
    void DepotObject_Free(void *ptr)

    # DepotMem_Del(p) is DepotMem_Free(p) (the C macro).
    void DepotMem_Del(void *ptr)

    # ---- ownership: the domain that made a live block, or -1 (never faults)
    int DepotMem_DomainOf(const void *ptr)

    # ---- pluggable allocators (layout of CPython's PyMemAllocatorEx)
    ctypedef enum DepotMemAllocatorDomain:
        DEPOT_DOMAIN_RAW
        DEPOT_DOMAIN_MEM
        DEPOT_DOMAIN_OBJ
    ctypedef struct DepotMemAllocatorEx:
        void *ctx
        void *(*malloc)(void *ctx, size_t size)
        void *(*calloc)(void *ctx, size_t nelem, size_t elsize)
        void *(*realloc)(void *ctx, void *ptr, size_t new_size)
        void (*free)(void *ctx, void *ptr)
    int DepotMem_GetAllocator(DepotMemAllocatorDomain domain,
                              DepotMemAllocatorEx *allocator)
    int DepotMem_SetAllocator(DepotMemAllocatorDomain domain,
                              const DepotMemAllocatorEx *allocator)
    void DepotMem_SetupDebugHooks()

    # ---- statistics
    int DEPOT_STATS_VERSION
    int DEPOT_STATS_CLASSES
    unsigned DEPOT_STATS_JSON
    ctypedef struct DepotMemClassStats:
        uint64_t block_size
        uint64_t spans
        uint64_t blocks_in_use
        uint64_t free_blocks
        uint64_t bytes_in_use
        uint64_t bytes_held
    ctypedef struct DepotMemDomainStats:
        DepotMemClassStats classes[72]
        DepotMemClassStats large
        DepotMemClassStats huge
        DepotMemClassStats total
        uint64_t bytes_requested
        uint32_t requested_tracked
    ctypedef struct DepotMemStats:
        size_t size
        uint32_t version
        DepotMemDomainStats domains[3]
        DepotMemClassStats total
        uint64_t os_mapped_bytes
        uint64_t resident_bytes
        uint64_t held_bytes
        uint64_t dirty_bytes
        uint64_t memory_limit_bytes
        uint64_t memory_limit_hits
        uint64_t soft_limit_purges
        uint64_t purger_running
        uint64_t purger_idle_reclaims
    int DepotMem_Stats(DepotMemStats *stats)
    int DepotMem_PrintStats(int fd, unsigned flags)
    void DepotMem_Trim()

    # ---- run-time control
    int DepotMem_GetOption(const char *name, char *buf, size_t len)
    int DepotMem_SetOption(const char *name, const char *value)
    const char *DepotMem_OptionError()
    const char *DepotMem_OptionName(unsigned index)

    # ---- heaps (issue 15): a family of blocks freed all at once ----------
    # Any thread may allocate from and free into a heap; resetting or
    # destroying one while another thread uses it is a program error.
    # Blocks know their heap: DepotHeap_Free takes the block alone, and a
    # heap block must never reach DepotMem_*Free or free() (nor the reverse).
    ctypedef struct DepotHeap:
        pass
    int DEPOT_HEAP_NODE_ANY
    ctypedef struct DepotHeapOptions:
        size_t size             # sizeof(DepotHeapOptions)
        int node                # NUMA node, or DEPOT_HEAP_NODE_ANY
        size_t limit_bytes      # most bytes of pages it may hold (0: none)
        const char *name        # copied, up to 47 bytes; NULL: "heap-<n>"
    # DepotHeapOptions o = DEPOT_HEAP_OPTIONS_INIT is C's; in Cython:
    #     cdef DepotHeapOptions o
    #     o.size = sizeof(o); o.node = DEPOT_HEAP_NODE_ANY
    #     o.limit_bytes = 0; o.name = NULL
    ctypedef struct DepotHeapStats:
        size_t size             # sizeof(DepotHeapStats), set by the caller
        uint64_t blocks_in_use
        uint64_t bytes_in_use
        uint64_t blocks_cached
        uint64_t bytes_held
        uint64_t peak_bytes_held
        uint64_t limit_bytes
        uint64_t limit_hits
        uint64_t spans
        int32_t node
        char name[48]
    # NULL with errno ENOMEM (no memory, or 65535 heaps alive) or EINVAL.
    DepotHeap *DepotHeap_New(const DepotHeapOptions *opts)
    void DepotHeap_Reset(DepotHeap *heap)
    void DepotHeap_Destroy(DepotHeap *heap)
    void *DepotHeap_Malloc(DepotHeap *heap, size_t size)
    void *DepotHeap_Calloc(DepotHeap *heap, size_t nelem, size_t elsize)
    void *DepotHeap_Realloc(DepotHeap *heap, void *ptr, size_t new_size)
    void *DepotHeap_AlignedAlloc(DepotHeap *heap, size_t alignment,
                                 size_t size)
    void DepotHeap_Free(void *ptr)
    size_t DepotHeap_UsableSize(const void *ptr)
    DepotHeap *DepotHeap_Of(const void *ptr)
    const char *DepotHeap_Name(const DepotHeap *heap)
    int DepotHeap_Stats(const DepotHeap *heap, DepotHeapStats *stats)

# ---- the typed macros ---------------------------------------------------
# C's DepotMem_New(TYPE, n) and DepotMem_Resize(p, TYPE, n) take a type,
# which Cython cannot pass to a macro; these take the element size instead
# and keep the overflow check (NULL, without calling the allocator, when
# n * elsize would pass PTRDIFF_MAX):
#     cdef double *x = <double *>DepotMem_New(n, sizeof(double))
#     cdef double *t = <double *>DepotMem_Resize(x, 2 * n, sizeof(double))
#     if t == NULL: raise MemoryError()   # x is still valid here
#     x = t
# Unlike C's DepotMem_Resize (PyMem_Resize), the Cython one returns the new
# pointer and never assigns: a failure cannot lose the old block.
cdef extern from *:
    """
    static inline void *depot_pxd_new(size_t n, size_t elsize) {
      return elsize && n > (size_t)PTRDIFF_MAX / elsize
                 ? NULL : DepotMem_Malloc(n * elsize);
    }
    static inline void *depot_pxd_resize(void *p, size_t n, size_t elsize) {
      return elsize && n > (size_t)PTRDIFF_MAX / elsize
                 ? NULL : DepotMem_Realloc(p, n * elsize);
    }
    """
    void *DepotMem_New "depot_pxd_new"(size_t n, size_t elsize) nogil
    void *DepotMem_Resize "depot_pxd_resize"(void *p, size_t n,
                                             size_t elsize) nogil
