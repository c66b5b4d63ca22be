/* alloc_api.h: the allocator core's entry points that are ordinary
 * functions, and its statistics: what the layers above (runtime/, tools/,
 * tests/) call.  Plain C types only, so C++ (the tests) can include it;
 * alloc.h adds the inline fast paths for C.  The options are in config.h,
 * the core's messages in log.h. */
#ifndef DEPOT_ALLOC_ALLOC_API_H
#define DEPOT_ALLOC_ALLOC_API_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/badptr.h" /* depot_bad_pointer, for the runtime's checks */
#include "alloc/log.h"
#include "alloc/numa_policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Out-of-line calls of the inline fast paths depot_alloc and depot_free,
 * for callers that need a function (pointers, C++). */
void *depot_alloc_call(size_t size, unsigned domain);
void depot_free_call(void *p, unsigned domain);

void *depot_calloc(size_t n, size_t size, unsigned domain);
/* Resizes p (NULL: allocates).  size 0 resizes to a minimum block.  On
 * failure returns NULL and p stays valid with its contents. */
void *depot_realloc(void *p, size_t size, unsigned domain);
/* align: any power of two; otherwise NULL with errno = EINVAL. */
void *depot_aligned_alloc(size_t align, size_t size, unsigned domain);
/* Usable bytes of a live block (>= the size asked for), 0 if p is not one. */
size_t depot_usable_size(const void *p);
/* Nonzero if p is the address of a block in an in-use span or of a live huge
 * block.  Never faults, whatever p is. */
int depot_owns(const void *p);
/* NULL if p is the start of a live block; otherwise why not (e.g.
 * DEPOT_WHY_INTERIOR for an address inside a small or large block).  Never
 * faults. */
const char *depot_pointer_why(const void *p);
#define DEPOT_WHY_INTERIOR "not the start of a block"

/* Whether the block at p (a live block by depot_pointer_why) carries the
 * free key that Depot writes into freed blocks held by thread caches. */
int depot_block_freed(const void *p);

/* The domain a block of Depot's was allocated in, or -1. */
int depot_domain_of(const void *p);
/* For a small or large block of Depot's: the node whose pools it belongs to
 * and the node whose arena holds its memory (they differ only under
 * interleave); returns -1 for anything else. */
int depot_block_nodes(const void *p, unsigned *pool_node,
                      unsigned *memory_node);

/* Initialises Depot if needed.  Returns 0 or an errno value. */
int depot_init(void);
/* Whether depot_init() has completed. */
int depot_initialised(void);
/* Nonzero when the process has one thread (the C library says so): the
 * fork handlers, the core's (init.c) and the runtime's, then take no lock. */
int depot_fork_single_threaded(void);
/* Returns cached free memory: flushes the calling thread's cache, empties the
 * central pools into their spans and purges every arena. */
void depot_trim(void);
/* Flushes the calling thread's cache into the central pools. */
void depot_thread_flush(void);

/* Walks every structure of the core and checks the invariants its files
 * state (heapcheck.c); aborts with a message on the first violation, returns 0
 * otherwise.  Exact only at a quiescent point: no other thread inside
 * Depot (and so one call at a time).  Costs a walk of every segment: for
 * tests and tools. */
int depot_check_heap(void);

/* The NUMA placement in force (DEPOT_NUMA_OFF before any map is
 * installed). */
depot_numa_policy_t depot_core_numa_policy(void);

/* Frees block (checked as depot_free does) through the quarantine when it
 * is on (quarantine.h): the debug hooks' free, which knows where the
 * program's pointer was (user_off bytes into block), the size it asked for
 * and the block's serial number, for the report of a write after free. */
void depot_free_quarantined(void *block, unsigned domain, size_t user_off,
                            size_t size, uint64_t serial);

typedef struct {
  size_t os_mapped_bytes; /* reserved or committed through the OS layer */
  size_t segments;
  size_t free_pages, dirty_pages, purged_pages; /* arenas */
  size_t huge_blocks, huge_bytes;
  size_t meta_bytes;
  size_t batch_records;
  size_t nodes;                  /* NUMA nodes with arenas and pools */
  size_t binds_ok, binds_failed; /* segments bound to their node, or not */
  /* Memory control (limit.h, purger.h). */
  size_t held_bytes; /* memory held from the OS (upper bound) */
  size_t limit_bytes, limit_soft_bytes; /* in force; 0: no limit */
  size_t limit_hits;                    /* allocations refused at the limit */
  size_t limit_reclaims;                /* purges forced by the soft limit */
  size_t purger_running, purger_wakeups, purger_idle_reclaims;
  size_t idle_cache_flushes, idle_flushed_blocks; /* idle.h */
} depot_core_stats_t;
void depot_core_stats(depot_core_stats_t *out);

/* One NUMA node: its arena's segments and bind results, and its pools'
 * small spans and blocks out of them.  Returns -1 for a node that does not
 * exist (yet). */
typedef struct {
  size_t segments, free_pages, binds_ok, binds_failed;
  size_t small_spans, blocks_out;
} depot_node_stats_t;
int depot_core_node_stats(unsigned node, depot_node_stats_t *out);

/* One size class of one domain, summed over the nodes.  Blocks in use by the
 * program = out - stacked - cached; free blocks = capacity minus those. */
typedef struct {
  size_t spans;      /* spans serving the class */
  size_t span_bytes; /* bytes of those spans */
  size_t capacity;   /* blocks they hold in all */
  size_t out;        /* blocks carved out of them (in use or cached) */
  size_t stacked;    /* of those, on the central pools' stacks */
  size_t cached;     /* of those, in thread caches (bins, outboxes) and
                        owner heaps' inboxes (a snapshot) */
} depot_class_stats_t;
void depot_core_class_stats(unsigned domain, unsigned cls,
                            depot_class_stats_t *out);

/* Large (page-run) and huge (mapped) blocks of one domain. */
typedef struct {
  size_t large_blocks, large_bytes, huge_blocks, huge_bytes;
} depot_big_stats_t;
void depot_core_big_stats(unsigned domain, depot_big_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_ALLOC_API_H */
