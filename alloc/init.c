/* init.c: start-up, fork handlers and thread-cache life cycle (init.h).
 *
 * init_state: 0 not done, 1 in progress, 2 done.  The release store of 2
 * publishes everything init_once wrote (options, tables, arenas, pools);
 * every reader of those goes through depot_init() or depot_initialised(),
 * whose acquire load pairs with it. */
#define _GNU_SOURCE
#include "alloc/init.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/config.h"
#include "alloc/guard.h"
#include "alloc/huge.h"
#include "alloc/meta.h"
#include "alloc/nodes.h"
#include "alloc/quarantine.h"
#include "alloc/region.h"

static _Atomic int init_state;
static __thread int init_running; /* this thread is inside init_once */
static pthread_key_t tcache_key;

static void tcache_exit(void *arg) {
  depot_tls_tcache = &depot_tcache_dead;
  depot_tcache_destroy(arg);
}

/* ---- every lock, in the lock order of alloc/README.md --------------------
 * The fork handlers take them all before fork and release them after it in
 * both processes, so the child's only thread finds every structure
 * consistent and unlocked and can allocate at once.  The caches of the
 * parent's other threads stay registered in the child and their blocks stay
 * unused there, as in any forked copy of a multithreaded heap. */
void depot_lock_all(void) {
  depot_config_prefork();                                /* 3 */
  depot_nodes_prefork();                                 /* 4 */
  depot_tcache_prefork();                                /* 5 */
  unsigned nodes = depot_numa_nodes();
  for (unsigned n = 0; n < nodes; n++) depot_central_prefork(n);  /* 6 */
  for (unsigned n = 0; n < nodes; n++)                   /* 7 */
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      pthread_mutex_lock(&depot_arenas[n][k]->lock);
  depot_region_prefork();                                /* 8 */
  depot_huge_prefork();                                  /* 9 */
  depot_meta_prefork();                                  /* 10 */
  depot_quarantine_prefork();                            /* 11 */
  depot_guard_prefork();                                 /* 12 */
}

void depot_unlock_all(void) {
  depot_guard_postfork();
  depot_quarantine_postfork();
  depot_meta_postfork();
  depot_huge_postfork();
  depot_region_postfork();
  /* The node count cannot change while the install lock is held. */
  unsigned nodes = depot_numa_nodes();
  for (unsigned n = 0; n < nodes; n++)
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      pthread_mutex_unlock(&depot_arenas[n][k]->lock);
  for (unsigned n = 0; n < nodes; n++) depot_central_postfork(n);
  depot_tcache_postfork();
  depot_nodes_postfork();
  depot_config_postfork();
}

/* Debug mode (debug=1, or DEPOTMALLOC=debug as the runtime reads it) and
 * the quarantine are decided before any thread cache exists: while either
 * is on, caches hold nothing (depot_tcache_bypass). */
static void bug_finding_init(void) {
  const char *m = getenv("DEPOTMALLOC");
  if (m && (strcmp(m, "debug") == 0 || strcmp(m, "malloc_debug") == 0))
    depot_options.debug = 1;
  depot_quarantine_init();
  depot_guard_init();
  depot_tcache_bypass = depot_options.debug || depot_quarantine_on;
  depot_tcache_init_key();
}

static int init_once(void) {
  depot_config_ensure();
  bug_finding_init();
  depot_sizeclass_init(depot_options.tcache_batch);
  int err = depot_central_global_init();
  if (err) return err;
  depot_region_init(depot_options.arena_reserve_bytes);
  if ((err = depot_nodes_init()) != 0) return err;
  if ((err = pthread_atfork(depot_lock_all, depot_unlock_all,
                            depot_unlock_all)) != 0)
    return err;
  return pthread_key_create(&tcache_key, tcache_exit);
}

static depot_cold int init_slow(void) {
  if (init_running) return EAGAIN; /* re-entered from inside init */
  for (;;) {
    int expected = 0;
    if (atomic_compare_exchange_strong_explicit(&init_state, &expected, 1,
                                                memory_order_acquire,
                                                memory_order_acquire)) {
      init_running = 1;
      int err = init_once();
      init_running = 0;
      depot_store_release(&init_state, err ? 0 : 2);
      return err;
    }
    if (expected == 2) return 0;
    while (depot_load_acquire(&init_state) == 1) sched_yield();
    if (depot_load_acquire(&init_state) == 2) return 0;
  }
}

int depot_init(void) {
  if (depot_likely(depot_load_acquire(&init_state) == 2)) return 0;
  return init_slow();
}

int depot_initialised(void) { return depot_load_acquire(&init_state) == 2; }

depot_tcache_t *depot_thread_cache(void) {
  depot_tcache_t *tc = depot_tls_tcache;
  if (depot_likely(tc != &depot_tcache_empty && tc != &depot_tcache_dead))
    return tc;
  if (tc == &depot_tcache_dead || depot_init() != 0) return NULL;
  tc = depot_tcache_create(depot_numa_home(), depot_options.tcache_max_bytes);
  if (!tc) return NULL;
  depot_tls_tcache = tc;
  pthread_setspecific(tcache_key, tc);
  return tc;
}

void depot_thread_flush(void) {
  depot_tcache_t *tc = depot_tls_tcache;
  if (tc != &depot_tcache_empty && tc != &depot_tcache_dead)
    depot_tcache_flush_all(tc);
}
