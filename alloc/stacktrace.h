/* stacktrace.h: the calling thread's stack, as return addresses.
 *
 * Issue 13 (heap profiling) owns this module; this minimal version serves
 * the guarded pool's reports until the two branches merge, when the two
 * implementations are reconciled behind this one declaration.  Callers
 * depend on nothing but it. */
#ifndef DEPOT_ALLOC_STACKTRACE_H
#define DEPOT_ALLOC_STACKTRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Stores up to max return addresses of the calling thread's stack in out,
 * innermost first, skipping the skip innermost frames (depot_stacktrace's
 * own frame is never stored); returns how many it stored.  Never allocates,
 * takes no lock and never calls malloc, so it may run inside malloc and in
 * a signal handler. */
unsigned depot_stacktrace(void **out, unsigned max, unsigned skip);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_STACKTRACE_H */
