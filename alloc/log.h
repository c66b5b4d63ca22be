/* log.h: how the core speaks.  One line at a time to stderr with write(2):
 * no allocation, no stdio buffers, no locks, so it is safe inside malloc,
 * in a forked child and at any point of start-up.  Also the words the
 * reports share (the domains' names). */
#ifndef DEPOT_ALLOC_LOG_H
#define DEPOT_ALLOC_LOG_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes one formatted line (a newline is added) to stderr.  Lines longer
 * than 1 KiB are cut. */
void depot_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void depot_vsay(const char *fmt, va_list ap);

/* Copies s[0..n) into out (cap bytes, NUL-terminated) so that it prints on
 * one line: bytes below 0x20, 0x7f and above are written as \n, \t, \r or
 * \xHH, a backslash as \\.  What does not fit is cut and marked with
 * "...".  For echoing text from the user (configuration values, paths).
 * Returns out. */
const char *depot_escape(const char *s, size_t n, char *out, size_t cap);

/* "raw", "mem" or "obj" for a domain number, "?" for anything else. */
const char *depot_domain_name(unsigned domain);

/* Reports a failed assertion of the core (check.h) and aborts. */
void depot_check_failed(const char *file, int line, const char *expr)
    __attribute__((noreturn, cold));

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_LOG_H */
