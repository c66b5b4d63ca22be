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
#include "alloc/log.h"
#include "alloc/os.h"
#include "alloc/quarantine.h"
#include "runtime/runtime.h"
#include "runtime/topology.h"

static void print_stats_at_exit(void) { DepotMem_PrintStats(STDERR_FILENO, 0); }

static void print_config(void) {
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++)
    depot_say(
        "depot: config: %s=%s (%s)", depot_conf_defs[k].name,
        depot_config_text((depot_conf_key_t)k),
        depot_config_source_name(depot_config_source((depot_conf_key_t)k)));
}

/* Errors in DEPOTMALLOC and DEPOTMALLOCSTATS count as configuration errors
 * (fatal with strict_config=1). */
static int env_errors;

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
    char shown[200];
    depot_say(
        "depot: DEPOTMALLOC=%s: expected debug, malloc or malloc_debug; "
        "ignored",
        depot_escape(m, strlen(m), shown, sizeof shown));
    env_errors++;
  }
}

/* DEPOTMALLOCSTATS: a boolean as the configuration spells them (unset or
 * empty: off). */
static int stats_from_env(const char *v) {
  int on = 0;
  if (!v || !*v) return 0;
  if (depot_config_parse_bool(v, strlen(v), &on) != 0) {
    char shown[200];
    depot_say(
        "depot: DEPOTMALLOCSTATS=%s: bad value; expected 0 or 1 (also "
        "true/false, yes/no, on/off); using 0",
        depot_escape(v, strlen(v), shown, sizeof shown));
    env_errors++;
  }
  return on;
}

/* The runtime's locks come first in the lock order (alloc/README.md):
 * prepare takes them before the core's handler takes the stdio list lock
 * and the core's locks (handlers registered later run their prepare
 * first), and both processes release them after the core's.  They come
 * before the list lock because a topology reload holds lock 2 while hwloc
 * opens files with stdio.  A process with one thread takes nothing (see
 * the core's handlers in alloc/init.c). */
static int fork_locked;

static void fork_prepare(void) {
  fork_locked = !depot_fork_single_threaded();
  if (!fork_locked) return;
  depot_stats_prefork();    /* 1 */
  depot_topology_prefork(); /* 2 */
}
static void fork_finish(void) {
  if (!fork_locked) return;
  depot_topology_postfork();
  depot_stats_postfork();
}

static void init_once(void) {
  /* The core first: it loads the configuration and registers its own fork
   * handlers, which must be registered before the runtime's. */
  if (depot_init() != 0) depot_config_ensure();
  depot_os_atfork(fork_prepare, fork_finish, fork_finish);
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
  int stats = stats_from_env(getenv("DEPOTMALLOCSTATS"));
  depot_config_refuse(env_errors);
  if (depot_options.stats || stats) atexit(print_stats_at_exit);
  depot_stats_signal_install((int)depot_config_live(DEPOT_CONF_stats_signal));
  depot_prof_runtime_start();
}

void depot_runtime_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_once);
}

__attribute__((constructor)) static void runtime_constructor(void) {
  depot_runtime_init();
}
