/* purger.h: the background purger.  Above init (it walks the nodes' arenas
 * and pools, the huge cache, and reads init's thread flags), below the
 * entry points, which poke it from their slow paths.
 *
 * Without it, free pages go back to the OS only when an arena is touched
 * (arena.c checks its purge delay whenever it hands out or takes back a
 * span), so a process that frees and then sleeps keeps its peak.  The
 * purger is one thread that
 *   - purges what has been free for purge_delay_ms, a few MiB per holding
 *     of an arena's lock, and unmaps the huge cache's expired ranges;
 *   - once the whole heap has been idle (no span handed out or taken back,
 *     no batch pushed or popped on any central pool) for the delay, empties
 *     the central pools into their spans and purges every free page: what
 *     the caches of exited threads and the pools' stacks pinned;
 *   - empties the caches of threads idle (blocked in a system call, no
 *     cache slow path for idle_flush_ms; idle.h's protocol, which needs
 *     nothing of the cache-hit paths);
 *   - re-reads the control group's limit (memory_limit=cgroup) every few
 *     seconds;
 *   - sleeps on a futex (arena.h's doorbell) when there is nothing to do,
 *     and is rung awake when an arena or the huge cache gets memory to
 *     purge, or a thread's cache becomes active (idle.c).
 * It starts lazily, from a slow path, the first time there is something to
 * purge, and only where background_purge allows: 1 always, auto once the
 * process has started a thread of its own (a new thread in a
 * single-threaded process would break calls such as unshare(CLONE_NEWUSER)),
 * 0 never.  It holds no lock of its own; fork's child has no purger until
 * it needs one (init.c resets the flags).
 *
 * A thread's cache is at most tcache_max_bytes, and flushed when it
 * exits. */
#ifndef DEPOT_ALLOC_PURGER_H
#define DEPOT_ALLOC_PURGER_H

#include <stdint.h>

/* Starts the purger if it is allowed, not running and there is memory to
 * purge.  Cheap when it runs: one relaxed load.  Called without any lock. */
void depot_purger_poke(void);

/* Everything now, from the calling thread: empties the central pools into
 * their spans, purges every free page, unmaps the huge cache.  (The soft
 * memory limit and depot_trim use it.) */
void depot_purger_reclaim(void);

/* A key of DEPOT_CONFIG_RUNTIME_KEYS changed: applies it (the arenas' purge
 * delay, the control group's limit) and wakes the purger to re-plan. */
void depot_purger_option_changed(void);

typedef struct {
  int running;            /* the thread exists in this process */
  uint64_t wakeups;       /* times it woke up and looked */
  uint64_t idle_reclaims; /* times it found the heap idle and reclaimed */
} depot_purger_stats_t;
void depot_purger_stats(depot_purger_stats_t *out);

#endif /* DEPOT_ALLOC_PURGER_H */
