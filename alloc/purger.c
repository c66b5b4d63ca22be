/* purger.c: the background purger (see purger.h). */
#define _GNU_SOURCE
#include "alloc/purger.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc/central.h"
#include "alloc/config.h"
#include "alloc/huge.h"
#include "alloc/idle.h"
#include "alloc/init.h"
#include "alloc/limit.h"
#include "alloc/numa.h"
#include "alloc/os.h"
#include "alloc/tcache.h"

/* Pages purged per holding of an arena's lock (4 MiB: a millisecond or so
 * of madvise). */
#define PURGE_CHUNK_PAGES 512u
/* Longest sleep while something is pending, and shortest. */
#define SLEEP_MAX_MS 60000u
#define SLEEP_MIN_MS 10u

static _Atomic uint64_t wakeups, idle_reclaims;

void depot_purger_reclaim(void) {
  if (!depot_initialised()) return;
  uint32_t next;
  for (unsigned o = 0, limit = depot_owner_limit(); o < limit; o++) {
    depot_owner_t *owner = depot_owner(o);
    if (!owner) continue;
    /* The cache registry's lock (5, before the pools' 6 and the arenas' 7
     * that the drain takes) is held across one owner's drains: a drain
     * moves stacked blocks back into spans, between the pop of a record
     * and the pool's lock, and depot_check_heap, which holds the registry
     * lock across its walk of the arenas and of the pools, must not see
     * half of that (a purger's reclaim on an idle process would otherwise
     * trip the check).  One owner at a time, so that a thread starting or
     * exiting waits for one owner's drains at most. */
    depot_tcache_registry_lock();
    for (unsigned i = 0; i < DEPOT_POOLS_PER_OWNER; i++)
      if (depot_list_class(i) != 0 && depot_list_class(i) < DEPOT_NCLASSES)
        depot_central_drain(&owner->pools[i]);
    depot_tcache_registry_unlock();
  }
  for (unsigned n = 0; n < depot_numa_nodes(); n++) {
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      depot_arena_purge_due(depot_arenas[n][k], PURGE_CHUNK_PAGES, 1, &next);
  }
  depot_huge_release_cache();
}

/* A number that changes whenever the heap is used: spans handed out or
 * taken back, batches pushed or popped (each pool's stack tag). */
static uint64_t activity(void) {
  uint64_t sig = 0;
  for (unsigned n = 0; n < depot_numa_nodes(); n++)
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      sig += depot_load_relaxed(&depot_arenas[n][k]->ops);
  for (unsigned o = 0, limit = depot_owner_limit(); o < limit; o++) {
    depot_owner_t *owner = depot_owner(o);
    if (!owner) continue;
    for (unsigned i = 0; i < DEPOT_POOLS_PER_OWNER; i++)
      if (depot_list_class(i) != 0 && depot_list_class(i) < DEPOT_NCLASSES)
        sig += depot_load_relaxed(&owner->pools[i].top) >> 32;
  }
  return sig;
}

/* Something is due at `at`: *next becomes the earliest due time so far
 * (*pending says whether there was one). */
static void due_at(uint32_t at, uint32_t *next, int *pending) {
  if (!*pending || depot_ms_before(at, *next)) *next = at;
  *pending = 1;
}

/* Milliseconds from now to at (0 if at has passed). */
static uint32_t ms_until(uint32_t now, uint32_t at) {
  return depot_ms_before(now, at) ? at - now : 0;
}

/* Purges what is due; returns 1 and the next due time if anything waits. */
static int purge_due(uint32_t *next) {
  int pending = 0;
  uint32_t due;
  for (unsigned n = 0; n < depot_numa_nodes(); n++)
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      if (depot_arena_purge_due(depot_arenas[n][k], PURGE_CHUNK_PAGES, 0,
                                &due))
        due_at(due, next, &pending);
  if (depot_huge_expire(&due)) due_at(due, next, &pending);
  return pending;
}

/* After a thread with a cache exits (depot_thread_exits) the purger looks
 * at the program's other live threads (depot_os_other_live_threads) and
 * ends when there are none.  A thread whose exit was counted is still
 * listed while the rest of its exit runs (other destructors, the C
 * library's cleanup, a descheduled kernel exit on a loaded machine), and
 * two exits may overlap, so a look that still finds threads is followed by
 * others: after 10 ms, then twice as long each time up to 5.12 s (ten
 * looks, about 10 s), from the start again at each new exit; then the
 * purger stops looking until the next exit.  (A thread that never had a
 * cache exits uncounted: a process whose last thread is one such keeps
 * the purger until then.) */
#define EXIT_LOOK_FIRST_MS 10u
#define EXIT_LOOK_LAST_MS 5120u

/* The exit count when start() created the purger, its first `seen`: an exit
 * between the creation and the purger's first look at the count is new to
 * it.  (The purger used to read the count when it began to run; a loaded
 * machine can hold a new thread back until every thread of the program has
 * exited, and the purger then took their exits for old ones, never looked,
 * and kept the process alive for good.)  Written before pthread_create,
 * which orders it before everything the new thread does. */
static _Atomic uint32_t exits_at_start;

/* Whether the program may still have a running thread besides the purger:
 * the threads /proc lists, or, where /proc cannot be read (not mounted, or
 * no file descriptor left), whether another thread's cache is live: every
 * thread that allocated has one until it exits (a fork child's caches of
 * the threads it lost have thread id 0).  A thread that never allocated is
 * not seen there, so the purger may end while it runs: harmless, since a
 * later slow path starts a new purger if one is needed.  (Unreadable, the
 * purger used to stop looking, and a program whose last thread ended with
 * pthread_exit never ended.) */
static int others_live(void) {
  int others = depot_os_other_live_threads();
  if (others >= 0) return others;
  int32_t self = (int32_t)syscall(SYS_gettid);
  int cached = 0;
  depot_tcache_registry_lock();
  for (depot_tcache_t *tc = depot_tcache_live(); tc && !cached;
       tc = tc->next_live)
    cached = tc->tid != 0 && tc->tid != self;
  depot_tcache_registry_unlock();
  return cached;
}

static void *purger_main(void *arg) {
  (void)arg;
  /* Exits counted when the purger last looked (seen); exit_wait: 0 (not
   * looking), or the wait before the next look, due at exit_look (see
   * EXIT_LOOK_FIRST_MS). */
  uint32_t seen = depot_load_relaxed(&exits_at_start);
  uint32_t exit_wait = 0, exit_look = 0;
  uint64_t last_sig = activity();
  uint32_t last_change = depot_os_now_ms();
  int idle_done = 0;
  for (;;) {
    /* Acquire: pairs with the release increment of an exiting thread
     * (init.c, tcache_exit), whose exit count is then seen below. */
    uint32_t seq = depot_load_acquire(&depot_purge_bell);
    depot_add_relaxed(&wakeups, 1);
    uint32_t exits = depot_load_relaxed(&depot_thread_exits);
    if (exits != seen ||
        (exit_wait && !depot_ms_before(depot_os_now_ms(), exit_look))) {
      if (exits != seen) exit_wait = 0; /* a new exit: from the start */
      seen = exits;
      int others = others_live();
      /* Every thread of the program has ended (the last one with
       * pthread_exit): end too, so that the process ends as it would
       * without this thread (glibc calls exit(0) when its last thread
       * returns).  A later slow path starts a new purger if one is needed. */
      if (others == 0) {
        depot_store_relaxed(&depot_purger_running, 0);
        return NULL;
      }
      if (exit_wait >= EXIT_LOOK_LAST_MS) {
        exit_wait = 0; /* looked long enough */
      } else {
        exit_wait = exit_wait ? 2 * exit_wait : EXIT_LOOK_FIRST_MS;
        exit_look = depot_os_now_ms() + exit_wait;
      }
    }
    if (depot_config_live(DEPOT_CONF_background_purge) == DEPOT_BG_PURGE_OFF) {
      /* Turned off at run time: wait for the control interface's ring (or
       * the next look at an exit). */
      depot_os_wait(&depot_purge_bell, seq,
                    exit_wait ? ms_until(depot_os_now_ms(), exit_look)
                              : UINT32_MAX);
      continue;
    }
    uint32_t delay = (uint32_t)depot_config_live(DEPOT_CONF_purge_delay_ms);
    uint32_t next = 0;
    int pending = purge_due(&next);
    uint32_t idle_ms = (uint32_t)depot_config_live(DEPOT_CONF_idle_flush_ms);
    uint32_t at;
    if (depot_idle_flush(idle_ms, &at)) due_at(at, &next, &pending);
    uint32_t now = depot_os_now_ms();
    uint64_t sig = activity();
    if (sig != last_sig) {
      last_sig = sig;
      last_change = now;
      idle_done = 0;
    } else if (!idle_done && (uint32_t)(now - last_change) >= delay) {
      depot_purger_reclaim();
      depot_add_relaxed(&idle_reclaims, 1);
      idle_done = 1;
      last_sig = activity();
      /* What the reclaim left due, kept beside the idle flush's due time
       * found above (assigning it dropped that one: an idle thread's
       * flush then waited up to SLEEP_MAX_MS). */
      uint32_t after;
      if (purge_due(&after)) due_at(after, &next, &pending);
    }
    if (!idle_done) /* look again when the heap may have gone idle */
      due_at(last_change + delay, &next, &pending);
    if (depot_config_live(DEPOT_CONF_memory_limit) == DEPOT_LIMIT_CGROUP) {
      depot_limit_refresh(0);
      due_at(now + DEPOT_CGROUP_REFRESH_MS, &next, &pending);
    }
    if (exit_wait) due_at(exit_look, &next, &pending);
    if (pending) {
      uint32_t ms = ms_until(depot_os_now_ms(), next);
      if (ms < SLEEP_MIN_MS) ms = SLEEP_MIN_MS;
      if (ms > SLEEP_MAX_MS) ms = SLEEP_MAX_MS;
      depot_os_wait(&depot_purge_bell, seq, ms);
      continue;
    }
    /* Nothing pending: say so, then look once more, under the arenas' and
     * the huge table's locks (the ringers' locks), before sleeping. */
    atomic_store(&depot_purge_asleep, 1);
    if (purge_due(&next) || activity() != last_sig ||
        depot_idle_flush(idle_ms, &at)) {
      atomic_store(&depot_purge_asleep, 0);
      continue;
    }
    depot_os_wait(&depot_purge_bell, seq, UINT32_MAX);
  }
  return NULL;
}

static depot_cold void start(void) {
  uint64_t mode = depot_config_live(DEPOT_CONF_background_purge);
  if (mode == DEPOT_BG_PURGE_OFF ||
      (mode == DEPOT_BG_PURGE_AUTO &&
       !depot_load_relaxed(&depot_threads_started)))
    return;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&depot_purger_running, &expected, 1))
    return;
  /* No signal of the program's is ever delivered to this thread; a small
   * stack (it calls nothing deep).  pthread_create allocates: it comes back
   * here and finds the purger running.  If it fails, the purger stays off
   * (running stays set, so that no slow path tries again). */
  pthread_attr_t attr;
  pthread_t t;
  sigset_t all, old;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, (size_t)256 << 10);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  /* Relaxed: pthread_create orders it before the new purger's read; atomic
   * because a purger that ended may have read it while no lock or fence
   * orders that read before this store. */
  depot_store_relaxed(&exits_at_start, depot_load_relaxed(&depot_thread_exits));
  pthread_create(&t, &attr, purger_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
}

void depot_purger_poke(void) {
  if (depot_likely(depot_load_relaxed(&depot_purger_running))) return;
  if (!depot_load_relaxed(&depot_purge_wanted)) return;
  start();
}

void depot_purger_option_changed(void) {
  if (!depot_initialised()) return;
  uint32_t delay = (uint32_t)depot_config_live(DEPOT_CONF_purge_delay_ms);
  for (unsigned n = 0; n < depot_numa_nodes(); n++)
    for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++)
      depot_arena_set_purge_delay(depot_arenas[n][k], delay);
  depot_limit_refresh(1);
  atomic_store(&depot_purge_asleep, 0);
  depot_add_relaxed(&depot_purge_bell, 1);
  depot_os_wake(&depot_purge_bell);
  depot_purger_poke();
}

void depot_purger_stats(depot_purger_stats_t *out) {
  out->running = depot_load_relaxed(&depot_purger_running);
  out->wakeups = depot_load_relaxed(&wakeups);
  out->idle_reclaims = depot_load_relaxed(&idle_reclaims);
}
