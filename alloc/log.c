/* log.c: the core's one way of writing to the user (log.h).  Formats into a
 * stack buffer and writes it with one write(2) call, so concurrent lines do
 * not interleave within a line. */
#include "alloc/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "alloc/common.h"

void depot_vsay(const char *fmt, va_list ap) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
  (void)w; /* nothing useful to do when stderr is gone */
}

void depot_say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  depot_vsay(fmt, ap);
  va_end(ap);
}

const char *depot_domain_name(unsigned domain) {
  static const char *const names[DEPOT_NDOMAINS] = {"raw", "mem", "obj"};
  return domain < DEPOT_NDOMAINS ? names[domain] : "?";
}

void depot_check_failed(const char *file, int line, const char *expr) {
  depot_say("depot: internal check failed at %s:%d: %s", file, line, expr);
  abort();
}
