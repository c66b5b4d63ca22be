/* init.c: the runtime's start-up, once per process: configuration into the
 * core's options, DEPOTMALLOC into the domains, the NUMA topology into the
 * core's placement, statistics at exit.  Runs
 * from a constructor (before main, before threads), or earlier from the
 * first Depot call made by another constructor. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/alloc_api.h"
#include "runtime/config.h"
#include "runtime/runtime.h"
#include "runtime/topology.h"

static void print_stats_at_exit(void) {
  DepotMem_PrintStats(STDERR_FILENO, 0);
}

static void print_config(void) {
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++)
    depot_say("depot: config: %s=%s (%s)", depot_conf_defs[k].name,
              depot_config_text((depot_conf_key_t)k),
              depot_config_source_name(depot_config_source((depot_conf_key_t)k)));
}

/* The core reads its options when it initialises. */
static void apply_config(void) {
  depot_core_options.tcache_max_bytes =
      (size_t)depot_config_get(DEPOT_CONF_tcache_max_bytes);
  depot_core_options.tcache_batch =
      (unsigned)depot_config_get(DEPOT_CONF_tcache_batch);
  depot_core_options.arena_reserve_bytes =
      (size_t)depot_config_get(DEPOT_CONF_arena_reserve_bytes);
  depot_core_options.huge_threshold_bytes =
      (size_t)depot_config_get(DEPOT_CONF_huge_threshold_bytes);
  depot_core_options.abort_on_bad_pointer =
      depot_config_get(DEPOT_CONF_on_bad_free) == 0; /* "abort" */
  depot_core_options.purge_delay_ms =
      (unsigned)depot_config_get(DEPOT_CONF_purge_delay_ms);
  depot_core_options.purge_lazy = depot_config_get(DEPOT_CONF_purge) == 1;
}

static void configure_once(void) {
  depot_config_load();
  apply_config();
  if (depot_config_get(DEPOT_CONF_verbose)) print_config();
}

/* Called by the core at the start of its initialisation (it may come first,
 * from the malloc override, before any constructor) and by the runtime's. */
void depot_core_configure(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, configure_once);
}

static void apply_depotmalloc(const char *m) {
  if (!m || !*m) return;
  if (strcmp(m, "debug") == 0) {
    depot_debug_install();
  } else if (strcmp(m, "malloc") == 0) {
    depot_domains_use_libc();
  } else if (strcmp(m, "malloc_debug") == 0) {
    depot_domains_use_libc();
    depot_debug_install();
  } else {
    depot_say("depot: DEPOTMALLOC=%s: expected debug, malloc or malloc_debug; "
              "ignored", m);
  }
}

static void init_once(void) {
  depot_core_configure();
  DepotMemAllocatorEx own;
  for (unsigned d = 0; d < 3; d++) { /* leave the start-up trampolines */
    depot_domain_default(d, &own);
    depot_domain_set(d, &own);
  }
  apply_depotmalloc(getenv("DEPOTMALLOC"));
  /* After the core is usable: hwloc allocates while it loads. */
  depot_topology_reload();
  const char *stats_env = getenv("DEPOTMALLOCSTATS");
  if (depot_config_get(DEPOT_CONF_stats) ||
      (stats_env && *stats_env && strcmp(stats_env, "0") != 0))
    atexit(print_stats_at_exit);
}

void depot_runtime_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_once);
}

__attribute__((constructor)) static void runtime_constructor(void) {
  depot_runtime_init();
}
