/* stacktrace.h: the calling thread's stack, as return addresses, for the
 * guarded pool's reports (guard.c) and the heap profiler's samples
 * (prof.c): one implementation for both (stacktrace.c). */
#ifndef DEPOT_ALLOC_STACKTRACE_H
#define DEPOT_ALLOC_STACKTRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Stores up to max return addresses of the calling thread's stack in out,
 * innermost first, skipping the skip innermost frames (depot_stacktrace's
 * own frame is never stored); returns how many it stored.  Never allocates,
 * takes no lock and never calls malloc, so it may run inside malloc and in
 * a signal handler; a call made while the same thread is already walking
 * (a signal handler that interrupted a walk) stores nothing and returns 0. */
unsigned depot_stacktrace(void **out, unsigned max, unsigned skip);

/* The same, always with libgcc's unwinder (depot_stacktrace follows rules
 * learned from earlier walks where it can: stacktrace.c); for tests. */
unsigned depot_stacktrace_unwinder(void **out, unsigned max, unsigned skip);

/* How many of the calling thread's depot_stacktrace calls the learned rules
 * answered without the unwinder (0 where there are none: not x86-64). */
unsigned long depot_stacktrace_fast_walks(void);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_STACKTRACE_H */
