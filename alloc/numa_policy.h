/* numa_policy.h: the NUMA placement policies: their numbering, their names
 * and the parser of the `numa=` configuration value.  A leaf: the
 * configuration validates `numa=` with it, placement acts on it, the
 * runtime's topology code builds its map from it. */
#ifndef DEPOT_ALLOC_NUMA_POLICY_H
#define DEPOT_ALLOC_NUMA_POLICY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* off         one pool, no binding;
 * local       a thread uses the pools and arena of its CPU's node;
 * interleave  one set of pools whose new spans come from the allowed nodes'
 *             arenas in turn;
 * bind        like local, but only the allowed nodes. */
typedef enum {
  DEPOT_NUMA_OFF = 0,
  DEPOT_NUMA_LOCAL,
  DEPOT_NUMA_INTERLEAVE,
  DEPOT_NUMA_BIND,
} depot_numa_policy_t;

/* Kernel node numbers that bind: can name are below this. */
#define DEPOT_NUMA_BIND_MAX_OS_NODE 64

/* Parses "off", "local", "interleave" or "bind:<nodes>" (case-insensitive
 * words).  <nodes> is a list of kernel node numbers below
 * DEPOT_NUMA_BIND_MAX_OS_NODE and ranges of them, joined by '+':
 * "bind:0+2", "bind:0-3", "bind:0-3+8".  ',' also joins them (a
 * configuration file can carry it, and DEPOT_CONF when what follows the
 * comma can only be more of the list, see config.h).
 * Returns 0 with the policy and, for bind, the mask of nodes; -1 for bad
 * syntax (outputs unspecified). */
int depot_numa_parse(const char *text, size_t len, depot_numa_policy_t *policy,
                     uint64_t *bind_mask);

/* "off", "local", "interleave" or "bind". */
const char *depot_numa_policy_name(depot_numa_policy_t policy);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_NUMA_POLICY_H */
