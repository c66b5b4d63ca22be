/* nodes.h: creating NUMA nodes, above the central pools: a node is its
 * DEPOT_ARENA_SHARDS arenas (numa.h) and its central pools (central.h).
 * Node 0 exists from start-up; installing a map (the runtime does, from the
 * topology hwloc reports) adds the nodes it names and publishes it. */
#ifndef DEPOT_ALLOC_NODES_H
#define DEPOT_ALLOC_NODES_H

#include "alloc/numa.h"

/* Creates node 0.  Returns 0 or an errno value.  Start-up only. */
int depot_nodes_init(void);

/* Installs a map: creates the arenas and pools of nodes not yet present,
 * sets every arena's binding, then publishes the map.  Returns 0 or an
 * errno value (EINVAL for a map that would remove nodes, or that names no
 * node or a node out of range).  REQUIRES: depot_init() has succeeded.
 * Takes the install lock. */
int depot_nodes_install(const depot_numa_map_t *map);

/* Fork safety (init.c): the install lock. */
void depot_nodes_prefork(void);
void depot_nodes_postfork(void);

#endif /* DEPOT_ALLOC_NODES_H */
