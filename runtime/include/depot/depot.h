/* depot/depot.h: Depot's public API.
 *
 * The shapes and contract of CPython's memory interface (PyMem_*), under the
 * Depot prefix.  Three domains, each with malloc, calloc, realloc and free:
 *
 *   raw     DepotMem_Raw*    for buffers that may be used from any context
 *   mem     DepotMem_*       general-purpose memory
 *   object  DepotObject_*    many small objects
 *
 * Contract (all domains, all thread-safe):
 *   - A request for 0 bytes returns a distinct non-NULL pointer, as if 1
 *     byte had been asked for; so does Calloc with a zero count or size.
 *   - Realloc(NULL, n) is Malloc(n).  Realloc(p, 0) resizes the block to a
 *     minimum one: it does not free it and returns non-NULL.
 *   - A failed Realloc returns NULL and leaves p valid, contents intact.
 *   - Free(NULL) does nothing.
 *   - Requests above PTRDIFF_MAX, and Calloc products that overflow, return
 *     NULL.  On any failure the only side effect is errno = ENOMEM.
 *   - Blocks are aligned to at least 16 bytes.
 *   - A block must be freed or reallocated by its own domain.  Depot keeps
 *     the domains in separate spans and checks this on every free, even
 *     without debug hooks: a wrong-domain free, or a free of a pointer Depot
 *     never handed out, is reported on stderr and aborts (DEPOT_CONF
 *     on_bad_free=warn reports and leaks the block instead).
 *
 * Environment, read once when the first Depot function is called:
 *   DEPOTMALLOC=debug         install the debug hooks (DepotMem_SetupDebugHooks)
 *   DEPOTMALLOC=malloc        route all three domains to the C library
 *   DEPOTMALLOC=malloc_debug  both
 *   DEPOTMALLOCSTATS=1        print DepotMem_PrintStats() to stderr at exit
 *   DEPOT_CONF="key=value,..." configuration (see README), e.g. stats=1
 */
#ifndef DEPOT_DEPOT_H
#define DEPOT_DEPOT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libdepot.so; everything else in it is hidden. */
#define DEPOT_API __attribute__((visibility("default")))

/* ---- version -------------------------------------------------------------
 * A minor version adds functions, configuration keys or statistics fields
 * (at the end of the struct, see DepotMem_Stats) and keeps every existing
 * one; a major version may remove or change them, and changes the soname
 * (libdepot.so.<major>).  tools/version.bzl holds the same numbers. */
#define DEPOT_VERSION_MAJOR 1
#define DEPOT_VERSION_MINOR 0
#define DEPOT_VERSION_PATCH 0
#define DEPOT_VERSION_NUMBER                                 \
  (DEPOT_VERSION_MAJOR * 10000 + DEPOT_VERSION_MINOR * 100 + \
   DEPOT_VERSION_PATCH)

/* The version of the Depot running the program, as DEPOT_VERSION_NUMBER
 * (major * 10000 + minor * 100 + patch): compare it with the header's to
 * tell which library a program actually loaded. */
DEPOT_API unsigned DepotMem_Version(void);

/* ---- the three domains --------------------------------------------------- */

DEPOT_API void *DepotMem_RawMalloc(size_t size);
DEPOT_API void *DepotMem_RawCalloc(size_t nelem, size_t elsize);
DEPOT_API void *DepotMem_RawRealloc(void *ptr, size_t new_size);
DEPOT_API void DepotMem_RawFree(void *ptr);

DEPOT_API void *DepotMem_Malloc(size_t size);
DEPOT_API void *DepotMem_Calloc(size_t nelem, size_t elsize);
DEPOT_API void *DepotMem_Realloc(void *ptr, size_t new_size);
DEPOT_API void DepotMem_Free(void *ptr);

DEPOT_API void *DepotObject_Malloc(size_t size);
DEPOT_API void *DepotObject_Calloc(size_t nelem, size_t elsize);
DEPOT_API void *DepotObject_Realloc(void *ptr, size_t new_size);
DEPOT_API void DepotObject_Free(void *ptr);

/* ---- typed macros (mem domain) -------------------------------------------
 * DepotMem_New(TYPE, n)       TYPE * for n elements, or NULL.
 * DepotMem_Resize(p, TYPE, n) assigns p the resized block, or NULL on
 *                             failure, exactly like PyMem_Resize: on failure
 *                             the old block is still allocated but p no
 *                             longer points to it.  To keep it, resize a
 *                             copy:  TYPE *tmp = p;  DepotMem_Resize(tmp, TYPE, n);
 *                                    if (tmp) p = tmp; else { ... p is intact ... }
 * DepotMem_Del(p)             DepotMem_Free(p).
 * New and Resize return NULL without calling the allocator when
 * n * sizeof(TYPE) would exceed PTRDIFF_MAX (a negative n included). */
#define DepotMem_New(type, n)                       \
  ((size_t)(n) > (size_t)PTRDIFF_MAX / sizeof(type) \
       ? (type *)NULL                               \
       : (type *)DepotMem_Malloc((size_t)(n) * sizeof(type)))
#define DepotMem_Resize(p, type, n)                         \
  ((p) = ((size_t)(n) > (size_t)PTRDIFF_MAX / sizeof(type)) \
             ? (type *)NULL                                 \
             : (type *)DepotMem_Realloc((p), (size_t)(n) * sizeof(type)))
#define DepotMem_Del DepotMem_Free

/* ---- pluggable allocators --------------------------------------------------
 * Layout-compatible with CPython's PyMemAllocatorEx and domain numbers, so
 * Depot's functions can be installed into CPython with PyMem_SetAllocator.
 * Set a domain's allocator before any block of that domain exists (or wrap
 * the previous one, as a tracing hook does: get it, keep it in your ctx,
 * forward to it).  A domain's allocator must not be changed while other
 * threads use the domain. */
typedef enum {
  DEPOT_DOMAIN_RAW = 0,
  DEPOT_DOMAIN_MEM = 1,
  DEPOT_DOMAIN_OBJ = 2,
} DepotMemAllocatorDomain;

typedef struct {
  void *ctx;
  void *(*malloc)(void *ctx, size_t size);
  void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
  void *(*realloc)(void *ctx, void *ptr, size_t new_size);
  void (*free)(void *ctx, void *ptr);
} DepotMemAllocatorEx;

/* Both return 0, or -1 with errno = EINVAL for a bad domain or argument. */
DEPOT_API int DepotMem_GetAllocator(DepotMemAllocatorDomain domain,
                                    DepotMemAllocatorEx *allocator);
DEPOT_API int DepotMem_SetAllocator(DepotMemAllocatorDomain domain,
                                    const DepotMemAllocatorEx *allocator);

/* The domain whose functions handed out the live block at ptr (0 raw,
 * 1 mem, 2 object), or -1 for an address Depot did not hand out (NULL,
 * a block of another allocator, memory that is not the heap's) and for a
 * block of a DepotHeap (DepotHeap_Of tells those).  Never
 * faults, whatever ptr is, takes no lock, and costs a few loads for a
 * small block: a hook installed over another allocator (CPython's
 * PyMem_SetAllocator, see the README's "From Python and Cython") asks it
 * to send each free to the allocator that made the block.  Blocks of the
 * debug hooks are recognised by the pointer the program holds; the C
 * family's blocks are raw's.  Not a validity check: an address inside a
 * small block, or a small block freed already, may answer with the
 * domain (inside a large block, or a freed large or huge block: -1). */
DEPOT_API int DepotMem_DomainOf(const void *ptr);

/* Installs the debug hooks over the current allocator of every domain
 * (a domain that already has them is left alone).  Each block then carries
 * its size, its domain's API id ('r', 'm', 'o') and 0xFD guard bytes around
 * it and a serial number; fresh memory is filled with 0xCD and freed memory
 * with 0xDD.  Free and Realloc check the API id and both guards; on a
 * violation (overflow, underflow, wrong domain, double free, a pointer Depot
 * never handed out) one report goes to stderr and the process aborts. */
DEPOT_API void DepotMem_SetupDebugHooks(void);

/* ---- statistics --------------------------------------------------------- */

#define DEPOT_STATS_VERSION 3
/* Rows for the small size classes, smallest first (16 B .. 32 KiB).  Depot
 * has 40 classes today; the rows past its last class are all zero
 * (block_size 0), so a program reads a row's class from its block_size. */
#define DEPOT_STATS_CLASSES 72

typedef struct {
  uint64_t block_size;    /* class size; 0 in the large and huge rows and
                             in the rows past the last class */
  uint64_t spans;         /* spans (large: blocks) serving it */
  uint64_t blocks_in_use; /* handed to the program and not freed */
  uint64_t free_blocks;   /* held by Depot: caches, pools, spans */
  uint64_t bytes_in_use;  /* blocks_in_use x block size (large: usable) */
  uint64_t bytes_held;    /* bytes of its spans (large/huge: mapped) */
} DepotMemClassStats;

typedef struct {
  DepotMemClassStats classes[DEPOT_STATS_CLASSES];
  DepotMemClassStats large; /* 32 KiB .. huge threshold: page runs */
  DepotMemClassStats huge;  /* mapped directly */
  DepotMemClassStats total;
  /* Exact bytes the program asked for in live blocks; tracked only while
   * the debug hooks are installed (requested_tracked = 1). */
  uint64_t bytes_requested;
  uint32_t requested_tracked;
} DepotMemDomainStats;

typedef struct {
  size_t size;      /* set by the caller to sizeof(DepotMemStats) */
  uint32_t version; /* set by Depot to DEPOT_STATS_VERSION */
  DepotMemDomainStats domains[3];
  DepotMemClassStats total; /* over all domains */
  uint64_t os_mapped_bytes; /* address space Depot reserved or mapped */
  uint64_t resident_bytes;  /* the process's resident memory (statm) */
  /* Version 2: memory control. */
  uint64_t held_bytes;           /* memory Depot holds from the OS: pages in use
                                 or free but not yet purged, huge blocks and
                                 their cache, metadata (an upper bound) */
  uint64_t dirty_bytes;          /* of those, free pages waiting to be purged */
  uint64_t memory_limit_bytes;   /* the limit in force (0: none) */
  uint64_t memory_limit_hits;    /* allocations refused at the limit */
  uint64_t soft_limit_purges;    /* purges forced by memory_limit_soft */
  uint64_t purger_running;       /* 1 if the background purger runs */
  uint64_t purger_idle_reclaims; /* times it found the heap idle */
  /* Version 3: idle threads' caches. */
  uint64_t idle_cache_flushes;  /* caches of idle threads emptied */
  uint64_t idle_flushed_blocks; /* blocks those flushes gave back */
} DepotMemStats;

/* Fills *stats (stats->size must be set; a smaller, older struct is filled
 * up to its size).  Returns 0, or -1 with errno = EINVAL. */
DEPOT_API int DepotMem_Stats(DepotMemStats *stats);

#define DEPOT_STATS_JSON 1u
/* Writes the statistics report (a table, or JSON with DEPOT_STATS_JSON) to
 * the file descriptor fd.  Allocates nothing.  Returns 0 or -1 (errno). */
DEPOT_API int DepotMem_PrintStats(int fd, unsigned flags);

/* Returns free memory to the OS: flushes the calling thread's cache, empties
 * the central pools into their spans and purges idle pages. */
DEPOT_API void DepotMem_Trim(void);

/* Heap profiling (DEPOT_CONF=prof=1; see the README, "Where does my memory
 * go?").  Writes the heap profile (sampled blocks in use and allocated
 * since start, by call stack, in the text format pprof reads) to path, or
 * when path is NULL to <prof_prefix>.<pid>.<seq>.user.heap.  Allocates
 * nothing.  Returns 0, or an errno value: EINVAL when profiling is off,
 * what open(2) failed with otherwise. */
DEPOT_API int DepotMem_DumpProfile(const char *path);

/* Starts (active != 0) or stops sampling at run time (the prof_active
 * option; DepotMem_SetOption("prof_active", ...) does the same); blocks
 * sampled already stay in the profile until freed.  Returns the previous
 * state (0 or 1), or -1 when profiling is off. */
DEPOT_API int DepotMem_SetProfileActive(int active);

/* Clears the allocated-since counts, so that the next profile's allocation
 * figures start from now (the in-use figures stay). */
DEPOT_API void DepotMem_ResetProfile(void);

/* ---- heaps -------------------------------------------------------------------
 * A heap is a family of blocks with an owner, freed all at once: per
 * request, per connection, per tenant (APR pools, mimalloc's heaps,
 * jemalloc's arenas).  Any thread may allocate from and free into any heap
 * at the same time; from the thread that uses a heap most, allocation and
 * free are a thread-cache hit (no lock).  Its blocks keep the Depot API's
 * contract (zero bytes, overflow, failure leaves the block, errno = ENOMEM
 * only); a call on NULL or on a destroyed heap fails with errno = EINVAL
 * (and a destroyed one is reported).
 *
 * DepotHeap_Reset frees every block of the heap at once and keeps it;
 * DepotHeap_Destroy frees every block and the heap.  Both return the heap's
 * pages to Depot in time proportional to its spans (runs of pages), not its
 * blocks; blocks that other threads' caches still hold are dropped, never
 * handed out again.  It is a program error to reset or destroy a heap while
 * another thread allocates from it or frees one of its blocks, and to use
 * a heap or one of its blocks after destroying it (reported while it can be
 * told).
 *
 * Blocks know their heap: DepotHeap_Free, DepotHeap_UsableSize and
 * DepotHeap_Of take the block alone.  Always checked, as wrong-family frees
 * are: a heap block passed to free() or DepotMem_*Free, a default-domain
 * block passed to DepotHeap_Free, a block of one heap passed to another's
 * DepotHeap_Realloc, and a block freed after its heap was reset or destroyed
 * (as far as it can be told) are reported, and abort unless on_bad_free=warn.
 * The debug hooks and the quarantine do not apply to heap blocks. */
typedef struct DepotHeap DepotHeap;

#define DEPOT_HEAP_NODE_ANY (-1)
typedef struct {
  size_t size;          /* set by the caller to sizeof(DepotHeapOptions) */
  int node;             /* NUMA node (0 .. nodes-1, DepotMem_PrintStats'
                           numbering) whose memory every span of the heap
                           comes from, bound as numa_strict says; or
                           DEPOT_HEAP_NODE_ANY: the allocating thread's */
  size_t limit_bytes;   /* most bytes of pages the heap may hold (0: none);
                           past it an allocation fails with ENOMEM */
  const char *name;     /* for statistics and reports (copied; up to 47
                           bytes); NULL: "heap-<n>" */
} DepotHeapOptions;
#define DEPOT_HEAP_OPTIONS_INIT \
  { sizeof(DepotHeapOptions), DEPOT_HEAP_NODE_ANY, 0, NULL }

/* A new heap (opts may be NULL: defaults), or NULL with errno = ENOMEM (no
 * memory, or 65535 heaps alive) or EINVAL (a bad size field or node). */
DEPOT_API DepotHeap *DepotHeap_New(const DepotHeapOptions *opts);
DEPOT_API void DepotHeap_Reset(DepotHeap *heap);
DEPOT_API void DepotHeap_Destroy(DepotHeap *heap);

DEPOT_API void *DepotHeap_Malloc(DepotHeap *heap, size_t size);
DEPOT_API void *DepotHeap_Calloc(DepotHeap *heap, size_t nelem, size_t elsize);
/* ptr NULL: DepotHeap_Malloc.  ptr must be a block of heap. */
DEPOT_API void *DepotHeap_Realloc(DepotHeap *heap, void *ptr, size_t new_size);
/* alignment: a power of two (else NULL with errno = EINVAL). */
DEPOT_API void *DepotHeap_AlignedAlloc(DepotHeap *heap, size_t alignment,
                                       size_t size);
DEPOT_API void DepotHeap_Free(void *ptr);
/* Usable bytes of a heap block (0 for anything else); its heap (NULL for
 * anything that is not a live heap block). */
DEPOT_API size_t DepotHeap_UsableSize(const void *ptr);
DEPOT_API DepotHeap *DepotHeap_Of(const void *ptr);
/* The name the heap was given (or "heap-<n>"). */
DEPOT_API const char *DepotHeap_Name(const DepotHeap *heap);

typedef struct {
  size_t size;            /* set by the caller to sizeof(DepotHeapStats) */
  uint64_t blocks_in_use; /* handed to the program and not freed */
  uint64_t bytes_in_use;  /* their usable bytes */
  uint64_t blocks_cached; /* freed, waiting in threads' caches */
  uint64_t bytes_held;    /* pages of its spans and huge blocks */
  uint64_t peak_bytes_held;
  uint64_t limit_bytes;   /* 0: none */
  uint64_t limit_hits;    /* allocations refused at the heap's limit (not
                             the process's memory_limit, nor the OS) */
  uint64_t spans;         /* small and large spans */
  int32_t node;           /* DEPOT_HEAP_NODE_ANY or the node it is bound to */
  char name[48];
} DepotHeapStats;
/* Fills *stats (stats->size must be set).  Returns 0, or -1 with errno =
 * EINVAL.  In-use figures are exact when no other thread is using the heap.
 * DepotMem_PrintStats lists every live heap by name. */
DEPOT_API int DepotHeap_Stats(const DepotHeap *heap, DepotHeapStats *stats);

/* ---- run-time control ------------------------------------------------------
 * Every configuration key by its name ("purge_delay_ms") and every
 * statistic as "stats.<name>" ("stats.held_bytes"); the README's reference
 * lists them, with which keys may change while the program runs
 * (purge_delay_ms, background_purge, tcache_max_bytes, huge_threshold_bytes,
 * memory_limit, memory_limit_soft, memory_limit_margin).
 *
 * GetOption writes the value as text (as DEPOT_CONF spells it; statistics
 * in decimal) into buf.  Returns 0, ENOENT for an unknown name, ERANGE when
 * buf is too small.  SetOption takes a value as DEPOT_CONF does.  Returns 0,
 * ENOENT for an unknown name, EPERM for a key fixed at start-up or a
 * statistic, EINVAL for a value that is malformed or out of range.  After a
 * failure DepotMem_OptionError() is one line saying why (this thread's
 * last failure). */
DEPOT_API int DepotMem_GetOption(const char *name, char *buf, size_t len);
DEPOT_API int DepotMem_SetOption(const char *name, const char *value);
DEPOT_API const char *DepotMem_OptionError(void);
/* Enumerates the names GetOption takes: index 0, 1, ... gives every
 * configuration key in the reference's order, then every "stats.<name>";
 * NULL past the last.  (Python's depot.config() is built on it.) */
DEPOT_API const char *DepotMem_OptionName(unsigned index);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_DEPOT_H */
