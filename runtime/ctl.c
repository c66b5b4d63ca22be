/* ctl.c: the run-time control interface (depot.h): reading any
 * configuration value or statistic by name, changing the keys that may
 * change while the program runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc/config.h"
#include "alloc/guard.h"
#include "alloc/purger.h"
#include "runtime/ctl.h"
#include "runtime/runtime.h"

/* The message of this thread's last failed call. */
static __thread char last_error[256];

static int fail(int err, const char *fmt, const char *name) {
  snprintf(last_error, sizeof last_error, fmt, name);
  return err;
}

const char *DepotMem_OptionError(void) { return last_error; }

/* Copies text into buf; ERANGE if it does not fit. */
static int put(char *buf, size_t len, const char *text, const char *name) {
  if (!buf || strlen(text) >= len)
    return fail(ERANGE, "%s: the buffer is too small for the value", name);
  memcpy(buf, text, strlen(text) + 1);
  return 0;
}

int DepotMem_GetOption(const char *name, char *buf, size_t len) {
  depot_runtime_init();
  if (!name) return fail(EINVAL, "%s: no name", "(null)");
  char text[128];
  if (strncmp(name, "stats.", 6) == 0) {
    static const char *const names[] = {
#define DEPOT_CTL_NAME(n, expr, help) #n,
        DEPOT_CTL_STATS(DEPOT_CTL_NAME)
#undef DEPOT_CTL_NAME
    };
    DepotMemStats s;
    s.size = sizeof s;
    unsigned i = 0;
    for (; i < sizeof names / sizeof names[0]; i++)
      if (strcmp(names[i], name + 6) == 0) break;
    if (i == sizeof names / sizeof names[0])
      return fail(ENOENT, "%s: no such statistic (see the README's reference)",
                  name);
    DepotMem_Stats(&s);
    const uint64_t values[] = {
#define DEPOT_CTL_VALUE(n, expr, help) (uint64_t)(expr),
        DEPOT_CTL_STATS(DEPOT_CTL_VALUE)
#undef DEPOT_CTL_VALUE
    };
    snprintf(text, sizeof text, "%llu", (unsigned long long)values[i]);
    return put(buf, len, text, name);
  }
  depot_conf_key_t k = depot_config_find(name, strlen(name));
  if (k == DEPOT_CONF_NKEYS)
    return fail(ENOENT,
                "%s: no such option or statistic (see the README's reference)",
                name);
  depot_config_text_copy(k, text, sizeof text);
  return put(buf, len, text, name);
}

int DepotMem_SetOption(const char *name, const char *value) {
  depot_runtime_init();
  if (!name || !value) return fail(EINVAL, "%s: no name or no value", "(null)");
  if (strncmp(name, "stats.", 6) == 0)
    return fail(EPERM, "%s: statistics are read only", name);
  depot_conf_key_t k = depot_config_find(name, strlen(name));
  if (k == DEPOT_CONF_NKEYS)
    return fail(ENOENT, "%s: no such option (see the README's reference)",
                name);
  int err = depot_config_set(k, value, last_error, sizeof last_error);
  if (err) return err;
  if (k == DEPOT_CONF_guard_sample) {
    /* The guarded pool (its address space and fault handler) is made at
     * start-up or never: without it only 0 can be set. */
    if (!depot_load_acquire(&depot_guard_armed) &&
        depot_config_live(DEPOT_CONF_guard_sample) != 0) {
      depot_config_set(k, "0", NULL, 0);
      return fail(EPERM,
                  "%s: guarded sampling can be turned on only at start-up "
                  "(DEPOT_CONF=guard_sample=N); at run time it can be "
                  "changed or paused (0) once on",
                  name);
    }
    depot_guard_rate_changed();
  }
  depot_purger_option_changed();
  return 0;
}

const char *DepotMem_OptionName(unsigned index) {
  static const char *const stats[] = {
#define DEPOT_CTL_FULL_NAME(n, expr, help) "stats." #n,
      DEPOT_CTL_STATS(DEPOT_CTL_FULL_NAME)
#undef DEPOT_CTL_FULL_NAME
  };
  if (index < DEPOT_CONF_NKEYS) return depot_conf_defs[index].name;
  index -= DEPOT_CONF_NKEYS;
  return index < sizeof stats / sizeof stats[0] ? stats[index] : NULL;
}
