/* alloc.c: the core's entry points that are not inline (alloc.h) and their
 * slow paths: small-block refills and frees that miss the cache, large and
 * huge blocks, calloc, realloc, aligned allocation, pointer classification
 * and the words of bad pointers' reports (badptr.c says them), trimming. */
#define _GNU_SOURCE
#include "alloc/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/arena.h"
#include "alloc/badptr.h"
#include "alloc/central.h"
#include "alloc/check.h"
#include "alloc/config.h"
#include "alloc/guard.h"
#include "alloc/huge.h"
#include "alloc/idle.h"
#include "alloc/init.h"
#include "alloc/limit.h"
#include "alloc/log.h"
#include "alloc/numa.h"
#include "alloc/prof.h"
#include "alloc/purger.h"
#include "alloc/quarantine.h"
#include "alloc/region.h"

/* ---- bad pointers ---------------------------------------------------------- */

const char *(*depot_heap_name_hook)(unsigned slot);
void (*depot_heap_trim_hook)(void);

depot_cold static void wrong_domain(const char *op, const void *p, unsigned was,
                                    unsigned used, unsigned heap) {
  char why[160];
  if (was >= DEPOT_NDOMAINS) { /* a heap's block (heap.h) */
    const char *name = depot_heap_name_hook ? depot_heap_name_hook(heap) : "?";
    snprintf(why, sizeof why,
             "block of a heap ('%s', allocated by DepotHeap_*) used with "
             "domain '%s' (passed to %s)",
             name, depot_domain_name(used),
             used == 0   ? "malloc's family or DepotMem_Raw*"
             : used == 1 ? "DepotMem_*"
                         : "DepotObject_*");
    depot_bad_pointer(op, p, why);
    return;
  }
  static const char *const family[DEPOT_NDOMAINS] = {
      "malloc's family or DepotMem_Raw*", "DepotMem_*", "DepotObject_*"};
  snprintf(why, sizeof why,
           "block of domain '%s' used with domain '%s' (allocated by %s, "
           "passed to %s)",
           depot_domain_name(was), depot_domain_name(used), family[was],
           family[used]);
  depot_bad_pointer(op, p, why);
}

/* A block of domain d freed twice (badptr.h words it). */
static void double_free(const char *op, const void *p, unsigned d,
                        size_t usable, const char *where) {
  depot_double_free(op, p, usable, "domain", depot_domain_name(d), where);
}

/* ---- classification ------------------------------------------------------ */

/* block_kind_t and block_info_t: alloc.h (heap.c classifies blocks too). */
typedef depot_block_kind_t block_kind_t;
typedef depot_block_info_t block_info_t;

/* What p is, without faulting, whatever p is. */
block_kind_t depot_classify(const void *p, block_info_t *bi) {
  uintptr_t a = (uintptr_t)p;
  memset(bi, 0, sizeof *bi);
  bi->why = "not allocated by Depot";
  if (!depot_segmap_test(a)) {
    if (depot_unlikely(depot_guard_contains(p))) {
      if (depot_guard_lookup(p, &bi->usable, &bi->domain))
        bi->kind = BLOCK_GUARD;
      else bi->why = "not a live guarded block";
      return bi->kind;
    }
    if (a % DEPOT_MIN_ALIGN == 0 &&
        depot_huge_lookup(p, &bi->usable, &bi->domain)) {
      bi->kind = BLOCK_HUGE;
      /* Heaps (heap.h): a heap's huge block carries its slot above the
       * domain's two bits. */
      bi->heap = bi->domain >> DEPOT_LIST_DOMAIN_BITS;
      bi->domain &= (1u << DEPOT_LIST_DOMAIN_BITS) - 1;
    }
    return bi->kind;
  }
  depot_segment_t *seg = depot_segment_base(a);
  unsigned page = depot_page_index(a);
  depot_span_t *s = depot_load_relaxed(&seg->pagemap[page]);
  bi->why = "not a live block (freed already?)";
  if (!depot_span_covers(s, page)) return bi->kind;
  char *start = depot_span_start(s);
  if (s->state == DEPOT_SPAN_SMALL) {
    unsigned li = s->list_id;
    if ((size_t)((char *)p - start) % s->block_size != 0) {
      bi->why = DEPOT_WHY_INTERIOR;
      return bi->kind;
    }
    bi->kind = BLOCK_SMALL;
    bi->list_id = li;
    bi->domain = depot_list_domain(li);
    bi->usable = s->block_size;
  } else if (s->state == DEPOT_SPAN_LARGE) {
    if ((char *)p != start) {
      bi->why = DEPOT_WHY_INTERIOR;
      return bi->kind;
    }
    /* A freed sample kept spare is allocated in its arena's eyes, but it
     * is no block: free or realloc of it is a double free. */
    if (s->sampled == DEPOT_SPAN_SPARE) return bi->kind;
    bi->kind = BLOCK_LARGE;
    bi->domain = s->domain;
    bi->usable = s->block_size;
  } else {
    return bi->kind;
  }
  bi->span = s;
  bi->heap = s->heap; /* a heap's span (heap.h), else 0 */
  return bi->kind;
}

/* Classifies p for op in domain d, reporting a bad pointer or a wrong
 * domain.  Returns 0 when p must not be touched. */
static int check_block(const char *op, const void *p, unsigned d,
                       block_info_t *bi) {
  if (depot_classify(p, bi) == BLOCK_BAD) {
    if (depot_guard_contains(p)) depot_guard_bad_free(op, p);
    depot_bad_pointer(op, p, bi->why);
    return 0;
  }
  if (bi->domain != d) {
    wrong_domain(op, p, bi->domain, d, bi->heap);
    return 0;
  }
  return 1;
}

/* ---- large and huge block counts (statistics; relaxed) ------------------
 * [domain][0 large, 1 huge]: counters only, nothing is ordered by them. */

static _Atomic size_t big_count[DEPOT_NDOMAINS][2],
    big_bytes[DEPOT_NDOMAINS][2];

void depot_big_counts(unsigned d, size_t *large_blocks, size_t *large_bytes,
                      size_t *huge_blocks, size_t *huge_bytes) {
  *large_blocks = depot_load_relaxed(&big_count[d][0]);
  *large_bytes = depot_load_relaxed(&big_bytes[d][0]);
  *huge_blocks = depot_load_relaxed(&big_count[d][1]);
  *huge_bytes = depot_load_relaxed(&big_bytes[d][1]);
}

static void big_account(unsigned d, int huge, size_t bytes, int sign) {
  if (sign > 0) {
    depot_add_relaxed(&big_count[d][huge], 1);
    depot_add_relaxed(&big_bytes[d][huge], bytes);
  } else {
    depot_sub_relaxed(&big_count[d][huge], 1);
    depot_sub_relaxed(&big_bytes[d][huge], bytes);
  }
}

/* ---- allocation slow paths ----------------------------------------------- */

/* A thread whose CPU moved to another node follows it: its cache only holds
 * blocks of its heap on its node, so it is flushed first and takes a heap of
 * the new node.  Checked on every refill. */
static void follow_cpu(depot_tcache_t *tc) {
  if (depot_likely(!depot_numa_multi())) return;
  unsigned node = depot_numa_home();
  if (node == tc->node) return;
  depot_tcache_move(tc, node);
}

/* The OS refused memory.  Freed huge blocks waiting in their cache hold
 * address space (which RLIMIT_AS counts) and commit charge: gives them back
 * and says whether a second try may succeed. */
static int released_for_retry(void) { return depot_huge_release_cache() != 0; }

/* ---- the memory limit -------------------------------------------------------
 * An allocation that needs growth past the soft limit fails once inside
 * (limit.h); the slow path then purges everything it can and tries again
 * with the hard limit allowed.  A failure then is a limit hit. */

depot_cold int depot_limit_reclaim(void) {
  if (!depot_limit_active()) return 0;
  depot_limit_count_reclaim();
  depot_thread_flush();
  uint32_t next;
  depot_idle_flush((uint32_t)depot_config_live(DEPOT_CONF_idle_flush_ms),
                   &next);
  if (depot_heap_trim_hook) depot_heap_trim_hook(); /* heaps' spare spans */
  depot_purger_reclaim();
  depot_limit_allow_hard(1);
  return 1;
}

depot_cold void *depot_limit_done(void *p) {
  depot_limit_allow_hard(0);
  if (!p) depot_limit_count_hit();
  return p;
}

static void *small_alloc_once(unsigned cls, unsigned d) {
  depot_tcache_t *tc = depot_thread_cache();
  if (depot_likely(tc != NULL)) {
    follow_cpu(tc);
    void *p = depot_tcache_alloc_slow(tc, d, cls);
    /* The blocks of a refill count towards the next guarded sample. */
    if (depot_unlikely(depot_load_acquire(&depot_guard_armed)))
      depot_guard_count(
          depot_bin_count(&tc->bins[(d << DEPOT_LIST_CLASS_BITS) | cls]));
    depot_idle_leave();
    return p;
  }
  if (depot_init() == 0)
    return depot_central_alloc_one(depot_list_id(depot_numa_home(), d, cls));
  return NULL;
}

static void *small_alloc(unsigned cls, unsigned d) {
  void *p = small_alloc_once(cls, d);
  if (depot_unlikely(!p)) {
    if (depot_limit_reclaim()) p = depot_limit_done(small_alloc_once(cls, d));
    else if (released_for_retry()) p = small_alloc_once(cls, d);
  }
  if (!p) errno = ENOMEM;
  else ((uintptr_t *)p)[1] = 0; /* the free key (see depot_free) */
  return p;
}

/* Whether a request of size and align bypasses the arenas. */
static int is_huge(size_t size, size_t align) {
  size_t npages = (size + DEPOT_PAGE_SIZE - 1) >> DEPOT_PAGE_SHIFT;
  size_t align_pages = align > DEPOT_PAGE_SIZE ? align >> DEPOT_PAGE_SHIFT : 1;
  /* npages + align_pages within a segment guarantees a fresh segment fits. */
  return size > depot_config_live(DEPOT_CONF_huge_threshold_bytes) ||
         npages + align_pages > DEPOT_SPAN_MAX_PAGES;
}

/* A new page run s of npages (NULL: none) made a large block of domain
 * d; its address, or NULL. */
static void *run_init(depot_span_t *s, size_t npages, unsigned d) {
  if (!s) return NULL;
  s->domain = (uint8_t)d;
  s->sampled = 0;
  s->block_size = (uint32_t)(npages << DEPOT_PAGE_SHIFT);
  big_account(d, 0, s->block_size, 1);
  return depot_span_start(s);
}

/* One try at a large or huge block; *old_data as big_alloc's *dirty. */
static void *big_alloc_once(size_t size, size_t align, unsigned d,
                            size_t *old_data) {
  void *p = NULL;
  if (is_huge(size, align)) {
    size_t usable;
    p = depot_huge_alloc(size, align, d, old_data, &usable);
    if (p) big_account(d, 1, usable, 1);
  } else {
    size_t npages = (size + DEPOT_PAGE_SIZE - 1) >> DEPOT_PAGE_SHIFT;
    size_t ap = align > DEPOT_PAGE_SIZE ? align >> DEPOT_PAGE_SHIFT : 1;
    p = run_init(depot_numa_alloc_span(depot_numa_arena_for(depot_numa_home()),
                                       npages, ap, DEPOT_SPAN_LARGE),
                 npages, d);
  }
  return p;
}

/* Blocks above the small maximum, and aligned ones no class can serve.
 * *dirty (if asked) is how many leading bytes may hold old data; the rest
 * are known to be zero. */
static void *big_alloc(size_t size, size_t align, unsigned d, size_t *dirty) {
  size_t old_data = size;
  if (size > PTRDIFF_MAX || depot_init() != 0) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = big_alloc_once(size, align, d, &old_data);
  if (depot_unlikely(!p)) {
    if (depot_limit_reclaim())
      p = depot_limit_done(big_alloc_once(size, align, d, &old_data));
    else if (released_for_retry())
      p = big_alloc_once(size, align, d, &old_data);
  }
  if (!p) errno = ENOMEM;
  if (dirty) *dirty = old_data;
  depot_purger_poke();
  return p;
}

depot_noinline void *depot_alloc_slow(size_t size, unsigned d) {
  if (depot_unlikely(d >= DEPOT_NDOMAINS)) {
    errno = EINVAL;
    return NULL;
  }
  if (depot_unlikely(depot_load_acquire(&depot_guard_armed)) &&
      depot_guard_due()) {
    void *g = depot_guard_alloc(size, d);
    if (g) return g;
  }
  void *p = size <= DEPOT_SMALL_MAX
                ? small_alloc(size ? depot_size_to_class(size) : 1, d)
                : big_alloc(size, DEPOT_MIN_ALIGN, d, NULL);
  if (p) DEPOT_VG_ALLOCATED(p, size ? size : 1, 0);
  depot_purger_poke();
  return p;
}

/* ---- heap-profile samples (prof.h) -------------------------------------------
 * A sample must be a block whose free reaches depot_free_slow without a
 * lookup on the hit path: a page run of its own (a large span, which the
 * free fast path misses: its page-table entry is 0), marked `sampled`, or
 * a huge block (never in the region; looked up in the sample table while
 * any sample is live). */

/* realloc_full keeps p (which check_block accepted) in place: if it is a
 * sample, it stops being one.  Only a realloc that did not come through
 * depot_prof_realloc (which keeps samples sampled) finds one here. */
static void unsample(void *p, const block_info_t *bi) {
  if (bi->kind == BLOCK_LARGE) {
    if (!bi->span->sampled) return;
    bi->span->sampled = 0;
  } else if (bi->kind != BLOCK_HUGE || !depot_prof_any_live()) {
    return;
  }
  depot_prof_release(p);
}

/* Freed one-page samples, kept for the next samples (with prof=0 they stay
 * empty): a sample then costs no page-run search and split in the arena,
 * no join at its free, and no fault on a page the purger returned.  A slot
 * holds a large span of one page, allocated in its arena's eyes and not
 * counted in any domain's large blocks; any thread takes or fills a slot
 * (exchange and compare-exchange: acquire on taking pairs with release on
 * filling, so the taker sees the span's fields as the filler left them).
 * At most SPARES pages stay out of the arena. */
#define SPARES 4
static _Atomic(depot_span_t *) spares[SPARES];

static void *spare_take(unsigned d) {
  for (unsigned i = 0; i < SPARES; i++) {
    if (!depot_load_relaxed(&spares[i])) continue;
    depot_span_t *s =
        atomic_exchange_explicit(&spares[i], NULL, memory_order_acquire);
    if (!s) continue;
    s->sampled = 0; /* no longer DEPOT_SPAN_SPARE: a block again */
    s->domain = (uint8_t)d;
    big_account(d, 0, s->block_size, 1);
    return depot_span_start(s);
  }
  return NULL;
}

/* Keeps a freed sample's span (one page, no longer counted) in a free
 * slot; 0 when there is none. */
static int spare_put(depot_span_t *s) {
  for (unsigned i = 0; i < SPARES; i++) {
    depot_span_t *none = NULL;
    if (!depot_load_relaxed(&spares[i]) &&
        atomic_compare_exchange_strong_explicit(
            &spares[i], &none, s, memory_order_release, memory_order_relaxed))
      return 1;
  }
  return 0;
}

/* A page run's span says that p is a sample (a huge block: the table). */
static void mark_sampled(void *p) {
  uintptr_t a = (uintptr_t)p;
  if (depot_segmap_test(a))
    depot_load_relaxed(&depot_segment_base(a)->pagemap[depot_page_index(a)])
        ->sampled = 1;
}

DEPOT_PROF_TEXT void *depot_prof_alloc(size_t size, size_t align, unsigned d,
                                       int zero) {
  if (d >= DEPOT_NDOMAINS || depot_init() != 0 || !depot_prof_due(size))
    return NULL;
  if (size > PTRDIFF_MAX) return NULL; /* the usual path says ENOMEM */
  size_t dirty = size;
  int saved = errno;
  /* Whole pages (at least one), or a huge block: aligned to a page. */
  void *p = size <= DEPOT_PAGE_SIZE && align <= DEPOT_PAGE_SIZE ? spare_take(d)
                                                                : NULL;
  if (!p) p = big_alloc(size ? size : 1, align, d, &dirty);
  if (!p) {
    errno = saved; /* the usual path tries again */
    return NULL;
  }
  mark_sampled(p);
  depot_prof_record(p, size);
  /* calloc's: as depot_calloc, only what may hold old data (all of it
   * under Valgrind, so that memcheck sees it defined). */
  if (zero) memset(p, 0, DEPOT_VG || dirty > size ? size : dirty);
  DEPOT_VG_ALLOCATED(p, size ? size : 1, zero);
  return p;
}

/* Frees a block that check_block accepted. */
static void release(void *p, unsigned d, const block_info_t *bi) {
  switch (bi->kind) {
    case BLOCK_SMALL: {
      /* A block of the thread's own heap goes to its bin; any other
       * (another thread's, another node's) to the outbox, posted home a
       * bucket at a time: never to this thread's bin, whose blocks it hands
       * out. */
      depot_tcache_t *tc = depot_thread_cache();
      if (tc && (bi->list_id & ~(DEPOT_LISTS_PER_OWNER - 1)) == tc->owner_base)
        depot_tcache_free_slow(tc, p, d, depot_list_class(bi->list_id));
      else if (!tc) depot_central_free_one(bi->list_id, p);
      else depot_tcache_remote_free(tc, p, bi->list_id);
      if (tc) depot_idle_leave();
      depot_purger_poke();
      return;
    }
    case BLOCK_LARGE:
      big_account(d, 0, bi->usable, -1);
      if (depot_unlikely(bi->span->sampled)) {
        depot_prof_release(p);
        /* Marked before it is published (spare_put's release), so that
         * depot_classify reports a free or realloc of it. */
        bi->span->sampled = DEPOT_SPAN_SPARE;
        if (bi->span->block_size == DEPOT_PAGE_SIZE && spare_put(bi->span))
          return;
        bi->span->sampled = 0; /* in_partial's byte, 0 for a free span */
      }
      depot_arena_free_span(depot_segment_base((uintptr_t)p)->arena, bi->span);
      depot_purger_poke();
      return;
    case BLOCK_HUGE:
      if (depot_prof_any_live()) depot_prof_release(p);
      if (depot_huge_free(p)) big_account(d, 1, bi->usable, -1);
      return;
    case BLOCK_GUARD: depot_guard_free(p); return;
    case BLOCK_BAD: return;
  }
}

/* Holds e's block in the quarantine; checks and frees the blocks that
 * leave it. */
static void quarantine(const depot_qentry_t *e) {
  enum { BATCH = 16 };
  depot_qentry_t out[BATCH];
  /* e == NULL: everything leaves (trimming). */
  for (unsigned n = e ? depot_quarantine_put(e, out, BATCH)
                      : depot_quarantine_flush(out, BATCH);
       ; n = e ? depot_quarantine_put(NULL, out, BATCH)
               : depot_quarantine_flush(out, BATCH)) {
    for (unsigned k = 0; k < n; k++) {
      block_info_t bi;
      depot_quarantine_check(&out[k]);
      if (depot_classify(out[k].block, &bi) != BLOCK_BAD)
        release(out[k].block, out[k].domain, &bi);
    }
    if (n < BATCH) return;
  }
}

/* Whether a is the start of a small block of domain d in the region, read
 * from the page table (its list id in *li, the class size in *usable) and
 * the span's first page: what realloc and a remote free need, without the
 * full classification.  0 sends the caller to the full path, which reports
 * whatever is wrong. */
static inline int region_small_block(uintptr_t a, unsigned d, unsigned *li,
                                     uint32_t *usable) {
  uintptr_t off = depot_region_offset(a);
  if (!depot_region_contains(off)) return 0;
  unsigned id = depot_region_list_id(off);
  if (id == 0 || depot_list_domain(id) != d) return 0;
  const depot_span_t *s =
      depot_load_relaxed(&depot_segment_base(a)->pagemap[depot_page_index(a)]);
  unsigned cls = depot_list_class(id);
  if (!depot_class_divides(cls, (uint32_t)(a - (uintptr_t)depot_span_start(s))))
    return 0;
  *li = id;
  *usable = depot_class_size[cls];
  return 1;
}

static depot_noinline void free_full(void *p, unsigned d);

depot_noinline void depot_free_slow(void *p, unsigned d) {
  /* A remote free (a small block of another owner's heap, the common way
   * here): straight to the outbox, without the full classification.  Not
   * while the quarantine is on (it holds every freed block first) or for a
   * thread without a cache yet (the full path makes one). */
  depot_tcache_t *tc = depot_tls_cache();
  uintptr_t off = depot_region_offset((uintptr_t)p);
  unsigned li;
  /* The page table alone, as the fast path: a small page of domain d whose
   * owner is another heap.  (Whether p starts a block is not checked here,
   * as the fast path does not check it for the thread's own blocks.) */
  if (depot_likely(!depot_quarantine_on && depot_region_contains(off) &&
                   (li = depot_region_list_id(off)) != 0 &&
                   depot_list_domain(li) == d && d < DEPOT_NDOMAINS &&
                   (li & ~(DEPOT_LISTS_PER_OWNER - 1)) != tc->owner_base &&
                   tc->owner_base != DEPOT_OWNER_BASE_NONE)) {
    /* The fast path's push into the outbox failed (depot_free_with):
     * nothing pending, or the pending block's bucket to set up or post, or
     * its free key, or p pending already.  tc is the live cache of
     * the thread's slot (owner_base is set): held for the post as a slow
     * path holds it, without the clock (depot_idle_hold). */
    depot_idle_hold(tc);
    depot_tcache_remote_free(tc, p, li);
    depot_idle_leave();
    return;
  }
  free_full(p, d);
}

/* Every free the slow path does not send to the outbox at once: NULL, bad
 * pointers, wrong domains, big and guarded blocks, the thread's own blocks
 * whose bin is full, the quarantine. */
static depot_noinline void free_full(void *p, unsigned d) {
  if (!p) return;
  block_info_t bi;
  if (d >= DEPOT_NDOMAINS) {
    depot_bad_pointer("free", p, "invalid domain");
    return;
  }
  if (!check_block("free", p, d, &bi)) return;
  if (bi.kind == BLOCK_SMALL && ((uintptr_t *)p)[1] == depot_free_key) {
    /* The fast path sends a block carrying the free key here.  A small
     * block carries it from its free until an allocation hands it out
     * again (every allocation path clears it): while it waits in a bin, an
     * outbox, a pool's batch or inside an inbox's chain.  So this block is
     * free already, freed twice: on this thread's bin (a walk says which,
     * for the report) or in a pool or another thread's cache (its owner's
     * bin, when another thread frees it there: the reverse of the remote
     * case in depot_tcache_remote_free).  The key is random: data equals
     * it only where a program copied it out of freed memory. */
    depot_tcache_t *tc = depot_thread_cache();
    int here = tc && depot_tcache_holds(tc, p, d, depot_list_class(bi.list_id));
    if (tc) depot_idle_leave();
    double_free("free", p, d, bi.usable,
                here ? "in the thread cache" : DEPOT_FREED_ELSEWHERE);
    return;
  }
  if (depot_unlikely(depot_quarantine_on) && bi.kind != BLOCK_GUARD &&
      depot_quarantine_takes(bi.usable)) {
    if (depot_quarantine_holds(p)) {
      double_free("free", p, d, bi.usable, "in the quarantine");
      return;
    }
    depot_qentry_t e = {p, bi.usable, 0, bi.usable, 0, d};
    quarantine(&e);
    return;
  }
  release(p, d, &bi);
}

void depot_free_quarantined(void *block, unsigned d, size_t user_off,
                            size_t size, uint64_t serial) {
  block_info_t bi;
  if (d >= DEPOT_NDOMAINS || !check_block("free", block, d, &bi)) return;
  if (!depot_quarantine_on || bi.kind == BLOCK_GUARD ||
      !depot_quarantine_takes(bi.usable)) {
    release(block, d, &bi);
    return;
  }
  depot_qentry_t e = {block, bi.usable, user_off, size, serial, d};
  quarantine(&e);
}

/* ---- the other entry points ---------------------------------------------- */

void *depot_calloc(size_t n, size_t size, unsigned d) {
  if (size && n > PTRDIFF_MAX / size) {
    errno = ENOMEM;
    return NULL;
  }
  size_t total = n * size;
  size_t dirty = total;
  void *p;
  if (total > DEPOT_SMALL_MAX) {
    p = big_alloc(total, DEPOT_MIN_ALIGN, d, &dirty);
    if (p) DEPOT_VG_ALLOCATED(p, total, 0);
  } else {
    p = depot_alloc(total, d);
  }
  /* Fresh pages are zero already: only what may hold old data is cleared,
   * so a huge calloc does not fault in pages it never uses.  (Under
   * Valgrind all of it, so that memcheck sees it defined.) */
  if (DEPOT_VG) dirty = total;
  if (p) memset(p, 0, dirty < total ? dirty : total);
  return p;
}

/* A small block that must grow to this size or more moves to a page run
 * (a large block) rather than to the next class, so that a block that
 * keeps growing then grows in place (resize_in_place) instead of being
 * copied at every class boundary (four per doubling); a page run shrinks
 * in place down to it.  Half a page: a run then wastes at most half of
 * itself to page rounding, and only a block that grew by realloc past
 * 4 KiB pays it (a string grown 16 bytes at a time to 8 KiB was copied at
 * each of the class boundaries above 4 KiB). */
#define REALLOC_RUN_MIN (DEPOT_PAGE_SIZE / 2)

/* Where a growing run is placed: at the front of a free span of at least
 * this many pages, or of twice its own, if the arena has one (the first
 * span of its list of the longest free spans), so that it can go on
 * growing in place; else wherever it fits. */
#define REALLOC_RUN_ROOM_PAGES DEPOT_ARENA_FREE_LISTS

/* A page run of want bytes for a block that grows by realloc. */
static void *growing_run(size_t want, unsigned d) {
  size_t npages = (want + DEPOT_PAGE_SIZE - 1) >> DEPOT_PAGE_SHIFT;
  size_t room =
      2 * npages > REALLOC_RUN_ROOM_PAGES ? 2 * npages : REALLOC_RUN_ROOM_PAGES;
  void *q = run_init(
      depot_arena_alloc_span_room(depot_numa_arena_for(depot_numa_home()),
                                  npages, room, DEPOT_SPAN_LARGE),
      npages, d);
  if (q) {
    depot_purger_poke();
    return q;
  }
  return big_alloc(want, DEPOT_MIN_ALIGN, d, NULL); /* retries, errno */
}

/* Whether a block of usable bytes stays where it is for a realloc to want
 * bytes: it holds them and would not be more than half empty (the smallest
 * blocks always stay). */
static inline int stays_in_place(size_t want, size_t usable) {
  return want <= usable && (want > usable / 2 || usable <= DEPOT_MIN_ALIGN);
}

/* What small_move asks depot_alloc for when a block of usable bytes below
 * a page run moves to want bytes.  Growth by a small step (a string
 * appended to, a vector pushed): half again as much, so that the block
 * skips classes (four per doubling) instead of being copied at every
 * boundary; a block that grows by a big step gets what it asked for.
 * (depot_prof_realloc counts the growth to what it gets.) */
static size_t small_move_get(size_t usable, size_t want) {
  if (want > usable && want - usable <= usable / 4 &&
      usable + usable / 2 < REALLOC_RUN_MIN)
    return usable + usable / 2;
  return want;
}

/* Moves small block p (usable bytes), or a page run, to a block of want
 * bytes: a page run if it grows to REALLOC_RUN_MIN or more. */
static depot_noinline void *small_move(void *p, size_t usable, size_t want,
                                       unsigned d) {
  void *q;
  if (want > usable && want >= REALLOC_RUN_MIN &&
      !is_huge(want, DEPOT_MIN_ALIGN)) {
    q = growing_run(want, d);
    if (q) DEPOT_VG_ALLOCATED(q, want, 0);
  } else {
    q = depot_alloc(small_move_get(usable, want), d);
  }
  if (!q) return NULL; /* p untouched */
  memcpy(q, p, want < usable ? want : usable);
  depot_free(p, d);
  return q;
}

/* Grows or shrinks a large or huge block without copying when it stays of
 * its kind: a page run takes or gives back the pages after it, a mapping is
 * remapped.  Returns the block's (possibly new) address, or NULL if it must
 * move. */
static void *resize_in_place(void *p, size_t want, unsigned d,
                             const block_info_t *bi) {
  if (bi->kind == BLOCK_HUGE && is_huge(want, DEPOT_MIN_ALIGN)) {
    void *q = depot_huge_resize(p, want);
    if (!q) return NULL;
    big_account(d, 1, bi->usable, -1);
    big_account(d, 1, depot_huge_usable(want), 1);
    return q;
  }
  if (bi->kind == BLOCK_LARGE && want >= REALLOC_RUN_MIN &&
      !is_huge(want, DEPOT_MIN_ALIGN)) {
    depot_span_t *s = bi->span;
    size_t npages = (want + DEPOT_PAGE_SIZE - 1) >> DEPOT_PAGE_SHIFT;
    if (depot_arena_resize_span(depot_segment_base((uintptr_t)p)->arena, s,
                                npages) != 0)
      return NULL;
    s->block_size = (uint32_t)(npages << DEPOT_PAGE_SHIFT);
    big_account(d, 0, bi->usable, -1);
    big_account(d, 0, s->block_size, 1);
    return p;
  }
  return NULL;
}

/* realloc through the full classification: every block that is not a
 * small block of the region starting where the page table says. */
static depot_noinline void *realloc_full(void *p, size_t size, unsigned d) {
  if (!p) return depot_alloc(size, d);
  if (size > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  size_t want = size ? size : 1;
  block_info_t bi;
  if (!check_block("realloc", p, d, &bi)) {
    errno = EINVAL;
    return NULL;
  }
  /* A block the quarantine holds is allocated in its span's eyes, but
   * freed: as free() reports a second free of it, realloc reports it. */
  if (depot_unlikely(depot_quarantine_on) && bi.kind != BLOCK_GUARD &&
      depot_quarantine_holds(p)) {
    double_free("realloc", p, d, bi.usable, "in the quarantine");
    errno = EINVAL;
    return NULL;
  }
  void *q;
  /* Stay in place unless the block would be more than half empty; under
   * Valgrind always move, so that memcheck's idea of the block stays exact. */
  if (!DEPOT_VG && bi.kind != BLOCK_GUARD) {
    unsample(p, &bi);
    if (stays_in_place(want, bi.usable)) return p;
    if ((q = resize_in_place(p, want, d, &bi)) != NULL) return q;
  }
  q = depot_alloc(want, d);
  if (!q) return NULL; /* p untouched */
  /* Copies the usable size, which may exceed what was asked for: memcheck
   * must not call that a read past the block. */
  DEPOT_VG_QUIET_BEGIN();
  memcpy(q, p, want < bi.usable ? want : bi.usable);
  DEPOT_VG_QUIET_END();
  depot_free(p, d);
  return q;
}

/* The span of page run p of domain d, read from the page table and the
 * segment's page map as region_small_block reads a small block's, or NULL
 * (anything else, a heap's run, a sample: the full path).  The caller owns
 * p, so the span's fields are stable. */
static inline depot_span_t *region_run(uintptr_t a, unsigned d) {
  uintptr_t off = depot_region_offset(a);
  if (!depot_region_contains(off) || depot_region_list_id(off) != 0 ||
      !depot_segmap_test(a))
    return NULL;
  depot_span_t *s =
      depot_load_relaxed(&depot_segment_base(a)->pagemap[depot_page_index(a)]);
  if (!s || s->state != DEPOT_SPAN_LARGE ||
      (uintptr_t)depot_span_start(s) != a || s->domain != d || s->heap != 0 ||
      s->sampled)
    return NULL;
  return s;
}

/* realloc of page run p (span s) to want bytes: in place as realloc_full
 * keeps it (fits and at most half empty, or the arena resizes the span),
 * else moved.  NULL: out of memory, p untouched. */
static depot_noinline void *run_realloc(void *p, size_t want, unsigned d,
                                        depot_span_t *s) {
  size_t usable = s->block_size;
  if (want <= usable && want > usable / 2) return p;
  block_info_t bi = {
      .kind = BLOCK_LARGE, .domain = d, .usable = usable, .span = s};
  void *q = resize_in_place(p, want, d, &bi);
  return q ? q : small_move(p, usable, want, d);
}

void *depot_realloc(void *p, size_t size, unsigned d) {
  /* A small block of the region: its page-table entry names its class and
   * domain, the span's first page where blocks start, so no classification
   * (a multiply checks that p starts a block, depot_class_divides; anything else takes
   * the full path, which reports it).  Under Valgrind the full path always
   * moves the block. */
  unsigned li;
  uint32_t usable;
  /* With the quarantine on, a freed block it holds looks allocated to both
   * fast paths: the full path asks the quarantine. */
  if (depot_unlikely(depot_quarantine_on)) return realloc_full(p, size, d);
  if (!DEPOT_VG && size <= DEPOT_SMALL_MAX &&
      region_small_block((uintptr_t)p, d, &li, &usable)) {
    size_t want = size ? size : 1;
    if (stays_in_place(want, usable)) return p;
    return small_move(p, usable, want, d);
  }
  /* A page run of the region: the same reads, no classification (a block
   * that grew by realloc past REALLOC_RUN_MIN lives in one). */
  depot_span_t *s;
  if (!DEPOT_VG && size <= PTRDIFF_MAX && d < DEPOT_NDOMAINS &&
      (s = region_run((uintptr_t)p, d)) != NULL)
    return run_realloc(p, size ? size : 1, d, s);
  return realloc_full(p, size, d);
}

/* ---- realloc with profiling on (prof.h) -------------------------------------
 * A realloc counts only the block's growth against the countdown, so that a
 * block grown by many reallocs is one allocation of its final size, not one
 * per step (which sampled a growing buffer again and again, and moved it to
 * and from a sample's page run each time).  What an unsampled block counts
 * is the growth of its usable size (to what realloc gets: usable_for): the entry
 * points count a malloc at its requested size s0, so a block grown to
 * usable size u has counted s0 + (u - u0), and is sampled with the
 * probability of a block of that many bytes; the requested size of an
 * unsampled block is known nowhere, and counting want - usable alone
 * would lose the rounding at every class boundary (a string grown 16 bytes
 * at a time would count almost nothing).  pprof weights the sample by its
 * requested size S, so for a block grown by realloc the estimate lies
 * between S and its usable size (high by at most the class's rounding:
 * 25% below 16 KiB, less than a page above).  A sample stays a sample
 * as it grows or shrinks (a page run, resized in place or moved to another
 * run, or a huge block), and its record follows (depot_prof_resize); its
 * own growth is not counted (the block holds its point already).  The
 * countdown then samples a block of final size S with probability
 * 1 - exp(-S / prof_sample) up to that rounding, as if malloc had made it
 * at S. */

/* The usable size a block of want bytes gets when realloc grows one to it
 * (small_move asks for small_move_get, resize_in_place, a move through
 * depot_alloc). */
static size_t usable_for(size_t want) {
  if (want < REALLOC_RUN_MIN && want <= DEPOT_SMALL_MAX)
    return depot_class_size[depot_size_to_class(want)];
  if (is_huge(want, DEPOT_MIN_ALIGN)) return depot_huge_usable(want);
  return depot_align_up(want, DEPOT_PAGE_SIZE);
}

/* A new page run (or huge block) of want bytes marked as a sample, holding
 * the contents of p (usable bytes); NULL if there is no memory. */
static DEPOT_PROF_TEXT void *sample_copy(void *p, size_t want, size_t usable,
                                         unsigned d) {
  void *q = big_alloc(want, DEPOT_MIN_ALIGN, d, NULL);
  if (!q) return NULL;
  mark_sampled(q);
  DEPOT_VG_ALLOCATED(q, want, 0);
  DEPOT_VG_QUIET_BEGIN();
  memcpy(q, p, want < usable ? want : usable);
  DEPOT_VG_QUIET_END();
  return q;
}

/* Block p (as bi) resized to want bytes as a sample: grown or shrunk in
 * place where its kind allows (not under Valgrind, as realloc_full), else
 * copied to a new page run or huge block, and p freed.  recorded: p is a
 * sample already, whose record follows it (depot_prof_resize); else the
 * block is marked and recorded as a new sample.  NULL: no memory, p
 * untouched (errno ENOMEM). */
static DEPOT_PROF_TEXT void *to_sample(void *p, size_t want, unsigned d,
                                       const block_info_t *bi, int recorded) {
  void *q = DEPOT_VG ? NULL : resize_in_place(p, want, d, bi);
  int moved = q == NULL;
  if (moved && (q = sample_copy(p, want, bi->usable, d)) == NULL) return NULL;
  if (recorded) {
    /* In place, a huge block remapped elsewhere gave p up before its
     * record moves: another thread may map a block there and sample or
     * free it meanwhile.  The table then holds two records of p for a
     * moment, and a lookup may take either (a free there, or this move,
     * the other one's): each record still stands for one live block and
     * leaves with it, the counters stay the sums of the records, and only
     * the stacks of those two samples may be swapped (prof_api_test
     * HugeSamplesMovedWhileOthersMap).  Moved, the record goes with the
     * sample before p's free, so that the free finds none (a one-page run
     * is kept for the next sample). */
    depot_prof_resize(p, q, want);
  } else {
    mark_sampled(q); /* sample_copy's is marked already: no harm */
    depot_prof_record(q, want);
  }
  if (moved) depot_free(p, d);
  return q;
}

/* Resizes sample p (a marked page run or a huge block in the table) to
 * want bytes, keeping it a sample: in place while it is at most half
 * empty (a one-page run down to any size), else grown or shrunk in place
 * where its kind allows, else moved to a new page run or huge block.
 * Under Valgrind it always moves, as realloc_full. */
static DEPOT_PROF_TEXT void *sample_resize(void *p, size_t want, unsigned d,
                                           const block_info_t *bi) {
  if (!DEPOT_VG && want <= bi->usable &&
      (want > bi->usable / 2 || bi->usable <= DEPOT_PAGE_SIZE)) {
    depot_prof_resize(p, p, want);
    return p;
  }
  return to_sample(p, want, d, bi, 1);
}

/* A small block of want bytes, more than its usable size `small`: its
 * growth counts, and when it holds a sample point the block moves to a
 * page run of its own (depot_prof_alloc: a kept page when it fits in
 * one), else as depot_realloc moves it. */
static depot_noinline DEPOT_PROF_TEXT void *prof_small_grow(void *p,
                                                            size_t small,
                                                            size_t want,
                                                            unsigned d) {
  void *q;
  /* The growth to the block small_move would make (a small step gets half
   * again its size: counting only to want's class left most of a string
   * grown 16 bytes at a time uncounted). */
  if (!depot_prof_take(usable_for(small_move_get(small, want)) - small) ||
      !(q = depot_prof_alloc(want, DEPOT_MIN_ALIGN, d, 0)))
    return small_move(p, small, want, d);
  memcpy(q, p, small);
  depot_free(p, d);
  return q;
}

/* Every block but a small one of the region (and all under Valgrind). */
static depot_noinline DEPOT_PROF_TEXT void *prof_realloc_full(void *p,
                                                              size_t size,
                                                              unsigned d) {
  if (size > PTRDIFF_MAX || d >= DEPOT_NDOMAINS)
    return realloc_full(p, size, d); /* which says why */
  size_t want = size ? size : 1;
  block_info_t bi;
  /* A block the quarantine holds looks allocated (a sample's span is
   * still marked, its record still live): realloc_full reports it, as it
   * does for depot_realloc, before anything here resizes or frees it. */
  if (depot_classify(p, &bi) == BLOCK_BAD || bi.domain != d ||
      bi.kind == BLOCK_GUARD ||
      (depot_unlikely(depot_quarantine_on) && depot_quarantine_holds(p)))
    return realloc_full(p, size, d); /* reports a bad p */
  if ((bi.kind == BLOCK_LARGE && bi.span->sampled) ||
      (bi.kind == BLOCK_HUGE && depot_prof_any_live() &&
       depot_prof_is_sample(p)))
    return sample_resize(p, want, d, &bi);
  if (want <= bi.usable || !depot_prof_take(usable_for(want) - bi.usable) ||
      !depot_prof_due(want))
    return realloc_full(p, size, d);
  /* The growth holds a sample point: a page run or huge block becomes the
   * sample where it grows in place (no copy), else it moves to a new one
   * (as does a small block under Valgrind). */
  return to_sample(p, want, d, &bi, 0);
}

DEPOT_PROF_TEXT void *depot_prof_realloc(void *p, size_t size, unsigned d) {
  unsigned li;
  uint32_t small;
  /* As depot_realloc (with the quarantine on, a freed block it holds
   * looks allocated to the fast path: the full path asks the quarantine);
   * a small block is never a sample. */
  if (!DEPOT_VG && !depot_unlikely(depot_quarantine_on) &&
      size <= DEPOT_SMALL_MAX &&
      region_small_block((uintptr_t)p, d, &li, &small)) {
    size_t want = size ? size : 1;
    if (stays_in_place(want, small)) return p;
    if (want <= small) return small_move(p, small, want, d);
    return prof_small_grow(p, small, want, d);
  }
  return prof_realloc_full(p, size, d);
}

void *depot_aligned_alloc(size_t align, size_t size, unsigned d) {
  if (!depot_is_pow2(align) || d >= DEPOT_NDOMAINS) {
    errno = EINVAL;
    return NULL;
  }
  if (align <= DEPOT_MIN_ALIGN) return depot_alloc(size, d);
  if (size > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  unsigned c;
  if (size <= DEPOT_SMALL_MAX && align <= DEPOT_PAGE_SIZE &&
      (c = depot_aligned_class(size, align)) != 0) {
    void *p = small_alloc(c, d);
    if (p) DEPOT_VG_ALLOCATED(p, size ? size : 1, 0);
    return p;
  }
  void *p = big_alloc(size ? size : 1, align, d, NULL);
  if (p) DEPOT_VG_ALLOCATED(p, size ? size : 1, 0);
  return p;
}

size_t depot_usable_size(const void *p) {
  block_info_t bi;
  return depot_classify(p, &bi) == BLOCK_BAD ? 0 : bi.usable;
}

depot_cold void depot_usable_size_interior(const void *p) {
  depot_bad_pointer("malloc_usable_size", p, "not the start of a block");
}

int depot_owns(const void *p) {
  block_info_t bi;
  return depot_classify(p, &bi) != BLOCK_BAD;
}

const char *depot_pointer_why(const void *p) {
  block_info_t bi;
  return depot_classify(p, &bi) == BLOCK_BAD ? bi.why : NULL;
}

int depot_block_freed(const void *p) {
  return ((const uintptr_t *)p)[1] == depot_free_key;
}

int depot_domain_of(const void *p) {
  block_info_t bi;
  return depot_classify(p, &bi) == BLOCK_BAD ? -1 : (int)bi.domain;
}

int depot_block_nodes(const void *p, unsigned *pool_node,
                      unsigned *memory_node) {
  block_info_t bi;
  if (depot_classify(p, &bi) != BLOCK_SMALL && bi.kind != BLOCK_LARGE)
    return -1;
  unsigned mem = depot_segment_base((uintptr_t)p)->node;
  *memory_node = mem;
  *pool_node = bi.kind == BLOCK_SMALL ? depot_list_node(bi.list_id) : mem;
  return 0;
}

void depot_trim(void) {
  if (!depot_initialised()) return;
  if (depot_quarantine_on) quarantine(NULL); /* checked as they leave */
  depot_thread_flush();
  depot_purger_reclaim();
}

void *depot_alloc_call(size_t size, unsigned domain) {
  return depot_alloc(size, domain);
}

void depot_free_call(void *p, unsigned domain) { depot_free(p, domain); }
