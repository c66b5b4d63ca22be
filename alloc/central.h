/* central.h: central pools.  One pool per (NUMA node, domain, size class)
 * keeps
 *   - a lock-free stack of batches: chains of free blocks that thread caches
 *     push when they overflow and pop when they run dry, with no lock;
 *   - behind a mutex, the spans of its class that still have blocks to carve
 *     or that got blocks back ("partial" spans).
 * A thread cache only takes the mutex when the stack is empty (to carve new
 * blocks) or too deep (to give blocks back to their spans so that empty spans
 * can return to the arena).
 *
 * Batches are described by depot_batch_t records from one type-stable table
 * that is never unmapped: a popper may read the `next` field of a record that
 * another thread has just popped and reused, which is why `next` is atomic
 * and why the stack's top carries an ABA tag (see central.c). */
#ifndef DEPOT_ALLOC_CENTRAL_H
#define DEPOT_ALLOC_CENTRAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "alloc/arena.h"
#include "alloc/sizeclass.h"

typedef struct depot_batch {
  _Atomic uint64_t next; /* index of the next record on a stack or stash */
  void *head;            /* chain of blocks linked through their first word */
  uint32_t count;        /* blocks in the chain */
} depot_batch_t;

/* A thread's private spare records, linked through `next`. */
typedef struct {
  uint32_t head;
  uint32_t count;
} depot_batch_stash_t;

typedef struct depot_central {
  /* Lock-free part.  top: low 32 bits the index of the top record (0: empty),
   * high 32 bits a tag bumped on every change (ABA protection). */
  _Atomic uint64_t top depot_cache_aligned;
  _Atomic uint32_t depth;   /* records on the stack; approximate, relaxed */
  _Atomic uint64_t stacked; /* blocks in those records (statistics, relaxed) */
  /* Locked part. */
  pthread_mutex_t lock depot_cache_aligned;
  depot_span_t *partial; /* spans with blocks to hand out (lock) */
  uint16_t list_id;
  uint32_t spans;      /* spans owned by this pool (lock) */
  uint64_t blocks_out; /* sum of the spans' used counts (lock) */
  uint32_t max_depth;  /* records kept on the stack before blocks go back
                             to their spans; bounds the bytes a pool holds */
} depot_central_t;

/* The pools of every node, indexed by the low bits of a list id:
 * depot_central_table[node][(domain << 7) | class]. */
#define DEPOT_POOLS_PER_NODE (DEPOT_NDOMAINS << DEPOT_LIST_CLASS_BITS)
extern depot_central_t *depot_central_table[DEPOT_MAX_NODES];

static inline depot_central_t *depot_central_of(unsigned list_id) {
  return &depot_central_table[depot_list_node(list_id)]
                             [list_id & (DEPOT_LISTS_PER_NODE - 1)];
}

/* Sets up the batch record table.  Returns 0 or an errno value. */
int depot_central_global_init(void);

/* Creates the pools of one node; their spans come from the arena that
 * depot_numa_arena_for() names.  Returns 0 or an errno value.
 * REQUIRES: depot_sizeclass_init() has run. */
int depot_central_node_init(unsigned node);

/* Takes up to want (>= 1) blocks: a batch from the stack if there is one,
 * else blocks carved from partial spans.  Returns the count (0 when out of
 * memory) and the chain in *head, linked through the blocks' first word and
 * NULL-terminated.  *stash is the caller's private list of spare records: a
 * popped record is kept there. */
uint32_t depot_central_take(depot_central_t *c, uint32_t want, void **head,
                            depot_batch_stash_t *stash);

/* Gives back a NULL-terminated chain of count blocks of c's list id. */
void depot_central_give(depot_central_t *c, void *head, uint32_t count,
                        depot_batch_stash_t *stash);

/* Empties the stack into the spans and returns empty spans to the arena. */
void depot_central_drain(depot_central_t *c);

/* Returns every record of a private stash to the shared free list. */
void depot_central_stash_release(depot_batch_stash_t *stash);

/* A pool's statistics: spans, blocks they can hold, blocks out of them and
 * blocks of those sitting on the pool's stack. */
typedef struct {
  uint64_t spans, span_bytes, capacity, blocks_out, stacked;
} depot_central_stats_t;
void depot_central_stats(depot_central_t *c, depot_central_stats_t *out);

/* Without a thread cache (a thread that is exiting, or no metadata left for
 * one): one block to or from the pool of list id li. */
void *depot_central_alloc_one(unsigned li);
void depot_central_free_one(unsigned li, void *p);

/* Invariants.  A small span: its used count, free list and unhanded blocks
 * add up to what was carved; it is on its pool's partial list exactly when
 * it has blocks to hand out; the region's page table names its list.  A
 * pool (REQUIRES: its lock held and no thread inside its stack): spans and
 * blocks_out equal the counts of its spans found in the arenas (spans,
 * used), its partial list is well linked, and depth and stacked count the
 * records and blocks on its stack.  Abort on a violation. */
void depot_central_check_span(const depot_span_t *s);
void depot_central_check_locked(depot_central_t *c, uint64_t spans,
                                uint64_t used);
void depot_central_lock(depot_central_t *c);
void depot_central_unlock(depot_central_t *c);

/* Fork safety (init.c): every pool lock of a node. */
void depot_central_prefork(unsigned node);
void depot_central_postfork(unsigned node);

/* Records in the shared table in use or free (statistics). */
uint32_t depot_central_records(void);

#endif /* DEPOT_ALLOC_CENTRAL_H */
