/* numa.h: the core's view of NUMA nodes.  It owns the per-node page arenas
 * (and creates each node's central pools beside them), the map from CPU to
 * node, the placement policy, and the choice of node for a thread and of
 * arena for a new span.
 *
 * Until a topology is installed (the runtime discovers one with hwloc after
 * start-up, since hwloc itself allocates) Depot is one node, node 0.
 * Installing can only add nodes, never remove them: blocks carry their node
 * in their list id for their whole life, so every node's pools must stay.
 *
 * Policies:
 *   off         one pool, no binding;
 *   local       a thread uses the pools and arena of its CPU's node (the
 *               CPU is re-read on each cache refill, so a migrated thread
 *               follows it); new segments are bound to their node;
 *   interleave  one set of pools, whose new spans come from the allowed
 *               nodes' arenas in turn;
 *   bind        like local, but only the allowed nodes: a thread on a CPU of
 *               another node uses an allowed node instead. */
#ifndef DEPOT_ALLOC_NUMA_H
#define DEPOT_ALLOC_NUMA_H

#include <stdint.h>

#include "alloc/arena.h"

typedef enum {
  DEPOT_NUMA_OFF = 0,
  DEPOT_NUMA_LOCAL,
  DEPOT_NUMA_INTERLEAVE,
  DEPOT_NUMA_BIND,
} depot_numa_policy_t;

#define DEPOT_NUMA_MAX_CPUS 4096

/* What the runtime installs: nodes are numbered 0..nnodes-1 (hwloc's
 * logical order); os_node[] gives the kernel's number for binding. */
typedef struct {
  depot_numa_policy_t policy;
  int strict;                        /* a failed bind fails the allocation */
  unsigned nnodes;
  uint32_t os_node[DEPOT_MAX_NODES];
  unsigned nallowed;                 /* interleave and bind: the nodes used */
  uint16_t allowed[DEPOT_MAX_NODES];
  unsigned ncpus;                    /* entries of cpu_node */
  uint16_t cpu_node[DEPOT_NUMA_MAX_CPUS];
} depot_numa_map_t;

/* Each node's page arena is split into shards, each with its own lock, and
 * each thread uses one shard (assigned round robin at its first span): many
 * threads growing their heaps at once then contend for a shard's lock, not
 * for one lock per node.  A span goes back to the shard it came from (its
 * segment's arena). */
#define DEPOT_ARENA_SHARDS 8

/* The arenas of the nodes created so far: [node][shard]. */
extern depot_arena_t *depot_arenas[DEPOT_MAX_NODES][DEPOT_ARENA_SHARDS];

/* Creates node 0.  Returns 0 or an errno value. */
int depot_numa_init(void);

/* Installs a map: creates the arenas and pools of nodes not yet present,
 * then publishes the map.  Returns 0 or an errno value (EINVAL for a map
 * that would remove nodes or names none). */
int depot_numa_install(const depot_numa_map_t *map);

/* Nodes that have arenas and pools. */
unsigned depot_numa_nodes(void);

/* The node the calling thread should allocate from now (slow paths). */
unsigned depot_numa_home(void);

/* Whether homes can differ between threads (more than one node in use). */
int depot_numa_multi(void);

/* The arena (of the calling thread's shard) a new span for node `node`'s
 * pools comes from. */
depot_arena_t *depot_numa_arena_for(unsigned node);

/* Fork safety (see alloc.c): the install lock, taken first of all. */
void depot_numa_prefork(void);
void depot_numa_postfork(void);

/* The installed map, or NULL (for reports). */
const depot_numa_map_t *depot_numa_current_map(void);

/* The installed policy (DEPOT_NUMA_OFF before any install). */
depot_numa_policy_t depot_numa_policy(void);

#endif /* DEPOT_ALLOC_NUMA_H */
