/* numa.h: placement, below the central pools.  The table of node arenas,
 * the installed map (policy, CPU-to-node map, allowed nodes), and the
 * choice of node for a thread and of arena shard for a new span.  Node
 * creation and installing a map are a layer up, in nodes.h, because they
 * create central pools.
 *
 * Until a map is installed (the runtime discovers the topology with hwloc
 * after start-up, since hwloc itself allocates) Depot is one node, node 0.
 * Nodes are only ever added: blocks carry their node in their list id for
 * their whole life, so every node's pools must stay.
 *
 * Policies (numa_policy.h): under local the CPU is re-read on each cache
 * refill, so a migrated thread follows it, and new segments are bound to
 * their node; under bind a thread on a CPU of another node uses an allowed
 * node instead. */
#ifndef DEPOT_ALLOC_NUMA_H
#define DEPOT_ALLOC_NUMA_H

#include <stdint.h>

#include "alloc/arena.h"
#include "alloc/numa_policy.h"

#define DEPOT_NUMA_MAX_CPUS 4096

/* What the runtime installs: nodes are numbered 0..nnodes-1 (hwloc's
 * logical order); os_node[] gives the kernel's number for binding. */
typedef struct {
  depot_numa_policy_t policy;
  int strict; /* a failed bind fails the allocation */
  unsigned nnodes;
  uint32_t os_node[DEPOT_MAX_NODES];
  unsigned nallowed; /* interleave and bind: the nodes used */
  uint16_t allowed[DEPOT_MAX_NODES];
  unsigned ncpus; /* entries of cpu_node */
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

/* Nodes that have arenas and pools. */
unsigned depot_numa_nodes(void);

/* For nodes.c: nodes 0..n-1 are complete (arenas and pools); the map m is
 * complete and in force.  Both publish with a release store. */
void depot_numa_publish_nodes(unsigned n);
void depot_numa_publish_map(const depot_numa_map_t *m);

/* The node the calling thread should allocate from now (slow paths). */
unsigned depot_numa_home(void);

/* Whether homes can differ between threads (more than one node in use). */
int depot_numa_multi(void);

/* Arena shards that threads are spread over (numa.c). */
unsigned depot_numa_shards(void);

/* The arena (of the calling thread's shard) a new span for node `node`'s
 * pools comes from. */
depot_arena_t *depot_numa_arena_for(unsigned node);

/* A span from arena a (depot_arena_alloc_span), or, when a can give none
 * (no free span fits and no segment can be had: the address space or the
 * memory limit is used up, or the OS refuses), from the free spans of the
 * other shards of a's node, so that memory another shard holds free is
 * used before an allocation fails.  NULL when none has one either. */
depot_span_t *depot_numa_alloc_span(depot_arena_t *a, size_t npages,
                                    size_t align_pages,
                                    depot_span_state_t state);

/* The installed policy (DEPOT_NUMA_OFF before any map is installed). */
depot_numa_policy_t depot_numa_policy(void);

/* The installed map, or NULL (for reports). */
const depot_numa_map_t *depot_numa_current_map(void);

#endif /* DEPOT_ALLOC_NUMA_H */
