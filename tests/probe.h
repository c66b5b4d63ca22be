/* probe.h: test-only views into the allocator core's internals, as plain C
 * functions that the C++ tests can call (the core's own headers use C11
 * atomics, which C++17 cannot include). */
#ifndef DEPOT_TESTS_PROBE_H
#define DEPOT_TESTS_PROBE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Pages a segment can hand out (a whole segment less its header). */
size_t probe_span_max_pages(void);
size_t probe_page_size(void);

/* depot_usable_size_fast(p), the fast path of malloc_usable_size. */
size_t probe_usable_size_fast(const void *p);
/* DEPOT_CHECK_LEVEL of the core's build. */
int probe_check_level(void);

/* The calling thread's cache: bytes held in its bins, the sum of its limits,
 * and its budget (all 0 if the thread has no cache). */
/* Frees p (a block that is not small: its page's entry is 0) through the
 * free fast path with the thread's owner_entry set to 0, as node 0's shared
 * heap has; 1 if the bins of no class stayed empty (tcache.h). */
int probe_free_as_node0_shared_owner(void *p);
/* Frees the region's last 8 bytes (garbage) as above: 0 if there was
 * nothing to test (no region, or its last page serves a small class). */
int probe_free_region_end_as_node0_shared_owner(void);
size_t probe_tcache_held_bytes(void);
size_t probe_tcache_limit_bytes(void);
size_t probe_tcache_budget(void);
/* Blocks waiting in the calling thread's outbox (remote frees not yet
 * posted to their owners). */
size_t probe_tcache_outbox_blocks(void);

/* The heap region: its base, the most bytes it may grow to, the bytes
 * mapped as segments so far; and whether p lies in those segments. */
void probe_region_bounds(size_t *base, size_t *size, size_t *used);
int probe_region_contains(const void *p);

/* depot_meta_alloc (alloc/meta.h): zeroed metadata, never freed. */
void *probe_meta_alloc(size_t size);
/* depot_os_other_live_threads and depot_os_read_small_file (alloc/os.h). */
int probe_other_live_threads(void);
long probe_read_small_file(const char *path, char *buf, size_t cap);
/* The state letter of thread tid of this process (the field after the
 * command's closing parenthesis in /proc/self/task/<tid>/stat), or 0 if
 * it cannot be read. */
char probe_thread_state(long tid);
/* The shard (numa.h) of the arena the calling thread's next span on node 0
 * comes from, or -1 (no node yet); and a contended arena lock noted for the
 * calling thread, as alloc_span notes one. */
int probe_thread_shard(void);
void probe_note_arena_contention(void);
/* Shards threads are spread over; shard 0's arena lock of node 0 taken or
 * released by the caller; a one-page span taken from the calling thread's
 * shard and given back (0, or -1 if none could be had). */
unsigned probe_shard_count(void);
void probe_hold_shard0_lock(int hold);
/* Whether a thread waits for shard 0's lock (glibc's futex word reads 2
 * once a locker has gone to sleep on it). */
int probe_shard0_lock_has_waiter(void);
int probe_span_from_own_shard(void);
/* The shard of node 0 whose arena holds the segment of p, or -1. */
int probe_block_shard(const void *p);

/* A private arena for unit tests of the page arena. */
typedef struct probe_arena probe_arena_t;
probe_arena_t *probe_arena_new(void);
/* Start address of a new span of npages aligned to align_pages, or NULL. */
void *probe_arena_alloc(probe_arena_t *a, size_t npages, size_t align_pages);
/* Frees the span starting at p. */
void probe_arena_free(probe_arena_t *a, void *p);
/* The address of the descriptor of the span that starts at p. */
const void *probe_span_descriptor(const void *p);
void probe_arena_purge(probe_arena_t *a);
/* Statistics and the number of free spans in the arena's bins. */
void probe_arena_stats(probe_arena_t *a, size_t *segments, size_t *free_pages,
                       size_t *dirty_pages, size_t *free_spans);

/* The central pool of node 0 for (domain, class), initialising the core if
 * needed and setting the pool up (pools are set up on first use); NULL if
 * it cannot be.  Tests own a pool only if nothing else in the
 * process allocates from that domain and class. */
typedef struct probe_pool probe_pool_t;
probe_pool_t *probe_pool(unsigned domain, unsigned cls);
/* A private list of spare batch records, as each thread cache keeps one. */
typedef struct probe_stash probe_stash_t;
probe_stash_t *probe_stash_new(void);
unsigned probe_stash_count(const probe_stash_t *s);
/* Hands the stash's records back to the shared table and frees it. */
void probe_stash_free(probe_stash_t *s);
/* The pool's take and give: chains linked through each block's first word,
 * NULL-terminated.  take returns the count (0: out of memory). */
unsigned probe_pool_take(probe_pool_t *p, unsigned want, void **head,
                         probe_stash_t *s);
void probe_pool_give(probe_pool_t *p, void *head, unsigned count,
                     probe_stash_t *s);
/* Empties the pool's stack into its spans; empty spans go to the arena. */
void probe_pool_drain(probe_pool_t *p);
typedef struct {
  size_t spans;      /* spans the pool owns */
  size_t capacity;   /* blocks they hold in all */
  size_t blocks_out; /* blocks carved out of them and not given back */
  size_t stacked;    /* of those, blocks in batches on the lock-free stack */
  size_t depth;      /* batches on the stack */
  size_t max_depth;  /* batches the stack keeps before blocks go to spans */
} probe_pool_stats_t;
void probe_pool_stats(probe_pool_t *p, probe_pool_stats_t *out);
/* Batch records ever taken from the shared table. */
size_t probe_batch_records(void);

/* Idle flushing (alloc/idle.h): its counters, and one round of it run from
 * the calling thread (returns whether a cache may be flushed later). */
typedef struct {
  unsigned long long parked, flushed, blocks, refused, orphans;
} probe_idle_stats_t;
void probe_idle_stats(probe_idle_stats_t *out);

/* An inbox cut as fork leaves it when a lost thread was between its
 * exchange and its link store: posts one message to a fresh owner heap,
 * cuts the queue behind it, runs the fork child's repair
 * (depot_owner_forked), posts another and drains; returns the messages the
 * drain took (2 once repaired) and parks the heap again. */
int probe_inbox_fork_cut(void);
int probe_idle_flush(unsigned idle_ms);
/* The calling thread's owner heap (NULL if it has none of its own), and
 * whether a heap is marked parked (its inbox drained as it is posted to). */
void *probe_own_heap(void);
int probe_heap_parked(void *heap);
/* Whether the calling thread's cache was parked by idle flushing (its slot
 * holds the placeholder, until its next slow path takes the cache back). */
int probe_own_cache_parked(void);

/* In a fork child: leaves the cache of every thread the child lost as the
 * fork can catch its thread in a free: each bin holding blocks with its
 * room one lower than its list (between the room's decrement and the
 * push); returns the bins changed. */
int probe_lost_caches_mid_free(void);
/* Thread heaps that are neither parked nor the owner of a listed cache
 * (their inboxes would never be drained), and parked heaps that a listed
 * cache owns (two threads would use them): 0 is the answer.  Takes every
 * parked heap (for a fork child that ends after it). */
int probe_unowned_heaps(void);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_TESTS_PROBE_H */
