/* config.c: the configuration table, its parser, its error messages and
 * the option struct it fills (see config.h).  Values live in conf[] (as
 * numbers and as text) and are copied into depot_options after every load;
 * both are written under config_lock. */
#define _GNU_SOURCE
#include "alloc/config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc/common.h"
#include "alloc/log.h"
#include "alloc/numa_policy.h"

const depot_conf_def_t depot_conf_defs[DEPOT_CONF_NKEYS] = {
#define DEPOT_CONF_DEF(name, kind, ctype, def, min, max, choices, help) \
  {#name, DEPOT_CONF_##kind, def, min, max, choices, help},
    DEPOT_CONFIG_KEYS(DEPOT_CONF_DEF)
#undef DEPOT_CONF_DEF
};

/* Longest TEXT value, with its terminator (prof_prefix holds a path). */
#define TEXT_MAX 256
/* Most bytes of an escaped echo of the user's text in one message. */
#define ECHO_MAX 200

/* Current values.  Written while loading (once, before any reader) and by the
 * test entry points.  text is the key's default text (in the read-only
 * table) until a value is given, then the key's row of conf_text: the rows
 * are apart from the values, so that a process that configures nothing
 * never writes them (8 KiB it would otherwise keep resident). */
static struct {
  uint64_t value;
  /* Stored with release after the row is written, loaded with acquire
   * (depot_config_text reads it without the lock). */
  _Atomic(const char *) text;
  depot_conf_source_t source;
} conf[DEPOT_CONF_NKEYS];
depot_sparse_bss static char conf_text[DEPOT_CONF_NKEYS][TEXT_MAX];
static int conf_ready;
/* Guards conf[] and depot_options while a load writes them (lock order:
 * see alloc/README.md). */
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;

depot_options_t depot_options;

/* Every key's value again, as atomics: written by each load and by
 * depot_config_set, read at any time by depot_config_live (relaxed: each
 * value stands alone, nothing else is published through it). */
static _Atomic uint64_t live[DEPOT_CONF_NKEYS];

/* Copies conf[] into the typed fields of depot_options (lock held).  Only
 * fields whose value changes are written: the core reads options without a
 * lock, so a reload that changes nothing (the common case at run time) must
 * not race with those reads.  A reload that does change a field is for
 * start-up and tests, with the core quiescent. */
static void fill_options(void) {
#define DEPOT_OPT_VALUE_BOOL(k) conf[k].value
#define DEPOT_OPT_VALUE_UINT(k) conf[k].value
#define DEPOT_OPT_VALUE_SIZE(k) conf[k].value
#define DEPOT_OPT_VALUE_ENUM(k) conf[k].value
#define DEPOT_OPT_VALUE_TEXT(k) depot_load_acquire(&conf[k].text)
#define DEPOT_CONF_FILL(name, kind, ctype, ...)                               \
  if (depot_options.name != (ctype)DEPOT_OPT_VALUE_##kind(DEPOT_CONF_##name)) \
    depot_options.name = (ctype)DEPOT_OPT_VALUE_##kind(DEPOT_CONF_##name);
  DEPOT_CONFIG_KEYS(DEPOT_CONF_FILL)
#undef DEPOT_CONF_FILL
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++)
    atomic_store_explicit(&live[k], conf[k].value, memory_order_relaxed);
}

/* ---- messages ------------------------------------------------------------ */

/* What a key accepts, in words. */
static void describe(const depot_conf_def_t *d, char *out, size_t len) {
  switch (d->type) {
    case DEPOT_CONF_BOOL:
      snprintf(out, len, "0 or 1 (also true/false, yes/no, on/off)");
      break;
    case DEPOT_CONF_UINT:
      snprintf(out, len, "an integer from %llu to %llu",
               (unsigned long long)d->min, (unsigned long long)d->max);
      break;
    case DEPOT_CONF_SIZE:
      snprintf(
          out, len,
          "a size from %llu to %llu bytes, with an optional k, m or g suffix",
          (unsigned long long)d->min, (unsigned long long)d->max);
      break;
    case DEPOT_CONF_ENUM: snprintf(out, len, "one of %s", d->choices); break;
    case DEPOT_CONF_TEXT:
      snprintf(out, len, "%s", d->choices ? d->choices : "text");
      break;
  }
}

/* ---- value parsing (no locale, no allocation) ---------------------------- */

int depot_config_parse_bool(const char *s, size_t n, int *out) {
  if (depot_word_is(s, n, "1") || depot_word_is(s, n, "true") ||
      depot_word_is(s, n, "yes") || depot_word_is(s, n, "on")) {
    *out = 1;
    return 0;
  }
  if (depot_word_is(s, n, "0") || depot_word_is(s, n, "false") ||
      depot_word_is(s, n, "no") || depot_word_is(s, n, "off")) {
    *out = 0;
    return 0;
  }
  return -1;
}

/* Parses an unsigned decimal; with allow_suffix, a k/m/g (optionally
 * followed by b) multiplier.  Returns 0 on success. */
static int parse_number(const char *s, size_t n, int allow_suffix,
                        uint64_t *out) {
  size_t i = 0;
  uint64_t v = 0;
  if (n == 0 || s[0] < '0' || s[0] > '9') return -1;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    unsigned digit = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - digit) / 10) return -1; /* overflow */
    v = v * 10 + digit;
  }
  if (i < n) {
    if (!allow_suffix) return -1;
    unsigned shift;
    switch (depot_ascii_lower((unsigned char)s[i])) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      default: return -1;
    }
    i++;
    if (i < n && depot_ascii_lower((unsigned char)s[i]) == 'b') i++;
    if (i != n) return -1;
    if (v > (UINT64_MAX >> shift)) return -1;
    v <<= shift;
  }
  *out = v;
  return 0;
}

/* memory_limit: 0 (none), cgroup, or a size of at least 1 MiB. */
static int parse_limit(const char *s, size_t n, uint64_t *out) {
  if (depot_word_is(s, n, "cgroup")) {
    *out = DEPOT_LIMIT_CGROUP;
    return 0;
  }
  if (parse_number(s, n, 1, out) != 0) return -1;
  return *out == 0 || (*out >= ((uint64_t)1 << 20) && *out < DEPOT_LIMIT_CGROUP)
             ? 0
             : -1;
}

/* memory_limit_margin: a percentage below 100 (10%) or a size. */
static int parse_margin(const char *s, size_t n, uint64_t *out) {
  if (n > 1 && s[n - 1] == '%') {
    if (parse_number(s, n - 1, 0, out) != 0 || *out >= 100) return -1;
    *out |= DEPOT_MARGIN_PERCENT;
    return 0;
  }
  if (parse_number(s, n, 1, out) != 0) return -1;
  return *out < DEPOT_MARGIN_PERCENT ? 0 : -1;
}

/* stats_signal and prof_signal: 0, a signal number, or a name with or
 * without SIG. */
static int parse_signal(const char *s, size_t n, uint64_t *out) {
  static const struct {
    const char *name;
    int sig;
  } names[] = {{"usr1", SIGUSR1}, {"usr2", SIGUSR2},   {"hup", SIGHUP},
               {"pwr", SIGPWR},   {"winch", SIGWINCH}, {"urg", SIGURG},
               {"quit", SIGQUIT}, {"cont", SIGCONT},   {"alrm", SIGALRM},
               {"prof", SIGPROF}, {"io", SIGIO},       {"xcpu", SIGXCPU}};
  if (parse_number(s, n, 0, out) == 0)
    return *out == 0 || (*out < 65 && *out != SIGKILL && *out != SIGSTOP) ? 0
                                                                          : -1;
  if (n > 3 && depot_word_is(s, 3, "sig")) s += 3, n -= 3;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (depot_word_is(s, n, names[i].name)) {
      *out = (uint64_t)names[i].sig;
      return 0;
    }
  return -1;
}

/* Parses a value of key d.  Returns 0 and the value, or -1. */
static int parse_value(const depot_conf_def_t *d, const char *s, size_t n,
                       uint64_t *out) {
  switch (d->type) {
    case DEPOT_CONF_BOOL: {
      int b;
      if (depot_config_parse_bool(s, n, &b) != 0) return -1;
      *out = (uint64_t)b;
      return 0;
    }
    case DEPOT_CONF_UINT:
    case DEPOT_CONF_SIZE:
      if (parse_number(s, n, d->type == DEPOT_CONF_SIZE, out) != 0) return -1;
      return *out >= d->min && *out <= d->max ? 0 : -1;
    case DEPOT_CONF_ENUM: {
      const char *w = d->choices;
      for (uint64_t idx = 0; *w; idx++) {
        /* A loop, not strcspn: at start-up that would fault in a 64 KiB
         * window of the C library's code (its SSE4.2 string functions)
         * that a program which never calls it does not keep resident. */
        size_t len = 0;
        while (w[len] && w[len] != '|') len++;
        if (len == n && strncmp(w, s, n) == 0) {
          *out = idx;
          return 0;
        }
        w += len + (w[len] == '|');
      }
      return -1;
    }
    case DEPOT_CONF_TEXT: {
      *out = 0;
      if (n == 0 || n >= TEXT_MAX) return -1;
      if (d == &depot_conf_defs[DEPOT_CONF_memory_limit])
        return parse_limit(s, n, out);
      if (d == &depot_conf_defs[DEPOT_CONF_memory_limit_margin])
        return parse_margin(s, n, out);
      if (d == &depot_conf_defs[DEPOT_CONF_stats_signal] ||
          d == &depot_conf_defs[DEPOT_CONF_prof_signal])
        return parse_signal(s, n, out);
      depot_numa_policy_t policy;
      uint64_t mask;
      if (d == &depot_conf_defs[DEPOT_CONF_numa])
        return depot_numa_parse(s, n, &policy, &mask);
      return 0;
    }
  }
  return -1;
}

/* A given value's text goes into the key's row (a reader holding the row
 * sees it change, as it always has; one holding a default keeps it). */
static void set_text(depot_conf_key_t k, const char *s, size_t n) {
  if (n >= TEXT_MAX) n = TEXT_MAX - 1;
  memcpy(conf_text[k], s, n);
  conf_text[k][n] = 0;
  depot_store_release(&conf[k].text, conf_text[k]);
}

/* Every key back to its default (lock held). */
static void reset_locked(void) {
  for (int k = 0; k < DEPOT_CONF_NKEYS; k++) {
    const depot_conf_def_t *d = &depot_conf_defs[k];
    parse_value(d, d->default_text, strlen(d->default_text), &conf[k].value);
    depot_store_release(&conf[k].text, d->default_text);
    conf[k].source = DEPOT_CONF_FROM_DEFAULT;
  }
  conf_ready = 1;
  fill_options();
}

void depot_config_reset(void) {
  pthread_mutex_lock(&config_lock);
  reset_locked();
  pthread_mutex_unlock(&config_lock);
}

/* The defaults, if nothing was loaded yet (lock held). */
static void ensure_defaults_locked(void) {
  if (!conf_ready) reset_locked();
}

/* Readers before any load see the defaults. */
static void ensure_defaults(void) {
  if (!conf_ready) depot_config_reset();
}

/* ---- items and texts ----------------------------------------------------- */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* One "key=value" item from where (a label for messages).  seen[] marks the
 * keys this source already set, to report duplicates. */
static int parse_item(const char *s, size_t n, depot_conf_source_t source,
                      const char *where, unsigned char *seen) {
  while (n && is_space(*s)) s++, n--;
  while (n && is_space(s[n - 1])) n--;
  if (n == 0) return 0; /* an empty item (a trailing comma, a blank line) */
  const char *eq = memchr(s, '=', n);
  char shown[ECHO_MAX];
  if (!eq) {
    depot_say("depot: config: '%s' (%s) is not key=value; ignored",
              depot_escape(s, n, shown, sizeof shown), where);
    return 1;
  }
  size_t klen = (size_t)(eq - s), vlen = n - klen - 1;
  const char *v = eq + 1;
  while (klen && is_space(s[klen - 1])) klen--;
  while (vlen && is_space(*v)) v++, vlen--;
  int k = 0;
  for (; k < DEPOT_CONF_NKEYS; k++)
    if (strlen(depot_conf_defs[k].name) == klen &&
        strncmp(depot_conf_defs[k].name, s, klen) == 0)
      break;
  if (k == DEPOT_CONF_NKEYS) {
    char keys[512];
    size_t used = 0;
    keys[0] = 0;
    for (int j = 0; j < DEPOT_CONF_NKEYS && used < sizeof keys; j++)
      used += (size_t)snprintf(keys + used, sizeof keys - used, "%s%s",
                               j ? ", " : "", depot_conf_defs[j].name);
    depot_say("depot: config: unknown key '%s' (%s); ignored. Keys: %s",
              depot_escape(s, klen, shown, sizeof shown), where, keys);
    return 1;
  }
  const depot_conf_def_t *d = &depot_conf_defs[k];
  int errors = 0;
  if (seen[k]) {
    depot_say(
        "depot: config: %s given twice (%s); the later value '%s' is used",
        d->name, where, depot_escape(v, vlen, shown, sizeof shown));
    errors++;
  }
  seen[k] = 1;
  uint64_t val;
  if (parse_value(d, v, vlen, &val) != 0) {
    char accepts[160];
    describe(d, accepts, sizeof accepts);
    depot_say("depot: config: %s=%s (%s): %s; expected %s; using %s", d->name,
              depot_escape(v, vlen, shown, sizeof shown), where,
              vlen ? "bad value" : "empty value", accepts,
              depot_load_acquire(&conf[k].text));
    return errors + 1;
  }
  conf[k].value = val;
  set_text((depot_conf_key_t)k, v, vlen);
  conf[k].source = source;
  return errors;
}

/* Whether s[0..n) is the key numa, spaces around it allowed. */
static int is_numa_key(const char *s, size_t n) {
  while (n && is_space(*s)) s++, n--;
  while (n && is_space(s[n - 1])) n--;
  return n == 4 && memcmp(s, "numa", 4) == 0;
}

/* Whether s[0..n) can only be more of a node list: digits, '-', '+'. */
static int is_node_list_piece(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-' && s[i] != '+' &&
        !is_space(s[i]))
      return 0;
  return 1;
}

/* End of the item that starts at text[i]: the next sep, except that in
 * DEPOT_CONF (sep ',') the value of numa= goes on over pieces that can only
 * be more of its node list, so that numa=bind:0,2 stays one item.  Nothing
 * else changes: "stats=1,junk" is still a good item and a bad one. */
static size_t item_end(const char *text, size_t len, size_t i, char sep) {
  size_t end = i;
  while (end < len && text[end] != sep) end++;
  const char *eq = memchr(text + i, '=', end - i);
  if (sep != ',' || !eq || !is_numa_key(text + i, (size_t)(eq - (text + i))))
    return end;
  while (end < len) {
    size_t next = end + 1;
    while (next < len && text[next] != sep) next++;
    if (!is_node_list_piece(text + end + 1, next - end - 1)) break;
    end = next;
  }
  return end;
}

/* Splits text at sep ('\n' for files: '#' starts a comment) into items. */
static int parse_items(const char *text, size_t len, char sep,
                       depot_conf_source_t source, const char *label) {
  unsigned char seen[DEPOT_CONF_NKEYS] = {0};
  int errors = 0;
  unsigned line = 1;
  for (size_t i = 0; i <= len;) {
    size_t end = item_end(text, len, i, sep);
    size_t item_len = end - i;
    if (sep == '\n') {
      const char *hash = memchr(text + i, '#', item_len);
      if (hash) item_len = (size_t)(hash - (text + i));
    }
    char where[ECHO_MAX + 32]; /* the escaped path and a line number */
    if (sep == '\n') snprintf(where, sizeof where, "%s line %u", label, line);
    else snprintf(where, sizeof where, "%s", label);
    errors += parse_item(text + i, item_len, source, where, seen);
    i = end + 1;
    line++;
  }
  return errors;
}

/* Reads the file at path into buf (cap bytes; one more than the largest
 * file accepted, so that a larger one shows).  Without blocking: a FIFO with
 * no writer, a terminal or /dev/stdin on a pipe is refused rather than
 * waited on.  Returns the length, or -1 with *why saying what is wrong. */
static long read_file(const char *path, char *buf, size_t cap,
                      const char **why) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  struct stat st;
  memset(&st, 0, sizeof st);
  if (fd < 0) {
    *why = "cannot be opened";
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *why = S_ISDIR(st.st_mode)    ? "is a directory"
           : S_ISFIFO(st.st_mode) ? "is a FIFO, not a regular file"
                                  : "is not a regular file";
    close(fd);
    return -1;
  }
  size_t n = 0;
  while (n < cap) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r == 0) break;
    if (r < 0) {
      *why = "cannot be read";
      close(fd);
      return -1;
    }
    n += (size_t)r;
  }
  close(fd);
  return (long)n;
}

void depot_config_refuse(int errors) {
  if (errors == 0 || !conf[DEPOT_CONF_strict_config].value) return;
  depot_say(
      "depot: config: strict_config=1 and %d error%s above; exiting "
      "with status 1",
      errors, errors == 1 ? "" : "s");
  /* Not exit(): this may run inside the first malloc of the program, where
   * atexit handlers and stdio would call back into the allocator. */
  _exit(1);
}

int depot_config_load_from(const char *path, const char *env) {
  /* open, read and depot_say's write are cancellation points: none may
   * leave config_lock held. */
  int cancel_state;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  pthread_mutex_lock(&config_lock);
  reset_locked();
  int errors = 0;
  if (path && *path) {
    char buf[DEPOT_CONF_FILE_MAX + 1], label[ECHO_MAX];
    const char *why = NULL;
    long n = read_file(path, buf, sizeof buf, &why);
    depot_escape(path, strlen(path), label, sizeof label);
    if (n < 0) {
      depot_say(
          "depot: config: DEPOT_CONF_FILE '%s' %s; using the defaults for "
          "the keys it would set",
          label, why);
      errors++;
    } else {
      if ((size_t)n > DEPOT_CONF_FILE_MAX) {
        depot_say(
            "depot: config: DEPOT_CONF_FILE '%s' is larger than %u "
            "bytes; the rest is ignored",
            label, DEPOT_CONF_FILE_MAX);
        errors++;
        n = DEPOT_CONF_FILE_MAX;
      }
      errors += parse_items(buf, (size_t)n, '\n', DEPOT_CONF_FROM_FILE, label);
    }
  }
  if (env)
    errors +=
        parse_items(env, strlen(env), ',', DEPOT_CONF_FROM_ENV, "DEPOT_CONF");
  fill_options();
  pthread_mutex_unlock(&config_lock);
  pthread_setcancelstate(cancel_state, NULL);
  depot_config_refuse(errors);
  return errors;
}

int depot_config_load(void) {
  return depot_config_load_from(getenv("DEPOT_CONF_FILE"),
                                getenv("DEPOT_CONF"));
}

static void load_once(void) { depot_config_load(); }

void depot_config_ensure(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, load_once);
}

void depot_config_prefork(void) { pthread_mutex_lock(&config_lock); }
void depot_config_postfork(void) { pthread_mutex_unlock(&config_lock); }

uint64_t depot_config_get(depot_conf_key_t key) {
  ensure_defaults();
  return conf[key].value;
}

const char *depot_config_text(depot_conf_key_t key) {
  ensure_defaults();
  return depot_load_acquire(&conf[key].text);
}

depot_conf_source_t depot_config_source(depot_conf_key_t key) {
  ensure_defaults();
  return conf[key].source;
}

const char *depot_config_source_name(depot_conf_source_t source) {
  switch (source) {
    case DEPOT_CONF_FROM_FILE: return "file";
    case DEPOT_CONF_FROM_ENV: return "environment";
    case DEPOT_CONF_FROM_RUNTIME: return "run time";
    default: return "default";
  }
}

/* ---- run time -------------------------------------------------------------- */

uint64_t depot_config_live(depot_conf_key_t key) {
  return atomic_load_explicit(&live[key], memory_order_relaxed);
}

int depot_config_runtime_key(depot_conf_key_t key) {
#define DEPOT_CONF_IS_RUNTIME(name) || key == DEPOT_CONF_##name
  return 0 DEPOT_CONFIG_RUNTIME_KEYS(DEPOT_CONF_IS_RUNTIME);
#undef DEPOT_CONF_IS_RUNTIME
}

depot_conf_key_t depot_config_find(const char *name, size_t len) {
  int k = 0;
  for (; k < DEPOT_CONF_NKEYS; k++)
    if (strlen(depot_conf_defs[k].name) == len &&
        strncmp(depot_conf_defs[k].name, name, len) == 0)
      break;
  return (depot_conf_key_t)k;
}

int depot_config_set(depot_conf_key_t key, const char *value, char *err,
                     size_t err_len) {
  const depot_conf_def_t *d = &depot_conf_defs[key];
  if (!depot_config_runtime_key(key)) {
    if (err_len)
      snprintf(err, err_len, "%s is fixed at start-up (set it in DEPOT_CONF)",
               d->name);
    return EPERM;
  }
  size_t n = strlen(value);
  uint64_t v;
  if (parse_value(d, value, n, &v) != 0) {
    char accepts[160];
    describe(d, accepts, sizeof accepts);
    if (err_len)
      snprintf(err, err_len, "%s=%s: bad value; expected %s", d->name, value,
               accepts);
    return EINVAL;
  }
  /* Loaded first: a load after this change would undo it. */
  depot_config_ensure();
  pthread_mutex_lock(&config_lock);
  ensure_defaults_locked();
  conf[key].value = v;
  set_text(key, value, n);
  conf[key].source = DEPOT_CONF_FROM_RUNTIME;
  atomic_store_explicit(&live[key], v, memory_order_relaxed);
  pthread_mutex_unlock(&config_lock);
  return 0;
}

void depot_config_text_copy(depot_conf_key_t key, char *buf, size_t len) {
  pthread_mutex_lock(&config_lock);
  ensure_defaults_locked();
  snprintf(buf, len, "%s", depot_load_acquire(&conf[key].text));
  pthread_mutex_unlock(&config_lock);
}
