/* init.h: the core's start-up, its fork handlers and the life cycle of
 * thread caches.  Above the pools and nodes, below the entry points.
 *
 * Start-up, once per process, from whichever call comes first (a malloc
 * from the dynamic loader, a constructor, a thread): the configuration is
 * loaded, the class table filled, the record table and the heap region
 * reserved, node 0 created, the fork handlers and the thread-exit key
 * registered.  No part of it calls up into the runtime. */
#ifndef DEPOT_ALLOC_INIT_H
#define DEPOT_ALLOC_INIT_H

#include <stdatomic.h>

#include "alloc/tcache.h"

/* Initialises the core if needed.  Returns 0 or an errno value (EAGAIN when
 * called again from inside start-up). */
int depot_init(void);

/* Whether start-up has completed (an acquire load: what it wrote is then
 * visible). */
int depot_initialised(void);

/* The calling thread's cache, created on first use (or taken back from a
 * flusher that parked it, idle.h); NULL for a thread that is exiting or
 * when no metadata memory is left.  The cache is entered (in_slow): the
 * caller calls depot_idle_leave once it no longer uses it. */
depot_tcache_t *depot_thread_cache(void);

/* Flushes the calling thread's cache (if it has one) into the pools. */
void depot_thread_flush(void);

/* Set once a thread other than the process's first creates its cache
 * (background_purge=auto waits for it); the purger sets
 * depot_purger_running when its thread starts.  Both are reset in the
 * child of fork.  Relaxed atomics: flags, nothing is published by them. */
extern _Atomic int depot_threads_started;
extern _Atomic int depot_purger_running;

/* Bumped when a thread that had a cache exits (with the purger's bell rung
 * if it runs): the purger then looks whether it is the last thread left and
 * ends, so that a program whose last thread calls pthread_exit still ends
 * (purger.c).  Relaxed: a hint. */
extern _Atomic uint32_t depot_thread_exits;

/* Takes, and releases, every lock of the core in the lock order of
 * alloc/README.md: what the fork handlers hold (after the C library's stdio
 * list lock, see init.c). */
void depot_lock_all(void);
void depot_unlock_all(void);

/* A layer above (heap.c) that has locks of its own sets these once: the
 * fork handlers call prepare and parent around depot_lock_all and
 * depot_unlock_all when they take the locks, and child(locked) in every
 * child, so that its locks sit in the lock order between the stdio list
 * lock and the configuration lock (alloc/README.md). */
typedef struct {
  void (*prepare)(void);
  void (*parent)(void);
  void (*child)(int locked);
} depot_fork_hook_t;
extern depot_fork_hook_t depot_fork_hook;

#endif /* DEPOT_ALLOC_INIT_H */
