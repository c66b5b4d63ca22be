/* topology.h: the machine's NUMA topology as Depot sees it (from hwloc),
 * and the placement policy built from it and the configuration. */
#ifndef DEPOT_RUNTIME_TOPOLOGY_H
#define DEPOT_RUNTIME_TOPOLOGY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DEPOT_TOPO_MAX_NODES 64
#define DEPOT_TOPO_MAX_CPUS 4096

typedef struct {
  int from_hwloc;  /* 0: hwloc gave nothing usable, one node assumed */
  int synthetic;   /* HWLOC_SYNTHETIC or HWLOC_XMLFILE was in effect */
  unsigned nnodes; /* nodes in hwloc's logical order */
  uint32_t os_node[DEPOT_TOPO_MAX_NODES];    /* the kernel's node numbers */
  uint64_t node_bytes[DEPOT_TOPO_MAX_NODES]; /* memory per node */
  int bind_works; /* mbind to the first node succeeded here */
  int bind_errno; /* why it failed, if it did */
  unsigned ncpus; /* entries of cpu_node: max OS CPU index + 1 */
  /* Last: only the first ncpus entries are written or read, so a small
   * machine touches a few bytes of it. */
  int16_t cpu_node[DEPOT_TOPO_MAX_CPUS]; /* -1: no such CPU */
} depot_topology_t;

/* Discovers the topology with hwloc (honouring HWLOC_SYNTHETIC and
 * HWLOC_XMLFILE).  Always fills *t; returns 0, or an errno value when hwloc
 * failed and one node was assumed. */
int depot_topology_discover(depot_topology_t *t);

/* What a machine the kernel shows with one node is made of, read without
 * sysconf (topology.c says why), each 0 when the kernel does not tell:
 *   - depot_topology_cpu_list_end: one more than the highest CPU number of
 *     a kernel CPU list ("0-3", "0,2-5\n"), the size of a table indexed by
 *     CPU number (so 6 for "0,2-5", which sysconf counts as 5 CPUs since
 *     glibc 2.36); 0 for text that is not such a list, or a CPU number of
 *     DEPOT_TOPO_MAX_CPUS or more;
 *   - depot_topology_possible_cpus: that of /sys/devices/system/cpu/possible;
 *   - depot_topology_total_memory: the machine's memory in bytes
 *     (sysinfo(2)). */
long depot_topology_cpu_list_end(const char *text);
long depot_topology_possible_cpus(void);
uint64_t depot_topology_total_memory(void);

/* Builds the core's map from t and the numa / numa_strict configuration and
 * installs it.  A node named in bind: that t lacks is reported and skipped
 * (with strict_config=1, the process exits: depot_config_refuse).
 * Returns 0 or an errno value. */
int depot_topology_apply(const depot_topology_t *t);

/* The topology applied at start-up (discovered once by the runtime). */
const depot_topology_t *depot_topology_current(void);

/* Fork safety: the apply lock (lock 2 of alloc/README.md's order). */
void depot_topology_prefork(void);
void depot_topology_postfork(void);

/* Discovers again and applies (tests: after changing HWLOC_SYNTHETIC or the
 * numa configuration).  Nodes are only ever added. */
int depot_topology_reload(void);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_RUNTIME_TOPOLOGY_H */
