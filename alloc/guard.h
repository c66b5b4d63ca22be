/* guard.h: the guarded pool (guard_sample=N): about one allocation in N,
 * chosen at random, is served from a pool of slots, each a 16 KiB data area
 * between inaccessible guard pages.  The block sits at the end of its data
 * area (guard_underflow=overflow), at its start (underflow) or either
 * (both), so that running off it faults; when freed, its data area is made
 * inaccessible and stays so until the slot is reused (oldest freed first),
 * so that a use after free faults.  A fault in the pool, a double free or an
 * invalid free of a guarded block prints one report (kind, address, offset,
 * block size, the stacks that allocated and freed it) and ends the process
 * as a crash would.  A full pool (guard_slots live blocks) stops sampling
 * until one is freed.
 *
 * Sampling costs the cache-hit paths nothing: only allocations that reach
 * the slow path are candidates, and blocks a thread cache is refilled with
 * count towards the next sample (depot_guard_count), so the rate is about
 * one in N of the blocks that flow through the slow paths. */
#ifndef DEPOT_ALLOC_GUARD_H
#define DEPOT_ALLOC_GUARD_H

#include <stddef.h>

#include "alloc/common.h"

/* Nonzero when guard_sample > 0 (set once, at start-up, with release: a
 * thread that reads it with acquire, before its own depot_init, sees the
 * pool). */
extern depot_hidden _Atomic int depot_guard_armed;

/* Reads the options; called by the core's start-up. */
void depot_guard_init(void);

/* Whether the calling thread's next allocation is to be sampled (counts
 * it).  REQUIRES: depot_guard_armed. */
int depot_guard_due(void);
/* n blocks were handed to the calling thread's cache. */
void depot_guard_count(unsigned n);
/* guard_sample was changed at run time (only while the pool exists:
 * depot_guard_armed; the pool is made at start-up or never). */
void depot_guard_rate_changed(void);

/* A guarded block of size bytes in domain d, or NULL (too big for a slot,
 * pool full, pool not mappable). */
void *depot_guard_alloc(size_t size, unsigned domain);

/* Whether p lies in the pool (guard pages included).  Never faults. */
int depot_guard_contains(const void *p);
/* For p in the pool: 1 with *size and *domain if p is a live guarded
 * block, 0 otherwise. */
int depot_guard_lookup(const void *p, size_t *size, unsigned *domain);
/* Frees a live guarded block (depot_guard_lookup said so); reports an
 * overflow into the bytes after it that its page does not cover. */
void depot_guard_free(void *p);
/* Reports a free or realloc (op) of p, in the pool but no live block: a
 * double free or an invalid free.  Ends the process. */
__attribute__((noreturn)) void depot_guard_bad_free(const char *op,
                                                    const void *p);

/* Fork safety (init.c): the pool's lock. */
void depot_guard_prefork(void);
void depot_guard_postfork(void);

#endif /* DEPOT_ALLOC_GUARD_H */
