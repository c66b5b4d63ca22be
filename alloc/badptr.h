/* badptr.h: how the core answers a pointer it must not take: not a block
 * of Depot's, a block of another domain or heap, a block freed twice, or
 * a block written after its free.  One line through depot_say names the
 * call and the pointer; then the on_bad_free option decides: abort (the
 * default) ends the process, warn adds " (ignored; the block is leaked)"
 * (for a double free "(ignored; the block stays free)") and the call
 * returns having changed nothing.  Every layer that finds a
 * misuse (the thread cache's outbox, the quarantine, the entry points'
 * slow paths, heaps, the runtime's sized frees) reports it here, so the
 * wording and the policy live in one place.  Above the configuration
 * (on_bad_free) and log; below every layer that finds misuses. */
#ifndef DEPOT_ALLOC_BADPTR_H
#define DEPOT_ALLOC_BADPTR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reports "depot: op(p): why" and aborts, or returns (on_bad_free=warn). */
void depot_bad_pointer(const char *op, const void *p, const char *why);

/* A block freed twice, found where (e.g. "in the thread cache"): reported
 * as depot_bad_pointer reports, "double free detected <where> (a
 * <usable>-byte block of <owner> freed twice)", owner being "domain 'raw'"
 * or "heap 'name'" (owner_kind and owner_name); warn mode's suffix is
 * " (ignored; the block stays free)": the second free changes nothing. */
void depot_double_free(const char *op, const void *p, size_t usable,
                       const char *owner_kind, const char *owner_name,
                       const char *where);

/* depot_double_free's where for a block that carries the free key but is
 * not where this thread looked (its bin, its outbox bucket): it waits free
 * in a pool or in another thread's cache (alloc.c's free_full). */
#define DEPOT_FREED_ELSEWHERE "in a pool or another thread's cache"

/* For a report that depot_bad_pointer's form does not fit (the
 * quarantine's write after free, already said): aborts if on_bad_free is
 * abort, else returns. */
void depot_bad_pointer_end(void);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_BADPTR_H */
