/* heap.c: first-class heaps (see heap.h).  Owns the table of heap slots,
 * each heap's spans (per class, and its large spans) and the set of its huge
 * blocks, the heaps' per-thread caches and their registry, and the heaps'
 * fork handlers.
 *
 * Locks (alloc/README.md's lock order): the registry lock (a spin lock)
 * guards the slot table's free list, the list of live caches and the
 * recycled caches; each heap's lock (a spin lock) guards everything of the
 * heap below it in depot_heap_t.  The registry lock is never held while a
 * heap lock is taken except by the fork handlers, which take the registry
 * lock and then every heap lock; a heap lock is held while spans are taken
 * from or given back to the arenas (arena locks and below).  Spin locks
 * rather than mutexes: fork holds every heap's at once, which
 * ThreadSanitizer's deadlock detector (64 locks a thread) cannot track. */
#define _GNU_SOURCE
#include "alloc/heap.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc/arena.h"
#include "alloc/badptr.h"
#include "alloc/check.h"
#include "alloc/config.h"
#include "alloc/huge.h"
#include "alloc/init.h"
#include "alloc/log.h"
#include "alloc/meta.h"
#include "alloc/numa.h"
#include "alloc/os.h"
#include "alloc/region.h"

/* ---- the never-live heap and the empty caches ------------------------------ */

depot_heap_t depot_heap_none; /* generation 0: no entry ever matches it */

#define NO_ENTRY \
  { .heap = &depot_heap_none, .gen = UINT64_MAX }
depot_heap_cache_t depot_heap_cache_empty = {
    .e = {NO_ENTRY, NO_ENTRY, NO_ENTRY, NO_ENTRY}};
/* A thread whose cache was torn down at its exit (never written). */
static depot_heap_cache_t cache_dead = {
    .e = {NO_ENTRY, NO_ENTRY, NO_ENTRY, NO_ENTRY}};
_Static_assert(DEPOT_HEAP_CACHE_ENTRIES == 4, "the initialisers above");

__thread depot_heap_cache_t *depot_tls_heap_cache
    __attribute__((tls_model(DEPOT_TLS_MODEL))) = &depot_heap_cache_empty;
__thread depot_heap_entry_t *depot_tls_heap_mru
    __attribute__((tls_model(DEPOT_TLS_MODEL))) = &depot_heap_cache_empty.e[0];

/* ---- slots and generations ------------------------------------------------- */

static depot_spin_t registry_lock;
/* slots[i]: the heap structure of slot i, written once (release, in the
 * registry lock) when the slot is first used, never changed: slow paths
 * read it without the lock (acquire). */
depot_sparse_bss static _Atomic(depot_heap_t *) slots[DEPOT_HEAP_MAX + 1];
static uint32_t slots_made;                           /* registry lock */
static depot_heap_t *slots_free;                      /* registry lock */
static depot_heap_cache_t *live_caches, *free_caches; /* registry lock */
/* Generations are unique over the process's life, so that a slot's new
 * heap never matches an entry made for its old one.  Relaxed: uniqueness is
 * all that is asked of the counter. */
static _Atomic uint64_t next_gen = 1;

static uint64_t gen_new(void) { return depot_add_relaxed(&next_gen, 1); }

static depot_heap_t *slot_heap(unsigned slot) {
  return slot && slot <= DEPOT_HEAP_MAX ? depot_load_acquire(&slots[slot])
                                        : NULL;
}

static const char *heap_name(unsigned slot) {
  depot_heap_t *h = slot_heap(slot);
  return h && depot_load_relaxed(&h->gen) ? h->name : "destroyed";
}

/* ---- a heap's span lists (heap lock held) ---------------------------------- */

static void list_unlink(depot_heap_class_t *c, depot_span_t *s) {
  if (s->prev) s->prev->next = s->next;
  else c->head = s->next;
  if (s->next) s->next->prev = s->prev;
  else c->tail = s->prev;
  s->next = s->prev = NULL;
}
static void list_front(depot_heap_class_t *c, depot_span_t *s) {
  s->prev = NULL;
  s->next = c->head;
  if (c->head) c->head->prev = s;
  else c->tail = s;
  c->head = s;
}
static void list_back(depot_heap_class_t *c, depot_span_t *s) {
  s->next = NULL;
  s->prev = c->tail;
  if (c->tail) c->tail->next = s;
  else c->head = s;
  c->tail = s;
}

static size_t span_bytes(const depot_span_t *s) {
  return (size_t)s->npages << DEPOT_PAGE_SHIFT;
}

/* The arena a new span of h comes from: node k's (a shard chosen by the
 * slot) for a heap bound to k, else the calling thread's. */
static depot_arena_t *arena_of(const depot_heap_t *h) {
  if (h->node >= 0) return depot_arenas[h->node][h->slot % DEPOT_ARENA_SHARDS];
  return depot_numa_arena_for(depot_numa_home());
}

/* Set when a heap's own limit refuses a charge (charge), so that the
 * allocating thread tells that from a refusal of the process's memory
 * limit or of the OS (small_alloc): only those are worth a process-wide
 * reclaim, and only the heap's is a hit of its limit.  A global (hidden)
 * symbol, as depot_tls is (see idle.c's depot_idle_owned). */
extern __thread int depot_heap_refused depot_hidden
    __attribute__((tls_model(DEPOT_TLS_MODEL)));
__thread int depot_heap_refused __attribute__((tls_model(DEPOT_TLS_MODEL)));

/* Counts bytes more held by h; -1 (nothing counted) past its limit. */
static int charge(depot_heap_t *h, size_t bytes) {
  if (h->limit && h->held + bytes > h->limit) {
    depot_heap_refused = 1;
    return -1;
  }
  h->held += bytes;
  if (h->held > h->peak) h->peak = h->held;
  return 0;
}

/* A small span is about to leave h (lock held): entries' remembered ranges
 * stop proving anything (see depot_heap_free). */
static void epoch_bump(depot_heap_t *h) {
  depot_store_relaxed(&h->epoch, depot_load_relaxed(&h->epoch) + 1);
}

/* ---- a heap's huge blocks ---------------------------------------------------
 * A set of addresses with linear probing, grown by doubling while at most
 * half full, and given back whole by reset and destroy (heap lock). */
#define HUGE_SET_MIN (4096 / sizeof(void *))

static size_t huge_hash(const void *p, size_t cap) {
  return (size_t)((((uintptr_t)p >> 12) * 0x9E3779B97F4A7C15ull) >> 32) &
         (cap - 1);
}

static void huge_set_put(void **set, size_t cap, void *p) {
  size_t i = huge_hash(p, cap);
  while (set[i]) i = (i + 1) & (cap - 1);
  set[i] = p;
}

/* Adds p, growing the set if needed; -1 if the OS refuses memory. */
static int huge_set_add(depot_heap_t *h, void *p, size_t count) {
  if (2 * count > h->huge_cap) {
    size_t cap = h->huge_cap ? 2 * h->huge_cap : HUGE_SET_MIN;
    while (2 * count > cap) cap *= 2;
    void **set;
    if (depot_os_map(cap * sizeof *set, 4096, (void **)&set) != 0) return -1;
    for (size_t i = 0; i < h->huge_cap; i++)
      if (h->huge_set[i]) huge_set_put(set, cap, h->huge_set[i]);
    if (h->huge_set) depot_os_release(h->huge_set, h->huge_cap * sizeof *set);
    h->huge_set = set;
    h->huge_cap = cap;
  }
  huge_set_put(h->huge_set, h->huge_cap, p);
  return 0;
}

/* Removes p; 0 if it was not there.  The slots after it that probed past
 * its slot move back (no tombstones). */
static int huge_set_remove(depot_heap_t *h, void *p) {
  size_t cap = h->huge_cap, i;
  if (!cap) return 0;
  for (i = huge_hash(p, cap); h->huge_set[i] != p; i = (i + 1) & (cap - 1))
    if (!h->huge_set[i]) return 0;
  for (size_t j = (i + 1) & (cap - 1); h->huge_set[j];
       j = (j + 1) & (cap - 1)) {
    size_t k = huge_hash(h->huge_set[j], cap);
    /* j's entry stays if its home k lies cyclically in (i, j]. */
    if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
    h->huge_set[i] = h->huge_set[j];
    i = j;
  }
  h->huge_set[i] = NULL;
  return 1;
}

/* ---- spare spans -------------------------------------------------------------
 * Small spans of reset or destroyed heaps wait here, per node and class
 * (stacks, newest first), for the next heap that needs one of the class: a
 * program that makes and destroys a heap per request reuses memory that is
 * still in its caches, without the arenas' locks, coalescing and page-table
 * writes (a spare keeps its list id: node, heap domain, class).  At most
 * SPARE_MAX_BYTES per node wait; the rest, and every spare on
 * depot_heap_trim (DepotMem_Trim), go back to their arenas.  Each node's
 * stacks have a spin lock, taken inside heap locks, before arena locks. */
#define SPARE_MAX_BYTES ((size_t)8 << 20)
typedef struct {
  depot_spin_t lock;
  size_t bytes;
  depot_span_t *top[DEPOT_NCLASSES];
} spare_t;
depot_sparse_bss static spare_t spares[DEPOT_MAX_NODES];

/* Gives spans (a chain through next) back to their arenas.  No heap lock
 * needed: they are no heap's any more. */
static void spans_to_arenas(depot_span_t *s) {
  while (s) {
    depot_span_t *next = s->next;
    if (s->state == DEPOT_SPAN_SMALL)
      depot_region_set_list_id(depot_span_start(s), s->npages, 0);
    s->heap = 0;
    depot_arena_free_span(depot_segment_base((uintptr_t)s)->arena, s);
    s = next;
  }
}

/* Gives spans (a chain through next) up: small ones to the spares while
 * there is room, the rest to their arenas. */
static void spans_release(depot_span_t *s) {
  depot_span_t *rest = NULL;
  spare_t *held = NULL; /* the spare lock held: consecutive spans of one
                           node (a reset's usually are) take it once */
  while (s) {
    depot_span_t *next = s->next;
    int kept = 0;
    if (s->state == DEPOT_SPAN_SMALL) {
      spare_t *sp = &spares[depot_list_node(s->list_id)];
      if (sp != held) {
        if (held) depot_spin_unlock(&held->lock);
        depot_spin_lock(&sp->lock);
        held = sp;
      }
      if (sp->bytes + span_bytes(s) <= SPARE_MAX_BYTES) {
        unsigned cls = depot_list_class(s->list_id);
        s->heap = 0;
        s->heap_gen = 0; /* matches no entry, used or not */
        s->in_partial = 0;
        s->next = sp->top[cls];
        sp->top[cls] = s;
        sp->bytes += span_bytes(s);
        kept = 1;
      }
    }
    if (!kept) {
      s->next = rest;
      rest = s;
    }
    s = next;
  }
  if (held) depot_spin_unlock(&held->lock);
  spans_to_arenas(rest);
}

/* A spare span of class cls on node, or NULL. */
static depot_span_t *spare_take(unsigned node, unsigned cls) {
  spare_t *sp = &spares[node];
  depot_spin_lock(&sp->lock);
  depot_span_t *s = sp->top[cls];
  if (s) {
    sp->top[cls] = s->next;
    sp->bytes -= span_bytes(s);
  }
  depot_spin_unlock(&sp->lock);
  return s;
}

void depot_heap_trim(void) {
  for (unsigned n = 0; n < DEPOT_MAX_NODES; n++) {
    spare_t *sp = &spares[n];
    depot_span_t *all = NULL;
    depot_spin_lock(&sp->lock);
    for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++)
      for (depot_span_t *s = sp->top[cls], *next; s; s = next) {
        next = s->next;
        s->next = all;
        all = s;
      }
    memset(sp->top, 0, sizeof sp->top);
    sp->bytes = 0;
    depot_spin_unlock(&sp->lock);
    spans_to_arenas(all);
  }
}

/* Unlinks the empty small spans of h onto *out (lock held): what a heap at
 * its limit gives up before it fails. */
static void take_empty_locked(depot_heap_t *h, depot_span_t **out) {
  for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
    depot_heap_class_t *c = &h->cls[cls];
    for (depot_span_t *s = c->head, *next; s && s->in_partial; s = next) {
      next = s->next;
      if (s->used) continue;
      epoch_bump(h);
      list_unlink(c, s);
      c->spans--;
      h->spans--;
      h->held -= span_bytes(s);
      s->next = *out;
      *out = s;
    }
  }
}

/* A fresh small span of class cls at the front of its list (lock held): a
 * spare of the heap's node if there is one, else one from the arena. */
static depot_span_t *span_new(depot_heap_t *h, unsigned cls) {
  const depot_class_info_t *ci = &depot_class_info[cls];
  size_t bytes = (size_t)ci->span_pages << DEPOT_PAGE_SHIFT;
  if (charge(h, bytes) != 0) return NULL;
  /* A new span is a reuse point (a spare, or a free span of an arena): the
   * fault seam of os.h may refuse it, as the arenas' and caches' own. */
  if (depot_os_commit_mapped() != 0) {
    h->held -= bytes;
    return NULL;
  }
  depot_arena_t *a = NULL;
  depot_span_t *s = NULL;
  if (h->node >= 0 || !depot_numa_multi()) {
    s = spare_take(h->node >= 0 ? (unsigned)h->node : 0, cls);
  } else {
    a = arena_of(h); /* interleave may name another node's arena */
    s = spare_take(a->node, cls);
  }
  if (!s) {
    if (!a) a = arena_of(h);
    if (!(s = depot_numa_alloc_span(a, ci->span_pages, 1, DEPOT_SPAN_SMALL))) {
      h->held -= bytes;
      return NULL;
    }
    uint32_t li = depot_list_id(a->node, DEPOT_HEAP_DOMAIN, cls);
    s->block_size = depot_class_size[cls];
    s->list_id = li;
    s->domain = DEPOT_HEAP_DOMAIN;
    /* What free() reads; set before any block leaves the heap lock. */
    depot_region_set_list_id(depot_span_start(s), s->npages, li);
  }
  s->heap = (uint16_t)h->slot;
  s->heap_gen = (uint32_t)depot_load_relaxed(&h->gen); /* see depot_heap_free */
  s->free = NULL;
  s->used = 0;
  s->bump = depot_span_start(s);
  s->bump_end = s->bump + (size_t)ci->capacity * s->block_size;
  DEPOT_VG_FORGET(s->bump, span_bytes(s));
  s->in_partial = 1;
  list_front(&h->cls[cls], s);
  h->cls[cls].spans++;
  h->spans++;
  return s;
}

/* Takes up to want blocks of class cls (lock held): partial spans first
 * (they lead the list), then a fresh span.  The chain in *out; the span the
 * last block came from in *last (if any block was taken). */
static uint32_t carve_locked(depot_heap_t *h, unsigned cls, uint32_t want,
                             void **out, depot_span_t **last) {
  depot_heap_class_t *c = &h->cls[cls];
  void *head = NULL, **tail = &head;
  uint32_t n = 0;
  while (n < want) {
    depot_span_t *s = c->head;
    if ((!s || !s->in_partial) && !(s = span_new(h, cls))) break;
    *last = s;
    uint32_t from = n;
    for (; n < want && s->free; n++) {
      void *b = s->free;
      s->free = *(void **)b;
      *tail = b;
      tail = (void **)b;
    }
    /* Fresh blocks, linked in address order with the span's fields in
     * locals (the links' stores could alias them). */
    char *b = s->bump, *end = s->bump_end;
    size_t size = s->block_size;
    if (n < want && b < end) {
      char *stop = b + (size_t)(want - n) * size;
      if (stop > end) stop = end;
      *tail = b;
      for (n++; b + size < stop; n++, b += size) *(void **)b = b + size;
      tail = (void **)b;
      s->bump = b + size;
    }
    s->used += n - from;
    if (!s->free && s->bump >= s->bump_end) { /* full: behind the partials */
      s->in_partial = 0;
      list_unlink(c, s);
      list_back(c, s);
    }
  }
  c->out += n;
  *tail = NULL;
  *out = head;
  return n;
}

/* Puts a NULL-terminated chain of h's small blocks back into their spans
 * (lock held); spans left empty, except one at the front of their class
 * (kept for the next carve), go onto *empty. */
static void give_locked(depot_heap_t *h, void *head, depot_span_t **empty) {
  while (head) {
    void *b = head;
    head = *(void **)b;
    depot_span_t *s =
        depot_load_relaxed(&depot_segment_base((uintptr_t)b)
                                ->pagemap[depot_page_index((uintptr_t)b)]);
    /* A block of another heap here would corrupt this heap's counts. */
    DEPOT_CHECK(s->state == DEPOT_SPAN_SMALL && s->heap == h->slot &&
                s->used > 0);
    depot_heap_class_t *c = &h->cls[depot_list_class(s->list_id)];
    *(void **)b = s->free;
    ((uintptr_t *)b)[1] = 0; /* the free key off, as central.c does */
    s->free = b;
    c->out--;
    if (!s->in_partial) {
      s->in_partial = 1;
      list_unlink(c, s);
      list_front(c, s);
    }
    if (--s->used == 0 && s != c->head) {
      epoch_bump(h);
      list_unlink(c, s);
      c->spans--;
      h->spans--;
      h->held -= span_bytes(s);
      s->next = *empty;
      *empty = s;
    }
  }
}

/* ---- thread caches ----------------------------------------------------------- */

static pthread_key_t cache_key;

static uint32_t bin_batch(unsigned cls) { return depot_class_info[cls].batch; }

/* Blocks a refill carves: at most REFILL_BYTES of them, so that the blocks
 * a refill links are still in a near cache when the program takes them (a
 * request that uses forty classes at once would otherwise push its own
 * carved blocks out before using them); but at least REFILL_MIN (up to the
 * class's batch).  8 KiB ran fastest of 2, 4, 8 and 16 KiB on
 * bench/heap_bench.c's per-request pattern.  A larger minimum was up to 2%
 * faster there but links (and so faults in) a page per block of the larger
 * classes: an idle heap holding one 4 KiB block kept 68 KiB with 16,
 * 19.8 KiB with 4 (mimalloc's: 19.2 KiB). */
#define REFILL_BYTES 8192u
#define REFILL_MIN 4u
static uint32_t refill_count(unsigned cls) {
  uint32_t n = REFILL_BYTES / depot_class_size[cls], b = bin_batch(cls);
  return n < REFILL_MIN ? (b < REFILL_MIN ? b : REFILL_MIN) : n > b ? b : n;
}

static void entry_init(depot_heap_entry_t *e, depot_heap_t *h, uint64_t gen) {
  memset(e->bins, 0, sizeof e->bins);
  for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
    e->bins[cls].limit = 2 * bin_batch(cls);
    e->bins[cls].room = (int32_t)e->bins[cls].limit;
  }
  e->heap = h;
  e->gen = gen;
  e->slot = h->slot;
  e->epoch = 0;
  memset(e->range, 0, sizeof e->range);
}

/* Remembers s, a span of class cls of e's heap in e's generation, for the
 * free fast path; epoch is the heap's span epoch read in its lock or while
 * a block of s is in the caller's hands (so that s cannot have left the
 * heap since).  A newer epoch than e's forgets every other range. */
static void remember(depot_heap_entry_t *e, const depot_span_t *s, unsigned cls,
                     uint64_t epoch) {
  if (e->epoch != epoch) {
    memset(e->range, 0, sizeof e->range);
    e->epoch = epoch;
  }
  e->range[cls].lo = (uintptr_t)depot_span_start(s);
  e->range[cls].len = span_bytes(s);
}

static void entry_clear(depot_heap_entry_t *e) {
  memset(e->bins, 0, sizeof e->bins);
  e->heap = &depot_heap_none;
  e->gen = UINT64_MAX;
  e->slot = 0;
  e->epoch = 0;
  memset(e->range, 0, sizeof e->range);
}

/* Gives an entry's blocks back to its heap if the entry is current (its
 * heap not reset or destroyed since), else drops them (their spans were
 * reclaimed whole); the entry is then unused. */
static void entry_flush(depot_heap_entry_t *e) {
  depot_heap_t *h = e->heap;
  if (h == &depot_heap_none) return;
  depot_span_t *empty = NULL;
  depot_spin_lock(&h->lock);
  /* The generation changes only in the heap lock: compared in it, so a
   * reset either happened before (drop) or waits for this (give back). */
  if (depot_load_relaxed(&h->gen) == e->gen)
    for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++)
      if (e->bins[cls].head) give_locked(h, e->bins[cls].head, &empty);
  depot_spin_unlock(&h->lock);
  spans_release(empty);
  entry_clear(e);
}

/* The entry of heap h (generation gen) in tc, the calling thread's cache,
 * made if needed (evicting the least useful one); also made the thread's
 * most recent. */
static depot_heap_entry_t *entry_for(depot_heap_cache_t *tc, depot_heap_t *h,
                                     uint64_t gen) {
  depot_heap_entry_t *e = NULL, *spare = NULL;
  for (unsigned k = 0; k < DEPOT_HEAP_CACHE_ENTRIES; k++) {
    depot_heap_entry_t *x = &tc->e[k];
    if (x->heap == h) {
      if (x->gen == gen) return depot_tls_heap_mru = x;
      e = x; /* h's entry before its reset: dropped, not walked */
      break;
    }
    if (!spare && (x->heap == &depot_heap_none ||
                   x->gen != depot_load_relaxed(&x->heap->gen)))
      spare = x;
  }
  if (!e) e = spare;
  if (!e) {
    e = &tc->e[tc->victim++ % DEPOT_HEAP_CACHE_ENTRIES];
    entry_flush(e);
  }
  entry_init(e, h, gen);
  return depot_tls_heap_mru = e;
}

/* Moves a thread's heap cache from the live list to the free list for
 * reuse.  REQUIRES: registry_lock. */
static void recycle_cache_locked(depot_heap_cache_t *tc) {
  if (tc->prev) tc->prev->next = tc->next;
  else live_caches = tc->next;
  if (tc->next) tc->next->prev = tc->prev;
  tc->next = free_caches;
  tc->prev = NULL;
  free_caches = tc;
}

static void cache_exit(void *arg) {
  depot_heap_cache_t *tc = arg;
  depot_tls_heap_cache = &cache_dead;
  depot_tls_heap_mru = &cache_dead.e[0];
  for (unsigned k = 0; k < DEPOT_HEAP_CACHE_ENTRIES; k++)
    entry_flush(&tc->e[k]);
  depot_spin_lock(&registry_lock);
  recycle_cache_locked(tc);
  depot_spin_unlock(&registry_lock);
}

/* The calling thread's heap cache, made on first use; NULL for a thread
 * that is exiting or when no metadata memory is left. */
static depot_heap_cache_t *thread_cache(void) {
  depot_heap_cache_t *tc = depot_tls_heap_cache;
  if (depot_likely(tc != &depot_heap_cache_empty))
    return tc == &cache_dead ? NULL : tc;
  depot_spin_lock(&registry_lock);
  tc = free_caches;
  if (tc) free_caches = tc->next;
  depot_spin_unlock(&registry_lock);
  if (!tc && !(tc = depot_meta_alloc(sizeof *tc))) return NULL;
  for (unsigned k = 0; k < DEPOT_HEAP_CACHE_ENTRIES; k++)
    entry_clear(&tc->e[k]);
  tc->victim = 0;
  depot_spin_lock(&registry_lock);
  tc->prev = NULL;
  tc->next = live_caches;
  if (live_caches) live_caches->prev = tc;
  live_caches = tc;
  depot_spin_unlock(&registry_lock);
  depot_tls_heap_cache = tc;
  depot_tls_heap_mru = &tc->e[0];
  pthread_setspecific(cache_key, tc);
  return tc;
}

/* Blocks and bytes of h (generation gen) in every thread's cache: a
 * snapshot read without the owners' cooperation (as the default caches'
 * depot_tcache_cached_blocks), exact when they are quiescent. */
__attribute__((no_sanitize_thread)) static void cached_of(const depot_heap_t *h,
                                                          uint64_t gen,
                                                          size_t *blocks,
                                                          size_t *bytes) {
  *blocks = *bytes = 0;
  depot_spin_lock(&registry_lock);
  for (depot_heap_cache_t *tc = live_caches; tc; tc = tc->next)
    for (unsigned k = 0; k < DEPOT_HEAP_CACHE_ENTRIES; k++) {
      const depot_heap_entry_t *e = &tc->e[k];
      if (e->heap != h || e->gen != gen) continue;
      for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
        size_t n = depot_bin_count(&e->bins[cls]);
        *blocks += n;
        *bytes += n * depot_class_size[cls];
      }
    }
  depot_spin_unlock(&registry_lock);
}

/* ---- fork ---------------------------------------------------------------------
 * The core's fork handlers call these (depot_fork_hook, init.h) after the
 * stdio list lock and before the core's own locks, as the lock order says:
 * the registry lock, every heap's lock, every node's spare lock.  Only in a
 * process with more than one thread (see init.c). */
static void fork_prepare(void) {
  depot_spin_lock(&registry_lock);
  for (uint32_t i = 1; i <= slots_made; i++)
    depot_spin_lock(&depot_load_relaxed(&slots[i])->lock);
  for (unsigned n = 0; n < DEPOT_MAX_NODES; n++)
    depot_spin_lock(&spares[n].lock);
}

static void fork_parent(void) {
  for (unsigned n = DEPOT_MAX_NODES; n-- > 0;)
    depot_spin_unlock(&spares[n].lock);
  for (uint32_t i = slots_made; i >= 1; i--)
    depot_spin_unlock(&depot_load_relaxed(&slots[i])->lock);
  depot_spin_unlock(&registry_lock);
}

/* The child has one thread: the other threads' caches are dropped (their
 * blocks stay counted in their heaps until those are reset).  Called with
 * the locks still held when the parent had more than one thread. */
static void fork_child(int locked) {
  /* A process that had one thread took nothing and has no other cache. */
  if (!locked) return;
  fork_parent();
  depot_heap_cache_t *mine = depot_tls_heap_cache;
  depot_spin_lock(&registry_lock);
  for (depot_heap_cache_t *tc = live_caches, *next; tc; tc = next) {
    next = tc->next;
    if (tc == mine) continue;
    recycle_cache_locked(tc);
  }
  depot_spin_unlock(&registry_lock);
}

static pthread_once_t heap_once = PTHREAD_ONCE_INIT;
static int heap_once_err;

static void heap_global_init(void) {
  depot_heap_name_hook = heap_name;
  heap_once_err = pthread_key_create(&cache_key, cache_exit);
}

/* The fork hook is set before main, while one thread exists: set lazily, a
 * fork racing the first DepotHeap_New could read it as unset while that
 * thread held the registry lock, and the child would inherit it held.
 * Every fork of a process with more than one thread then takes the heap
 * locks (a handful of spin locks while no heap exists).  The memory
 * limit's reclaim gets the spare spans' trim the same way. */
__attribute__((constructor)) static void heap_fork_hook_init(void) {
  depot_fork_hook = (depot_fork_hook_t){fork_prepare, fork_parent, fork_child};
  depot_heap_trim_hook = depot_heap_trim;
}

/* ---- creating, resetting, destroying ------------------------------------------ */

depot_heap_t *depot_heap_new(const depot_heap_options_t *o) {
  if (depot_init() != 0 || pthread_once(&heap_once, heap_global_init) != 0 ||
      heap_once_err) {
    errno = ENOMEM;
    return NULL;
  }
  if (o->node >= 0 && (unsigned)o->node >= depot_numa_nodes()) {
    errno = EINVAL;
    return NULL;
  }
  depot_spin_lock(&registry_lock);
  depot_heap_t *h = slots_free;
  if (h) {
    slots_free = h->next_free;
  } else if (slots_made < DEPOT_HEAP_MAX &&
             (h = depot_meta_alloc(sizeof *h)) != NULL) {
    h->slot = ++slots_made;
    depot_store_release(&slots[h->slot], h);
  }
  depot_spin_unlock(&registry_lock);
  if (!h) {
    errno = ENOMEM;
    return NULL;
  }
  /* Everything from node on is plain; gen (read by stale entries of other
   * threads) and the lock are not cleared.  Filled under the heap's lock:
   * a statistics report or depot_check_heap walking the slots reads these
   * fields under it and must see the old heap or the whole new one. */
  depot_spin_lock(&h->lock);
  memset(&h->node, 0, sizeof *h - offsetof(depot_heap_t, node));
  h->node = o->node;
  h->limit = o->limit;
  if (o->name && o->name[0]) snprintf(h->name, sizeof h->name, "%s", o->name);
  else snprintf(h->name, sizeof h->name, "heap-%u", h->slot);
  depot_store_relaxed(&h->gen, gen_new());
  depot_spin_unlock(&h->lock);
  return h;
}

/* Takes every span of h, gives h generation gen and gives the spans back
 * to their arenas: time proportional to spans, not blocks. */
static void reclaim(depot_heap_t *h, uint64_t gen) {
  depot_spin_lock(&h->lock);
  depot_store_relaxed(&h->gen, gen);
  epoch_bump(h);
  depot_span_t *all = h->large;
  for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
    depot_heap_class_t *c = &h->cls[cls];
    if (c->tail) {
      c->tail->next = all;
      all = c->head;
    }
    c->head = c->tail = NULL;
    c->spans = 0;
    c->out = 0;
  }
  void **huge = h->huge_set;
  size_t huge_cap = h->huge_cap;
  h->huge_set = NULL;
  h->huge_cap = 0;
  h->large = NULL;
  h->held = h->spans = 0;
  h->large_blocks = h->large_bytes = h->huge_blocks = h->huge_bytes = 0;
  depot_spin_unlock(&h->lock);
  spans_release(all);
  for (size_t i = 0; i < huge_cap; i++)
    if (huge[i]) depot_huge_free(huge[i]);
  if (huge) depot_os_release(huge, huge_cap * sizeof *huge);
}

/* Reports a call on a heap that is not live (destroyed, or never made). */
static int heap_live(const depot_heap_t *h, const char *op) {
  if (depot_likely(h && depot_load_relaxed(&h->gen) != 0 &&
                   h != &depot_heap_none))
    return 1;
  if (h) depot_bad_pointer(op, h, "not a live heap (destroyed already?)");
  errno = EINVAL;
  return 0;
}

void depot_heap_reset(depot_heap_t *h) {
  if (heap_live(h, "DepotHeap_Reset")) reclaim(h, gen_new());
}

void depot_heap_destroy(depot_heap_t *h) {
  if (!heap_live(h, "DepotHeap_Destroy")) return;
  reclaim(h, 0);
  depot_spin_lock(&registry_lock);
  h->next_free = slots_free;
  slots_free = h;
  depot_spin_unlock(&registry_lock);
}

/* ---- allocation ------------------------------------------------------------------ */

/* A block from e's bin of class cls, refilled from h if empty; NULL
 * (lock-level failure) when none.  e is h's, of its generation. */
static void *bin_take(depot_heap_t *h, depot_heap_entry_t *e, unsigned cls) {
  void *head;
  depot_span_t *empty = NULL, *last = NULL;
  depot_bin_t *bin = &e->bins[cls];
  if (!bin->head) {
    depot_spin_lock(&h->lock);
    uint32_t n = carve_locked(h, cls, refill_count(cls), &head, &last);
    if (!n && h->limit) { /* at its limit: other classes' empty spans go */
      take_empty_locked(h, &empty);
      n = carve_locked(h, cls, refill_count(cls), &head, &last);
    }
    /* The blocks are probably freed by this thread, into this span. */
    if (n && depot_load_relaxed(&h->gen) == e->gen)
      remember(e, last, cls, depot_load_relaxed(&h->epoch));
    depot_spin_unlock(&h->lock);
    spans_release(empty);
    if (!n) return NULL;
    bin->head = head;
    bin->room -= (int32_t)n;
  }
  void *p = bin->head;
  bin->head = *(void **)p;
  bin->room++;
  return p;
}

/* One block of class cls, or NULL (lock-level failure: the heap's limit or
 * the OS). */
static void *small_once(depot_heap_t *h, unsigned cls, depot_heap_cache_t *tc) {
  void *head;
  uint64_t gen = depot_load_relaxed(&h->gen);
  depot_span_t *last = NULL;
  if (!tc) { /* an exiting thread: one block, no cache */
    depot_spin_lock(&h->lock);
    uint32_t n = carve_locked(h, cls, 1, &head, &last);
    depot_spin_unlock(&h->lock);
    return n ? head : NULL;
  }
  return bin_take(h, entry_for(tc, h, gen), cls);
}

/* An allocation of h failed; by_limit: its own limit refused it (else the
 * process's limit or the OS did: not a hit of h's limit). */
static void limit_hit(depot_heap_t *h, int by_limit) {
  if (by_limit) depot_add_relaxed(&h->limit_hits, 1);
  errno = ENOMEM;
}

/* Gives the calling thread's cached blocks of h back to its spans (before
 * a failure at the limit is final: they may hold the spans in the way). */
static void flush_own(depot_heap_t *h) {
  depot_heap_cache_t *tc = thread_cache();
  if (tc) entry_flush(entry_for(tc, h, depot_load_relaxed(&h->gen)));
}

/* The process's memory limit (memory_limit) refused a span: the spares go
 * back to the arenas, the core purges, and one more try may use the hard
 * limit (alloc.h).  Returns 1 if a limit is set. */
static int global_reclaim(void) {
  if (!depot_limit_reclaim()) return 0;
  depot_heap_trim();
  return 1;
}

static void *small_alloc(depot_heap_t *h, unsigned cls) {
  depot_heap_cache_t *tc = thread_cache();
  depot_heap_refused = 0;
  void *p = small_once(h, cls, tc);
  if (depot_unlikely(!p) && tc && h->limit) { /* only a limit may yield */
    flush_own(h);
    depot_heap_refused = 0; /* what the last try says */
    p = small_once(h, cls, tc);
  }
  /* The heap's own limit refused: a process-wide purge cannot help (until
   * 2026-12-02 it ran, and counted as a hit of the process's limit). */
  if (depot_unlikely(!p) && !depot_heap_refused && global_reclaim())
    p = depot_limit_done(small_once(h, cls, tc));
  if (!p) {
    limit_hit(h, depot_heap_refused);
    return NULL;
  }
  ((uintptr_t *)p)[1] = 0; /* the free key (see depot_free) */
  DEPOT_VG_ALLOCATED(p, depot_class_size[cls], 0);
  return p;
}

static int is_huge(size_t size, size_t align) {
  size_t npages = (size + DEPOT_PAGE_SIZE - 1) >> DEPOT_PAGE_SHIFT;
  size_t ap = align > DEPOT_PAGE_SIZE ? align >> DEPOT_PAGE_SHIFT : 1;
  return size > depot_config_live(DEPOT_CONF_huge_threshold_bytes) ||
         npages + ap > DEPOT_SPAN_MAX_PAGES;
}

/* One try at a large or huge block (see big_alloc).  *limited: the heap's
 * limit was in the way. */
static void *big_once(depot_heap_t *h, size_t size, size_t align, size_t *dirty,
                      int *limited) {
  depot_span_t *empty = NULL;
  void *p = NULL;
  int huge = is_huge(size, align);
  size_t bytes = huge ? depot_huge_usable(size)
                      : ((size + DEPOT_PAGE_SIZE - 1) & ~(DEPOT_PAGE_SIZE - 1));
  depot_spin_lock(&h->lock);
  int ok = charge(h, bytes) == 0;
  if (!ok) {
    take_empty_locked(h, &empty);
    ok = charge(h, bytes) == 0;
  }
  *limited = !ok;
  if (ok && !huge) {
    size_t ap = align > DEPOT_PAGE_SIZE ? align >> DEPOT_PAGE_SHIFT : 1;
    depot_span_t *s = depot_numa_alloc_span(
        arena_of(h), bytes >> DEPOT_PAGE_SHIFT, ap, DEPOT_SPAN_LARGE);
    if (s) {
      s->domain = DEPOT_HEAP_DOMAIN;
      s->heap = (uint16_t)h->slot;
      s->block_size = (uint32_t)bytes;
      s->prev = NULL;
      s->next = h->large;
      if (h->large) h->large->prev = s;
      h->large = s;
      h->spans++;
      h->large_blocks++;
      h->large_bytes += bytes;
      p = depot_span_start(s);
    } else {
      h->held -= bytes;
    }
  } else if (ok) {
    h->huge_blocks++; /* counted first: a reset in between finds it */
    h->huge_bytes += bytes;
  }
  depot_spin_unlock(&h->lock);
  spans_release(empty);
  if (ok && huge) {
    size_t usable;
    p = depot_huge_alloc(size, align, DEPOT_HEAP_HUGE_DOMAIN(h->slot), dirty,
                         &usable);
    depot_spin_lock(&h->lock);
    if (p && huge_set_add(h, p, h->huge_blocks) != 0) {
      depot_huge_free(p);
      p = NULL;
    }
    if (!p) {
      h->huge_blocks--;
      h->huge_bytes -= bytes;
      h->held -= bytes;
    }
    depot_spin_unlock(&h->lock);
  }
  return p;
}

/* A large or huge block; *dirty (if asked) is how many leading bytes may
 * hold old data. */
static void *big_alloc(depot_heap_t *h, size_t size, size_t align,
                       size_t *dirty) {
  if (size > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  size_t old_data = size;
  int limited, saved = errno; /* a success leaves errno as it was */
  void *p = big_once(h, size, align, &old_data, &limited);
  if (!p && limited) {
    flush_own(h);
    p = big_once(h, size, align, &old_data, &limited);
  }
  if (!p && !limited && global_reclaim())
    p = depot_limit_done(big_once(h, size, align, &old_data, &limited));
  if (dirty) *dirty = old_data;
  if (!p) {
    limit_hit(h, limited);
    return NULL;
  }
  errno = saved;
  DEPOT_VG_ALLOCATED(p, size, 0);
  return p;
}

depot_noinline void *depot_heap_alloc_slow(depot_heap_t *h, size_t size) {
  int saved = errno; /* a success leaves errno as it was */
  depot_heap_entry_t *e = depot_tls_heap_mru;
  if (e->heap == h && e->gen == depot_load_relaxed(&h->gen) &&
      size <= DEPOT_SMALL_MAX) {
    /* The common miss: the most recent entry is h's and current (so h is
     * live), and the class's bin is empty.  Refilled straight away; a
     * failure takes the whole path below. */
    unsigned cls = size ? depot_size_to_class(size) : 1;
    void *p = bin_take(h, e, cls);
    if (depot_likely(p != NULL)) {
      errno = saved;
      ((uintptr_t *)p)[1] = 0; /* the free key (see depot_free) */
      DEPOT_VG_ALLOCATED(p, depot_class_size[cls], 0);
      return p;
    }
  }
  if (!heap_live(h, "DepotHeap_Malloc")) return NULL;
  void *p = size > DEPOT_SMALL_MAX
                ? big_alloc(h, size, DEPOT_MIN_ALIGN, NULL)
                : small_alloc(h, size ? depot_size_to_class(size) : 1);
  if (p) errno = saved;
  return p;
}

void *depot_heap_calloc(depot_heap_t *h, size_t n, size_t size) {
  if (size && n > PTRDIFF_MAX / size) {
    errno = ENOMEM;
    return NULL;
  }
  size_t total = n * size, dirty = total;
  void *p;
  if (total > DEPOT_SMALL_MAX) {
    if (!heap_live(h, "DepotHeap_Calloc")) return NULL;
    p = big_alloc(h, total, DEPOT_MIN_ALIGN, &dirty);
  } else {
    p = depot_heap_alloc(h, total);
  }
  if (p) memset(p, 0, dirty < total ? dirty : total);
  return p;
}

void *depot_heap_aligned_alloc(depot_heap_t *h, size_t align, size_t size) {
  if (!depot_is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  if (align <= DEPOT_MIN_ALIGN) return depot_heap_alloc(h, size);
  if (!heap_live(h, "DepotHeap_AlignedAlloc")) return NULL;
  if (size > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  unsigned c;
  if (size <= DEPOT_SMALL_MAX && align <= DEPOT_PAGE_SIZE &&
      (c = depot_aligned_class(size, align)) != 0)
    return small_alloc(h, c);
  return big_alloc(h, size ? size : 1, align, NULL);
}

/* ---- free, and finding a block's heap ---------------------------------------------- */

/* The heap of p, a block of a heap; otherwise reported (as op) and NULL. */
static depot_heap_t *block_heap(const char *op, const void *p,
                                depot_block_info_t *bi) {
  if (depot_classify(p, bi) == BLOCK_BAD) {
    depot_bad_pointer(op, p, bi->why);
    return NULL;
  }
  if (bi->domain != DEPOT_HEAP_DOMAIN) {
    char why[160];
    snprintf(why, sizeof why,
             "block of domain '%s' is not a heap's (allocated by %s, passed "
             "to DepotHeap_*)",
             depot_domain_name(bi->domain),
             bi->domain == 0   ? "malloc's family or DepotMem_Raw*"
             : bi->domain == 1 ? "DepotMem_*"
                               : "DepotObject_*");
    depot_bad_pointer(op, p, why);
    return NULL;
  }
  depot_heap_t *h = slot_heap(bi->heap);
  if (!h || depot_load_relaxed(&h->gen) == 0) {
    depot_bad_pointer(op, p, "block of a heap that was reset or destroyed");
    return NULL;
  }
  return h;
}

static int bin_holds(const depot_bin_t *bin, const void *p) {
  for (const void *b = bin->head; b; b = *(void *const *)b)
    if (b == p) return 1;
  return 0;
}

static void free_small(depot_heap_t *h, void *p, const depot_span_t *s,
                       unsigned cls) {
  depot_heap_cache_t *tc = thread_cache();
  depot_span_t *empty = NULL;
  if (((uintptr_t *)p)[1] == depot_free_key) {
    /* Freed already, as alloc.c's free_full reasons: a heap's block carries
     * the key from its free until an allocation clears it (and leaves it on
     * its span's list: give_locked).  A walk of this thread's bin says
     * where, for the report. */
    int here =
        tc &&
        bin_holds(&entry_for(tc, h, depot_load_relaxed(&h->gen))->bins[cls], p);
    depot_double_free("DepotHeap_Free", p, depot_class_size[cls], "heap",
                      h->name,
                      here ? "in the thread cache" : DEPOT_FREED_ELSEWHERE);
    return;
  }
  if (!tc) {
    *(void **)p = NULL;
    depot_spin_lock(&h->lock);
    give_locked(h, p, &empty);
    depot_spin_unlock(&h->lock);
    spans_release(empty);
    return;
  }
  depot_heap_entry_t *e = entry_for(tc, h, depot_load_relaxed(&h->gen));
  depot_bin_t *bin = &e->bins[cls];
  if (bin->room <= 0) { /* full: its newest batch goes back to the heap */
    void *head = bin->head, **tail = &bin->head;
    uint32_t n = 0;
    for (; n < bin_batch(cls) && *tail; n++) tail = (void **)*tail;
    bin->head = *tail;
    *tail = NULL;
    bin->room += (int32_t)n;
    depot_spin_lock(&h->lock);
    give_locked(h, head, &empty);
    depot_spin_unlock(&h->lock);
    spans_release(empty);
  }
  *(void **)p = bin->head;
  ((uintptr_t *)p)[1] = depot_free_key;
  bin->head = p;
  bin->room--;
  /* p is in the caller's hands: s cannot leave h before this store. */
  if (s->heap_gen == (uint32_t)e->gen)
    remember(e, s, cls, depot_load_relaxed(&h->epoch));
}

/* The free fast path's miss (see depot_heap_free): p is in the region.  A
 * block of the most recent entry's heap in a span it does not remember is
 * freed here after one read of the span, which is then remembered; the rest
 * goes to depot_heap_free_slow. */
depot_noinline void depot_heap_free_miss(void *p) {
  uintptr_t a = (uintptr_t)p;
  unsigned li = depot_region_list_id(depot_region_offset(a));
  depot_heap_entry_t *e = depot_tls_heap_mru;
  if (depot_list_domain(li) == DEPOT_HEAP_DOMAIN) {
    uint64_t epoch = depot_load_relaxed(&e->heap->epoch);
    /* The page serves a heap's small span, so its descriptor is live.  It
     * is of e's heap and of e's generation of it (a span lives in one
     * generation: reset takes them all), so e is current.  (Generations are
     * compared in their low 32 bits: a stale entry would need 2^32 resets
     * and creations in between to match.) */
    const depot_span_t *s = depot_load_relaxed(
        &depot_segment_base(a)->pagemap[depot_page_index(a)]);
    if (s->heap == e->slot && s->heap_gen == (uint32_t)e->gen) {
      unsigned cls = depot_list_class(li);
      depot_bin_t *bin = &e->bins[cls];
      if (bin->room > 0 && ((uintptr_t *)p)[1] != depot_free_key) {
        *(void **)p = bin->head;
        ((uintptr_t *)p)[1] = depot_free_key;
        bin->head = p;
        bin->room--;
        /* s cannot leave the heap while p is in the caller's hands: the
         * epoch read above is as new as s's membership. */
        remember(e, s, cls, epoch);
        return;
      }
    }
  }
  depot_heap_free_slow(p);
}

depot_noinline void depot_heap_free_slow(void *p) {
  if (!p) return;
  depot_block_info_t bi;
  depot_heap_t *h = block_heap("DepotHeap_Free", p, &bi);
  if (!h) return;
  if (bi.kind == BLOCK_SMALL) {
    free_small(h, p, bi.span, depot_list_class(bi.list_id));
  } else if (bi.kind == BLOCK_LARGE) {
    depot_span_t *s = bi.span;
    depot_spin_lock(&h->lock);
    if (s->prev) s->prev->next = s->next;
    else h->large = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = NULL;
    h->spans--;
    h->large_blocks--;
    h->large_bytes -= s->block_size;
    h->held -= s->block_size;
    depot_spin_unlock(&h->lock);
    spans_release(s);
  } else if (bi.kind == BLOCK_HUGE) {
    depot_spin_lock(&h->lock);
    int mine = huge_set_remove(h, p); /* 0: a racing free took it */
    if (mine) {
      h->huge_blocks--;
      h->huge_bytes -= bi.usable;
      h->held -= bi.usable;
    }
    depot_spin_unlock(&h->lock);
    if (mine) depot_huge_free(p);
  }
}

void *depot_heap_realloc(depot_heap_t *h, void *p, size_t size) {
  if (!p) return depot_heap_alloc(h, size);
  if (size > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  depot_block_info_t bi;
  depot_heap_t *ph = block_heap("DepotHeap_Realloc", p, &bi);
  if (ph && ph != h) {
    char why[160];
    snprintf(why, sizeof why,
             "block of heap '%s' reallocated as if in heap '%s'", ph->name,
             heap_live(h, "DepotHeap_Realloc") ? h->name : "(none)");
    depot_bad_pointer("DepotHeap_Realloc", p, why);
    ph = NULL;
  }
  if (!ph) {
    errno = EINVAL;
    return NULL;
  }
  size_t want = size ? size : 1;
  if (want <= bi.usable && (want > bi.usable / 2 || bi.usable <= 16)) return p;
  void *q = depot_heap_alloc(h, want);
  if (!q) return NULL; /* p untouched */
  memcpy(q, p, want < bi.usable ? want : bi.usable);
  depot_heap_free(p);
  return q;
}

depot_heap_t *depot_heap_of(const void *p) {
  depot_block_info_t bi;
  if (!p || depot_classify(p, &bi) == BLOCK_BAD ||
      bi.domain != DEPOT_HEAP_DOMAIN)
    return NULL;
  depot_heap_t *h = slot_heap(bi.heap);
  return h && depot_load_relaxed(&h->gen) ? h : NULL;
}

size_t depot_heap_usable_size(const void *p) {
  return depot_heap_of(p) ? depot_usable_size(p) : 0;
}

/* ---- statistics and checks ------------------------------------------------------- */

int depot_heap_stats(depot_heap_t *h, depot_heap_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (!h || h == &depot_heap_none) return -1;
  size_t blocks = 0, bytes = 0;
  depot_spin_lock(&h->lock);
  uint64_t gen = depot_load_relaxed(&h->gen);
  if (gen == 0) {
    depot_spin_unlock(&h->lock);
    return -1;
  }
  for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
    blocks += h->cls[cls].out;
    bytes += h->cls[cls].out * depot_class_size[cls];
  }
  out->blocks = blocks + h->large_blocks + h->huge_blocks;
  out->bytes = bytes + h->large_bytes + h->huge_bytes;
  out->held = h->held;
  out->peak = h->peak;
  out->limit = h->limit;
  out->spans = h->spans;
  out->large_blocks = h->large_blocks;
  out->huge_blocks = h->huge_blocks;
  out->node = h->node;
  memcpy(out->name, h->name, sizeof out->name);
  depot_spin_unlock(&h->lock);
  out->limit_hits = depot_load_relaxed(&h->limit_hits);
  size_t cached_bytes;
  cached_of(h, gen, &out->cached, &cached_bytes);
  /* A snapshot: a cache may have moved blocks between the two readings. */
  out->blocks -= out->cached < out->blocks ? out->cached : out->blocks;
  out->bytes -= cached_bytes < out->bytes ? cached_bytes : out->bytes;
  return 0;
}

size_t depot_heap_each(void (*fn)(const depot_heap_stats_t *s, void *ctx),
                       void *ctx) {
  size_t n = 0;
  depot_spin_lock(&registry_lock);
  uint32_t made = slots_made;
  depot_spin_unlock(&registry_lock);
  for (uint32_t i = 1; i <= made; i++) {
    depot_heap_stats_t s;
    if (depot_heap_stats(slot_heap(i), &s) == 0) {
      fn(&s, ctx);
      n++;
    }
  }
  return n;
}

void depot_heap_check_all(void) {
  for (unsigned n = 0; n < DEPOT_MAX_NODES; n++) {
    spare_t *sp = &spares[n];
    size_t bytes = 0;
    depot_spin_lock(&sp->lock);
    for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++)
      for (const depot_span_t *s = sp->top[cls]; s; s = s->next) {
        DEPOT_CHECK(s->state == DEPOT_SPAN_SMALL && s->heap == 0 &&
                    s->list_id == depot_list_id(n, DEPOT_HEAP_DOMAIN, cls));
        bytes += span_bytes(s);
      }
    DEPOT_CHECK(bytes == sp->bytes && bytes <= SPARE_MAX_BYTES);
    depot_spin_unlock(&sp->lock);
  }
  depot_spin_lock(&registry_lock);
  uint32_t made = slots_made;
  depot_spin_unlock(&registry_lock);
  for (uint32_t i = 1; i <= made; i++) {
    depot_heap_t *h = slot_heap(i);
    depot_spin_lock(&h->lock);
    if (depot_load_relaxed(&h->gen) == 0) {
      DEPOT_CHECK(h->spans == 0 && h->held == 0);
      depot_spin_unlock(&h->lock);
      continue;
    }
    size_t spans = 0, held = 0;
    for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
      const depot_heap_class_t *c = &h->cls[cls];
      uint64_t used = 0, n = 0;
      int partial = 1;
      for (const depot_span_t *s = c->head; s; s = s->next) {
        DEPOT_CHECK(++n <= c->spans);
        DEPOT_CHECK(s->state == DEPOT_SPAN_SMALL && s->heap == h->slot &&
                    depot_list_class(s->list_id) == cls &&
                    depot_list_domain(s->list_id) == DEPOT_HEAP_DOMAIN);
        DEPOT_CHECK(!s->next || s->next->prev == s);
        /* Spans with blocks to hand out lead the list. */
        DEPOT_CHECK(s->in_partial ==
                    (s->free != NULL || s->bump < s->bump_end));
        DEPOT_CHECK(partial || !s->in_partial);
        partial = s->in_partial;
        used += s->used;
        held += span_bytes(s);
      }
      DEPOT_CHECK(n == c->spans && used == c->out);
      spans += n;
    }
    size_t large = 0, large_bytes = 0;
    for (const depot_span_t *s = h->large; s; s = s->next) {
      DEPOT_CHECK(s->state == DEPOT_SPAN_LARGE && s->heap == h->slot);
      large++;
      large_bytes += s->block_size;
    }
    DEPOT_CHECK(large == h->large_blocks && large_bytes == h->large_bytes);
    size_t huge = 0;
    for (size_t j = 0; j < h->huge_cap; j++) {
      const void *p = h->huge_set[j];
      if (!p) continue;
      huge++;
      size_t usable;
      unsigned domain;
      DEPOT_CHECK(depot_huge_lookup(p, &usable, &domain) &&
                  domain == DEPOT_HEAP_HUGE_DOMAIN(h->slot));
    }
    DEPOT_CHECK(huge == h->huge_blocks && 2 * huge <= h->huge_cap);
    DEPOT_CHECK(spans + large == h->spans);
    DEPOT_CHECK(held + large_bytes + h->huge_bytes == h->held);
    DEPOT_CHECK(h->held <= h->peak);
    depot_spin_unlock(&h->lock);
  }
}
