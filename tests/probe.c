/* probe.c: see probe.h. */
#include "tests/probe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "alloc/arena.h"
#include "alloc/central.h"
#include "alloc/idle.h"
#include "alloc/meta.h"
#include "alloc/numa.h"
#include "alloc/os.h"

size_t probe_span_max_pages(void) { return DEPOT_SPAN_MAX_PAGES; }
size_t probe_page_size(void) { return DEPOT_PAGE_SIZE; }

size_t probe_usable_size_fast(const void *p) {
  return depot_usable_size_fast(p);
}
int probe_check_level(void) { return DEPOT_CHECK_LEVEL; }

/* The calling thread's cache, entered as a slow path does (idle.h): the
 * caller calls depot_idle_leave when it is done. */
static depot_tcache_t *own_cache(void) {
  depot_tcache_t *tc = depot_tls_cache();
  if (tc == &depot_tcache_dead) return NULL;
  if (tc == &depot_tcache_empty) return depot_idle_parked();
  depot_idle_enter(tc);
  return tc;
}

size_t probe_tcache_held_bytes(void) {
  depot_tcache_t *tc = own_cache();
  size_t n = 0;
  if (!tc) return 0;
  for (unsigned i = 0; i < DEPOT_TCACHE_BINS; i++)
    n += (size_t)depot_bin_count(&tc->bins[i]) *
         depot_class_size[depot_list_class(i) % DEPOT_NCLASSES];
  depot_idle_leave();
  return n;
}

size_t probe_tcache_outbox_blocks(void) {
  depot_tcache_t *tc = own_cache();
  if (!tc) return 0;
  size_t n = depot_tcache_outbox_blocks(tc);
  depot_idle_leave();
  return n;
}

size_t probe_tcache_limit_bytes(void) {
  depot_tcache_t *tc = own_cache();
  size_t n = tc ? tc->limit_bytes : 0;
  if (tc) depot_idle_leave();
  return n;
}

size_t probe_tcache_budget(void) {
  depot_tcache_t *tc = own_cache();
  size_t n = tc ? tc->budget : 0;
  if (tc) depot_idle_leave();
  return n;
}

void probe_region_bounds(size_t *base, size_t *size, size_t *used) {
  uintptr_t b;
  depot_region_bounds(&b, size, used);
  *base = (size_t)b;
}

int probe_region_contains(const void *p) {
  return depot_region_contains(depot_region_offset((uintptr_t)p));
}

struct probe_arena {
  depot_arena_t arena;
};

void *probe_meta_alloc(size_t size) { return depot_meta_alloc(size); }
int probe_other_live_threads(void) { return depot_os_other_live_threads(); }
long probe_read_small_file(const char *path, char *buf, size_t cap) {
  return depot_os_read_small_file(path, buf, cap);
}

char probe_thread_state(long tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
  long n = depot_os_read_small_file(path, buf, sizeof buf - 1);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *close = strrchr(buf, ')');
  return close && close[1] == ' ' ? close[2] : 0;
}

int probe_thread_shard(void) {
  if (depot_init() != 0 || depot_numa_nodes() == 0) return -1;
  depot_arena_t *a = depot_numa_arena_for(0);
  for (int k = 0; k < DEPOT_ARENA_SHARDS; k++)
    if (depot_arenas[0][k] == a) return k;
  return -1;
}
void probe_note_arena_contention(void) { depot_arena_contended = 1; }
unsigned probe_shard_count(void) { return depot_numa_shards(); }
void probe_hold_shard0_lock(int hold) {
  if (hold) pthread_mutex_lock(&depot_arenas[0][0]->lock);
  else pthread_mutex_unlock(&depot_arenas[0][0]->lock);
}
int probe_shard0_lock_has_waiter(void) {
  return __atomic_load_n(&depot_arenas[0][0]->lock.__data.__lock,
                         __ATOMIC_ACQUIRE) > 1;
}
int probe_block_shard(const void *p) {
  if (!depot_segmap_test((uintptr_t)p)) return -1;
  depot_arena_t *a = depot_segment_base((uintptr_t)p)->arena;
  for (int k = 0; k < DEPOT_ARENA_SHARDS; k++)
    if (depot_arenas[0][k] == a) return k;
  return -1;
}
int probe_span_from_own_shard(void) {
  depot_arena_t *a = depot_numa_arena_for(0);
  depot_span_t *s = depot_arena_alloc_span(a, 1, 1, DEPOT_SPAN_LARGE);
  if (!s) return -1;
  depot_arena_free_span(a, s);
  return 0;
}

probe_arena_t *probe_arena_new(void) {
  probe_arena_t *a = depot_meta_alloc(sizeof *a);
  if (a)
    depot_arena_init(&a->arena, 0, 4 * DEPOT_SEGMENT_SIZE, 3600u * 1000u, 0);
  return a;
}

void *probe_arena_alloc(probe_arena_t *a, size_t npages, size_t align_pages) {
  depot_span_t *s =
      depot_arena_alloc_span(&a->arena, npages, align_pages, DEPOT_SPAN_LARGE);
  return s ? depot_span_start(s) : NULL;
}

void probe_arena_free(probe_arena_t *a, void *p) {
  depot_segment_t *seg = depot_segment_base((uintptr_t)p);
  depot_span_t *s =
      depot_load_relaxed(&seg->pagemap[depot_page_index((uintptr_t)p)]);
  depot_arena_free_span(&a->arena, s);
}

const void *probe_span_descriptor(const void *p) {
  depot_segment_t *seg = depot_segment_base((uintptr_t)p);
  return depot_load_relaxed(&seg->pagemap[depot_page_index((uintptr_t)p)]);
}

void probe_arena_purge(probe_arena_t *a) { depot_arena_purge(&a->arena); }

void probe_arena_stats(probe_arena_t *a, size_t *segments, size_t *free_pages,
                       size_t *dirty_pages, size_t *free_spans) {
  depot_arena_stats_t st;
  depot_arena_stats(&a->arena, &st);
  *segments = st.segments;
  *free_pages = st.free_pages;
  *dirty_pages = st.dirty_pages;
  size_t n = 0;
  pthread_mutex_lock(&a->arena.lock);
  for (unsigned b = 0; b < DEPOT_ARENA_FREE_LISTS; b++)
    for (depot_span_t *s = a->arena.free_lists[b]; s; s = s->next) n++;
  pthread_mutex_unlock(&a->arena.lock);
  *free_spans = n;
}

/* probe_pool_t and probe_stash_t are the core's own structures under names
 * the C++ tests can hold. */
static depot_central_t *pool_of(probe_pool_t *p) {
  return (depot_central_t *)p;
}
static depot_batch_stash_t *stash_of(probe_stash_t *s) {
  return (depot_batch_stash_t *)s;
}

probe_pool_t *probe_pool(unsigned domain, unsigned cls) {
  if (depot_init() != 0) return NULL;
  return (probe_pool_t *)depot_central_ready(depot_list_id(0, domain, cls));
}

probe_stash_t *probe_stash_new(void) {
  return (probe_stash_t *)calloc(1, sizeof(depot_batch_stash_t));
}

unsigned probe_stash_count(const probe_stash_t *s) {
  return ((const depot_batch_stash_t *)s)->count;
}

void probe_stash_free(probe_stash_t *s) {
  depot_central_stash_release(stash_of(s));
  free(s);
}

unsigned probe_pool_take(probe_pool_t *p, unsigned want, void **head,
                         probe_stash_t *s) {
  return depot_central_take(pool_of(p), want, head, stash_of(s));
}

void probe_pool_give(probe_pool_t *p, void *head, unsigned count,
                     probe_stash_t *s) {
  depot_central_give(pool_of(p), head, count, stash_of(s));
}

void probe_pool_drain(probe_pool_t *p) { depot_central_drain(pool_of(p)); }

void probe_pool_stats(probe_pool_t *p, probe_pool_stats_t *out) {
  depot_central_t *c = pool_of(p);
  depot_central_stats_t st;
  depot_central_stats(c, &st);
  out->spans = st.spans;
  out->capacity = st.capacity;
  out->blocks_out = st.blocks_out;
  out->stacked = st.stacked;
  out->depth = depot_load_relaxed(&c->depth);
  out->max_depth = c->max_depth;
}

size_t probe_batch_records(void) { return depot_central_records(); }

void probe_idle_stats(probe_idle_stats_t *out) {
  depot_idle_stats_t st;
  depot_idle_stats(&st);
  out->parked = st.parked;
  out->flushed = st.flushed;
  out->blocks = st.blocks;
  out->refused = st.refused;
  out->orphans = st.orphans;
}

int probe_idle_flush(unsigned idle_ms) {
  uint32_t next;
  return depot_idle_flush(idle_ms, &next);
}

void *probe_own_heap(void) {
  depot_tcache_t *tc = depot_tls_cache();
  return tc->owner && tc->owner->id >= DEPOT_MAX_NODES ? tc->owner : NULL;
}

int probe_heap_parked(void *heap) {
  return atomic_load(&((depot_owner_t *)heap)->parked);
}

int probe_own_cache_parked(void) {
  return depot_tls_cache() == &depot_tcache_empty;
}

static int probe_taken;
static void probe_take(void *ctx, depot_inbox_node_t *m) {
  (void)ctx;
  (void)m;
  probe_taken++;
}

int probe_inbox_fork_cut(void) {
  /* One-block messages, which the drain only counts (never opens). */
  if (depot_init() != 0) return -1;
  depot_inbox_node_t *a = depot_alloc_call(64, 0),
                     *cut = depot_alloc_call(64, 0),
                     *b = depot_alloc_call(64, 0);
  depot_owner_t *o = depot_owner_take(0);
  if (!o || !a || !cut || !b) return -1;
  a->first = a;
  b->first = b;
  depot_inbox_post(o, a);
  /* A poster's exchange without its link store. */
  atomic_store(&cut->link, NULL);
  atomic_exchange(&o->inbox_back, cut);
  depot_owner_forked();
  depot_inbox_post(o, b);
  probe_taken = 0;
  depot_inbox_drain(o, probe_take, NULL);
  int n = probe_taken;
  depot_owner_park(o);
  depot_free_call(a, 0);
  depot_free_call(cut, 0);
  depot_free_call(b, 0);
  return n;
}

/* Frees p through the free fast path as a thread whose owner is node 0's
 * shared heap would (owner_entry 0, which a page of no small class, entry
 * 0, minus leaves 0: a bin of no class).  Returns 1 if the bins of no class
 * are still empty afterwards (the room test sent p to the miss). */
int probe_free_as_node0_shared_owner(void *p) {
  depot_tcache_t *tc = own_cache();
  if (!tc) return 0;
  uint32_t saved = tc->owner_entry[0];
  tc->owner_entry[0] = 0;
  depot_idle_leave();
  /* The fast path, inline here (not through depot_free_call); the miss
   * sees the real owner_base, so the slow path is the ordinary one. */
  depot_free(p, 0);
  tc = own_cache();
  tc->owner_entry[0] = saved;
  int ok = 1;
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++) {
    const depot_bin_t *b = &tc->bins[d << DEPOT_LIST_CLASS_BITS];
    ok &= b->head == NULL && b->room == 0 && b->limit == 0;
  }
  depot_idle_leave();
  return ok;
}

/* Frees base + used - 8 of the heap region (a garbage pointer whose second
 * word would lie past the region's end) through the free fast path as a
 * thread on node 0's shared heap would (owner_entry 0).  Returns 0 if the
 * region's last page serves a small class or there is no region (nothing
 * to test); else the free's bad-pointer report ends the process (or, with
 * on_bad_free=warn, returns 1). */
int probe_free_region_end_as_node0_shared_owner(void) {
  uintptr_t base;
  size_t size, used;
  depot_region_bounds(&base, &size, &used);
  if (used == 0 || depot_region_list_id(used - DEPOT_PAGE_SIZE) != 0) return 0;
  depot_tcache_t *tc = own_cache();
  if (!tc) return 0;
  uint32_t saved = tc->owner_entry[0];
  tc->owner_entry[0] = 0;
  depot_idle_leave();
  depot_free((void *)(base + used - 8), 0);
  tc = own_cache();
  tc->owner_entry[0] = saved;
  depot_idle_leave();
  return 1;
}

/* The caches of threads a fork child lost (depot_idle_forked cleared their
 * thread ids), at most 16. */
static int lost_caches(depot_tcache_t **out) {
  int n = 0;
  depot_tcache_registry_lock();
  for (depot_tcache_t *tc = depot_tcache_live(); tc && n < 16;
       tc = tc->next_live)
    if (tc->tid == 0) out[n++] = tc;
  depot_tcache_registry_unlock();
  return n;
}

int probe_lost_caches_mid_free(void) {
  depot_tcache_t *lost[16];
  int caches = lost_caches(lost), bins = 0;
  for (int k = 0; k < caches; k++)
    for (unsigned i = 0; i < DEPOT_TCACHE_BINS; i++)
      if (lost[k]->bins[i].head) {
        lost[k]->bins[i].room--;
        bins++;
      }
  return bins;
}

int probe_unowned_heaps(void) {
  int n = 0;
  unsigned limit = depot_owner_limit();
  depot_tcache_registry_lock();
  for (unsigned id = DEPOT_MAX_NODES; id < limit; id++) {
    depot_owner_t *o = depot_owner(id);
    if (!o || depot_load_relaxed(&o->parked)) continue;
    int owned = 0;
    for (depot_tcache_t *tc = depot_tcache_live(); tc && !owned;
         tc = tc->next_live)
      owned = tc->owner == o;
    n += !owned;
  }
  depot_tcache_registry_unlock();
  /* And heaps on a parked list that a listed cache still holds (a thread
   * would take a heap another cache uses): every parked heap of each node
   * is taken (the next take makes a new one). */
  for (unsigned node = 0; node < depot_numa_nodes(); node++)
    for (depot_owner_t *o; (o = depot_owner_take(node)) && o->id < limit;) {
      depot_tcache_registry_lock();
      for (depot_tcache_t *tc = depot_tcache_live(); tc; tc = tc->next_live)
        n += tc->owner == o;
      depot_tcache_registry_unlock();
    }
  return n;
}
