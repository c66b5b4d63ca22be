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
  uint32_t list_id;
  uint32_t spans;      /* spans owned by this pool (lock) */
  uint64_t blocks_out; /* sum of the spans' used counts (lock) */
  /* Records kept on the stack before blocks go back to their spans; bounds
   * the bytes a pool holds.  0 until the pool is set up on first use (see
   * depot_central_ready): stored with release under the lock, after the
   * other fields, so a thread that reads it non-zero without the lock
   * (acquire) finds the pool set up. */
  _Atomic uint32_t max_depth;
} depot_central_t;

/* An owner heap: one pool per (domain, class), indexed by the low bits of
 * a list id, for the spans of one owner (span.h).  Owners 0 to
 * DEPOT_MAX_NODES - 1 are the nodes' shared heaps (threads without a cache
 * use them); every other owner is one thread's on one node: only that
 * thread's cache carves its spans and takes from its pools' stacks, and
 * other threads' frees of its blocks are posted to those stacks (its
 * "inbox").  When the thread ends its heap is parked whole for the next
 * thread of the node: its stacks are emptied into its spans, and while it
 * stays parked whatever is posted to it is too (depot_central_give), so
 * nothing is stranded.  (A heap whose thread sleeps with its cache flushed
 * is marked parked the same way, not listed: idle.c's park_heap.)  Owner
 * heaps are never freed (ids and memory are reused through parking). */
#define DEPOT_POOLS_PER_OWNER (DEPOT_NDOMAINS << DEPOT_LIST_CLASS_BITS)
/* A message in an owner's inbox: the last block of a chain of blocks of
 * one list id (linked through their first words), whose first word points
 * back to the chain's first block and whose second word links the
 * messages while it waits; a chain of more than one block keeps its
 * length in its first block's second word.  So the owner splices a chain
 * onto a bin without walking it.  Both second words take the place of the
 * free key (tcache.h), which the owner writes back. */
typedef struct depot_inbox_node {
  void *first;                             /* the chain's first block */
  _Atomic(struct depot_inbox_node *) link; /* the next message */
} depot_inbox_node_t;

/* Makes the chain head .. last (n blocks) a message. */
static inline depot_inbox_node_t *depot_inbox_message(void *head, void *last,
                                                      uint32_t n) {
  if (head != last) ((uintptr_t *)head)[1] = n;
  *(void **)last = head;
  return (depot_inbox_node_t *)last;
}

/* Opens message m, taken from an inbox: returns the chain's first block,
 * NULL-terminated again, with its length in *n. */
static inline void *depot_inbox_open(depot_inbox_node_t *m, uint32_t *n) {
  void *head = m->first;
  *n = head == (void *)m ? 1u : (uint32_t)((uintptr_t *)head)[1];
  m->first = NULL;
  return head;
}

typedef struct depot_owner {
  uint32_t id;
  uint32_t node;
  /* 1 while parked (always for a node's shared heap).  Sequentially
   * consistent with the inbox's posts (see
   * depot_inbox_post and depot_owner_park). */
  _Atomic int parked;
  struct depot_owner *next_parked; /* the node's parked heaps (owner lock) */
  /* The inbox (central.c): other threads' remote frees, a chain per
   * message, in a multi-producer queue (snmalloc's message queue, after
   * Vyukov): a post is one exchange of `back`; the messages are taken from
   * `front` with plain loads by whoever holds `draining` (the owner, on its
   * refill slow path; a poster or the parker when the heap is parked; the
   * idle flusher).  `stub` keeps the queue from ever being empty. */
  _Atomic(depot_inbox_node_t *) inbox_back depot_cache_aligned;
  _Atomic(depot_inbox_node_t *) inbox_front depot_cache_aligned;
  _Atomic uint32_t draining;
  depot_inbox_node_t stub;
  /* The pools, after the fields every heap writes at once (so that a heap
   * whose thread uses a few small classes touches one page for both, not
   * a page at each end of its 75 KiB), set up on first use. */
  depot_central_t pools[DEPOT_POOLS_PER_OWNER];
  /* Blocks of each of its lists waiting in the inbox, for statistics (free
   * blocks: cached, not in use).  Added before a post's exchange, taken
   * off as a drain takes the message, so never negative; relaxed.  A
   * message a fork child leaks stays counted. */
  _Atomic uint32_t inboxed[DEPOT_POOLS_PER_OWNER];
} depot_owner_t;

/* Every owner heap by id; an entry is stored (release) once, after its
 * pools are set up, and never changes. */
extern _Atomic(depot_owner_t *) depot_owners[DEPOT_MAX_OWNERS];

static inline depot_owner_t *depot_owner(unsigned id) {
  return depot_load_acquire(&depot_owners[id]);
}
/* Ids handed out so far: every owner is below (entries may still be NULL
 * while one is being set up, or if setting it up failed). */
unsigned depot_owner_limit(void);

static inline depot_central_t *depot_central_of(unsigned list_id) {
  return &depot_owner(depot_list_owner(list_id))
              ->pools[list_id & (DEPOT_LISTS_PER_OWNER - 1)];
}
/* The pool of list id li, set up if this is its first use: every heap's
 * pools are set up lazily (central.c), a thread heap's by its owner's
 * thread, a node's shared heap's by any thread that uses it (under the
 * pool's lock). */
void depot_central_ready_slow(depot_central_t *c, uint32_t list_id);
static inline depot_central_t *depot_central_ready(unsigned list_id) {
  depot_central_t *c = depot_central_of(list_id);
  if (__builtin_expect(depot_load_acquire(&c->max_depth) == 0, 0))
    depot_central_ready_slow(c, list_id);
  return c;
}

/* The node of a list id's owner: where its blocks go home to. */
static inline unsigned depot_list_node(unsigned list_id) {
  return depot_owner(depot_list_owner(list_id))->node;
}

/* An owner heap for a thread on node: a parked one of the node's, or a new
 * one; NULL when none can be made (ids or metadata used up: the thread then
 * uses the node's shared heap). */
depot_owner_t *depot_owner_take(unsigned node);
/* Returns every block waiting on o's pools' stacks and in its inbox to
 * their spans. */
void depot_owner_drain(depot_owner_t *o);

/* Posts message m (depot_inbox_message: a chain of blocks of one list id
 * of o's) to o's inbox: one exchange, no lock, and no atomic per block.  A parked heap's inbox is drained into its spans at
 * once, by the poster if no one else is draining it. */
void depot_inbox_post(depot_owner_t *o, depot_inbox_node_t *m);

/* Whether o's inbox may hold a message (a hint: plain loads, no atomic
 * read-modify-write; REQUIRES: the caller is o's thread). */
static inline int depot_inbox_ready(depot_owner_t *o) {
  depot_inbox_node_t *f =
      atomic_load_explicit(&o->inbox_front, memory_order_relaxed);
  return f != &o->stub ||
         atomic_load_explicit(&f->link, memory_order_relaxed) != NULL;
}

/* Takes the messages of o's inbox, passing each (its link cleared) to
 * take(ctx, message); returns 0 at once if another thread is draining it.
 * No atomic per message beyond the acquire loads of the links.  A parked
 * heap's inbox (a node's shared heap's) is drained again while a message
 * can be taken, so none waits for the next drain. */
typedef void depot_inbox_take_fn(void *ctx, depot_inbox_node_t *m);

/* Returns what o's inbox holds to its spans (any thread; nothing if
 * another thread is draining it). */
void depot_inbox_return(depot_owner_t *o);

/* The list id of a chain taken from an inbox, read from its first block's
 * span: small blocks may lie outside the region (segments mapped elsewhere
 * when the region could not be reserved, as under a low RLIMIT_AS), where
 * the page table says nothing.  One read per chain. */
static inline uint32_t depot_inbox_list_id(const void *chain) {
  uintptr_t a = (uintptr_t)chain;
  const depot_span_t *s =
      depot_load_relaxed(&depot_segment_base(a)->pagemap[depot_page_index(a)]);
  return s->list_id;
}
int depot_inbox_drain(depot_owner_t *o, depot_inbox_take_fn *take, void *ctx);
/* Parks o, whose thread ended or moved: REQUIRES its cache flushed. */
void depot_owner_park(depot_owner_t *o);

/* Sets up the batch record table.  Returns 0 or an errno value. */
int depot_central_global_init(void);

/* Creates the shared heap of one node (owner id = node); its spans, and
 * those of every owner heap of the node, come from the arena that
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

/* Fork safety (init.c): the owner lock; every pool lock of a node's
 * owners. */
void depot_owner_prefork(void);
/* Fork's child: no thread is draining an inbox any more (fork does not
 * take the try-lock; a message a lost thread was taking, or posting, is
 * leaked, never reused), and an inbox cut by a lost thread's post is
 * mended (its back set to the last node reachable from its front). */
void depot_owner_forked(void);
void depot_owner_postfork(void);
void depot_central_prefork(unsigned node);
void depot_central_postfork(unsigned node);

/* Records in the shared table in use or free (statistics). */
uint32_t depot_central_records(void);

#endif /* DEPOT_ALLOC_CENTRAL_H */
