/* topo.c: the topology tool.  Prints the NUMA topology as Depot sees it
 * (nodes, their CPUs and memory, the CPU-to-node map), whether memory
 * binding works here, the placement Depot uses and how binding fared on
 * each node, and the effective configuration with the source of every
 * value.
 *   tools/bazelw run //tools:topo [-- --json | --config-reference]
 * --config-reference prints the configuration reference of the README (the
 * same table the parser uses). */
#define _GNU_SOURCE
#include <depot/depot.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "runtime/ctl.h"
#include "runtime/topology.h"

static const char *const type_names[] = {"bool", "integer", "size", "choice",
                                         "text"};

/* Allocates a fresh span on every node (from a CPU of that node), so that
 * each node's arena binds a segment and the result can be reported. */
static void touch_nodes(const depot_topology_t *t) {
  cpu_set_t saved;
  sched_getaffinity(0, sizeof saved, &saved);
  for (unsigned n = 0; n < t->nnodes; n++) {
    for (unsigned c = 0; c < t->ncpus; c++) {
      if (t->cpu_node[c] != (int)n) continue;
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      if (sched_setaffinity(0, sizeof one, &one) != 0) continue;
      DepotMem_RawFree(DepotMem_RawMalloc(256 << 10));
      break;
    }
  }
  sched_setaffinity(0, sizeof saved, &saved);
}

static void cpus_of(const depot_topology_t *t, unsigned n, char *out,
                    size_t len) {
  size_t used = 0;
  out[0] = 0;
  for (unsigned c = 0; c < t->ncpus && used < len; c++)
    if (t->cpu_node[c] == (int)n)
      used +=
          (size_t)snprintf(out + used, len - used, "%s%u", used ? "," : "", c);
}

static void print_text(const depot_topology_t *t, const char *policy) {
  printf("Topology (%s%s)\n", t->from_hwloc ? "hwloc" : "one node assumed",
         t->synthetic ? ", synthetic" : "");
  char cpus[1024];
  for (unsigned n = 0; n < t->nnodes; n++) {
    cpus_of(t, n, cpus, sizeof cpus);
    depot_node_stats_t ns;
    int have = depot_core_node_stats(n, &ns) == 0;
    printf(
        "  node %u (os %u): %llu MiB, cpus %s; segments %zu, binds %zu ok %zu "
        "failed\n",
        n, t->os_node[n], (unsigned long long)(t->node_bytes[n] >> 20), cpus,
        have ? ns.segments : 0, have ? ns.binds_ok : 0,
        have ? ns.binds_failed : 0);
  }
  printf("CPU to node:");
  for (unsigned c = 0; c < t->ncpus; c++) printf(" %u:%d", c, t->cpu_node[c]);
  printf("\nMemory binding: %s", t->bind_works ? "works" : "fails");
  if (!t->bind_works) printf(" (%s)", strerror(t->bind_errno));
  printf("\nPlacement: numa=%s\nConfiguration:\n", policy);
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++)
    printf("  %-22s %-12s (%s)\n", depot_conf_defs[k].name,
           depot_config_text((depot_conf_key_t)k),
           depot_config_source_name(depot_config_source((depot_conf_key_t)k)));
}

static void print_json(const depot_topology_t *t, const char *policy) {
  printf("{\"from_hwloc\":%s,\"synthetic\":%s,\"nodes\":[",
         t->from_hwloc ? "true" : "false", t->synthetic ? "true" : "false");
  for (unsigned n = 0; n < t->nnodes; n++) {
    depot_node_stats_t ns;
    if (depot_core_node_stats(n, &ns) != 0) memset(&ns, 0, sizeof ns);
    printf("%s{\"node\":%u,\"os_index\":%u,\"memory_bytes\":%llu,\"cpus\":[",
           n ? "," : "", n, t->os_node[n],
           (unsigned long long)t->node_bytes[n]);
    int first = 1;
    for (unsigned c = 0; c < t->ncpus; c++)
      if (t->cpu_node[c] == (int)n)
        printf("%s%u", first ? "" : ",", c), first = 0;
    printf("],\"segments\":%zu,\"binds_ok\":%zu,\"binds_failed\":%zu}",
           ns.segments, ns.binds_ok, ns.binds_failed);
  }
  printf("],\"cpu_node\":[");
  for (unsigned c = 0; c < t->ncpus; c++)
    printf("%s%d", c ? "," : "", t->cpu_node[c]);
  printf("],\"binding_works\":%s,\"numa\":\"%s\",\"config\":{",
         t->bind_works ? "true" : "false", policy);
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++)
    printf("%s\"%s\":{\"value\":\"%s\",\"source\":\"%s\"}", k ? "," : "",
           depot_conf_defs[k].name, depot_config_text((depot_conf_key_t)k),
           depot_config_source_name(depot_config_source((depot_conf_key_t)k)));
  printf("}}\n");
}

/* The reference: every configuration key (changeable at run time through
 * DepotMem_SetOption or not), then every statistic DepotMem_GetOption
 * reads. */
static void print_reference(void) {
  printf(
      "| key | accepts | default | at run time | what it does |\n"
      "|---|---|---|---|---|\n");
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++) {
    const depot_conf_def_t *d = &depot_conf_defs[k];
    char accepts[96];
    if (d->type == DEPOT_CONF_UINT || d->type == DEPOT_CONF_SIZE)
      snprintf(accepts, sizeof accepts, "%s %llu..%llu%s", type_names[d->type],
               (unsigned long long)d->min, (unsigned long long)d->max,
               d->type == DEPOT_CONF_SIZE ? " (k, m, g)" : "");
    else if (d->type == DEPOT_CONF_BOOL)
      snprintf(accepts, sizeof accepts, "0 or 1");
    else snprintf(accepts, sizeof accepts, "%s", d->choices);
    printf("| `%s` | %s | `%s` | %s | %s |\n", d->name, accepts,
           d->default_text,
           depot_config_runtime_key((depot_conf_key_t)k) ? "read, set" : "read",
           d->help);
  }
#define DEPOT_CTL_ROW(name, expr, help) \
  printf("| `stats.%s` | - | - | read | %s |\n", #name, help);
  DEPOT_CTL_STATS(DEPOT_CTL_ROW)
#undef DEPOT_CTL_ROW
}

int main(int argc, char **argv) {
  int json = argc > 1 && strcmp(argv[1], "--json") == 0;
  if (argc > 1 && strcmp(argv[1], "--config-reference") == 0) {
    print_reference();
    return 0;
  }
  if (argc > 1 && !json) {
    fprintf(stderr, "usage: topo [--json | --config-reference]\n");
    return 2;
  }
  DepotMem_Trim(); /* starts Depot: configuration, topology, placement */
  const depot_topology_t *t = depot_topology_current();
  touch_nodes(t);
  const char *policy = depot_numa_policy_name(depot_core_numa_policy());
  if (json) print_json(t, policy);
  else print_text(t, policy);
  return 0;
}
