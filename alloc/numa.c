/* numa.c: placement: the node table, the CPU-to-node map, and the choice
 * of node for a thread and of arena shard for a new span (numa.h).  Nodes
 * are created by nodes.c; this file only publishes and reads them. */
#define _GNU_SOURCE
#include "alloc/numa.h"

#include <sched.h>

depot_arena_t *depot_arenas[DEPOT_MAX_NODES][DEPOT_ARENA_SHARDS];

/* Nodes created (arenas and pools exist for 0..n-1).  Release store after a
 * node's structures are complete; readers acquire. */
static _Atomic unsigned numa_nodes;
/* The installed map, or NULL.  Published with a release store after it is
 * complete; maps are never freed (installs are rare), so a reader holding
 * an old one reads valid memory. */
static _Atomic(const depot_numa_map_t *) numa_map;
/* Interleave's turn; relaxed: only needs to rotate. */
static _Atomic unsigned interleave_turn;

unsigned depot_numa_nodes(void) { return depot_load_acquire(&numa_nodes); }

void depot_numa_publish_nodes(unsigned n) {
  /* Release: the nodes' arenas and pools were written before; readers
   * acquire in depot_numa_nodes(). */
  depot_store_release(&numa_nodes, n);
}

void depot_numa_publish_map(const depot_numa_map_t *m) {
  /* Release: the map's contents were written before; readers acquire. */
  depot_store_release(&numa_map, m);
}

depot_numa_policy_t depot_numa_policy(void) {
  const depot_numa_map_t *m = depot_load_acquire(&numa_map);
  return m ? m->policy : DEPOT_NUMA_OFF;
}

int depot_numa_multi(void) {
  const depot_numa_map_t *m = depot_load_acquire(&numa_map);
  return m && m->nnodes > 1 &&
         (m->policy == DEPOT_NUMA_LOCAL || m->policy == DEPOT_NUMA_BIND);
}

static int allowed(const depot_numa_map_t *m, unsigned node) {
  for (unsigned i = 0; i < m->nallowed; i++)
    if (m->allowed[i] == node) return 1;
  return 0;
}

unsigned depot_numa_home(void) {
  const depot_numa_map_t *m = depot_load_acquire(&numa_map);
  if (!m || m->nnodes == 1 || m->policy == DEPOT_NUMA_OFF ||
      m->policy == DEPOT_NUMA_INTERLEAVE)
    return 0;
  int cpu = sched_getcpu();
  unsigned node = cpu >= 0 && (unsigned)cpu < m->ncpus ? m->cpu_node[cpu] : 0;
  if (m->policy == DEPOT_NUMA_BIND && !allowed(m, node))
    node = m->allowed[(unsigned)(cpu < 0 ? 0 : cpu) % m->nallowed];
  return node;
}

/* The calling thread's shard + 1 (0: none chosen yet, so shard 0); the
 * next to give, counting from shard 1. */
static __thread unsigned thread_shard;
static _Atomic unsigned next_shard; /* relaxed: only needs to rotate */

/* Every thread starts on shard 0 and moves, once, to one of the others
 * (round robin) the first time it finds its shard's lock held by another
 * thread (depot_arena_contended): threads that grow their heaps at once
 * then spread over the shards, and a program whose threads never meet
 * there keeps one shard's segments.  Each shard in use costs its own
 * segments' headers (about 16 KiB resident each); with a shard per thread
 * from its first span, a program with two small threads on 2 CPUs kept
 * two.  Shards: as many as the machine has CPUs (its map's count; all of
 * them before a map is installed), DEPOT_ARENA_SHARDS at most. */
static unsigned shards_in_use(void) {
  const depot_numa_map_t *m = depot_load_acquire(&numa_map);
  return m && m->ncpus > 0 && m->ncpus < DEPOT_ARENA_SHARDS
             ? m->ncpus
             : DEPOT_ARENA_SHARDS;
}

static unsigned shard(void) {
  if (depot_unlikely(depot_arena_contended)) {
    depot_arena_contended = 0;
    unsigned n = shards_in_use();
    if (thread_shard == 0 && n > 1)
      thread_shard =
          2 + atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) %
                  (n - 1);
  }
  return thread_shard ? thread_shard - 1 : 0;
}

unsigned depot_numa_shards(void) { return shards_in_use(); }

depot_arena_t *depot_numa_arena_for(unsigned node) {
  const depot_numa_map_t *m = depot_load_acquire(&numa_map);
  if (m && m->policy == DEPOT_NUMA_INTERLEAVE && m->nallowed > 1) {
    unsigned turn =
        atomic_fetch_add_explicit(&interleave_turn, 1, memory_order_relaxed);
    return depot_arenas[m->allowed[turn % m->nallowed]][shard()];
  }
  return depot_arenas[node][shard()];
}

depot_span_t *depot_numa_alloc_span(depot_arena_t *a, size_t npages,
                                    size_t align_pages,
                                    depot_span_state_t state) {
  depot_span_t *s = depot_arena_alloc_span(a, npages, align_pages, state);
  /* A thread that moved shards (shard()) left the free spans it made
   * before on its first shard: under an address-space limit, those spans
   * could hold most of the headroom while the new shard could map nothing
   * (a 4000-byte fill stopped at 40 MiB of 200, once in a loaded run). */
  for (unsigned k = 0; !s && k < DEPOT_ARENA_SHARDS; k++) {
    depot_arena_t *o = depot_arenas[a->node][k];
    if (o && o != a)
      s = depot_arena_alloc_span_reuse(o, npages, align_pages, state);
  }
  return s;
}

const depot_numa_map_t *depot_numa_current_map(void) {
  return depot_load_acquire(&numa_map);
}
