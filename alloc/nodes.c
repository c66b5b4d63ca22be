/* nodes.c: creating nodes and installing maps (nodes.h).  install_lock
 * serialises installs; readers never take it (numa.c publishes with release
 * stores). */
#include "alloc/nodes.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "alloc/central.h"
#include "alloc/config.h"
#include "alloc/meta.h"

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

/* Reservation size for segments made once the heap region is used up. */
#define ARENA_FALLBACK_RESERVE ((size_t)64 << 20)

static int node_create(unsigned n, uint32_t os_node, int bind, int strict) {
  for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++) {
    depot_arena_t *a = depot_meta_alloc(sizeof *a);
    if (!a) return ENOMEM;
    depot_arena_init(a, n, ARENA_FALLBACK_RESERVE,
                     (uint32_t)depot_config_live(DEPOT_CONF_purge_delay_ms),
                     depot_options.purge == DEPOT_PURGE_FREE);
    depot_arena_set_binding(a, bind, os_node, strict);
    depot_arenas[n][k] = a;
  }
  return depot_central_node_init(n);
}

int depot_nodes_init(void) {
  int err = node_create(0, 0, 0, 0);
  if (!err) depot_numa_publish_nodes(1);
  return err;
}

int depot_nodes_install(const depot_numa_map_t *in) {
  if (in->nnodes == 0 || in->nnodes > DEPOT_MAX_NODES ||
      in->ncpus > DEPOT_NUMA_MAX_CPUS || in->nallowed > in->nnodes)
    return EINVAL;
  for (unsigned i = 0; i < in->nallowed; i++)
    if (in->allowed[i] >= in->nnodes) return EINVAL;
  for (unsigned c = 0; c < in->ncpus; c++)
    if (in->cpu_node[c] >= in->nnodes) return EINVAL;
  if ((in->policy == DEPOT_NUMA_BIND || in->policy == DEPOT_NUMA_INTERLEAVE) &&
      in->nallowed == 0)
    return EINVAL;
  /* Maps are never freed: a reader may hold an old one (numa.c). */
  /* Only the first ncpus entries of cpu_node are read (numa.c): the copy
   * holds those and no more (8 KiB less metadata on a small machine). */
  size_t bytes =
      offsetof(depot_numa_map_t, cpu_node) + in->ncpus * sizeof in->cpu_node[0];
  depot_numa_map_t *m = depot_meta_alloc(bytes);
  if (!m) return ENOMEM;
  memcpy(m, in, bytes);
  pthread_mutex_lock(&install_lock);
  int err = 0;
  unsigned have = depot_numa_nodes();
  if (m->nnodes < have) err = EINVAL; /* nodes are never removed */
  /* Bind segments to their node only where there is more than one. */
  int bind = m->nnodes > 1 && m->policy != DEPOT_NUMA_OFF;
  for (unsigned n = 0; !err && n < m->nnodes; n++) {
    if (n < have)
      for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
        depot_arena_set_binding(depot_arenas[n][k], bind, m->os_node[n],
                                m->strict);
    else if ((err = node_create(n, m->os_node[n], bind, m->strict)) == 0)
      depot_numa_publish_nodes(n + 1);
  }
  if (!err) depot_numa_publish_map(m);
  pthread_mutex_unlock(&install_lock);
  return err;
}

void depot_nodes_prefork(void) { pthread_mutex_lock(&install_lock); }
void depot_nodes_postfork(void) { pthread_mutex_unlock(&install_lock); }
