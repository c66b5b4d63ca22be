/* alloc.c: the core's slow paths and the entry points that are not on the
 * fast path: initialisation, thread-cache set-up and tear-down, large and
 * huge blocks, calloc, realloc, aligned allocation, pointer classification,
 * trimming and statistics. */
#define _GNU_SOURCE
#include "alloc/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/arena.h"
#include "alloc/central.h"
#include "alloc/huge.h"
#include "alloc/meta.h"
#include "alloc/numa.h"
#include "alloc/os.h"

depot_core_options_t depot_core_options = {
    .tcache_max_bytes = (size_t)2 << 20,
    .tcache_batch = 32,
    .arena_reserve_bytes = (size_t)64 << 30,
    .huge_threshold_bytes = (size_t)2 << 20,
    .purge_delay_ms = 1000,
    .purge_lazy = 0,
    .abort_on_bad_pointer = 1,
};

/* ---- initialisation ------------------------------------------------------
 * init_state: 0 not done, 1 in progress, 2 done.  The release store of 2
 * publishes everything init_once wrote (tables, arenas, pools); every reader
 * of those goes through depot_init()'s acquire load first. */
static _Atomic int init_state;
static __thread int init_running; /* this thread is inside init_once */
static pthread_key_t tcache_key;

static void tcache_exit(void *arg) {
  depot_tls_tcache = &depot_tcache_dead;
  depot_tcache_destroy(arg);
}

/* ---- fork ------------------------------------------------------------------
 * Every lock is taken before fork, in the lock order (NUMA install,
 * registry, central pools, arenas, region, huge table, metadata), and released after it in
 * both processes, so the child's only thread finds every structure
 * consistent and unlocked and can allocate at once.  The caches of the
 * parent's other threads stay registered in the child and their blocks stay
 * unused there, as in any forked copy of a multithreaded heap. */
static void fork_prepare(void) {
  depot_numa_prefork();
  depot_tcache_prefork();
  for (unsigned n = 0; n < depot_numa_nodes(); n++) depot_central_prefork(n);
  for (unsigned n = 0; n < depot_numa_nodes(); n++)
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      pthread_mutex_lock(&depot_arenas[n][k]->lock);
  depot_region_prefork();
  depot_huge_prefork();
  depot_meta_prefork();
}

static void fork_finish(void) {
  depot_meta_postfork();
  depot_huge_postfork();
  depot_region_postfork();
  for (unsigned n = 0; n < depot_numa_nodes(); n++)
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      pthread_mutex_unlock(&depot_arenas[n][k]->lock);
  for (unsigned n = 0; n < depot_numa_nodes(); n++) depot_central_postfork(n);
  depot_tcache_postfork();
  depot_numa_postfork();
}

static int init_once(void) {
  if (depot_core_configure) depot_core_configure();
  depot_sizeclass_init(depot_core_options.tcache_batch);
  int err = depot_central_global_init();
  if (err) return err;
  depot_region_init(depot_core_options.arena_reserve_bytes);
  if ((err = depot_numa_init()) != 0) return err;
  if ((err = pthread_atfork(fork_prepare, fork_finish, fork_finish)) != 0)
    return err;
  return pthread_key_create(&tcache_key, tcache_exit);
}

static depot_noinline int init_slow(void) {
  if (init_running) return EAGAIN; /* re-entered from inside init */
  for (;;) {
    int expected = 0;
    if (atomic_compare_exchange_strong_explicit(&init_state, &expected, 1,
                                                memory_order_acquire,
                                                memory_order_acquire)) {
      init_running = 1;
      int err = init_once();
      init_running = 0;
      depot_store_release(&init_state, err ? 0 : 2);
      return err;
    }
    if (expected == 2) return 0;
    while (depot_load_acquire(&init_state) == 1) sched_yield();
    if (depot_load_acquire(&init_state) == 2) return 0;
  }
}

int depot_init(void) {
  if (depot_likely(depot_load_acquire(&init_state) == 2)) return 0;
  return init_slow();
}


/* The calling thread's cache, created on first use; NULL for a thread that
 * is exiting or when no metadata memory is left. */
static depot_tcache_t *thread_cache(void) {
  depot_tcache_t *tc = depot_tls_tcache;
  if (depot_likely(tc != &depot_tcache_empty && tc != &depot_tcache_dead))
    return tc;
  if (tc == &depot_tcache_dead || depot_init() != 0) return NULL;
  tc = depot_tcache_create(depot_numa_home(), depot_core_options.tcache_max_bytes);
  if (!tc) return NULL;
  depot_tls_tcache = tc;
  pthread_setspecific(tcache_key, tc);
  return tc;
}

/* ---- bad pointers ---------------------------------------------------------- */

static const char *const domain_names[DEPOT_NDOMAINS] = {"raw", "mem", "obj"};

void depot_say(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
  (void)w;
}

void depot_bad_pointer(const char *op, const void *p, const char *why) {
  depot_say("depot: %s(%p): %s%s", op, p, why,
            depot_core_options.abort_on_bad_pointer
                ? ""
                : " (ignored; the block is leaked)");
  if (depot_core_options.abort_on_bad_pointer) abort();
}

static void wrong_domain(const char *op, const void *p, unsigned was,
                         unsigned used) {
  char why[96];
  snprintf(why, sizeof why, "block of domain '%s' used with domain '%s'",
           domain_names[was], domain_names[used]);
  depot_bad_pointer(op, p, why);
}

/* ---- classification ------------------------------------------------------ */

typedef enum { BLOCK_BAD = 0, BLOCK_SMALL, BLOCK_LARGE, BLOCK_HUGE } block_kind_t;

typedef struct {
  block_kind_t kind;
  unsigned domain;
  size_t usable;
  depot_span_t *span; /* SMALL and LARGE */
  unsigned list_id;   /* SMALL */
  const char *why;    /* BAD */
} block_info_t;

/* What p is, without faulting, whatever p is. */
static block_kind_t classify(const void *p, block_info_t *bi) {
  uintptr_t a = (uintptr_t)p;
  memset(bi, 0, sizeof *bi);
  bi->why = "not allocated by Depot";
  if (!depot_segmap_test(a)) {
    if (a % DEPOT_MIN_ALIGN == 0 && depot_huge_lookup(p, &bi->usable, &bi->domain))
      bi->kind = BLOCK_HUGE;
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
      bi->why = "not the start of a block";
      return bi->kind;
    }
    bi->kind = BLOCK_SMALL;
    bi->list_id = li;
    bi->domain = depot_list_domain(li);
    bi->usable = s->block_size;
  } else if (s->state == DEPOT_SPAN_LARGE) {
    if ((char *)p != start) {
      bi->why = "not the start of a block";
      return bi->kind;
    }
    bi->kind = BLOCK_LARGE;
    bi->domain = s->domain;
    bi->usable = s->block_size;
  } else {
    return bi->kind;
  }
  bi->span = s;
  return bi->kind;
}

/* Classifies p for op in domain d, reporting a bad pointer or a wrong
 * domain.  Returns 0 when p must not be touched. */
static int check_block(const char *op, const void *p, unsigned d,
                       block_info_t *bi) {
  if (classify(p, bi) == BLOCK_BAD) {
    depot_bad_pointer(op, p, bi->why);
    return 0;
  }
  if (bi->domain != d) {
    wrong_domain(op, p, bi->domain, d);
    return 0;
  }
  return 1;
}

/* ---- large and huge block counts (statistics; relaxed) ------------------ */

static _Atomic size_t big_count[DEPOT_NDOMAINS][2], big_bytes[DEPOT_NDOMAINS][2];

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
 * blocks of its node, so it is flushed first.  Checked on every refill. */
static void follow_cpu(depot_tcache_t *tc) {
  if (depot_likely(!depot_numa_multi())) return;
  unsigned node = depot_numa_home();
  if (node == tc->node) return;
  depot_tcache_flush_all(tc);
  tc->node = node;
  tc->node_base = node << DEPOT_LIST_NODE_SHIFT;
}

static void *small_alloc(unsigned cls, unsigned d) {
  depot_tcache_t *tc = thread_cache();
  void *p;
  if (depot_likely(tc != NULL)) {
    follow_cpu(tc);
    p = depot_tcache_alloc_slow(tc, d, cls);
  } else if (depot_init() == 0) {
    p = depot_central_alloc_one(depot_list_id(depot_numa_home(), d, cls));
  } else {
    p = NULL;
  }
  if (!p) errno = ENOMEM;
  return p;
}

/* Whether a request of size and align bypasses the arenas. */
static int is_huge(size_t size, size_t align) {
  size_t npages = (size + DEPOT_PAGE_SIZE - 1) >> DEPOT_PAGE_SHIFT;
  size_t align_pages = align > DEPOT_PAGE_SIZE ? align >> DEPOT_PAGE_SHIFT : 1;
  /* npages + align_pages within a segment guarantees a fresh segment fits. */
  return size > depot_core_options.huge_threshold_bytes ||
         npages + align_pages > DEPOT_SPAN_MAX_PAGES;
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
  void *p = NULL;
  if (is_huge(size, align)) {
    size_t usable;
    p = depot_huge_alloc(size, align, d, &old_data, &usable);
    if (p) big_account(d, 1, usable, 1);
  } else {
    size_t npages = (size + DEPOT_PAGE_SIZE - 1) >> DEPOT_PAGE_SHIFT;
    size_t ap = align > DEPOT_PAGE_SIZE ? align >> DEPOT_PAGE_SHIFT : 1;
    depot_span_t *s = depot_arena_alloc_span(
        depot_numa_arena_for(depot_numa_home()), npages, ap, DEPOT_SPAN_LARGE);
    if (s) {
      s->domain = (uint8_t)d;
      s->block_size = (uint32_t)(npages << DEPOT_PAGE_SHIFT);
      p = depot_span_start(s);
      big_account(d, 0, s->block_size, 1);
    }
  }
  if (!p) errno = ENOMEM;
  if (dirty) *dirty = old_data;
  return p;
}

depot_noinline void *depot_alloc_slow(size_t size, unsigned d) {
  if (depot_unlikely(d >= DEPOT_NDOMAINS)) {
    errno = EINVAL;
    return NULL;
  }
  void *p = size <= DEPOT_SMALL_MAX
                ? small_alloc(size ? depot_size_to_class(size) : 1, d)
                : big_alloc(size, DEPOT_MIN_ALIGN, d, NULL);
  if (p) DEPOT_VG_ALLOCATED(p, size ? size : 1, 0);
  return p;
}

depot_noinline void depot_free_slow(void *p, unsigned d) {
  if (!p) return;
  block_info_t bi;
  if (d >= DEPOT_NDOMAINS) {
    depot_bad_pointer("free", p, "invalid domain");
    return;
  }
  if (!check_block("free", p, d, &bi)) return;
  switch (bi.kind) {
    case BLOCK_SMALL: {
      depot_tcache_t *tc = thread_cache();
      if (tc && depot_list_node(bi.list_id) == tc->node)
        depot_tcache_free_slow(tc, p, d, depot_list_class(bi.list_id));
      else
        depot_central_free_one(bi.list_id, p);
      return;
    }
    case BLOCK_LARGE:
      big_account(d, 0, bi.usable, -1);
      depot_arena_free_span(depot_segment_base((uintptr_t)p)->arena, bi.span);
      return;
    case BLOCK_HUGE:
      if (depot_huge_free(p)) big_account(d, 1, bi.usable, -1);
      return;
    case BLOCK_BAD:
      return;
  }
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
  if (bi->kind == BLOCK_LARGE && want > DEPOT_SMALL_MAX &&
      !is_huge(want, DEPOT_MIN_ALIGN)) {
    depot_span_t *s = bi->span;
    size_t npages = (want + DEPOT_PAGE_SIZE - 1) >> DEPOT_PAGE_SHIFT;
    if (depot_arena_resize_span(depot_segment_base((uintptr_t)p)->arena, s, npages) != 0)
      return NULL;
    s->block_size = (uint32_t)(npages << DEPOT_PAGE_SHIFT);
    big_account(d, 0, bi->usable, -1);
    big_account(d, 0, s->block_size, 1);
    return p;
  }
  return NULL;
}

void *depot_realloc(void *p, size_t size, unsigned d) {
  if (!p) return depot_alloc(size, d);
  if (size > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  block_info_t bi;
  if (!check_block("realloc", p, d, &bi)) {
    errno = EINVAL;
    return NULL;
  }
  size_t want = size ? size : 1;
  void *q;
  /* Stay in place unless the block would be more than half empty; under
   * Valgrind always move, so that memcheck's idea of the block stays exact. */
  if (!DEPOT_VG) {
    if (want <= bi.usable && (want > bi.usable / 2 || bi.usable <= DEPOT_MIN_ALIGN))
      return p;
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
  if (size <= DEPOT_SMALL_MAX && align <= DEPOT_PAGE_SIZE) {
    /* Spans start on a page and blocks sit at multiples of the class size,
     * so a class whose size is a multiple of align gives aligned blocks. */
    for (unsigned c = size ? depot_size_to_class(size) : 1; c < DEPOT_NCLASSES;
         c++)
      if (depot_class_size[c] % align == 0) {
        void *p = small_alloc(c, d);
        if (p) DEPOT_VG_ALLOCATED(p, size ? size : 1, 0);
        return p;
      }
  }
  void *p = big_alloc(size ? size : 1, align, d, NULL);
  if (p) DEPOT_VG_ALLOCATED(p, size ? size : 1, 0);
  return p;
}

size_t depot_usable_size(const void *p) {
  block_info_t bi;
  return classify(p, &bi) == BLOCK_BAD ? 0 : bi.usable;
}

int depot_owns(const void *p) {
  block_info_t bi;
  return classify(p, &bi) != BLOCK_BAD;
}

int depot_domain_of(const void *p) {
  block_info_t bi;
  return classify(p, &bi) == BLOCK_BAD ? -1 : (int)bi.domain;
}

int depot_block_nodes(const void *p, unsigned *pool_node,
                      unsigned *memory_node) {
  block_info_t bi;
  if (classify(p, &bi) != BLOCK_SMALL && bi.kind != BLOCK_LARGE) return -1;
  unsigned mem = depot_segment_base((uintptr_t)p)->node;
  *memory_node = mem;
  *pool_node = bi.kind == BLOCK_SMALL ? depot_list_node(bi.list_id) : mem;
  return 0;
}

void depot_thread_flush(void) {
  depot_tcache_t *tc = depot_tls_tcache;
  if (tc != &depot_tcache_empty && tc != &depot_tcache_dead)
    depot_tcache_flush_all(tc);
}

void depot_trim(void) {
  if (depot_load_acquire(&init_state) != 2) return;
  depot_thread_flush();
  for (unsigned n = 0; n < depot_numa_nodes(); n++) {
    for (unsigned i = 0; i < DEPOT_POOLS_PER_NODE; i++)
      if (depot_list_class(i) != 0 && depot_list_class(i) < DEPOT_NCLASSES)
        depot_central_drain(&depot_central_table[n][i]);
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      depot_arena_purge(depot_arenas[n][k]);
  }
  depot_huge_release_cache();
}

/* Adds a node's arena statistics, over its shards, to *sum. */
static void node_arena_stats(unsigned node, depot_arena_stats_t *sum) {
  for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++) {
    depot_arena_stats_t as;
    depot_arena_stats(depot_arenas[node][k], &as);
    sum->segments += as.segments;
    sum->free_pages += as.free_pages;
    sum->dirty_pages += as.dirty_pages;
    sum->purged_pages += as.purged_pages;
    sum->binds_ok += as.binds_ok;
    sum->binds_failed += as.binds_failed;
  }
}

void depot_core_stats(depot_core_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->os_mapped_bytes = depot_os_mapped_bytes();
  out->meta_bytes = depot_meta_bytes();
  if (depot_load_acquire(&init_state) != 2) return;
  out->batch_records = depot_central_records();
  depot_arena_stats_t as = {0};
  for (unsigned n = 0; n < depot_numa_nodes(); n++) node_arena_stats(n, &as);
  out->segments = as.segments;
  out->free_pages = as.free_pages;
  out->dirty_pages = as.dirty_pages;
  out->purged_pages = as.purged_pages;
  out->binds_ok = as.binds_ok;
  out->binds_failed = as.binds_failed;
  out->nodes = depot_numa_nodes();
  depot_huge_stats_t hs;
  depot_huge_stats(&hs);
  out->huge_blocks = hs.blocks;
  out->huge_bytes = hs.bytes;
}

void *depot_alloc_call(size_t size, unsigned domain) {
  return depot_alloc(size, domain);
}

void depot_free_call(void *p, unsigned domain) { depot_free(p, domain); }

void depot_core_class_stats(unsigned domain, unsigned cls,
                            depot_class_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (domain >= DEPOT_NDOMAINS || cls == 0 || cls >= DEPOT_NCLASSES ||
      depot_load_acquire(&init_state) != 2)
    return;
  unsigned i = (domain << DEPOT_LIST_CLASS_BITS) | cls;
  for (unsigned n = 0; n < depot_numa_nodes(); n++) {
    depot_central_stats_t cs;
    depot_central_stats(&depot_central_table[n][i], &cs);
    out->spans += cs.spans;
    out->span_bytes += cs.span_bytes;
    out->capacity += cs.capacity;
    out->out += cs.blocks_out;
    out->stacked += cs.stacked;
  }
  out->cached = depot_tcache_cached_blocks(i);
}

void depot_core_big_stats(unsigned domain, depot_big_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (domain >= DEPOT_NDOMAINS) return;
  out->large_blocks = depot_load_relaxed(&big_count[domain][0]);
  out->large_bytes = depot_load_relaxed(&big_bytes[domain][0]);
  out->huge_blocks = depot_load_relaxed(&big_count[domain][1]);
  out->huge_bytes = depot_load_relaxed(&big_bytes[domain][1]);
}

int depot_core_node_stats(unsigned node, depot_node_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (depot_load_acquire(&init_state) != 2 || node >= depot_numa_nodes())
    return -1;
  depot_arena_stats_t as = {0};
  node_arena_stats(node, &as);
  out->segments = as.segments;
  out->free_pages = as.free_pages;
  out->binds_ok = as.binds_ok;
  out->binds_failed = as.binds_failed;
  for (unsigned i = 0; i < DEPOT_POOLS_PER_NODE; i++) {
    unsigned cls = depot_list_class(i);
    if (cls == 0 || cls >= DEPOT_NCLASSES) continue;
    depot_central_stats_t cs;
    depot_central_stats(&depot_central_table[node][i], &cs);
    out->small_spans += cs.spans;
    out->blocks_out += cs.blocks_out;
  }
  return 0;
}

int depot_numa_policy_now(void) { return (int)depot_numa_policy(); }
