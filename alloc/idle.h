/* idle.h: flushing the caches of idle threads.  Above tcache (it walks the
 * registry and empties bins), below init (whose slow-path entry to a cache
 * goes through depot_idle_enter and depot_idle_parked) and the purger
 * (which runs depot_idle_flush, as does the soft memory limit).
 *
 * A thread that allocated, freed and then blocked (a server waiting for
 * requests) keeps up to tcache_max_bytes of blocks in its cache, and those
 * blocks can pin whole spans.  Its cache is touched by its owner with plain
 * loads and stores, so another thread may empty it only when it knows that
 * the owner is not using it and cannot start to; signals are out (they make
 * the program's blocking calls return EINTR).  The protocol, argued in
 * idle.c:
 *   - the owner records, on its slow paths only, that it holds the cache
 *     (in_slow, set by depot_idle_enter and cleared by depot_idle_leave)
 *     and when it last took one (slow_ms, the coarse clock);
 *   - a flusher picks a cache whose owner took no slow path for idle_ms,
 *     checks through /proc that the owner is blocked in a system call,
 *     and swaps the owner's thread-local slot from the cache to
 *     depot_tcache_empty (PARKED): the owner's next malloc or free misses;
 *   - it checks again, after the swap, that the owner is blocked in a
 *     system call (a fast path makes none), has not run since before the
 *     swap, is not inside a slow path, and appears not to be in a signal
 *     handler; then (FLUSHING) it gives the bins to the central pools and
 *     leaves the cache PARKED.  If a check fails the bins stay as they are;
 *   - the owner's slow path finds depot_tcache_empty in its slot and its
 *     own cache parked: it waits out a flush in progress and takes the
 *     cache back (depot_idle_parked).
 * Without a readable /proc/<tid>/syscall nothing is flushed.  The caches
 * of threads that did not come along into a forked child have no owner
 * (tid 0): the flusher empties and recycles them. */
#ifndef DEPOT_ALLOC_IDLE_H
#define DEPOT_ALLOC_IDLE_H

#include <stdint.h>

#include "alloc/os.h"
#include "alloc/tcache.h"

/* The owner takes its cache in a slow path (REQUIRES: tc is the calling
 * thread's live cache).  Relaxed stores: a flusher reads them only after it
 * has seen the owner blocked in a system call, and the kernel's switch away
 * from the owner orders everything the owner wrote before it. */
static inline void depot_idle_enter(depot_tcache_t *tc) {
  depot_store_relaxed(&tc->in_slow, 1);
  depot_store_relaxed(&tc->slow_ms, depot_os_now_ms());
}

/* The owner takes its cache in a short slow path that is not activity
 * (posting its outbox): in_slow alone, without reading the clock.  Enough
 * for the protocol (idle.c, 3: the flag is set before anything that may
 * block); slow_ms only tells the flusher which caches are worth a look.
 * REQUIRES: tc was read from the thread's slot and is a live cache. */
static inline void depot_idle_hold(depot_tcache_t *tc) {
  depot_store_relaxed(&tc->in_slow, 1);
}

/* The owner no longer holds its cache (end of a slow path).  Release: what
 * the slow path wrote into the bins is ordered before a flusher's acquire
 * of in_slow (for ThreadSanitizer's sake; see depot_idle_enter). */
void depot_idle_leave(void);

/* The calling thread's own cache, parked by a flusher: waits for a flush in
 * progress, takes the cache back into the thread's slot and enters it
 * (depot_idle_enter).  NULL if the thread has no cache. */
depot_tcache_t *depot_idle_parked(void);

/* The owner's cache was just created (and entered): remembered as the
 * thread's own, and the purger is rung (the cache may fill and idle). */
void depot_idle_created(depot_tcache_t *tc);

/* The owner is exiting: takes its cache back for good (the slot becomes
 * depot_tcache_dead), waiting for a flush in progress. */
void depot_idle_exiting(depot_tcache_t *tc);

/* Fork's child, with the registry lock held (or a single-threaded parent):
 * the calling thread's cache (its own, or else the one listed with the
 * forking thread's id, forker) gets the child's thread id, every other
 * listed cache loses its owner, and its owner heap is marked parked. */
void depot_idle_forked(int32_t forker);

/* Flushes the caches of threads idle (no slow path) for idle_ms and blocked
 * in a system call, other than the caller's; empties and recycles caches
 * without an owner.  Returns 1 with *next set when a cache may be flushed
 * later (the purger then wakes up at *next), 0 when every cache is parked
 * and empty.  idle_ms 0: nothing, returns 0.  Takes the registry lock;
 * called without locks. */
int depot_idle_flush(uint32_t idle_ms, uint32_t *next);

typedef struct {
  uint64_t parked;  /* caches swapped out of their owner's slot */
  uint64_t flushed; /* of which emptied */
  uint64_t blocks;  /* blocks those flushes gave back */
  uint64_t refused; /* parked but left as they were (a check failed) */
  uint64_t orphans; /* caches of threads lost at fork, recycled */
} depot_idle_stats_t;
void depot_idle_stats(depot_idle_stats_t *out);

#endif /* DEPOT_ALLOC_IDLE_H */
