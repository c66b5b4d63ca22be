/* heapcheck.c: depot_check_heap, the walk of every structure of the core that
 * verifies the invariants the other files state (each file checks its own;
 * this one brings the counts of the layers together).
 *
 * It holds the cache registry's lock (which keeps the idle flusher, the
 * purger's reclaim and an orphan cache's destroy out: depot_check_heap) and
 * one more lock at a time (each arena's, then each pool's), never all
 * of them at once: the counts it brings together are taken at different
 * moments, and the lock-free parts (the pools' stacks, the caches) change
 * without any lock, so the result is only exact when no other thread is
 * inside Depot, which is why the tests and the tools call it at quiescent
 * points.  (Holding every lock at once, as fork does, would also exceed
 * what ThreadSanitizer's deadlock detector can track in one thread.) */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "alloc/alloc_api.h"
#include "alloc/central.h"
#include "alloc/check.h"
#include "alloc/heap.h"
#include "alloc/huge.h"
#include "alloc/idle.h"
#include "alloc/init.h"
#include "alloc/numa.h"
#include "alloc/tcache.h"

/* Per list id of one owner: small spans found in the arenas and the blocks
 * out of them. */
typedef struct {
  uint64_t spans[DEPOT_POOLS_PER_OWNER];
  uint64_t used[DEPOT_POOLS_PER_OWNER];
} owner_tally_t;

/* Owners are checked TALLY_OWNERS at a time (one walk of the arenas per
 * group): static memory of a bounded size, touched only by the checks.
 * Written only by depot_check_heap, which its callers run at a quiescent
 * point, one call at a time (documented in alloc_api.h); no lock of its
 * own, so that no lock outside the lock order exists. */
#define TALLY_OWNERS 128u
static owner_tally_t tally[TALLY_OWNERS];
static unsigned tally_first, tally_limit; /* the group: [first, first+128) */

static void count_span(const depot_span_t *s, void *ctx) {
  (void)ctx;
  if (s->state != DEPOT_SPAN_SMALL) return;
  /* A heap's span belongs to no pool: depot_heap_check_all checks it. */
  if (depot_list_domain(s->list_id) == DEPOT_HEAP_DOMAIN) return;
  unsigned owner = depot_list_owner(s->list_id);
  DEPOT_CHECK(owner < tally_limit && depot_owner(owner) != NULL);
  if (owner < tally_first || owner >= tally_first + TALLY_OWNERS) return;
  depot_central_check_span(s);
  DEPOT_CHECK(depot_list_node(s->list_id) < depot_numa_nodes());
  unsigned i = s->list_id & (DEPOT_LISTS_PER_OWNER - 1);
  tally[owner - tally_first].spans[i]++;
  tally[owner - tally_first].used[i] += s->used;
}

/* Checks the owners of the group that starts at first. */
static void check_owners(unsigned first, unsigned nodes) {
  tally_first = first;
  memset(tally, 0, sizeof tally);
  /* Arenas first: they know every span, so they tell each pool how many
   * spans and blocks out it must account for. */
  for (unsigned n = 0; n < nodes; n++)
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++) {
      depot_arena_t *a = depot_arenas[n][k];
      pthread_mutex_lock(&a->lock);
      depot_arena_check_locked(a, count_span, NULL);
      pthread_mutex_unlock(&a->lock);
    }
  for (unsigned o = first; o < tally_limit && o < first + TALLY_OWNERS; o++) {
    depot_owner_t *owner = depot_owner(o);
    if (!owner) continue;
    for (unsigned d = 0; d < DEPOT_NDOMAINS; d++)
      for (unsigned cls = 1; cls < DEPOT_NCLASSES; cls++) {
        unsigned i = (d << DEPOT_LIST_CLASS_BITS) | cls;
        depot_central_t *c = &owner->pools[i];
        depot_central_lock(c);
        depot_central_check_locked(c, tally[o - first].spans[i],
                                   tally[o - first].used[i]);
        depot_central_unlock(c);
      }
  }
}

/* Whether a live cache is being flushed.  REQUIRES: the registry lock. */
static int flush_in_flight(void) {
  for (depot_tcache_t *tc = depot_tcache_live(); tc; tc = tc->next_live)
    if (depot_load_acquire(&tc->park) == DEPOT_PARK_FLUSHING) return 1;
  return 0;
}

int depot_check_heap(void) {
  if (!depot_initialised()) return 0;
  depot_huge_check(); /* takes and drops the huge table's lock */
  unsigned nodes = depot_numa_nodes();
  tally_limit = depot_owner_limit();
  /* The idle flusher (idle.c, run by the purger thread) empties a blocked
   * thread's cache into the pools while holding the registry lock: a
   * program whose other threads all wait in system calls is quiescent to
   * its own eyes, but not to the pools'.  Holding the registry lock across
   * the walks keeps the flusher out between the arenas' count and the
   * pools' (lock order: the registry (5) before the pools (6) and the
   * arenas (7), as the flusher itself takes them). */
  depot_tcache_registry_lock();
  /* The purger's reclaim (purger.c) drains pools under the registry lock
   * too, one owner at a time.  An orphan cache of fork (idle.c) is flushed
   * into the pools by depot_tcache_destroy outside the lock, from when the
   * flusher marks it FLUSHING (under the lock) until destroy unlinks it
   * (under the lock): while one is listed FLUSHING, let it finish and
   * look again, for a second at most (a destroy that a fork cut short, its
   * thread not in the child, leaves its cache FLUSHING for good).  Any
   * other cache is FLUSHING only inside the flusher's holding of the
   * lock. */
  for (int ms = 0; ms < 1000 && flush_in_flight(); ms++) {
    depot_tcache_registry_unlock();
    struct timespec pause = {0, 1000 * 1000};
    nanosleep(&pause, NULL);
    depot_tcache_registry_lock();
  }
  for (unsigned first = 0; first < tally_limit; first += TALLY_OWNERS)
    check_owners(first, nodes);
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
