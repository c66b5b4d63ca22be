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
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define DEPOT_HAVE_SINGLE_THREADED 1
#endif
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc/config.h"
#include "alloc/guard.h"
#include "alloc/huge.h"
#include "alloc/idle.h"
#include "alloc/meta.h"
#include "alloc/nodes.h"
#include "alloc/os.h"
#include "alloc/prof.h"
#include "alloc/quarantine.h"
#include "alloc/region.h"

static _Atomic int init_state;
_Atomic int depot_threads_started;
_Atomic int depot_purger_running;
static __thread int init_running; /* this thread is inside init_once */
static pthread_key_t tcache_key;

_Atomic uint32_t depot_thread_exits;

static void tcache_exit(void *arg) {
  depot_idle_exiting(arg); /* the slot becomes depot_tcache_dead */
  depot_tcache_destroy(arg);
  depot_add_relaxed(&depot_thread_exits, 1);
  if (depot_load_relaxed(&depot_purger_running)) {
    /* Release: a purger that reads this ring (acquire) reads the exit
     * count above too (purger.c). */
    atomic_fetch_add_explicit(&depot_purge_bell, 1, memory_order_release);
    depot_os_wake(&depot_purge_bell);
  }
}

/* ---- every lock, in the lock order of alloc/README.md --------------------
 * What depot_check_heap holds, and what the fork handlers below hold across
 * fork() in a multithreaded process. */
void depot_lock_all(void) {
  depot_config_prefork(); /* 3 */
  depot_nodes_prefork();  /* 4 */
  depot_tcache_prefork(); /* 5 */
  depot_owner_prefork();  /* 5a */
  unsigned nodes = depot_numa_nodes();
  for (unsigned n = 0; n < nodes; n++) depot_central_prefork(n); /* 6 */
  for (unsigned n = 0; n < nodes; n++)                           /* 7 */
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      pthread_mutex_lock(&depot_arenas[n][k]->lock);
  depot_region_prefork();     /* 8 */
  depot_huge_prefork();       /* 9 */
  depot_meta_prefork();       /* 10 */
  depot_quarantine_prefork(); /* 11 */
  depot_guard_prefork();      /* 12 */
  depot_prof_prefork();       /* 13 */
}

void depot_unlock_all(void) {
  depot_prof_postfork();
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
  depot_owner_postfork();
  depot_tcache_postfork();
  depot_nodes_postfork();
  depot_config_postfork();
}

/* ---- fork -------------------------------------------------------------------
 * The design: lock everything, but only after the C library's stdio list
 * lock, so that the lock order is total and fork cannot close a cycle.
 *
 * glibc's fork() runs the prepare handlers first and only then takes its
 * own list lock of open streams (which fflush(NULL) holds while it waits
 * for each stream's lock), and its own malloc's locks last of all, because
 * a thread inside getline() holds a stream's lock while it allocates.  A
 * prepare handler that took Depot's locks and returned would hold them
 * while fork() waits for the list lock: a getline() thread waits for Depot,
 * the fflush(NULL) thread holding the list lock waits for that stream, and
 * fork() waits for the list lock (a deadlock glibc's own fork code names).
 * So the prepare handler takes the list lock itself first (glibc exports
 * _IO_list_lock; the lock is recursive, so fork()'s own acquisition later
 * does not wait), then Depot's locks.  Every thread then takes these locks
 * in one order, list lock < a stream's lock < Depot's locks (Depot writes
 * with write(2) and never calls stdio while it holds a lock of its own), so
 * no wait can close a cycle.  The handlers after fork release Depot's locks
 * and the list lock in the parent; the child resets the list lock (one
 * thread is left, and glibc may already have reset it).
 *
 * A process with one thread takes nothing, as glibc's malloc does: there
 * is no other thread to wait for, and a fork() from a signal handler that
 * interrupted malloc in that thread would otherwise wait for a lock its
 * own interrupted frame holds.  As in glibc, such a child may only call
 * async-signal-safe functions (it may find a lock held).
 *
 * Remaining exposure: glibc (2.34 and later) also takes and drops its NSS
 * database lock between the prepare handlers and _Fork; a thread holding
 * that lock while it allocates (reloading /etc/nsswitch.conf) could wait
 * for Depot while fork() waits for it.  No exported function orders that
 * lock, and glibc's own malloc alone can take its locks after it. */
extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
extern void _IO_list_resetlock(void) __attribute__((weak));

/* Whether the prepare handler took the locks.  Read by the handlers of the
 * same fork (glibc runs all three in the forking thread and serialises
 * forks while several threads run). */
static int fork_locked;
/* The forking thread's id in the parent (read by the same fork's child). */
static int32_t fork_tid;
depot_fork_hook_t depot_fork_hook;
/* Whether this fork's prepare handler called the hook's prepare (set once,
 * before any heap exists; a fork racing with that sees all or nothing). */
static int fork_hooked;

int depot_fork_single_threaded(void) {
#if DEPOT_HAVE_SINGLE_THREADED
  /* glibc's own test: true until the first pthread_create, never again
   * after it (except in a child of fork), so never true while another
   * thread runs. */
  return __libc_single_threaded;
#else
  return 0;
#endif
}

static void fork_prepare(void) {
  fork_tid = (int32_t)syscall(SYS_gettid); /* for depot_idle_forked */
  fork_locked = !depot_fork_single_threaded();
  if (!fork_locked) return;
  if (_IO_list_lock) _IO_list_lock();
  fork_hooked = depot_fork_hook.prepare != NULL;
  if (fork_hooked) depot_fork_hook.prepare();
  depot_lock_all();
}

static void fork_parent(void) {
  if (!fork_locked) return;
  depot_unlock_all();
  if (fork_hooked) depot_fork_hook.parent();
  if (_IO_list_unlock) _IO_list_unlock();
}

/* The child: no thread but this one.  The purger, if the parent had one,
 * did not come along; it starts again when needed (in auto mode only once
 * the child starts a thread itself). */
static void fork_child(void) {
  depot_store_relaxed(&depot_threads_started, 0);
  depot_store_relaxed(&depot_purger_running, 0);
  depot_store_relaxed(&depot_purge_asleep, 0);
  /* The caches of the threads left behind lose their owner (the registry
   * lock is held, or the parent had one thread and one cache at most). */
  if (depot_initialised()) {
    depot_idle_forked(fork_tid);
    depot_owner_forked();
  }
  if (fork_locked) depot_unlock_all();
  if (depot_fork_hook.child) depot_fork_hook.child(fork_locked && fork_hooked);
  if (!fork_locked) return;
  if (_IO_list_resetlock) _IO_list_resetlock();
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
  if ((err = depot_prof_init()) != 0) return err;
  if ((err = depot_os_atfork(fork_prepare, fork_parent, fork_child)) != 0)
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
  depot_tcache_t *tc = depot_tls_cache();
  if (depot_likely(tc != &depot_tcache_empty && tc != &depot_tcache_dead)) {
    depot_idle_enter(tc);
    return tc;
  }
  if (tc == &depot_tcache_dead || depot_init() != 0) return NULL;
  if ((tc = depot_idle_parked()) != NULL) return tc; /* parked while idle */
  tc = depot_tcache_create(depot_numa_home(),
                           depot_config_live(DEPOT_CONF_tcache_max_bytes));
  if (!tc) return NULL;
  /* A thread other than the first: the process has started threads. */
  if (!depot_load_relaxed(&depot_threads_started) &&
      syscall(SYS_gettid) != getpid())
    depot_store_relaxed(&depot_threads_started, 1);
  __atomic_store_n(&depot_tls_tcache, tc, __ATOMIC_RELEASE);
  pthread_setspecific(tcache_key, tc);
  depot_idle_created(tc);
  return tc;
}

void depot_thread_flush(void) {
  depot_tcache_t *tc = depot_tls_cache();
  if (tc == &depot_tcache_dead) return;
  if (tc == &depot_tcache_empty) tc = depot_idle_parked();
  else depot_idle_enter(tc);
  if (!tc) return;
  depot_tcache_flush_all(tc);
  depot_idle_leave();
}
