/* heap.h: first-class heaps (DepotHeap_* in the public API).  A heap is a
 * family of blocks with an owner: it keeps its own spans, taken from the
 * arenas of one NUMA node (or of the allocating thread's), and gives all of
 * them back at once on reset or destroy, in time proportional to its spans.
 *
 * How a block finds its heap, in O(1): a heap's small spans carry the list
 * id (node, DEPOT_HEAP_DOMAIN, class) in the region's page table, so the
 * default domains' free fast path never matches one (their compare admits
 * domains 0..2 only) and a heap block passed to free() reaches the slow
 * path, where the always-on domain check reports it; and every span of a
 * heap, small or large, names its heap's slot in depot_span_t.heap.  Huge
 * blocks carry the slot in their huge-table domain (DEPOT_HEAP_HUGE_DOMAIN).
 *
 * Thread side: each thread has a small cache (depot_heap_cache_t) of bins for
 * the last DEPOT_HEAP_CACHE_ENTRIES heaps it used.  An entry is valid only
 * while its heap's generation is the one it recorded: reset and destroy give
 * the heap a new generation, so stale entries are dropped on their next use,
 * never walked (the blocks in them belong to spans already given back).
 * A hit (alloc or free of the heap of the most recently used entry) takes no
 * lock and no atomic read-modify-write.  Misses go to the heap's lock.
 *
 * How a free proves, without reading the span, that a block is of the
 * entry's heap: per class, the entry remembers the span it last took blocks
 * from or gave a block to (its address range), and the heap's span epoch
 * then.  The epoch changes whenever a small span leaves the heap (emptied
 * and given up, or reset and destroy), so a block inside a remembered range
 * while the epoch is unchanged lies in a span the heap still owns, in the
 * entry's generation: its block.  Other frees read the span (the cold
 * depot_heap_free_miss) and remember its range.
 *
 * Heap structures live in a type-stable table of slots (metadata, never
 * freed; a destroyed heap's slot is reused), so a stale entry may always
 * read its heap's generation and take its lock.
 *
 * Program errors (documented in depot.h): resetting or destroying a heap
 * while another thread allocates from it or frees into it; using a heap
 * after destroying it (detected while its slot is unused). */
#ifndef DEPOT_ALLOC_HEAP_H
#define DEPOT_ALLOC_HEAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/alloc.h"

/* The list-id domain of heap spans: one past the API domains, so that the
 * default free fast path misses them (see alloc.h). */
#define DEPOT_HEAP_DOMAIN DEPOT_NDOMAINS
_Static_assert(DEPOT_HEAP_DOMAIN < (1u << DEPOT_LIST_DOMAIN_BITS),
               "the heap domain fits the list id's domain bits");
/* The huge-table domain of a huge block of the heap in slot. */
#define DEPOT_HEAP_HUGE_DOMAIN(slot) \
  (DEPOT_HEAP_DOMAIN | ((unsigned)(slot) << 2))

/* Slots 1..DEPOT_HEAP_MAX (span descriptors hold a 16-bit slot; 0: none). */
#define DEPOT_HEAP_MAX 65535u
#define DEPOT_HEAP_NAME_MAX 48
#define DEPOT_HEAP_CACHE_ENTRIES 4

/* One class of a heap: its small spans, those with blocks to hand out
 * (in_partial) first, full ones after.  Heap lock. */
typedef struct {
  depot_span_t *head, *tail;
  uint32_t spans;
  uint64_t out; /* blocks carved out of the spans (in use or in caches) */
} depot_heap_class_t;

typedef struct depot_heap {
  /* Read by every thread's fast paths: the generation (0: slot unused).
   * Relaxed: a thread that uses a heap learned of it, and of its last reset,
   * through the program's own synchronisation (reset concurrent with use is
   * a program error), which orders the store before its loads. */
  _Atomic uint64_t gen depot_cache_aligned;
  /* The span epoch (see above): changed, in the heap lock, before a small
   * span leaves the heap.  Relaxed, as gen: a block of a span that left
   * reaches another thread's free only through the span's next owner (the
   * spare or arena lock, then the program's synchronisation), which orders
   * this store before that free's load. */
  _Atomic uint64_t epoch;
  uint32_t slot;
  /* Cold: the heap lock (a spin lock, lock order in alloc/README.md) and
   * everything below it. */
  depot_spin_t lock depot_cache_aligned;
  int node;     /* -1: the allocating thread's node */
  size_t limit; /* bytes held; 0: none */
  char name[DEPOT_HEAP_NAME_MAX];
  depot_span_t *large; /* large spans, linked through next/prev */
  size_t held, peak;   /* bytes of spans and huge blocks held */
  size_t spans;        /* small and large spans */
  size_t large_blocks, large_bytes, huge_blocks, huge_bytes;
  /* The huge blocks' addresses: an open-addressed set (at most half full,
   * memory of its own from the OS layer), so that reset and destroy find
   * them in time proportional to their count. */
  void **huge_set;
  size_t huge_cap;              /* slots; 0: no set */
  _Atomic uint64_t limit_hits;  /* relaxed counter */
  struct depot_heap *next_free; /* free slots (registry lock) */
  depot_heap_class_t cls[DEPOT_NCLASSES];
} depot_heap_t;

/* A span of an entry's heap, remembered for the free fast path: blocks at
 * [lo, lo + len) are the heap's while the entry's epoch is the heap's.  len
 * 0: none. */
typedef struct {
  uintptr_t lo;
  size_t len;
} depot_heap_range_t;
depot_static_assert(sizeof(depot_heap_range_t) ==
                        1u << DEPOT_REGION_ENTRY_SHIFT,
                    "the heap free fast path indexes ranges by a page entry's "
                    "class bits");
_Static_assert(sizeof(depot_heap_range_t) == sizeof(depot_bin_t),
               "the free fast path indexes ranges and bins alike");

/* A thread's bins for one heap.  bins[] first: a rounded size is the byte
 * offset of its bin. */
typedef struct {
  depot_bin_t bins[DEPOT_NCLASSES];
  depot_heap_t *heap; /* &depot_heap_none when unused */
  uint64_t gen;       /* the heap's generation the bins belong to */
  uint64_t epoch;     /* the heap's span epoch the ranges belong to */
  uint32_t slot;
  depot_heap_range_t range[DEPOT_NCLASSES]; /* per class (see above) */
} depot_heap_entry_t;

typedef struct depot_heap_cache {
  unsigned victim;                      /* round robin of evictions */
  struct depot_heap_cache *next, *prev; /* live caches (registry lock) */
  depot_heap_entry_t e[DEPOT_HEAP_CACHE_ENTRIES];
} depot_heap_cache_t;

/* A heap that is never live (generation 0) and an empty cache whose entries
 * name it: a thread without a heap cache misses on every fast path.  The
 * thread's cache, and its most recently used entry (the one the fast paths
 * try: a thread variable of its own, one load fewer on every hit). */
extern depot_hidden depot_heap_t depot_heap_none;
extern depot_hidden depot_heap_cache_t depot_heap_cache_empty;
extern __thread depot_heap_cache_t *depot_tls_heap_cache depot_hidden
    __attribute__((tls_model(DEPOT_TLS_MODEL)));
extern __thread depot_heap_entry_t *depot_tls_heap_mru depot_hidden
    __attribute__((tls_model(DEPOT_TLS_MODEL)));

/* Slow paths (heap.c). */
void *depot_heap_alloc_slow(depot_heap_t *h, size_t size);
void depot_heap_free_slow(void *p);
void depot_heap_free_miss(void *p);

/* Allocates size bytes in h: a hit in the calling thread's cache, else the
 * slow path (which also checks h). */
depot_inline void *depot_heap_alloc(depot_heap_t *h, size_t size) {
  depot_heap_entry_t *e = depot_tls_heap_mru;
  if (depot_likely(e->heap == h && e->gen == depot_load_relaxed(&h->gen))) {
    depot_bin_t *bin = e->bins;
    if (depot_likely(size <= 128))
      bin = (depot_bin_t *)((char *)bin + ((size + 15) & ~(size_t)15));
    else if (depot_likely(size <= DEPOT_SMALL_MAX))
      bin += depot_size_to_class(size);
    else return depot_heap_alloc_slow(h, size);
    void *p = bin->head;
    if (depot_likely(p != NULL)) {
      void *next = *(void **)p;
      bin->head = next;
      ((uintptr_t *)p)[1] = 0; /* the free key (see depot_free) */
      bin->room++;
      DEPOT_VG_ALLOCATED(p, size ? size : 1, 0);
      return p;
    }
  }
  return depot_heap_alloc_slow(h, size);
}

/* Frees p, a block of any heap: a hit when p lies in the span of its class
 * that the calling thread's most recent entry remembers, and no span left
 * that entry's heap since (see above).  The range compare alone also
 * rejects pages that serve no heap (their class's range is a heap span, or
 * empty), so the list id's domain is not read. */
depot_inline void depot_heap_free(void *p) {
  uintptr_t a = (uintptr_t)p, off = depot_region_offset(a);
  if (DEPOT_VG && p) DEPOT_VG_FREED(p);
  if (depot_likely(depot_region_contains(off))) {
    /* The class's byte offset in the entry's bins and ranges (16 bytes
     * each), straight from the pre-shifted page entry (region.h). */
    uint32_t coff = depot_region_entry(off) &
                    (DEPOT_LIST_CLASS_MASK << DEPOT_REGION_ENTRY_SHIFT);
    depot_heap_entry_t *e = depot_tls_heap_mru;
    const depot_heap_range_t *r =
        (const depot_heap_range_t *)((const char *)e->range + coff);
    if (depot_likely(a - r->lo < r->len &&
                     e->epoch == depot_load_relaxed(&e->heap->epoch))) {
      depot_bin_t *bin = (depot_bin_t *)((char *)e->bins + coff);
      uintptr_t key = depot_free_key; /* as in depot_free */
      if (depot_likely(((uintptr_t *)p)[1] != key)) {
        /* room first, its decrement's flags the test, as in depot_free. */
        if (depot_likely(--bin->room >= 0)) {
          *(void **)p = bin->head;
          ((uintptr_t *)p)[1] = key;
          bin->head = p;
          return;
        }
        bin = (depot_bin_t *)depot_opaque_ptr(bin);
        bin->room++;
      }
    }
    depot_heap_free_miss(p);
    return;
  }
  depot_heap_free_slow(p);
}

typedef struct {
  int node;         /* -1: any */
  size_t limit;     /* 0: none */
  const char *name; /* NULL: "heap-<slot>" */
} depot_heap_options_t;

/* A new heap, or NULL with errno (ENOMEM: no slot or metadata; EINVAL: no
 * such node). */
depot_heap_t *depot_heap_new(const depot_heap_options_t *o);
/* Frees every block of h (keeps h); frees every block and h. */
void depot_heap_reset(depot_heap_t *h);
void depot_heap_destroy(depot_heap_t *h);

void *depot_heap_calloc(depot_heap_t *h, size_t n, size_t size);
void *depot_heap_realloc(depot_heap_t *h, void *p, size_t size);
void *depot_heap_aligned_alloc(depot_heap_t *h, size_t align, size_t size);
/* The heap of a live heap block, or NULL (reported when report is set and
 * p is not a heap block, naming op). */
depot_heap_t *depot_heap_of(const void *p);
size_t depot_heap_usable_size(const void *p);

typedef struct {
  size_t blocks, bytes; /* in use (out of the heap and its caches) */
  size_t cached;        /* blocks in threads' caches (a snapshot) */
  size_t held, peak, limit;
  size_t spans, large_blocks, huge_blocks;
  uint64_t limit_hits;
  int node;
  char name[DEPOT_HEAP_NAME_MAX];
} depot_heap_stats_t;
/* Returns 0, or -1 when h is not a live heap. */
int depot_heap_stats(depot_heap_t *h, depot_heap_stats_t *out);
/* Calls fn with the statistics of every live heap (for reports); returns
 * the count. */
size_t depot_heap_each(void (*fn)(const depot_heap_stats_t *s, void *ctx),
                       void *ctx);

/* Gives the spare spans of reset and destroyed heaps back to the arenas
 * (DepotMem_Trim). */
void depot_heap_trim(void);

/* For depot_check_heap: checks every live heap's span lists and counts and
 * the spare spans (heap locks taken one at a time).  Aborts on a
 * violation. */
void depot_heap_check_all(void);

#endif /* DEPOT_ALLOC_HEAP_H */
