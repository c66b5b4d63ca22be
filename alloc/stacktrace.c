/* stacktrace.c: depot_stacktrace with libgcc's unwinder (stacktrace.h),
 * shared by the guarded pool's reports and the heap profiler's samples.
 *
 * Why it is safe inside malloc: _Unwind_Backtrace reads the unwind tables
 * (.eh_frame) of the loaded objects; libgcc finds an address's object with
 * glibc's _dl_find_object (glibc 2.35 and later, GCC 12 and later:
 * lock-free, no allocation), and allocates only for frames registered at
 * run time with __register_frame_info, which nothing in a Linux program
 * does but a JIT compiler.  It is linked directly, not loaded on first use
 * as glibc's backtrace() loads it with dlopen, which allocates: libdepot.so
 * carries its own copy (libgcc_eh, -static-libgcc in //:libdepot.so, its
 * symbols hidden), so that a process preloading Depot does not load
 * libgcc_s for it (a tenth of a millisecond at start-up, mostly libgcc_s's
 * constructor running CPUID, which traps in a virtual machine); a program
 * that links the core itself gets the unwinder its toolchain links.
 *
 * No recursion: a thread-local flag is set for the walk.  A call made while
 * it is set (a malloc that the unwinder made after all and that the
 * profiler sampled, a signal handler that interrupted a walk and walks
 * itself) returns 0 frames at once instead of walking again. */
#include "alloc/stacktrace.h"

#include <stdint.h>
#include <unwind.h>

#include "alloc/common.h"

#ifndef DEPOT_TLS_MODEL
#define DEPOT_TLS_MODEL "initial-exec"
#endif

/* Nonzero while this thread walks its stack.  Hidden rather than static,
 * as the core's other thread-locals (tcache.h). */
extern __thread int depot_stacktrace_walking depot_hidden
    __attribute__((tls_model(DEPOT_TLS_MODEL)));
__thread int depot_stacktrace_walking
    __attribute__((tls_model(DEPOT_TLS_MODEL)));

typedef struct {
  void **out;
  unsigned max, skip, n;
} walk_t;

static _Unwind_Reason_Code step(struct _Unwind_Context *ctx, void *arg) {
  walk_t *w = arg;
  uintptr_t ip = (uintptr_t)_Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  if (w->skip > 0) {
    w->skip--;
    return _URC_NO_REASON;
  }
  if (w->n >= w->max) return _URC_END_OF_STACK;
  w->out[w->n++] = (void *)ip;
  return _URC_NO_REASON;
}

/* noinline: the first frame the unwinder reports is this function's own,
 * which the walk skips. */
depot_noinline unsigned depot_stacktrace(void **out, unsigned max,
                                         unsigned skip) {
  walk_t w = {out, max, skip + 1, 0}; /* + 1: this function's own frame */
  if (max == 0 || depot_stacktrace_walking) return 0;
  depot_stacktrace_walking = 1;
  _Unwind_Backtrace(step, &w);
  depot_stacktrace_walking = 0;
  return w.n;
}
