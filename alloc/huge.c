/* huge.c: huge blocks, their table and the cache of freed mappings (see
 * huge.h).  The table is an open-addressing hash with linear probing and
 * backward-shift deletion, stored in memory mapped from the OS layer and
 * doubled when half full. */
#define _GNU_SOURCE
#include "alloc/huge.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include <stdatomic.h>

#include "alloc/common.h"
#include "alloc/os.h"
#include "alloc/alloc_api.h"

#define OS_PAGE 4096u

typedef struct {
  uintptr_t addr; /* 0: empty slot */
  size_t size;    /* mapped bytes, all usable */
  unsigned domain;
} huge_entry_t;

static pthread_mutex_t huge_lock = PTHREAD_MUTEX_INITIALIZER;
/* All guarded by huge_lock. */
static huge_entry_t *table;
static size_t table_cap; /* a power of two, or 0 */
static size_t table_count, table_bytes;

/* The cache of freed mappings (guarded by huge_lock): at most CACHE_SLOTS
 * mappings and CACHE_BYTES bytes, each released purge_delay_ms after it was
 * freed (checked on every huge call).  A cached mapping is reused for a
 * request it exceeds by at most a quarter. */
#define CACHE_SLOTS 16
#define CACHE_BYTES ((size_t)256 << 20)
typedef struct {
  uintptr_t addr;
  size_t size;
  uint64_t freed_ms;
} cached_t;
static cached_t cache[CACHE_SLOTS];
static size_t cache_n, cache_bytes;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t slot_of(uintptr_t a, size_t cap) {
  return (size_t)(((a >> 12) * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static huge_entry_t *find(uintptr_t a) {
  if (!table_cap || a == 0) return NULL;
  for (size_t i = slot_of(a, table_cap);; i = (i + 1) & (table_cap - 1)) {
    if (table[i].addr == a) return &table[i];
    if (table[i].addr == 0) return NULL;
  }
}

static void put(huge_entry_t *t, size_t cap, huge_entry_t e) {
  size_t i = slot_of(e.addr, cap);
  while (t[i].addr) i = (i + 1) & (cap - 1);
  t[i] = e;
}

/* Makes room for one more entry.  Returns 0 or an errno value.  Lock held. */
static int reserve_one(void) {
  if ((table_count + 1) * 2 <= table_cap) return 0;
  size_t cap = table_cap ? table_cap * 2 : 256;
  void *mem;
  int err = depot_os_map(cap * sizeof(huge_entry_t), OS_PAGE, &mem);
  if (err) return err;
  huge_entry_t *t = mem;
  for (size_t i = 0; i < table_cap; i++)
    if (table[i].addr) put(t, cap, table[i]);
  if (table) depot_os_release(table, table_cap * sizeof(huge_entry_t));
  table = t;
  table_cap = cap;
  return 0;
}

/* Takes cached mappings that are due (all with force) out of the cache into
 * out[]; the caller unmaps them after dropping the lock.  Lock held. */
static size_t cache_expire(int force, cached_t *out) {
  uint64_t now = now_ms(), delay = depot_core_options.purge_delay_ms;
  size_t n = 0;
  for (size_t i = 0; i < cache_n;) {
    if (force || now - cache[i].freed_ms >= delay) {
      out[n++] = cache[i];
      cache_bytes -= cache[i].size;
      cache[i] = cache[--cache_n];
    } else {
      i++;
    }
  }
  return n;
}

static void unmap_all(const cached_t *c, size_t n) {
  for (size_t i = 0; i < n; i++) depot_os_release((void *)c[i].addr, c[i].size);
}

/* Takes a cached mapping of len..len + len/4 bytes aligned to align (the
 * smallest such) into *out.  Returns whether there was one.  Lock held. */
static int cache_take(size_t len, size_t align, cached_t *out) {
  size_t best = cache_n;
  for (size_t i = 0; i < cache_n; i++) {
    if (cache[i].size < len || cache[i].size - len > len / 4 ||
        cache[i].addr % align)
      continue;
    if (best == cache_n || cache[i].size < cache[best].size) best = i;
  }
  if (best == cache_n) return 0;
  *out = cache[best];
  cache_bytes -= cache[best].size;
  cache[best] = cache[--cache_n];
  return 1;
}

/* Records a mapping in the table.  Returns 0 or an errno value.  Lock held. */
static int table_add(uintptr_t addr, size_t len, unsigned domain) {
  int err = reserve_one();
  if (err) return err;
  put(table, table_cap, (huge_entry_t){addr, len, domain});
  table_count++;
  table_bytes += len;
  return 0;
}

void *depot_huge_alloc(size_t size, size_t align, unsigned domain, int *zeroed) {
  if (align < OS_PAGE) align = OS_PAGE;
  size_t len = depot_huge_usable(size);
  if (len < size) return NULL;
  cached_t expired[CACHE_SLOTS], got = {0, 0, 0};
  void *p = NULL;
  pthread_mutex_lock(&huge_lock);
  size_t nexp = cache_expire(0, expired);
  if (cache_take(len, align, &got)) {
    if (table_add(got.addr, got.size, domain) == 0) p = (void *)got.addr;
    else expired[nexp++] = got; /* no room to record it: let it go */
  }
  pthread_mutex_unlock(&huge_lock);
  unmap_all(expired, nexp);
  if (p) {
    *zeroed = 0; /* it held someone's data */
    return p;
  }
  if (depot_os_map(len, align, &p) != 0) return NULL;
  pthread_mutex_lock(&huge_lock);
  int err = table_add((uintptr_t)p, len, domain);
  pthread_mutex_unlock(&huge_lock);
  if (err) {
    depot_os_release(p, len);
    return NULL;
  }
  *zeroed = 1;
  return p;
}

int depot_huge_lookup(const void *p, size_t *usable, unsigned *domain) {
  pthread_mutex_lock(&huge_lock);
  huge_entry_t *e = find((uintptr_t)p);
  if (e) {
    *usable = e->size;
    *domain = e->domain;
  }
  pthread_mutex_unlock(&huge_lock);
  return e != NULL;
}

/* Removes the entry e from the table (backward-shift deletion: later
 * entries of the probe run move into the hole unless they already sit at or
 * after their home slot).  Lock held. */
static void table_remove(huge_entry_t *e) {
  size_t hole = (size_t)(e - table), mask = table_cap - 1;
  table_count--;
  table_bytes -= e->size;
  for (size_t i = (hole + 1) & mask; table[i].addr; i = (i + 1) & mask) {
    size_t home = slot_of(table[i].addr, table_cap);
    if (((i - home) & mask) >= ((i - hole) & mask)) {
      table[hole] = table[i];
      hole = i;
    }
  }
  table[hole].addr = 0;
}

int depot_huge_free(void *p) {
  cached_t expired[CACHE_SLOTS + 1];
  size_t nexp = 0;
  pthread_mutex_lock(&huge_lock);
  huge_entry_t *e = find((uintptr_t)p);
  if (!e) {
    pthread_mutex_unlock(&huge_lock);
    return 0;
  }
  size_t len = e->size;
  table_remove(e);
  nexp = cache_expire(0, expired);
  if (depot_core_options.purge_delay_ms > 0 && len <= CACHE_BYTES / 4) {
    /* Make room, oldest first, then keep it. */
    while (cache_n == CACHE_SLOTS || cache_bytes + len > CACHE_BYTES) {
      size_t oldest = 0;
      for (size_t i = 1; i < cache_n; i++)
        if (cache[i].freed_ms < cache[oldest].freed_ms) oldest = i;
      expired[nexp++] = cache[oldest];
      cache_bytes -= cache[oldest].size;
      cache[oldest] = cache[--cache_n];
    }
    cache[cache_n++] = (cached_t){(uintptr_t)p, len, now_ms()};
    cache_bytes += len;
  } else {
    expired[nexp++] = (cached_t){(uintptr_t)p, len, 0};
  }
  pthread_mutex_unlock(&huge_lock);
  unmap_all(expired, nexp);
  return 1;
}

void *depot_huge_resize(void *p, size_t size) {
  size_t len = depot_huge_usable(size);
  if (len < size) return NULL;
  pthread_mutex_lock(&huge_lock);
  huge_entry_t *e = find((uintptr_t)p);
  if (!e) {
    pthread_mutex_unlock(&huge_lock);
    return NULL;
  }
  huge_entry_t old = *e;
  void *q = mremap(p, old.size, len, MREMAP_MAYMOVE);
  if (q == MAP_FAILED) {
    pthread_mutex_unlock(&huge_lock);
    return NULL;
  }
  table_remove(e); /* re-filed under its new address and size */
  put(table, table_cap, (huge_entry_t){(uintptr_t)q, len, old.domain});
  table_count++;
  table_bytes += len;
  pthread_mutex_unlock(&huge_lock);
  depot_os_account_remap(old.size, len);
  return q;
}

void depot_huge_release_cache(void) {
  cached_t expired[CACHE_SLOTS];
  pthread_mutex_lock(&huge_lock);
  size_t n = cache_expire(1, expired);
  pthread_mutex_unlock(&huge_lock);
  unmap_all(expired, n);
}

void depot_huge_stats(depot_huge_stats_t *out) {
  pthread_mutex_lock(&huge_lock);
  out->blocks = table_count;
  out->bytes = table_bytes;
  out->cached = cache_n;
  out->cached_bytes = cache_bytes;
  pthread_mutex_unlock(&huge_lock);
}

void depot_huge_prefork(void) { pthread_mutex_lock(&huge_lock); }
void depot_huge_postfork(void) { pthread_mutex_unlock(&huge_lock); }
