/* tcache.h: per-thread caches.  Each thread owns one depot_tcache_t with a
 * free list ("bin") per (domain, size class) of its owner heap (central.h):
 * the heap of this thread on its NUMA node, whose spans no other thread
 * carves.  A cache hit in malloc pops a bin, a free of a block of the
 * thread's own heap pushes one: no lock, no atomic read-modify-write,
 * nothing shared.  Misses refill and overflows flush whole batches through
 * the heap's own pools.  A free of another owner's block (a remote free)
 * never reaches a bin, so a thread never hands out a block another thread
 * allocated (no passive false sharing): it waits in the outbox, bucketed by
 * list id, and is posted to the owner's pool a batch at a time.
 *
 * Bounded in bytes: each bin has a limit (blocks it may hold), and the sum of
 * limit * class size over all bins never exceeds the cache's budget.  Limits
 * start at zero, grow by a batch when a bin overflows, and shrink again when
 * another bin needs the room (slow-path bookkeeping only).
 *
 * Threads that have no cache yet point at depot_tcache_empty, whose bins are
 * empty with limit 0 and whose owner_base matches no page, so "no cache" costs
 * the fast paths nothing: it looks like a miss. */
#ifndef DEPOT_ALLOC_TCACHE_H
#define DEPOT_ALLOC_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/central.h"
#include "alloc/sizeclass.h"

/* A bin.  Invariant: blocks on the list == limit - room.  The fast paths
 * touch only head and room (free needs room > 0), so neither loads limit;
 * room goes negative when a refill brings more blocks than the limit. */
typedef struct {
  void *head;     /* blocks linked through their first word */
  int32_t room;   /* blocks free() may still push before flushing */
  uint32_t limit; /* most blocks the list may hold */
} depot_bin_t;

_Static_assert(sizeof(depot_bin_t) == 16, "the alloc fast path relies on it");

static inline uint32_t depot_bin_count(const depot_bin_t *b) {
  return (uint32_t)((int64_t)b->limit - b->room);
}

#define DEPOT_TCACHE_BINS DEPOT_POOLS_PER_OWNER

/* An outbox bucket: remote frees of one list id (so of one owner), linked
 * through their first word, posted to the owner's pool as one batch. */
#define DEPOT_OUTBOX_BUCKETS 32
typedef struct {
  void *head;
  uint32_t list_id; /* 0: unused */
  uint32_t count;
} depot_outbox_t;

typedef struct depot_tcache {
  /* Hot: every hit touches one bin, every free reads owner_base.  Bins come
   * first so that a bin's address is the cache's plus 16 * index. */
  depot_bin_t bins[DEPOT_TCACHE_BINS]; /* index (domain << 7) | class */
  uint32_t owner_base; /* owner id << DEPOT_LIST_OWNER_SHIFT; see free() */
  uint32_t node;
  /* Cold: slow paths only. */
  size_t budget;      /* most bytes the limits may add up to */
  size_t limit_bytes; /* sum of limit * class size over the bins */
  unsigned steal_cursor;
  depot_batch_stash_t stash;
  struct depot_tcache *next_free; /* recycled caches (registry lock) */
  struct depot_tcache *next_live, *prev_live; /* live caches (registry lock) */
  depot_owner_t *owner; /* the heap whose blocks the bins hold */
  /* Remote frees waiting to be posted to their owners (tcache.c). */
  depot_outbox_t outbox[DEPOT_OUTBOX_BUCKETS];
  uint32_t outbox_blocks;
  /* Idle-bin trimming (tcache.c, gc_tick): slow-path calls since the last
   * look at the clock, when the last pass ran, and a bit per bin set when
   * it ran dry (a refill) since then.  Owner only. */
  uint32_t gc_events;
  uint32_t gc_ms;
  uint64_t gc_dry[(DEPOT_TCACHE_BINS + 63) / 64];
} depot_tcache_t;
_Static_assert(offsetof(depot_tcache_t, bins) == 0, "see above");

/* Placeholders: a thread without a cache, and a thread whose cache has been
 * torn down at exit.  Both are never written. */
extern depot_hidden depot_tcache_t depot_tcache_empty, depot_tcache_dead;

/* The calling thread's cache (initial-exec TLS: one %fs-relative load). */
/* The TLS model: initial-exec by default (fast, but a library using it can
 * only be loaded at start-up or preloaded); the dlopen variant of
 * libdepot.so builds with DEPOT_TLS_MODEL="global-dynamic". */
#ifndef DEPOT_TLS_MODEL
#define DEPOT_TLS_MODEL "initial-exec"
#endif
extern __thread depot_tcache_t *depot_tls_tcache depot_hidden
    __attribute__((tls_model(DEPOT_TLS_MODEL)));

/* An owner_base that no page's list id minus a bin index can match. */
#define DEPOT_OWNER_BASE_NONE 0xFFFF0000u

/* The free key: written into the second word of every block a cache
 * holds, and compared on free: a block whose second word equals it may be
 * in the cache already (a double free; see depot_free).  A per-process
 * secret (getrandom), odd so that no pointer equals it; set by the core's
 * start-up (depot_tcache_init_key) before any cache exists. */
extern depot_hidden uintptr_t depot_free_key;
void depot_tcache_init_key(void);

/* Set at start-up while debug mode or the quarantine is on: bins never
 * grow, so every free and every allocation takes the slow path (which
 * routes them through the debug hooks and the quarantine). */
extern depot_hidden int depot_tcache_bypass;

/* A cache for a thread on node; NULL if no metadata memory is left. */
depot_tcache_t *depot_tcache_create(unsigned node, size_t budget);
/* Flushes every bin and recycles the cache. */
void depot_tcache_destroy(depot_tcache_t *tc);
/* Flushes every bin to the central pools (limits reset). */
void depot_tcache_flush_all(depot_tcache_t *tc);

/* Blocks of bin index i held by all live caches (bins and outboxes), for
 * statistics: a snapshot read without the owners' cooperation, exact only
 * when they are quiescent. */
uint64_t depot_tcache_cached_blocks(unsigned i);

/* Whether p is on the bin of class cls in domain d (a walk of the bin:
 * confirms a double free before it is reported). */
int depot_tcache_holds(const depot_tcache_t *tc, const void *p, unsigned d,
                       unsigned cls);

/* Checks a cache's invariants: every bin holds limit - room blocks, all of
 * its list id; bins of no class are empty; limit_bytes is the sum of
 * limit * class size.  REQUIRES: tc is the calling thread's cache (or its
 * thread is quiescent).  Aborts on a violation. */
void depot_tcache_check(const depot_tcache_t *tc);

/* Fork safety (init.c): the registry lock. */
void depot_tcache_prefork(void);
void depot_tcache_postfork(void);

/* A free of p, a small block of list id li whose owner is not tc's: into
 * the outbox, posted to the owner with others of its list id.  Returns 1,
 * and keeps nothing, if p waits in the outbox already (a double free). */
int depot_tcache_remote_free(depot_tcache_t *tc, void *p, unsigned li);

/* The thread moved to node: flushes the cache and takes an owner heap of
 * the new node (parking the old one). */
void depot_tcache_move(depot_tcache_t *tc, unsigned node);

/* Slow paths: the bin of class cls in domain d is empty (alloc) or full
 * (free).  alloc returns NULL when no memory is left. */
void *depot_tcache_alloc_slow(depot_tcache_t *tc, unsigned d, unsigned cls);
void depot_tcache_free_slow(depot_tcache_t *tc, void *p, unsigned d,
                            unsigned cls);

#endif /* DEPOT_ALLOC_TCACHE_H */
