/* prof.h: the heap profiler.  With prof=1, allocations are sampled by bytes
 * (exponentially distributed intervals of mean prof_sample bytes); each
 * sample keeps its call stack and its requested size.  The samples give
 * four profiles, written in the text heap-profile format of gperftools that
 * pprof, google-pprof, go tool pprof and jeprof read: in use, allocated
 * since start (or the last reset), peak, and leaks at exit.
 *
 * Where sampling happens:
 *   - every allocating entry point counts the bytes asked for against the
 *     thread's countdown to its next sample point (depot_prof_take: one
 *     decrement and one predicted branch; realloc of a block counts only
 *     its growth, and a sample stays one as it grows: depot_prof_realloc,
 *     alloc.c), in the variant of the entry
 *     point that prof=1 switches on at start-up (runtime/override.c: a jump
 *     written over the C family's entry points; runtime/domains.c: the
 *     domains' own allocators).  With prof=0 the entry points are those of
 *     a build without profiling: the cache-hit paths have no added
 *     instruction;
 *   - when the countdown goes below zero, the allocation is the sample
 *     (depot_prof_alloc, alloc.c): it is served from a page run of its own
 *     (a large span marked `sampled`), or a huge block, so that its free
 *     misses the free fast path like any large block's and is recognised
 *     there without a lookup on any hit path.  A block of size s is thus
 *     sampled with probability 1 - exp(-s / prof_sample) (the countdown is
 *     exponential and drawn afresh after each sample), which is what pprof
 *     divides by: the estimate of bytes per stack is unbiased.
 * The table is global, so any thread may free a sample, also after the
 * allocating thread exited, and a forked child keeps the parent's samples.
 *
 * Synchronisation: prof_lock (alloc/README.md's lock table; takes nothing)
 * guards the stack table's counters, the live-sample table and the peak
 * copy.  Stacks are written once, under the lock, and never change, so a
 * dump copies only the counters under the lock and formats after dropping
 * it.  Writing never allocates (static buffers, write(2)). */
#ifndef DEPOT_ALLOC_PROF_H
#define DEPOT_ALLOC_PROF_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/common.h"

#ifndef DEPOT_TLS_MODEL
#define DEPOT_TLS_MODEL "initial-exec"
#endif

/* The code between a program's call and a captured stack (the entry points'
 * versions, the sampling path): frames in this section are dropped from the
 * front of every sample's stack, so that profiles begin at the caller of
 * malloc. */
#define DEPOT_PROF_TEXT __attribute__((section("depot_prof_text")))

/* Frames kept per sample. */
#define DEPOT_PROF_DEPTH 32
/* Distinct (stack, size class) pairs the table holds; later new ones are
 * counted under one "table full" stack. */
#define DEPOT_PROF_STACKS 65536

#ifdef __cplusplus
extern "C" {
#else /* the atomics are the core's (C); tests see the functions */
#include <stdatomic.h>

/* This thread's bytes to its next sample point.  Starts at 0, so that a
 * thread's first allocation reaches depot_prof_due, which draws it. */
#define depot_prof_left (depot_tls.prof_left) /* common.h's depot_tls */

/* Counts size bytes against the countdown; nonzero when they reach the next
 * sample point (the caller then calls depot_prof_alloc).  The whole cost of
 * profiling on a cache hit.  Unsigned subtraction: no overflow. */
depot_inline int depot_prof_take(size_t size) {
  int64_t left = (int64_t)((uint64_t)depot_prof_left - size);
  depot_prof_left = left;
  return depot_unlikely(left < 0);
}

/* Set by depot_prof_init when prof=1, before any thread but the first
 * exists, read-only after: the C family's entry points then count bytes
 * (runtime/override.c switches them to their counting versions). */
extern depot_hidden int depot_prof_counting;

/* Live samples (relaxed: a hint for huge frees, exact under the lock). */
extern depot_hidden _Atomic size_t depot_prof_live_count;

/* Whether any sample is live: huge frees look p up only then. */
static inline int depot_prof_any_live(void) {
  return depot_load_relaxed(&depot_prof_live_count) != 0;
}
#endif

/* Start-up (init.c, after the configuration): maps the tables when prof=1.
 * Returns 0 (a failure to map is reported and leaves profiling off). */
int depot_prof_init(void);

/* The countdown went below zero on an allocation of size bytes: draws the
 * next one, and says whether this allocation is to be the sample (prof=1,
 * prof_active, and the thread not already taking one). */
int depot_prof_due(size_t size);

/* Records p (size bytes asked for) as a sample with the calling thread's
 * stack.  p must be a block whose free reaches depot_prof_release (a
 * marked large span or a huge block). */
void depot_prof_record(void *p, size_t requested);

/* Sample old was resized by realloc to requested bytes, now at p (old
 * itself when it stayed): its record follows it, in use at its new size
 * and, if that is the largest yet, allocated at it (still one object).
 * Returns 1 if old was a sample. */
int depot_prof_resize(const void *old, void *p, size_t requested);

/* Whether p is a live sample (huge blocks: their realloc asks). */
int depot_prof_is_sample(const void *p);

/* A block that may be a sample is being freed or moved: forgets it.
 * Returns 1 if it was a sample. */
int depot_prof_release(const void *p);

/* Writes a profile: to path, or when path is NULL to
 * <prof_prefix>.<pid>.<seq>.<kind>.heap.  kind "peak" writes the peak copy.
 * Returns 0 or an errno value (EINVAL when profiling is off).  Waits for a
 * dump in progress in another thread. */
int depot_prof_dump(const char *path, const char *kind);

/* The same from a signal handler: writes at once when it can, else (the
 * interrupted thread holds the table lock, or is itself dumping) leaves the
 * dump to that thread, which writes it as soon as it lets go. */
void depot_prof_dump_from_signal(void);

/* Whether prof=1 (and the tables are mapped). */
int depot_prof_on(void);

/* Forgets the allocated-since counters (in-use counts stay). */
void depot_prof_reset(void);

/* At exit: the final, peak and leak profiles that the options ask for, and
 * the leak report on stderr. */
void depot_prof_at_exit(void);

typedef struct {
  uint64_t samples;       /* samples taken */
  uint64_t live_samples;  /* samples not freed yet */
  uint64_t stacks;        /* distinct stacks */
  uint64_t dropped;       /* samples with no room (table full, no memory) */
  uint64_t nested;        /* samples refused: the thread was already sampling */
  uint64_t live_estimate; /* estimated bytes in use (unbiased) */
  uint64_t peak_estimate; /* highest live_estimate so far */
  uint64_t table_bytes;   /* memory the tables use (touched pages) */
  uint64_t dumps;         /* profiles written */
} depot_prof_stats_t;
void depot_prof_get_stats(depot_prof_stats_t *out);

/* Fork safety (init.c): the table lock; the child also forgets a dump that
 * another thread of the parent had in progress. */
void depot_prof_prefork(void);
void depot_prof_postfork(void);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_PROF_H */
