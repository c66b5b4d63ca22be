/* numa.c: nodes, their arenas, and thread and span placement (numa.h). */
#define _GNU_SOURCE
#include "alloc/numa.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "alloc/alloc_api.h"
#include "alloc/central.h"
#include "alloc/meta.h"

depot_arena_t *depot_arenas[DEPOT_MAX_NODES][DEPOT_ARENA_SHARDS];

/* The calling thread's shard + 1 (0: not chosen yet); the next to give. */
static __thread unsigned thread_shard;
static _Atomic unsigned next_shard; /* relaxed: only needs to rotate */

static unsigned shard(void) {
  if (depot_unlikely(thread_shard == 0))
    thread_shard = 1 + atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) %
                           DEPOT_ARENA_SHARDS;
  return thread_shard - 1;
}

/* Nodes created (arenas and pools exist for 0..n-1).  Release store after a
 * node's structures are complete; readers acquire. */
static _Atomic unsigned numa_nodes;
/* The installed map, or NULL.  Published with a release store after it is
 * complete; maps are never freed (installs are rare), so a reader holding
 * an old one reads valid memory. */
static _Atomic(const depot_numa_map_t *) numa_map;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
/* Interleave's turn; relaxed: only needs to rotate. */
static _Atomic unsigned interleave_turn;

/* Reservation size for segments made once the heap region is used up. */
#define ARENA_FALLBACK_RESERVE ((size_t)64 << 20)

static int node_create(unsigned n, uint32_t os_node, int bind, int strict) {
  for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++) {
    depot_arena_t *a = depot_meta_alloc(sizeof *a);
    if (!a) return ENOMEM;
    depot_arena_init(a, n, ARENA_FALLBACK_RESERVE,
                     depot_core_options.purge_delay_ms,
                     depot_core_options.purge_lazy);
    depot_arena_set_binding(a, bind, os_node, strict);
    depot_arenas[n][k] = a;
  }
  return depot_central_node_init(n);
}

int depot_numa_init(void) {
  int err = node_create(0, 0, 0, 0);
  if (!err) depot_store_release(&numa_nodes, 1);
  return err;
}

unsigned depot_numa_nodes(void) { return depot_load_acquire(&numa_nodes); }

int depot_numa_install(const depot_numa_map_t *in) {
  int err = depot_init(); /* node 0 and the class table come first */
  if (err) return err;
  if (in->nnodes == 0 || in->nnodes > DEPOT_MAX_NODES ||
      in->ncpus > DEPOT_NUMA_MAX_CPUS)
    return EINVAL;
  for (unsigned i = 0; i < in->nallowed; i++)
    if (in->allowed[i] >= in->nnodes) return EINVAL;
  if ((in->policy == DEPOT_NUMA_BIND || in->policy == DEPOT_NUMA_INTERLEAVE) &&
      in->nallowed == 0)
    return EINVAL;
  depot_numa_map_t *m = depot_meta_alloc(sizeof *m);
  if (!m) return ENOMEM;
  memcpy(m, in, sizeof *m);
  pthread_mutex_lock(&install_lock);
  unsigned have = depot_load_relaxed(&numa_nodes);
  if (m->nnodes < have) err = EINVAL; /* nodes are never removed */
  /* Bind segments to their node only where there is more than one. */
  int bind = m->nnodes > 1 && m->policy != DEPOT_NUMA_OFF;
  for (unsigned n = 0; !err && n < m->nnodes; n++) {
    if (n < have)
      for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
        depot_arena_set_binding(depot_arenas[n][k], bind, m->os_node[n], m->strict);
    else if ((err = node_create(n, m->os_node[n], bind, m->strict)) == 0)
      depot_store_release(&numa_nodes, n + 1);
  }
  if (!err) depot_store_release(&numa_map, m);
  pthread_mutex_unlock(&install_lock);
  return err;
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

depot_arena_t *depot_numa_arena_for(unsigned node) {
  const depot_numa_map_t *m = depot_load_acquire(&numa_map);
  if (m && m->policy == DEPOT_NUMA_INTERLEAVE && m->nallowed > 1) {
    unsigned turn = atomic_fetch_add_explicit(&interleave_turn, 1,
                                              memory_order_relaxed);
    return depot_arenas[m->allowed[turn % m->nallowed]][shard()];
  }
  return depot_arenas[node][shard()];
}

void depot_numa_prefork(void) { pthread_mutex_lock(&install_lock); }
void depot_numa_postfork(void) { pthread_mutex_unlock(&install_lock); }

const depot_numa_map_t *depot_numa_current_map(void) {
  return depot_load_acquire(&numa_map);
}
