/* stacktrace.c: depot_stacktrace with libgcc's unwinder (stacktrace.h).
 *
 * Minimal version, to be reconciled with issue 13's at merge.  Why it is
 * safe inside malloc: _Unwind_Backtrace reads the unwind tables (.eh_frame)
 * of the loaded objects; libgcc finds an address's object with glibc's
 * _dl_find_object (glibc 2.35 and later, GCC 12 and later: lock-free, no
 * allocation), and allocates only for frames registered at run time with
 * __register_frame_info, which nothing in a Linux program does.  It is
 * linked directly (libgcc_s, or libgcc_eh when static), not loaded on first
 * use as glibc's backtrace() loads it with dlopen, which allocates.  The
 * walk never calls malloc, so it cannot recurse into Depot. */
#include "alloc/stacktrace.h"

#include <stdint.h>
#include <unwind.h>

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

__attribute__((noinline)) unsigned depot_stacktrace(void **out, unsigned max,
                                                    unsigned skip) {
  walk_t w = {out, max, skip + 1, 0}; /* + 1: this function's own frame */
  if (max == 0) return 0;
  _Unwind_Backtrace(step, &w);
  return w.n;
}
