/* init.c: the runtime's start-up, once per process: DEPOTMALLOC into the
 * domains, the NUMA topology into the core's placement, the runtime's fork
 * handlers, statistics at exit.  Runs from a constructor (before main,
 * before threads), or earlier from the first Depot call made by another
 * constructor.  The core starts itself (and loads the configuration) on its
 * own first use; this only reads the result. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "alloc/quarantine.h"
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

/* The runtime's locks come first in the lock order (alloc/README.md):
 * prepare takes them before the core's handler takes the core's (handlers
 * registered later run their prepare first), and both processes release
 * them after the core's. */
static void fork_prepare(void) {
  depot_stats_prefork();    /* 1 */
  depot_topology_prefork(); /* 2 */
}
static void fork_finish(void) {
  depot_topology_postfork();
  depot_stats_postfork();
}

static void init_once(void) {
  /* The core first: it loads the configuration and registers its own fork
   * handlers, which must be registered before the runtime's. */
  if (depot_init() != 0) depot_config_ensure();
  pthread_atfork(fork_prepare, fork_finish, fork_finish);
  if (depot_options.verbose) print_config();
  DepotMemAllocatorEx own;
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++) { /* leave the trampolines */
    depot_domain_default(d, &own);
    depot_domain_set(d, &own);
  }
  apply_depotmalloc(getenv("DEPOTMALLOC"));
  if (depot_options.debug) depot_debug_install(); /* debug=1 (once only) */
  if (depot_quarantine_on) atexit(depot_quarantine_check_all);
  /* After the core is usable: hwloc allocates while it loads. */
  depot_topology_reload();
  const char *stats_env = getenv("DEPOTMALLOCSTATS");
  if (depot_options.stats ||
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
