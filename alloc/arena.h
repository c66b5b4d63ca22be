/* arena.h: page arenas.  Each NUMA node has DEPOT_ARENA_SHARDS arenas
 * (shards, placement.h), each with its own lock.  An arena takes segments
 * from the heap region (region.h), or from address space it reserves itself
 * once the region is used up, and hands out spans (runs of pages) from them.
 * Free spans coalesce with free neighbours and wait on free lists by length
 * (free_lists[n] holds free spans of n pages; "bin" is only the thread
 * cache's word); their pages go back to the OS (purge) once they have been free
 * for the purge delay (checked whenever the arena hands out or takes back a
 * span), or at once on depot_arena_purge().
 *
 * Synchronisation: one mutex per arena guards everything below it.  Lock
 * order (alloc/README.md): a central pool's lock may be held while taking
 * an arena lock, never the other way round.
 *
 * Invariants (depot_arena_check_locked): free_pages and dirty_pages are the
 * sums over the free lists; every segment is tiled by spans; the page map
 * is exact on every page of an in-use span and on both ends of a free one;
 * no two free spans touch. */
#ifndef DEPOT_ALLOC_ARENA_H
#define DEPOT_ALLOC_ARENA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "alloc/span.h"

/* Largest span an arena can hand out: a whole segment less its header. */
#define DEPOT_SPAN_MAX_PAGES (DEPOT_SEGMENT_PAGES - DEPOT_SEGMENT_HEADER_PAGES)

/* Free lists by length: list n (1..DEPOT_ARENA_FREE_LISTS-1) holds free
 * spans of exactly n pages, list 0 those of DEPOT_ARENA_FREE_LISTS pages or
 * more. */
#define DEPOT_ARENA_FREE_LISTS 64

typedef struct depot_arena {
  pthread_mutex_t lock;
  unsigned node;
  size_t reserve_bytes;      /* size of each reservation beyond the region */
  uint32_t purge_delay_ms;   /* how long free pages stay resident */
  int purge_lazy;            /* MADV_FREE rather than MADV_DONTNEED */
  uint32_t next_purge_ms;    /* when the oldest dirty span falls due */
  int purge_pending;         /* some dirty span waits for next_purge_ms */
  char *res_cur, *res_end;   /* uncommitted rest of the last reservation */
  depot_segment_t *segments; /* every segment of this arena */
  depot_span_t *free_lists[DEPOT_ARENA_FREE_LISTS];
  int bind;        /* bind new segments to os_node */
  int bind_strict; /* a failed bind fails the segment */
  uint32_t os_node;
  size_t nsegments; /* statistics, all in the lock */
  size_t free_pages, dirty_pages, purged_pages;
  size_t binds_ok, binds_failed;
  /* Pages this arena counts in limit.h's held figure: every page of its
   * segments but the clean free ones (nsegments * DEPOT_SEGMENT_PAGES -
   * (free_pages - dirty_pages)) once each operation is over; growth is
   * charged before it happens.  Lock. */
  size_t held_pages;
  /* Spans handed out or taken back (the purger's sign of activity); written
   * in the lock, read without it.  Relaxed: a hint. */
  _Atomic uint64_t ops;
} depot_arena_t;

/* The purger's doorbell (purger.c sleeps on it when nothing is pending):
 * rung whenever an arena or the huge cache gets memory to purge, or hands
 * out a span.  Cheap when the purger is awake or absent: one relaxed load. */
extern _Atomic uint32_t depot_purge_bell; /* futex word, bumped to wake */
extern _Atomic int depot_purge_asleep;    /* the purger waits on the bell */
extern _Atomic int depot_purge_wanted;    /* memory to purge has appeared */
void depot_purge_ring(void);

/* REQUIRES: reserve_bytes is a multiple of DEPOT_SEGMENT_SIZE (>= 1 segment). */
void depot_arena_init(depot_arena_t *a, unsigned node, size_t reserve_bytes,
                      uint32_t purge_delay_ms, int purge_lazy);

/* Sets how new segments are bound to a NUMA node (see numa.h). */
void depot_arena_set_binding(depot_arena_t *a, int bind, uint32_t os_node,
                             int strict);

/* Set in the calling thread when alloc_span found its arena's lock held by
 * another thread; the shard choice (numa.c) reads and clears it. */
extern __thread unsigned char depot_arena_contended depot_hidden
    __attribute__((tls_model(DEPOT_TLS_MODEL)));

/* A span of npages (1..DEPOT_SPAN_MAX_PAGES) whose first page is aligned to
 * align_pages pages (a power of two), in the given state, with its pagemap
 * entries set; NULL if the OS refuses more memory.  Takes the arena lock. */
depot_span_t *depot_arena_alloc_span(depot_arena_t *a, size_t npages,
                                     size_t align_pages,
                                     depot_span_state_t state);
/* As depot_arena_alloc_span, but only from the arena's free spans: NULL,
 * with nothing charged or mapped, when none fits. */
depot_span_t *depot_arena_alloc_span_reuse(depot_arena_t *a, size_t npages,
                                           size_t align_pages,
                                           depot_span_state_t state);
/* As depot_arena_alloc_span (no alignment), but cut from the front of a
 * free span of room_pages (>= npages) or more when there is one, so that
 * the span can later grow in place (depot_arena_resize_span) into what
 * stays free behind it: for a block that grows by realloc. */
depot_span_t *depot_arena_alloc_span_room(depot_arena_t *a, size_t npages,
                                          size_t room_pages,
                                          depot_span_state_t state);

/* Resizes the in-use LARGE span s in place to npages: shrinking gives the
 * tail back; growing takes pages from a free span that follows it.  Returns
 * 0, or -1 (s unchanged) when the pages after it are not free. */
int depot_arena_resize_span(depot_arena_t *a, depot_span_t *s, size_t npages);

/* Returns an in-use span.  REQUIRES: its region page entries are 0. */
void depot_arena_free_span(depot_arena_t *a, depot_span_t *s);

/* Returns the pages of every free span to the OS, whatever their age. */
void depot_arena_purge(depot_arena_t *a);

/* Purges what has been free for the delay (everything free with force), at
 * most max_pages pages per holding of the lock (the lock is dropped between
 * rounds, so allocating threads never wait on a long purge).  Returns 1 and
 * the time the next dirty span falls due in *next_ms if one is pending,
 * else 0. */
int depot_arena_purge_due(depot_arena_t *a, size_t max_pages, int force,
                          uint32_t *next_ms);

/* Changes the purge delay (run time; takes the lock). */
void depot_arena_set_purge_delay(depot_arena_t *a, uint32_t purge_delay_ms);

typedef struct {
  size_t segments, free_pages, dirty_pages, purged_pages;
  size_t binds_ok, binds_failed;
} depot_arena_stats_t;
void depot_arena_stats(depot_arena_t *a, depot_arena_stats_t *out);

/* Checks the invariants above (REQUIRES: a's lock held) and calls fn, if
 * not NULL, with every span of every segment of a, free or in use, so that
 * the layers above can check what they own.  Aborts on a violation. */
typedef void (*depot_arena_span_fn)(const depot_span_t *s, void *ctx);
void depot_arena_check_locked(depot_arena_t *a, depot_arena_span_fn fn,
                              void *ctx);

#endif /* DEPOT_ALLOC_ARENA_H */
