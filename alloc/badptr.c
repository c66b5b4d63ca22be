/* badptr.c: the reports of misused pointers and the on_bad_free policy
 * (badptr.h).  Cold code: nothing here runs unless a program is wrong. */
#include "alloc/badptr.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc/common.h"
#include "alloc/config.h"
#include "alloc/log.h"

static int fatal(void) {
  return depot_options.on_bad_free == DEPOT_ON_BAD_FREE_ABORT;
}

/* The line, then the policy; ignored: what warn mode's suffix says. */
static void report(const char *op, const void *p, const char *why,
                   const char *ignored) {
  int f = fatal();
  depot_say("depot: %s(%p): %s%s", op, p, why, f ? "" : ignored);
  if (f) abort();
}

depot_cold void depot_bad_pointer(const char *op, const void *p,
                                  const char *why) {
  report(op, p, why, " (ignored; the block is leaked)");
}

depot_cold void depot_double_free(const char *op, const void *p, size_t usable,
                                  const char *owner_kind,
                                  const char *owner_name, const char *where) {
  char why[192];
  snprintf(why, sizeof why,
           "double free detected %s (a %zu-byte block of %s '%s' freed "
           "twice)",
           where, usable, owner_kind, owner_name);
  /* Not leaked: the block waits free where it was found. */
  report(op, p, why, " (ignored; the block stays free)");
}

depot_cold void depot_bad_pointer_end(void) {
  if (fatal()) abort();
}
