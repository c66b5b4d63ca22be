/* limit.c: the held-memory account, the memory limit and the control-group
 * reader (see limit.h). */
#define _GNU_SOURCE
#include "alloc/limit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc/common.h"
#include "alloc/config.h"
#include "alloc/os.h"

static _Atomic size_t held;
static _Atomic uint64_t hits, reclaims;
static __thread int allow_hard;

/* memory_limit=cgroup: the group's limit (before the margin) and when it
 * was read (0: never; readings are made nonzero). */
static _Atomic uint64_t cgroup_raw = UINT64_MAX;
static _Atomic uint32_t cgroup_read_ms;

int depot_limit_active(void) {
  return depot_config_live(DEPOT_CONF_memory_limit) != 0;
}

uint64_t depot_limit_cgroup_raw(void) {
  depot_limit_refresh(0);
  return depot_load_relaxed(&cgroup_raw);
}

uint64_t depot_limit_bytes(void) {
  uint64_t v = depot_config_live(DEPOT_CONF_memory_limit);
  if (v != DEPOT_LIMIT_CGROUP) return v;
  uint64_t raw = depot_limit_cgroup_raw();
  if (raw == UINT64_MAX) return 0; /* no limit found: none */
  uint64_t m = depot_config_live(DEPOT_CONF_memory_limit_margin);
  uint64_t margin =
      m & DEPOT_MARGIN_PERCENT ? raw / 100 * (m & ~DEPOT_MARGIN_PERCENT) : m;
  /* A margin as big as the limit leaves a sliver, never "no limit". */
  return margin < raw - raw / 8 ? raw - margin : raw / 8;
}

uint64_t depot_limit_soft_bytes(void) {
  uint64_t hard = depot_limit_bytes();
  return hard / 100 * depot_config_live(DEPOT_CONF_memory_limit_soft);
}

int depot_limit_charge(size_t bytes) {
  size_t cur = depot_load_relaxed(&held);
  if (depot_likely(!depot_limit_active())) {
    depot_add_relaxed(&held, bytes);
    return 0;
  }
  uint64_t max = allow_hard ? depot_limit_bytes() : depot_limit_soft_bytes();
  if (max == 0) max = UINT64_MAX; /* cgroup mode without a limit */
  do {
    if ((uint64_t)cur + bytes > max) return ENOMEM;
  } while (!atomic_compare_exchange_weak_explicit(
      &held, &cur, cur + bytes, memory_order_relaxed, memory_order_relaxed));
  return 0;
}

void depot_limit_grow(size_t bytes) { depot_add_relaxed(&held, bytes); }
void depot_limit_shrink(size_t bytes) { depot_sub_relaxed(&held, bytes); }
void depot_limit_allow_hard(int on) { allow_hard = on; }
size_t depot_limit_held(void) { return depot_load_relaxed(&held); }

void depot_limit_count_hit(void) { depot_add_relaxed(&hits, 1); }
void depot_limit_count_reclaim(void) { depot_add_relaxed(&reclaims, 1); }
uint64_t depot_limit_hits(void) { return depot_load_relaxed(&hits); }
uint64_t depot_limit_reclaims(void) { return depot_load_relaxed(&reclaims); }

void depot_limit_refresh(int force) {
  if (depot_config_live(DEPOT_CONF_memory_limit) != DEPOT_LIMIT_CGROUP) return;
  uint32_t now = depot_os_now_ms() | 1u;
  uint32_t last = depot_load_relaxed(&cgroup_read_ms);
  if (!force && last && (uint32_t)(now - last) < DEPOT_CGROUP_REFRESH_MS)
    return;
  /* One reader at a time; the others use the figure they have. */
  if (!atomic_compare_exchange_strong_explicit(&cgroup_read_ms, &last, now,
                                               memory_order_relaxed,
                                               memory_order_relaxed))
    return;
  uint64_t v;
  if (depot_cgroup_limit("/proc/self/cgroup", "/sys/fs/cgroup", &v) != 0)
    v = UINT64_MAX;
  depot_store_relaxed(&cgroup_raw, v);
}

/* ---- the control-group reader --------------------------------------------- */

/* A limit file's value: "max" (v2) or a v1 figure of 2^62 and more mean
 * no limit (UINT64_MAX); garbage too.  Returns 0 if the file was read. */
static int limit_file(const char *path, uint64_t *out) {
  char buf[64];
  long n = depot_os_read_small_file(path, buf, sizeof buf);
  if (n < 0) return -1;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
  *out = UINT64_MAX;
  if (n == 0 || strcmp(buf, "max") == 0) return 0;
  uint64_t v = 0;
  for (long i = 0; i < n; i++) {
    if (buf[i] < '0' || buf[i] > '9' || v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(buf[i] - '0');
  }
  if (v < ((uint64_t)1 << 62)) *out = v;
  return 0;
}

/* The smallest limit over dir and its ancestors down to (and including)
 * base, for each file name in files[]. */
static int walk_up(char *dir, size_t base_len, const char *const *files,
                   uint64_t *out) {
  int found = 0;
  *out = UINT64_MAX;
  for (;;) {
    size_t len = strlen(dir);
    for (const char *const *f = files; *f; f++) {
      char path[4096];
      uint64_t v;
      if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, *f) >= sizeof path)
        continue;
      if (limit_file(path, &v) == 0) {
        found = 1;
        if (v < *out) *out = v;
      }
    }
    if (len <= base_len) break;
    char *slash = strrchr(dir + base_len, '/');
    if (!slash) slash = dir + base_len;
    *slash = 0;
  }
  return found ? 0 : ENOENT;
}

/* walk_up from the group at mount + sub + path (path of len bytes, as
 * /proc/self/cgroup gives it) to the hierarchy's root. */
static int walk_group(const char *mount, const char *sub, const char *path,
                      size_t len, const char *const *files, uint64_t *out) {
  char dir[4096];
  int n = snprintf(dir, sizeof dir, "%s%s", mount, sub);
  if (n < 0 || (size_t)n + len >= sizeof dir) return ENOENT;
  size_t base = (size_t)n;
  memcpy(dir + base, path, len);
  dir[base + len] = 0;
  while (strlen(dir) > base && dir[strlen(dir) - 1] == '/')
    dir[strlen(dir) - 1] = 0;
  return walk_up(dir, base, files, out);
}

int depot_cgroup_limit(const char *self_cgroup, const char *mount,
                       uint64_t *out) {
  char text[4096];
  if (depot_os_read_small_file(self_cgroup, text, sizeof text) < 0)
    return ENOENT;
  const char *v1 = NULL, *v2 = NULL;
  size_t v1_len = 0, v2_len = 0;
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    /* id:controllers:path */
    char *c1 = memchr(line, ':', len);
    char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
    if (c2 && c2[1] == '/') {
      const char *path = c2 + 1;
      size_t plen = len - (size_t)(path - line);
      if (c2 == c1 + 1 && line[0] == '0' && c1 == line + 1) {
        v2 = path, v2_len = plen;
      } else {
        /* Is "memory" one of the comma-separated controllers? */
        for (char *w = c1 + 1; w < c2;) {
          char *comma = memchr(w, ',', (size_t)(c2 - w));
          char *wend = comma ? comma : c2;
          if (wend - w == 6 && memcmp(w, "memory", 6) == 0)
            v1 = path, v1_len = plen;
          w = wend + 1;
        }
      }
    }
    if (!end) break;
    line = end + 1;
  }
  if (v1) { /* the memory controller on a v1 hierarchy wins (hybrid systems) */
    static const char *const files[] = {"memory.limit_in_bytes", NULL};
    return walk_group(mount, "/memory", v1, v1_len, files, out);
  }
  if (v2) {
    static const char *const files[] = {"memory.max", "memory.high", NULL};
    return walk_group(mount, "", v2, v2_len, files, out);
  }
  return ENOENT;
}
