/* central.c: central pools (see central.h): the table of batch records,
 * the tagged lock-free stacks of records, carving blocks from spans and
 * putting them back. */
#include "alloc/central.h"

#include <errno.h>
#include <string.h>

#include "alloc/check.h"
#include "alloc/region.h"

#include "alloc/meta.h"
#include "alloc/numa.h"
#include "alloc/os.h"
#include "alloc/sizeclass.h"
#include "alloc/valgrind.h"

/* ---- the table of batch records ------------------------------------------
 * Index 0 means "none".  Records are never unmapped, so a stale index is
 * always safe to read through.  The table is reserved whole and committed by
 * the kernel page by page as records are first used. */
#define RECORD_CAPACITY ((uint32_t)1 << 20)
#define STASH_MAX 32u
#define POOL_MAX_BYTES ((size_t)512 * 1024)
_Static_assert(RECORD_CAPACITY - 1 <= UINT32_MAX,
               "record indices fit the low half of a stack's top word");

static depot_batch_t *records;
static _Atomic uint32_t records_used; /* bump index; relaxed (unique ids) */
static _Atomic uint64_t records_free; /* tagged stack of spare records */

int depot_central_global_init(void) {
  void *p;
  int err =
      depot_os_map((size_t)RECORD_CAPACITY * sizeof(depot_batch_t), 4096, &p);
  if (err) return err;
  records = p;
  depot_store_relaxed(&records_used, 1); /* skip index 0 */
  return 0;
}

static inline depot_batch_t *rec(uint32_t i) { return &records[i]; }

/* ---- tagged Treiber stack of record indices ------------------------------
 * Memory order:
 *   - push publishes the record's head and count (plain fields written
 *     before it) with a release CAS;
 *   - pop loads the top with acquire and swings it with an acq_rel CAS: the
 *     acquire half pairs with the push that published the record, so its
 *     head and count are visible; the release half keeps the relaxed read of
 *     the record's `next` before the CAS that hands the record to this
 *     thread (after which another thread may reuse and rewrite it).
 * The tag in the high half changes on every successful CAS, so a pop that
 * read `next` from a record which was popped, reused and pushed again in
 * between fails its CAS instead of installing a stale `next` (ABA).  32 bits
 * of tag would need 4 billion changes inside one pop's window to wrap. */
static inline uint64_t tag_next(uint64_t old, uint32_t idx) {
  return ((old >> 32) + 1) << 32 | idx;
}

static void tstack_push(_Atomic uint64_t *top, uint32_t idx) {
  depot_batch_t *b = rec(idx);
  uint64_t old = depot_load_relaxed(top);
  do {
    depot_store_relaxed(&b->next, (uint32_t)old);
  } while (!atomic_compare_exchange_weak_explicit(top, &old, tag_next(old, idx),
                                                  memory_order_release,
                                                  memory_order_relaxed));
}

static uint32_t tstack_pop(_Atomic uint64_t *top) {
  uint64_t old = depot_load_acquire(top);
  while ((uint32_t)old != 0) {
    /* May read a record another thread owns by now: `next` is atomic and
     * the CAS below fails if anything changed. */
    uint32_t next = (uint32_t)depot_load_relaxed(&rec((uint32_t)old)->next);
    if (depot_cas_weak_acq_rel(top, &old, tag_next(old, next)))
      return (uint32_t)old;
  }
  return 0;
}

static uint32_t record_alloc(depot_batch_stash_t *stash) {
  if (stash->head) {
    uint32_t i = stash->head;
    stash->head = (uint32_t)depot_load_relaxed(&rec(i)->next);
    stash->count--;
    return i;
  }
  uint32_t i = tstack_pop(&records_free);
  if (i) return i;
  /* A fresh one: the bump index stops at the table's end.  (A fetch-add
   * went on counting once the table was full, one per give that found no
   * record, and after 2^32 of them wrapped round and handed out records in
   * use: two stacks holding one record.) */
  i = depot_load_relaxed(&records_used);
  do {
    if (i >= RECORD_CAPACITY) return 0;
  } while (!atomic_compare_exchange_weak_explicit(
      &records_used, &i, i + 1, memory_order_relaxed, memory_order_relaxed));
  return i;
}

static void record_free(depot_batch_stash_t *stash, uint32_t i) {
  if (stash && stash->count < STASH_MAX) {
    depot_store_relaxed(&rec(i)->next, stash->head);
    stash->head = i;
    stash->count++;
    return;
  }
  tstack_push(&records_free, i);
}

void depot_central_stash_release(depot_batch_stash_t *stash) {
  while (stash->head) {
    uint32_t i = stash->head;
    stash->head = (uint32_t)depot_load_relaxed(&rec(i)->next);
    tstack_push(&records_free, i);
  }
  stash->count = 0;
}

uint32_t depot_central_records(void) {
  return depot_load_relaxed(&records_used) - 1;
}

/* ---- pools --------------------------------------------------------------- */

depot_sparse_bss _Atomic(depot_owner_t *) depot_owners[DEPOT_MAX_OWNERS];

/* Owner ids: the nodes' shared heaps are 0..DEPOT_MAX_NODES-1, thread heaps
 * are numbered from DEPOT_MAX_NODES.  The owner lock guards the parked
 * lists and owners_next (written under it; read relaxed by walks, which
 * find each heap through depot_owners); it takes the metadata lock. */
static _Atomic uint32_t owners_next = DEPOT_MAX_NODES;
static pthread_mutex_t owner_lock = PTHREAD_MUTEX_INITIALIZER;
static depot_owner_t *parked[DEPOT_MAX_NODES]; /* owner_lock */

unsigned depot_owner_limit(void) {
  uint32_t n = depot_load_relaxed(&owners_next);
  return n < DEPOT_MAX_OWNERS ? n : DEPOT_MAX_OWNERS;
}

static void central_fields(depot_central_t *c, uint32_t list_id) {
  c->list_id = list_id;
  unsigned cls = depot_list_class(list_id);
  size_t batch_bytes =
      (size_t)depot_class_info[cls].batch * depot_class_size[cls];
  size_t depth = POOL_MAX_BYTES / batch_bytes;
  /* A span's used count is 16 bits (span.h). */
  DEPOT_CHECK(depot_class_info[cls].capacity <= UINT16_MAX);
  /* Last, with release: the pool is set up (see depot_central_ready). */
  depot_store_release(&c->max_depth, (uint32_t)(depth < 4     ? 4
                                                : depth > 128 ? 128
                                                              : depth));
}

static void central_init(depot_central_t *c, uint32_t list_id) {
  pthread_mutex_init(&c->lock, NULL);
  central_fields(c, list_id);
}

void depot_central_ready_slow(depot_central_t *c, uint32_t list_id) {
  /* Under the lock: statistics and checks read the fields under it. */
  pthread_mutex_lock(&c->lock);
  if (depot_load_relaxed(&c->max_depth) == 0) central_fields(c, list_id);
  pthread_mutex_unlock(&c->lock);
}

/* Whether a zero-filled pthread mutex is an unlocked one (glibc's and
 * musl's PTHREAD_MUTEX_INITIALIZER are all zero bytes): then a heap's pools,
 * in zero-filled metadata, are set up on first use, so a thread, and a
 * node's shared heap, pay memory only for the pools they use (a heap is 384
 * pools of two lines: 48 KiB that a program using a few classes never
 * touches). */
static int zero_mutex_ok(void) {
  static const pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  static const char zero[sizeof m];
  return memcmp(&m, zero, sizeof m) == 0;
}

/* Sets up and publishes owner heap id of node; NULL without metadata.
 * Metadata memory is zero-filled, and stays so where nothing writes. */
static depot_owner_t *owner_new(uint32_t id, unsigned node) {
  depot_owner_t *o = depot_meta_alloc(sizeof *o);
  if (!o) return NULL;
  o->id = id;
  o->node = node;
  atomic_init(&o->inbox_back, &o->stub);
  atomic_init(&o->inbox_front, &o->stub);
  /* A node's shared heap counts as parked for good: the threads that use
   * it (those that could not get a heap of their own) may all end, so
   * what is posted to it goes back to its spans at once. */
  atomic_init(&o->parked, id < DEPOT_MAX_NODES);
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++)
    for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
      depot_central_t *c = &o->pools[(d << DEPOT_LIST_CLASS_BITS) | cls];
      if (!zero_mutex_ok()) central_init(c, depot_list_id(id, d, cls));
    }
  /* Release: whoever finds the heap through the table sees it set up. */
  depot_store_release(&depot_owners[id], o);
  return o;
}

int depot_central_node_init(unsigned node) {
  pthread_mutex_lock(&owner_lock);
  depot_owner_t *o = owner_new(node, node);
  pthread_mutex_unlock(&owner_lock);
  return o ? 0 : ENOMEM;
}

/* New heaps are made under the owner lock, so that the set of heaps does
 * not change while fork holds it (depot_central_prefork walks them). */
depot_owner_t *depot_owner_take(unsigned node) {
  pthread_mutex_lock(&owner_lock);
  depot_owner_t *o = parked[node];
  if (o) {
    parked[node] = o->next_parked;
    o->next_parked = NULL;
    /* From here posts stay in the inbox for the new thread (see
     * depot_inbox_post). */
    atomic_store_explicit(&o->parked, 0, memory_order_seq_cst);
  } else {
    uint32_t id = depot_load_relaxed(&owners_next);
    if (id < DEPOT_MAX_OWNERS && (o = owner_new(id, node)) != NULL)
      depot_store_relaxed(&owners_next, id + 1);
  }
  pthread_mutex_unlock(&owner_lock);
  return o;
}

static void return_to_spans(depot_central_t *c, void *head, const void *node);

/* ---- inboxes ----------------------------------------------------------------
 * Vyukov's intrusive multi-producer queue, as snmalloc's remote queue.
 * Producers: link := NULL, prev := exchange(back, node), prev->link :=
 * node.  The consumer (whoever holds `draining`) walks from front: a node
 * whose link is set can be taken (no producer touches it again); the last
 * node can be taken only once another node follows it, so the stub is
 * posted behind it.  Between a producer's exchange and its link store the
 * queue looks cut there: the consumer stops and the rest waits for the
 * next drain.
 * Memory order: the exchange is acq_rel (release: the chain's links and
 * the node's NULL link are written before; acquire: prev's NULL link is
 * read-before our store to it); the link store is sequentially consistent
 * (see depot_inbox_post); the consumer's loads of links are acquire, so
 * a chain's contents are visible when its node is taken. */
static void inbox_push(depot_owner_t *o, depot_inbox_node_t *n) {
  atomic_store_explicit(&n->link, NULL, memory_order_relaxed);
  depot_inbox_node_t *prev =
      atomic_exchange_explicit(&o->inbox_back, n, memory_order_acq_rel);
  atomic_store_explicit(&prev->link, n, memory_order_seq_cst);
}

/* Counts message m's blocks in or out of o's inboxed (statistics): its
 * length is in its first block unless it is one block. */
static void inbox_count(depot_owner_t *o, const depot_inbox_node_t *m, int in) {
  uint32_t n = m->first == m ? 1u : (uint32_t)((uintptr_t *)m->first)[1];
  _Atomic uint32_t *c =
      &o->inboxed[depot_inbox_list_id(m) & (DEPOT_LISTS_PER_OWNER - 1)];
  if (in) depot_add_relaxed(c, n);
  else depot_sub_relaxed(c, n);
}

/* The next message, or NULL (empty, or cut by a producer); holds
 * `draining`. */
static depot_inbox_node_t *inbox_pop(depot_owner_t *o) {
  depot_inbox_node_t *t =
      atomic_load_explicit(&o->inbox_front, memory_order_relaxed);
  depot_inbox_node_t *next =
      atomic_load_explicit(&t->link, memory_order_acquire);
  if (t == &o->stub) { /* skip the stub */
    if (!next) return NULL;
    t = next;
    next = atomic_load_explicit(&t->link, memory_order_acquire);
  }
  if (!next) {
    /* t is the last node: post the stub behind it, unless a producer is
     * between its exchange and its link store (then back is past t). */
    if (t != atomic_load_explicit(&o->inbox_back, memory_order_acquire)) {
      atomic_store_explicit(&o->inbox_front, t, memory_order_relaxed);
      return NULL;
    }
    inbox_push(o, &o->stub);
    next = atomic_load_explicit(&t->link, memory_order_acquire);
    if (!next) {
      atomic_store_explicit(&o->inbox_front, t, memory_order_relaxed);
      return NULL;
    }
  }
  atomic_store_explicit(&o->inbox_front, next, memory_order_relaxed);
  return t;
}

/* One pass of a drain: 0 at once if another thread holds `draining`. */
static int inbox_drain_once(depot_owner_t *o, depot_inbox_take_fn *take,
                            void *ctx) {
  /* The Dekker pairs (depot_inbox_post with depot_owner_park, and with
   * drain_parked) need the consumer's reads of the links to follow its
   * sequentially consistent store (of `parked`, or of `draining`) in the
   * single total order; inbox_pop's loads are only acquire, which C11 lets
   * read an older value (x86 and AArch64 do not), so a full fence first. */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_exchange_explicit(&o->draining, 1, memory_order_seq_cst)) return 0;
  depot_inbox_node_t *m;
  while ((m = inbox_pop(o)) != NULL) {
    atomic_store_explicit(&m->link, NULL, memory_order_relaxed);
    inbox_count(o, m, 0);
    take(ctx, m);
  }
  /* Sequentially consistent: see depot_inbox_post. */
  atomic_store_explicit(&o->draining, 0, memory_order_seq_cst);
  return 1;
}

static int inbox_poppable(depot_owner_t *o);

/* A parked heap (a node's shared heap is always parked) is drained again
 * while a message can be taken: a poster that found `draining` held during
 * the pass left its message to this drain (see drain_parked). */
int depot_inbox_drain(depot_owner_t *o, depot_inbox_take_fn *take, void *ctx) {
  if (!inbox_drain_once(o, take, ctx)) return 0;
  while (atomic_load_explicit(&o->parked, memory_order_seq_cst) &&
         inbox_poppable(o) && inbox_drain_once(o, take, ctx)) {
  }
  return 1;
}

/* Returns a message's chain to its pool's spans (any thread). */
static void to_spans(void *ctx, depot_inbox_node_t *m) {
  (void)ctx;
  uint32_t n;
  unsigned li = depot_inbox_list_id(m);
  return_to_spans(depot_central_of(li), depot_inbox_open(m, &n), m);
}

/* Whether a drain would take a message now (any thread; sequentially
 * consistent loads, see drain_parked).  A queue cut by a producer between
 * its exchange and its link store is not: that producer looks at `parked`
 * after its link store. */
static int inbox_poppable(depot_owner_t *o) {
  depot_inbox_node_t *f =
      atomic_load_explicit(&o->inbox_front, memory_order_seq_cst);
  if (atomic_load_explicit(&f->link, memory_order_seq_cst)) return 1;
  return f != &o->stub &&
         atomic_load_explicit(&o->inbox_back, memory_order_seq_cst) == f;
}

/* Drains a heap's inbox into its spans (the heap is parked, or its cache
 * is being flushed), again while the heap stays parked and a message can
 * be taken after `draining` was released: a poster that found `draining`
 * held left its message to the holder.  (Its link store and its failed
 * exchange of `draining` precede the holder's release, and that the
 * holder's loads here, in the single order of sequentially consistent
 * operations.)  A heap a thread took meanwhile (`parked` cleared, also
 * sequentially consistent) is left to its new owner, which drains on its
 * refills: its blocks go to its bins, not back to the spans, and a poster
 * does not go on draining for another owner as long as others post.
 * Returns at once if another thread holds `draining`: that thread looks
 * again itself, or is the heap's new owner. */
static void drain_parked(depot_owner_t *o) {
  while (inbox_drain_once(o, to_spans, NULL) &&
         atomic_load_explicit(&o->parked, memory_order_seq_cst) &&
         inbox_poppable(o)) {
  }
}

void depot_inbox_return(depot_owner_t *o) { drain_parked(o); }

/* The post and the parking are a Dekker pair: the poster's link store
 * then its load of `parked`, the parker's store of `parked` then its
 * drain, all sequentially consistent; so either the poster sees the heap
 * parked (and drains it) or the parker's drain sees the post linked.  A
 * poster that finds another thread draining leaves it to that thread,
 * which looks again after releasing `draining` (drain_parked). */
void depot_inbox_post(depot_owner_t *o, depot_inbox_node_t *m) {
  inbox_count(o, m, 1); /* before the exchange publishes m */
  inbox_push(o, m);
  if (depot_unlikely(atomic_load_explicit(&o->parked, memory_order_seq_cst)))
    drain_parked(o);
}

void depot_owner_drain(depot_owner_t *o) {
  for (unsigned i = 0; i < DEPOT_POOLS_PER_OWNER; i++)
    if (depot_list_class(i) != 0 && depot_list_class(i) < DEPOT_NCLASSES)
      depot_central_drain(&o->pools[i]);
  drain_parked(o);
}

void depot_owner_park(depot_owner_t *o) {
  /* Dekker with depot_inbox_post: it links its message, then reads
   * `parked`; this sets `parked`, then drains the inbox.  Both sequentially
   * consistent, so either the poster sees the heap parked (and drains it
   * itself) or the drain below sees its message.  Only the owner pushes on
   * the stacks, and it has flushed. */
  atomic_store_explicit(&o->parked, 1, memory_order_seq_cst);
  depot_owner_drain(o);
  pthread_mutex_lock(&owner_lock);
  o->next_parked = parked[o->node];
  parked[o->node] = o;
  pthread_mutex_unlock(&owner_lock);
}

void depot_owner_prefork(void) { pthread_mutex_lock(&owner_lock); }

/* A thread lost in the fork may have been between its exchange of
 * inbox_back and its link store (a poster, or a drainer posting the stub):
 * the queue is cut there for good, since no one will store that link, and
 * every later post would link behind the cut, out of the consumer's reach.
 * The child is single-threaded here: back is set to the last node reachable
 * from front, and the cut-off tail (the lost thread's one message, or the
 * stub, which a drain posts again) is leaked: one chain per heap at most. */
static void inbox_repair(depot_owner_t *o) {
  depot_inbox_node_t *last = depot_load_relaxed(&o->inbox_front), *next;
  while ((next = depot_load_relaxed(&last->link)) != NULL) last = next;
  if (last != depot_load_relaxed(&o->inbox_back))
    depot_store_relaxed(&o->inbox_back, last);
}

void depot_owner_forked(void) {
  unsigned limit = depot_owner_limit();
  for (unsigned id = 0; id < limit; id++) {
    depot_owner_t *o = depot_owner(id);
    if (!o) continue;
    depot_store_relaxed(&o->draining, 0);
    inbox_repair(o);
  }
}
void depot_owner_postfork(void) { pthread_mutex_unlock(&owner_lock); }

static void partial_link(depot_central_t *c, depot_span_t *s) {
  s->prev = NULL;
  s->next = c->partial;
  if (c->partial) c->partial->prev = s;
  c->partial = s;
  s->in_partial = 1;
}

static void partial_unlink(depot_central_t *c, depot_span_t *s) {
  if (s->prev) s->prev->next = s->next;
  else c->partial = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->in_partial = 0;
}

/* A fresh span for the pool (pool lock held). */
static depot_span_t *span_new(depot_central_t *c) {
  unsigned cls = depot_list_class(c->list_id);
  const depot_class_info_t *ci = &depot_class_info[cls];
  depot_span_t *s =
      depot_numa_alloc_span(depot_numa_arena_for(depot_list_node(c->list_id)),
                            ci->span_pages, 1, DEPOT_SPAN_SMALL);
  if (!s) return NULL;
  s->block_size = depot_class_size[cls];
  s->list_id = c->list_id;
  s->domain = (uint8_t)depot_list_domain(c->list_id);
  s->bump = depot_span_start(s);
  s->bump_end = s->bump + (size_t)ci->capacity * s->block_size;
  /* Under Valgrind: forget what the pages held before (other blocks). */
  DEPOT_VG_FORGET(s->bump, (size_t)s->npages << DEPOT_PAGE_SHIFT);
  /* The page table entries are what free() reads; they must be set before
   * any block of the span leaves this pool (the pool lock orders them). */
  depot_region_set_list_id(s->bump, s->npages, c->list_id);
  partial_link(c, s);
  c->spans++;
  return s;
}

/* Fresh (never handed out) blocks a refill takes: those that start in the
 * OS page holding the span's bump cursor (at least one), up to the batch.
 * So a refill writes into one page of fresh memory (and, for a block that
 * starts in it and runs on, the pages that block spans), whatever the
 * batch size: a program that uses one block of many classes pays a page
 * per class, not a batch, and a (thread, class) heap's resident memory
 * follows its high-water mark to the page (mimalloc extends a page's free
 * list the same way).  Reaching ahead saves refills but costs memory: up
 * to three pages ahead (as far again as the span had handed out) cost
 * histo-lifo 240 KiB of its 5.5 MiB peak, small-thread 340 KiB, xfree-lifo
 * 1 MiB and each thread-rss thread 8 KiB (86 against 78), and saved no
 * time (paired runs without it, 2026-11-30: mstress 0.96x, larson 1.00x,
 * xmalloc 0.99x); a whole batch ahead (up to 64 KiB) cost more. */
#define FRESH_BYTES ((uintptr_t)4096)

/* Takes up to want blocks from the partial spans (lock held): first blocks
 * returned to a span, then at most one run of fresh blocks, which is only
 * cut here, not linked (the caller links it after dropping the lock, so
 * that faulting its pages in holds no lock).  Returns the count of blocks
 * on the chain *out (NULL-terminated) and sets *fresh and *nfresh. */
static uint32_t carve_locked(depot_central_t *c, uint32_t want, void **out,
                             char **fresh, uint32_t *nfresh, uint32_t *size) {
  void *head = NULL, **tail = &head;
  uint32_t n = 0, k = 0;
  *fresh = NULL;
  while (n < want) {
    depot_span_t *s = c->partial;
    if (!s && !(s = span_new(c))) break;
    while (n < want && s->free) {
      void *b = s->free;
      s->free = *(void **)b;
      *tail = b;
      tail = (void **)b;
      n++;
      s->used++;
    }
    if (n < want && s->bump < s->bump_end) {
      /* The blocks that start in the OS page holding the cursor (see
       * FRESH_BYTES): at least the one at the cursor. */
      uintptr_t b = (uintptr_t)s->bump;
      uintptr_t page_end = (b | (FRESH_BYTES - 1)) + 1;
      k = (uint32_t)((page_end - b + s->block_size - 1) / s->block_size);
      uint32_t left =
          (uint32_t)((uintptr_t)(s->bump_end - s->bump) / s->block_size);
      if (k > left) k = left;
      if (k > want - n) k = want - n;
      *fresh = s->bump;
      *size = s->block_size;
      s->bump += (size_t)k * s->block_size;
      s->used += k;
    }
    if (!s->free && s->bump >= s->bump_end) partial_unlink(c, s);
    if (k) break; /* one fresh run per refill */
  }
  c->blocks_out += n + k;
  DEPOT_CHECK_INTERNAL(n + k <= want);
  *tail = NULL;
  *out = head;
  *nfresh = k;
  return n;
}

static uint32_t carve(depot_central_t *c, uint32_t want, void **out) {
  char *fresh;
  uint32_t nfresh, size = 0;
  pthread_mutex_lock(&c->lock);
  uint32_t n = carve_locked(c, want, out, &fresh, &nfresh, &size);
  pthread_mutex_unlock(&c->lock);
  if (nfresh) {
    /* Links the fresh run in front of the chain: its blocks are this
     * thread's alone now (they left the span under the lock). */
    char *b = fresh;
    for (uint32_t k = 1; k < nfresh; k++, b += size) *(void **)b = b + size;
    *(void **)b = *out;
    *out = fresh;
  }
  return n + nfresh;
}

/* Puts blocks back into their spans; empty spans go back to the arena.
 * node: the message the chain came in (to_spans), or NULL. */
static void return_to_spans(depot_central_t *c, void *head, const void *node) {
  depot_span_t *empty = NULL;
  pthread_mutex_lock(&c->lock);
  while (head) {
    void *b = head;
    head = *(void **)b;
    depot_segment_t *seg = depot_segment_base((uintptr_t)b);
    depot_span_t *s =
        depot_load_relaxed(&seg->pagemap[depot_page_index((uintptr_t)b)]);
    /* A block in the wrong pool would corrupt another pool's counts. */
    DEPOT_CHECK(s->state == DEPOT_SPAN_SMALL && s->list_id == c->list_id &&
                s->used > 0);
    *(void **)b = s->free;
    /* The free key off (tcache.h): on its span's list a block is no longer
     * free in a cache, and an emptied span's memory takes no key into its
     * next use, where a program's copy of it would make a free be taken
     * for a double free (alloc.c's free_full).  The line is written
     * anyway.  But a message's last block (central.h), whose second word
     * is its link (NULL since the drain took it, not the key), which a
     * poster may still read, as a hint, after that (inbox_poppable): no
     * plain store to it. */
    if (b != node) ((uintptr_t *)b)[1] = 0;
    s->free = b;
    c->blocks_out--;
    if (--s->used == 0) {
      if (s->in_partial) partial_unlink(c, s);
      s->next = empty;
      empty = s;
      c->spans--;
    } else if (!s->in_partial) {
      partial_link(c, s);
    }
  }
  pthread_mutex_unlock(&c->lock);
  while (empty) {
    depot_span_t *s = empty;
    empty = s->next;
    depot_region_set_list_id(depot_span_start(s), s->npages, 0);
    /* Back to the arena it came from (under interleave, not c's own). */
    depot_arena_free_span(depot_segment_base((uintptr_t)s)->arena, s);
  }
}

uint32_t depot_central_take(depot_central_t *c, uint32_t want, void **head,
                            depot_batch_stash_t *stash) {
  uint32_t i = tstack_pop(&c->top);
  if (i) {
    depot_sub_relaxed(&c->depth, 1);
    depot_batch_t *b = rec(i);
    *head = b->head;
    uint32_t n = b->count;
    depot_sub_relaxed(&c->stacked, n);
    record_free(stash, i);
    return n;
  }
  return carve(c, want, head);
}

void depot_central_give(depot_central_t *c, void *head, uint32_t count,
                        depot_batch_stash_t *stash) {
  if (depot_load_relaxed(&c->depth) < depot_load_relaxed(&c->max_depth)) {
    uint32_t i = record_alloc(stash);
    if (i) {
      depot_batch_t *b = rec(i);
      b->head = head;
      b->count = count;
      depot_add_relaxed(&c->stacked, count);
      tstack_push(&c->top, i);
      depot_add_relaxed(&c->depth, 1);
      return;
    }
  }
  return_to_spans(c, head, NULL);
}

void depot_central_drain(depot_central_t *c) {
  uint32_t i;
  while ((i = tstack_pop(&c->top)) != 0) {
    depot_sub_relaxed(&c->depth, 1);
    depot_sub_relaxed(&c->stacked, rec(i)->count);
    void *head = rec(i)->head;
    record_free(NULL, i);
    return_to_spans(c, head, NULL);
  }
}

void depot_central_stats(depot_central_t *c, depot_central_stats_t *out) {
  pthread_mutex_lock(&c->lock);
  unsigned cls = depot_list_class(c->list_id); /* 0: never used */
  out->spans = c->spans;
  out->span_bytes =
      (uint64_t)c->spans * depot_class_info[cls].span_pages * DEPOT_PAGE_SIZE;
  out->capacity = (uint64_t)c->spans * depot_class_info[cls].capacity;
  out->blocks_out = c->blocks_out;
  pthread_mutex_unlock(&c->lock);
  out->stacked = depot_load_relaxed(&c->stacked);
}

/* Every pool lock of every owner of node, owners ascending. */
static void pools_of_node(unsigned node, int lock) {
  unsigned limit = depot_owner_limit();
  for (unsigned id = 0; id < limit; id++) {
    depot_owner_t *o = depot_owner(id);
    if (!o || o->node != node) continue;
    for (unsigned i = 0; i < DEPOT_POOLS_PER_OWNER; i++)
      if (depot_list_class(i) != 0 && depot_list_class(i) < DEPOT_NCLASSES) {
        if (lock) pthread_mutex_lock(&o->pools[i].lock);
        else pthread_mutex_unlock(&o->pools[i].lock);
      }
  }
}

void depot_central_prefork(unsigned node) { pools_of_node(node, 1); }
void depot_central_postfork(unsigned node) { pools_of_node(node, 0); }

/* ---- without a thread cache ----------------------------------------------- */

void *depot_central_alloc_one(unsigned li) {
  depot_batch_stash_t stash = {0, 0};
  depot_central_t *c = depot_central_ready(li);
  void *head;
  uint32_t n = depot_central_take(c, 1, &head, &stash);
  if (n > 1) depot_central_give(c, *(void **)head, n - 1, &stash);
  depot_central_stash_release(&stash);
  return n ? head : NULL;
}

void depot_central_free_one(unsigned li, void *p) {
  /* Straight to the span: the pool may be a parked heap's, whose stacks
   * nobody takes from. */
  *(void **)p = NULL;
  return_to_spans(depot_central_of(li), p, NULL);
}

/* ---- invariants ------------------------------------------------------------ */

/* Length of a chain of blocks, each checked to lie in a small span of list
 * id li; at most limit links are followed (a cycle fails the check). */
static uint64_t chain_length(void *head, unsigned li, uint64_t limit) {
  uint64_t n = 0;
  for (void *b = head; b; b = *(void **)b) {
    DEPOT_CHECK(++n <= limit);
    depot_segment_t *seg = depot_segment_base((uintptr_t)b);
    DEPOT_CHECK(depot_segmap_test((uintptr_t)b));
    depot_span_t *s =
        depot_load_relaxed(&seg->pagemap[depot_page_index((uintptr_t)b)]);
    DEPOT_CHECK(depot_span_covers(s, depot_page_index((uintptr_t)b)) &&
                s->state == DEPOT_SPAN_SMALL && s->list_id == li);
    DEPOT_CHECK((size_t)((char *)b - depot_span_start(s)) % s->block_size == 0);
  }
  return n;
}

void depot_central_check_span(const depot_span_t *s) {
  const depot_class_info_t *ci =
      &depot_class_info[depot_list_class(s->list_id)];
  char *start = depot_span_start(s);
  DEPOT_CHECK(s->block_size == depot_class_size[depot_list_class(s->list_id)]);
  DEPOT_CHECK(s->npages == ci->span_pages);
  DEPOT_CHECK(s->bump >= start && s->bump <= s->bump_end &&
              s->bump_end == start + (size_t)ci->capacity * s->block_size);
  /* Every block is out, on the span's free list, or not carved yet. */
  uint64_t carved = (uint64_t)(s->bump - start) / s->block_size;
  uint64_t on_list = chain_length(s->free, s->list_id, ci->capacity);
  DEPOT_CHECK(s->used + on_list == carved);
  DEPOT_CHECK(s->used > 0); /* an empty span goes back to its arena */
  /* A span with blocks to hand out is on its pool's partial list. */
  DEPOT_CHECK(s->in_partial == (s->free != NULL || s->bump < s->bump_end));
  /* free() reads the region's page table: it must name this span's list. */
  uintptr_t off = depot_region_offset((uintptr_t)start);
  if (depot_region_contains(off))
    for (unsigned i = 0; i < s->npages; i++)
      DEPOT_CHECK(depot_region_list_id(off + ((size_t)i << DEPOT_PAGE_SHIFT)) ==
                  s->list_id);
}

void depot_central_check_locked(depot_central_t *c, uint64_t spans,
                                uint64_t used) {
  DEPOT_CHECK(c->spans == spans);
  DEPOT_CHECK(c->blocks_out == used);
  for (depot_span_t *s = c->partial; s; s = s->next) {
    DEPOT_CHECK(s->state == DEPOT_SPAN_SMALL && s->list_id == c->list_id);
    DEPOT_CHECK(s->in_partial && (!s->next || s->next->prev == s));
  }
  /* The stack: depth and stacked count its records and their blocks.
   * Lock-free, so exact only when no thread pushes or pops (the caller
   * guarantees quiescence). */
  uint64_t records = 0, blocks = 0;
  for (uint32_t i = (uint32_t)depot_load_acquire(&c->top); i;
       i = (uint32_t)depot_load_relaxed(&rec(i)->next)) {
    DEPOT_CHECK(++records <= RECORD_CAPACITY);
    uint64_t n = chain_length(rec(i)->head, c->list_id, rec(i)->count);
    DEPOT_CHECK(n == rec(i)->count);
    blocks += n;
  }
  DEPOT_CHECK(records == depot_load_relaxed(&c->depth));
  DEPOT_CHECK(blocks == depot_load_relaxed(&c->stacked));
  DEPOT_CHECK(blocks <= c->blocks_out);
}

void depot_central_lock(depot_central_t *c) { pthread_mutex_lock(&c->lock); }
void depot_central_unlock(depot_central_t *c) {
  pthread_mutex_unlock(&c->lock);
}
