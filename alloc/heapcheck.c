/* heapcheck.c: depot_check_heap, the walk of every structure of the core that
 * verifies the invariants the other files state (each file checks its own;
 * this one brings the counts of the layers together).
 *
 * It holds the cache registry's lock (which keeps the idle flusher out) and
 * one more lock at a time (each arena's, then each pool's), never all
 * of them at once: the counts it brings together are taken at different
 * moments, and the lock-free parts (the pools' stacks, the caches) change
 * without any lock, so the result is only exact when no other thread is
 * inside Depot, which is why the tests and the tools call it at quiescent
 * points.  (Holding every lock at once, as fork does, would also exceed
 * what ThreadSanitizer's deadlock detector can track in one thread.) */
#include <pthread.h>
#include <string.h>

#include "alloc/alloc_api.h"
#include "alloc/central.h"
#include "alloc/check.h"
#include "alloc/heap.h"
#include "alloc/huge.h"
#include "alloc/idle.h"
#include "alloc/init.h"
#include "alloc/numa.h"
#include "alloc/tcache.h"

/* Per list id of one node: small spans found in the arenas and the blocks
 * out of them. */
typedef struct {
  uint64_t spans[DEPOT_POOLS_PER_NODE];
  uint64_t used[DEPOT_POOLS_PER_NODE];
  unsigned node;
} node_tally_t;

/* Written only by depot_check_heap, which its callers run at a quiescent
 * point, one call at a time (documented in alloc_api.h); no lock of its
 * own, so that no lock outside the lock order exists. */
static node_tally_t tally[DEPOT_MAX_NODES];

static void count_span(const depot_span_t *s, void *ctx) {
  (void)ctx;
  if (s->state != DEPOT_SPAN_SMALL) return;
  /* A heap's span belongs to no pool: depot_heap_check_all checks it. */
  if (depot_list_domain(s->list_id) == DEPOT_HEAP_DOMAIN) return;
  depot_central_check_span(s);
  unsigned node = depot_list_node(s->list_id);
  DEPOT_CHECK(node < depot_numa_nodes());
  unsigned i = s->list_id & (DEPOT_LISTS_PER_NODE - 1);
  tally[node].spans[i]++;
  tally[node].used[i] += s->used;
}

int depot_check_heap(void) {
  if (!depot_initialised()) return 0;
  depot_huge_check(); /* takes and drops the huge table's lock */
  unsigned nodes = depot_numa_nodes();
  memset(tally, 0, sizeof tally[0] * nodes);
  /* The idle flusher (idle.c, run by the purger thread) empties a blocked
   * thread's cache into the pools while holding the registry lock: a
   * program whose other threads all wait in system calls is quiescent to
   * its own eyes, but not to the pools'.  Holding the registry lock across
   * both walks below keeps the flusher out between them (lock order: the
   * registry (5) before the pools (6) and the arenas (7), as the flusher
   * itself takes them). */
  depot_tcache_registry_lock();
  /* Arenas first: they know every span, so they tell each pool how many
   * spans and blocks out it must account for. */
  for (unsigned n = 0; n < nodes; n++)
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++) {
      depot_arena_t *a = depot_arenas[n][k];
      pthread_mutex_lock(&a->lock);
      depot_arena_check_locked(a, count_span, NULL);
      pthread_mutex_unlock(&a->lock);
    }
  for (unsigned n = 0; n < nodes; n++)
    for (unsigned d = 0; d < DEPOT_NDOMAINS; d++)
      for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
        unsigned i = (d << DEPOT_LIST_CLASS_BITS) | cls;
        depot_central_t *c = &depot_central_table[n][i];
        depot_central_lock(c);
        depot_central_check_locked(c, tally[n].spans[i], tally[n].used[i]);
        depot_central_unlock(c);
      }
  depot_tcache_registry_unlock();
  depot_heap_check_all();
  /* The calling thread's cache, held as a slow path holds it (idle.h); a
   * cache parked by idle flushing is checked when its thread takes it back. */
  depot_tcache_t *tc = depot_tls_cache();
  if (tc != &depot_tcache_empty && tc != &depot_tcache_dead) {
    depot_idle_enter(tc);
    depot_tcache_check(tc);
    depot_idle_leave();
  }
  return 0;
}
