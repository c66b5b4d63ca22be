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

const char *depot_escape(const char *s, size_t n, char *out, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (cap == 0) return out;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[4];
    size_t len = 0;
    if (c == '\n' || c == '\t' || c == '\r' || c == '\\') {
      esc[0] = '\\';
      esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : c == '\r' ? 'r' : '\\';
      len = 2;
    } else if (c < 0x20 || c >= 0x7f) {
      esc[0] = '\\', esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15];
      len = 4;
    } else {
      esc[0] = (char)c;
      len = 1;
    }
    /* Room for this, and for "..." should anything follow. */
    if (o + len + (i + 1 < n ? 3 : 0) >= cap) {
      size_t dots = cap - 1 - o < 3 ? cap - 1 - o : 3;
      for (size_t d = 0; d < dots; d++) out[o++] = '.';
      break;
    }
    for (size_t k = 0; k < len; k++) out[o++] = esc[k];
  }
  out[o] = 0;
  return out;
}

const char *depot_domain_name(unsigned domain) {
  static const char *const names[DEPOT_NDOMAINS] = {"raw", "mem", "obj"};
  return domain < DEPOT_NDOMAINS ? names[domain] : "?";
}

void depot_check_failed(const char *file, int line, const char *expr) {
  depot_say("depot: internal check failed at %s:%d: %s", file, line, expr);
  abort();
}
