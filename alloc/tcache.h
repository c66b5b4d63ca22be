/* tcache.h: per-thread caches.  Each thread owns one depot_tcache_t with a
 * free list ("bin") per (domain, size class) of its owner heap (central.h):
 * the heap of this thread on its NUMA node, whose spans no other thread
 * carves.  A cache hit in malloc pops a bin, a free of a block of the
 * thread's own heap pushes one: no lock, no atomic read-modify-write,
 * nothing shared.  Misses refill and overflows flush whole batches through
 * the heap's own pools.  A free of another owner's block (a remote free)
 * never reaches a bin, so a thread never hands out a block another thread
 * allocated (no passive false sharing): it waits in the outbox, bucketed by
 * list id, and is posted to the owner's inbox a bucket at a time (a batch
 * of its class, 16 KiB at most).
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
#include "alloc/region.h"
#include "alloc/sizeclass.h"

/* A bin.  Invariant: blocks on the list == limit - room.  The fast paths
 * touch only head and room (free decrements room and pushes only if the
 * result is >= 0 and the block does not carry the free key, else adds it
 * back), so neither loads limit; room goes negative when a refill brings
 * more blocks than the limit. */
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
 * through their first word, posted to the owner's inbox as one chain when
 * it is full: a batch of its class, 16 KiB at most (two blocks at least;
 * tcache.c, bucket_room).  room counts down from there; an unused bucket's
 * list id is DEPOT_OUTBOX_NONE, which no page's list id equals (0 would
 * match the pages of large blocks).  So an outbox holds at most
 * DEPOT_OUTBOX_BUCKETS full buckets (16 KiB each, 64 KiB for the classes
 * above 8 KiB). */
#define DEPOT_OUTBOX_BUCKETS 64
#define DEPOT_OUTBOX_NONE UINT32_MAX
typedef struct {
  void *head;
  uint32_t list_id;
  uint32_t room; /* blocks it may take before it is posted */
} depot_outbox_t;

/* Layout: what a thread writes when its cache is made, what every free
 * reads (owner_entry) and the outbox come first, the bins last, so that a
 * thread that uses the raw domain's classes only (malloc's) touches one
 * page of its cache (the struct starts on a page, meta.c): the raw
 * domain's 2 KiB of bins end within the first 4 KiB (checked below), the
 * mem and object domains' bins follow.  With the bins first (until
 * 2026-12-01), the fields after them were a second page: 78 KiB of memory
 * per thread in the suite's thread-rss probe, 74 now.  malloc folds the
 * bins' offset into its size rounding (alloc.h): no instruction added. */
typedef struct depot_tcache {
  /* Hot: every free reads owner_entry. */
  uint32_t owner_base; /* owner id << DEPOT_LIST_OWNER_SHIFT */
  /* What free() of domain d subtracts from a page's entry (region.h): the
   * entry of class 0 of domain d of the owner, (owner_base | d << 7) << 4,
   * so that the difference is the byte offset of the bin from domain d's
   * first bin, with no adjustment for the domain. */
  uint32_t owner_entry[DEPOT_NDOMAINS];
  uint32_t node;
  /* Cold: slow paths only. */
  size_t budget;      /* most bytes the limits may add up to */
  size_t limit_bytes; /* sum of limit * class size over the bins */
  unsigned steal_cursor;
  depot_batch_stash_t stash;
  struct depot_tcache *next_free; /* recycled caches (registry lock) */
  struct depot_tcache *next_live, *prev_live; /* live caches (registry lock) */
  /* Idle flushing (idle.h).  Set by the owner when it creates the cache,
   * before the cache is listed (registry lock): tls_slot, tid, sigmask0;
   * tid is cleared in a forked child for caches of threads that did not
   * come along. */
  struct depot_tcache **tls_slot; /* the owner's depot_tls_tcache */
  int32_t tid;                    /* the owner's thread id; 0: none */
  _Atomic uint32_t in_slow;       /* owner holds the cache in a slow path */
  _Atomic uint32_t slow_ms;       /* depot_os_now_ms at its last slow path */
  _Atomic uint32_t park;          /* DEPOT_PARK_*: a futex word */
  /* Signals the owner had blocked at creation and at every idle-bin pass
   * since (gc_pass: the intersection, so a signal it has unblocked since is
   * checked, and one it blocks for good is not).  Written by the owner,
   * read by a flusher: relaxed (a stale, larger mask only refuses less
   * until the next pass). */
  _Atomic uint64_t sigmask0;
  uint32_t flush_round; /* the flusher's last round that looked (registry) */
  /* 1: a flush marked the owner heap parked (idle.c, park_heap), for the
   * owner to clear when it takes the cache back.  Written by the flusher
   * while FLUSHING, read and cleared by the owner after (the park word's
   * release and acquire order them). */
  uint32_t heap_parked;
  depot_owner_t *owner; /* the heap whose blocks the bins hold */
  /* Idle-bin trimming (tcache.c, gc_tick): slow-path calls since the last
   * look at the clock, when the last pass ran, and a bit per bin set when
   * it ran dry (a refill) since then.  Owner only. */
  uint32_t gc_events;
  uint32_t gc_ms;
  uint64_t gc_dry[(DEPOT_TCACHE_BINS + 63) / 64];
  /* Remote frees waiting to be posted to their owners (tcache.c). */
  depot_outbox_t outbox[DEPOT_OUTBOX_BUCKETS];
  void *outbox_last[DEPOT_OUTBOX_BUCKETS]; /* each bucket's first block in */
  /* The last remote free the thread made, not yet checked for the free key
   * nor put into its bucket (NULL: none), and its list id.  Each remote
   * free settles the one before it and takes its place, so the key is read
   * from a block whose line was requested one remote free earlier
   * (prefetched when it came in), not from one that another core has
   * just written: in larson, where half the frees are remote, that load
   * stalled the free (86% of its samples on the key's branch), and
   * deferring it ran 0.86x the time (paired runs, 2026-12-02).  Owner
   * only, as the outbox (and a flusher when the cache is parked). */
  void *remote_pend;
  uint32_t remote_pend_li;
  /* Hot: every hit touches one bin. */
  depot_bin_t bins[DEPOT_TCACHE_BINS] /* index (domain << 7) | class */
      depot_cache_aligned;
} depot_tcache_t;
_Static_assert(offsetof(depot_tcache_t, bins) +
                       sizeof(depot_bin_t) * (1u << DEPOT_LIST_CLASS_BITS) <=
                   4096,
               "the raw domain's bins share the struct's first page");
_Static_assert(offsetof(depot_tcache_t, bins) % sizeof(depot_bin_t) == 0,
               "malloc folds the bins' offset into its 16-byte rounding");

/* A cache's park word (idle.h): the owner's (ACTIVE), swapped out of its
 * slot by a flusher (PARKED), or having its bins emptied by the flusher
 * (FLUSHING). */
enum { DEPOT_PARK_ACTIVE = 0, DEPOT_PARK_PARKED = 1, DEPOT_PARK_FLUSHING = 2 };

/* Placeholders: a thread without a cache, and a thread whose cache has been
 * torn down at exit.  Both are never written. */
extern depot_hidden depot_tcache_t depot_tcache_empty, depot_tcache_dead;

/* The calling thread's cache (initial-exec TLS: one %fs-relative load). */
/* (common.h's depot_tls: one TLS object with the profiler's countdown.) */
#define depot_tls_tcache (depot_tls.tcache)

/* The owner's read of its slot.  Another thread may swap the slot (idle.c
 * parks an idle thread's cache), so every access is atomic; a relaxed load
 * is the same single mov as a plain one.  Relaxed suffices: what a parked
 * slot means is read with acquire in the slow path (depot_idle_parked). */
static inline depot_tcache_t *depot_tls_cache(void) {
  return __atomic_load_n(&depot_tls_tcache, __ATOMIC_RELAXED);
}

/* ThreadSanitizer cannot see the ordering idle.c relies on (the kernel's
 * context switch of a thread blocked in a system call): in TSan builds the
 * fast paths announce their accesses with a release on the cache, which
 * the flusher acquires.  Nothing in any other build. */
#ifdef DEPOT_TSAN
void __tsan_release(void *addr);
void __tsan_acquire(void *addr);
#define depot_tsan_release(p) __tsan_release(p)
#define depot_tsan_acquire(p) __tsan_acquire(p)
#else
#define depot_tsan_release(p) ((void)0)
#define depot_tsan_acquire(p) ((void)0)
#endif

/* An owner_base that no page's list id minus a bin index can match, and an
 * owner_entry that no page's entry minus a bin's byte offset can match
 * (entries are below 2^29, so entry - NONE wraps to at least 0x10000,
 * beyond every bin). */
#define DEPOT_OWNER_BASE_NONE 0xFFFF0000u
_Static_assert((DEPOT_TCACHE_BINS << DEPOT_REGION_ENTRY_SHIFT) < 0x10000u,
               "DEPOT_OWNER_BASE_NONE never passes free's compare");

/* The free key: written into the second word of every block a cache
 * holds, and compared on free: a block whose second word equals it may be
 * in the cache already (a double free; see depot_free).  A per-process
 * secret (getrandom), odd so that no pointer equals it; set by the core's
 * start-up (depot_tcache_init_key) before any cache exists. */
extern depot_hidden uintptr_t depot_free_key;
void depot_tcache_init_key(void);

/* Set at start-up while debug mode or the quarantine is on: bins never
 * grow and outbox buckets are never used (each remote free is posted
 * alone), so every free and every allocation takes the slow path (which
 * routes them through the debug hooks and the quarantine). */
extern depot_hidden int depot_tcache_bypass;

/* A cache for a thread on node; NULL if no metadata memory is left. */
depot_tcache_t *depot_tcache_create(unsigned node, size_t budget);
/* Flushes every bin and recycles the cache. */
void depot_tcache_destroy(depot_tcache_t *tc);
/* Flushes every bin to the central pools (limits reset), posts the outbox
 * and returns the owner heap's inbox to its spans. */
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

/* The registry, for idle.c: its lock, and the first live cache (linked by
 * next_live).  REQUIRES for depot_tcache_live: the registry lock. */
void depot_tcache_registry_lock(void);
void depot_tcache_registry_unlock(void);
depot_tcache_t *depot_tcache_live(void);
/* A free of p, a small block of list id li whose owner is not tc's, that
 * the inline path (depot_tcache_remote_push) did not take: the pending
 * remote free is settled into the outbox and p becomes the pending one
 * (with depot_tcache_bypass, p is posted home alone at once).  A double
 * free seen on the way (p pending already, or a settled block that waits
 * in its bucket already) is reported as a bad pointer and the block kept
 * once.  REQUIRES: tc held by a slow path (depot_thread_cache). */
void depot_tcache_remote_free(depot_tcache_t *tc, void *p, unsigned li);

/* The outbox bucket of list id li: direct-mapped by a multiplicative
 * (Fibonacci) hash of the whole list id, so that the classes of a few
 * owners spread over the buckets (an xor of owner and class bits made
 * neighbouring owners collide class by class). */
_Static_assert(DEPOT_OUTBOX_BUCKETS == 64, "the hash keeps the top 6 bits");
static inline depot_outbox_t *depot_outbox_of(depot_tcache_t *tc, unsigned li) {
  return &tc->outbox[(uint32_t)(li * 0x9E3779B1u) >> 26];
}

/* The common case of a remote free, with no call: p lies on a page of list
 * id li (read from the page table: another owner's, or of another domain
 * than d, or 0 for a page of no small class), and li is a small list of
 * domain d (so another owner's, or free's compare would have taken it;
 * class 0 is no small list's).  p becomes the pending
 * remote free, and the one pending before it, q, goes into its bucket, if
 * q's bucket is its list id's (so a small list of another owner: the slow
 * path set the bucket up), q does not carry the free key, q is not p, and
 * the bucket does not fill up.  Returns 0 (nothing done) otherwise, and
 * the slow path settles q and takes p.  Straight code without a system
 * call, so the owner runs it on its cache without holding it, as a fast
 * path (idle.h), and announces itself to ThreadSanitizer as they do.  The
 * placeholder caches have nothing pending: a thread without a cache misses
 * here. */
static inline int depot_tcache_remote_push(depot_tcache_t *tc, void *p,
                                           unsigned li, unsigned d) {
  void *q = tc->remote_pend;
  unsigned qli = tc->remote_pend_li;
  depot_outbox_t *b = depot_outbox_of(tc, qli);
  if (__builtin_expect(q != NULL && q != p && b->list_id == qli &&
                           (li & (3u << DEPOT_LIST_DOMAIN_SHIFT)) ==
                               d << DEPOT_LIST_DOMAIN_SHIFT &&
                           (li & DEPOT_LIST_CLASS_MASK) != 0 &&
                           ((uintptr_t *)q)[1] != depot_free_key && b->room > 1,
                       1)) {
    ((uintptr_t *)q)[1] = depot_free_key;
    *(void **)q = b->head;
    b->head = q;
    b->room--;
    tc->remote_pend = p;
    tc->remote_pend_li = li;
    /* p's line, most likely written last by the thread that allocated p,
     * is on its way by the time the next remote free reads p's key. */
    __builtin_prefetch(p, 1);
    depot_tsan_release(tc);
    return 1;
  }
  /* Announced on a miss too: the bucket was read, and the miss may not
   * hold the cache (a large block's free takes no slow path of it) before
   * the thread blocks and a flusher posts the outbox. */
  depot_tsan_release(tc);
  return 0;
}

/* Makes the counts of the cache of a thread lost in a fork agree with its
 * lists again: the thread may have been anywhere in a fast path when the
 * child was copied (between a bin's room and its head, or an outbox
 * bucket's head and its room), and a flush trusts the counts.  Each list is
 * walked (a copy is a consistent prefix of the thread's stores: a store to
 * a page fork has write-protected waits for fork to end) and its count set
 * from it; the block caught in the middle, if any, is neither counted nor
 * listed (lost to the child, as the thread is).  REQUIRES: tc is no
 * running thread's (the fork child's flusher holds it: FLUSHING). */
void depot_tcache_recount(depot_tcache_t *tc);

/* Blocks waiting in tc's outbox (its owner's slow paths, or a flusher). */
uint32_t depot_tcache_outbox_blocks(const depot_tcache_t *tc);

/* The thread moved to node: flushes the cache and takes an owner heap of
 * the new node (parking the old one). */
void depot_tcache_move(depot_tcache_t *tc, unsigned node);

/* Slow paths: the bin of class cls in domain d is empty (alloc) or full
 * (free).  alloc returns NULL when no memory is left. */
void *depot_tcache_alloc_slow(depot_tcache_t *tc, unsigned d, unsigned cls);
void depot_tcache_free_slow(depot_tcache_t *tc, void *p, unsigned d,
                            unsigned cls);

#endif /* DEPOT_ALLOC_TCACHE_H */
