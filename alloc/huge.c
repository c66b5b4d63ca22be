/* huge.c: huge blocks, their table and the cache of freed mappings (see
 * huge.h).  The table is an open-addressing hash with linear probing and
 * backward-shift deletion, stored in memory mapped from the OS layer and
 * doubled when half full. */
#define _GNU_SOURCE
#include "alloc/huge.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include <stdatomic.h>

#include "alloc/arena.h"
#include "alloc/check.h"
#include "alloc/common.h"
#include "alloc/config.h"
#include "alloc/limit.h"
#include "alloc/os.h"

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
 * freed (checked on every huge call).  Freed ranges next to each other are
 * joined; a request splits the smallest range long enough, or grows the
 * longest shorter one (that has not failed to grow), so the cache serves
 * like a page heap. */
#define CACHE_SLOTS 64
#define CACHE_BYTES ((size_t)512 << 20)
typedef struct {
  uintptr_t addr;
  size_t size;
  uint32_t freed_ms; /* depot_os_now_ms() when freed */
  /* 1: failed to grow (cache_grow), so not taken to be grown again; it
   * still serves requests it fits.  A join makes a new range: 0. */
  uint32_t stuck;
} cached_t;
static cached_t cache[CACHE_SLOTS];
static size_t cache_n, cache_bytes;

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
  depot_limit_grow(cap * sizeof(huge_entry_t));
  huge_entry_t *t = mem;
  for (size_t i = 0; i < table_cap; i++)
    if (table[i].addr) put(t, cap, table[i]);
  if (table) {
    depot_os_release(table, table_cap * sizeof(huge_entry_t));
    depot_limit_shrink(table_cap * sizeof(huge_entry_t));
  }
  table = t;
  table_cap = cap;
  return 0;
}

/* Takes cached mappings that are due (all with force) out of the cache into
 * out[]; the caller unmaps them after dropping the lock.  Lock held. */
static size_t cache_expire(int force, cached_t *out) {
  uint32_t now = depot_os_now_ms();
  uint32_t delay = (uint32_t)depot_config_live(DEPOT_CONF_purge_delay_ms);
  size_t n = 0;
  for (size_t i = 0; i < cache_n;) {
    /* Unsigned difference: right across the clock's wrap. */
    if (force || (uint32_t)(now - cache[i].freed_ms) >= delay) {
      out[n++] = cache[i];
      cache_bytes -= cache[i].size;
      cache[i] = cache[--cache_n];
    } else {
      i++;
    }
  }
  return n;
}

/* Unmaps a huge mapping and takes it off the held figure. */
static void unmap(uintptr_t addr, size_t size) {
  if (depot_os_release((void *)addr, size) == 0) depot_limit_shrink(size);
}

static void unmap_all(const cached_t *c, size_t n) {
  for (size_t i = 0; i < n; i++) unmap(c[i].addr, c[i].size);
}

/* Takes len bytes at align from the cache into *out, or returns 0.  The
 * smallest cached range at least len long is split (returns 1: *out is
 * exactly len, the rest stays cached); failing that, the longest shorter
 * one is taken whole to be grown (returns 2; only when align is a page,
 * since growing may move it).  Lock held. */
static int cache_take(size_t len, size_t align, cached_t *out) {
  size_t fit = cache_n, grow = cache_n;
  for (size_t i = 0; i < cache_n; i++) {
    if (cache[i].addr % align) continue;
    if (cache[i].size >= len) {
      if (fit == cache_n || cache[i].size < cache[fit].size) fit = i;
    } else if (align <= OS_PAGE && !cache[i].stuck &&
               (grow == cache_n || cache[i].size > cache[grow].size)) {
      grow = i;
    }
  }
  if (fit != cache_n) {
    *out = (cached_t){cache[fit].addr, len, cache[fit].freed_ms, 0};
    cache_bytes -= len;
    if (cache[fit].size > len) {
      cache[fit].addr += len;
      cache[fit].size -= len;
    } else {
      cache[fit] = cache[--cache_n];
    }
    return 1;
  }
  if (grow == cache_n) return 0;
  *out = cache[grow];
  cache_bytes -= cache[grow].size;
  cache[grow] = cache[--cache_n];
  return 2;
}

/* Whether the ranges a and b are next to each other. */
static int touching(cached_t a, cached_t b) {
  return a.addr + a.size == b.addr || b.addr + b.size == a.addr;
}

/* Puts the range c (freed at c.freed_ms, depot_os_now_ms) into the cache,
 * joined with cached ranges next to it (so that a later request of their
 * total size is served whole; the joined range is as old as its newest
 * part).  Ranges pushed out to make room, the oldest first (c itself, if it
 * is older than all of them), are added to evict[].  A range longer than
 * the cache once joined (CACHE_BYTES; cached ranges never touch, so its
 * neighbours are the one before it and the one after) could never stay:
 * it alone is added to evict[] and the cache keeps what it holds.  (Until
 * 2026-12-02 it was joined, pushed every cached range out, and was then
 * evicted itself.)  Lock held. */
static void cache_put(cached_t c, cached_t *evict, size_t *nevict) {
  size_t joined = c.size;
  for (size_t i = 0; i < cache_n; i++)
    if (touching(cache[i], c)) joined += cache[i].size;
  if (joined > CACHE_BYTES) {
    evict[(*nevict)++] = c;
    return;
  }
  for (size_t i = 0; i < cache_n;) {
    if (touching(cache[i], c)) {
      if (cache[i].addr < c.addr) c.addr = cache[i].addr;
      if (depot_ms_before(c.freed_ms, cache[i].freed_ms))
        c.freed_ms = cache[i].freed_ms;
      c.size += cache[i].size;
      c.stuck = 0;
      cache_bytes -= cache[i].size;
      cache[i] = cache[--cache_n];
      i = 0; /* the joined range may now touch another */
    } else {
      i++;
    }
  }
  while (cache_n > 0 &&
         (cache_n == CACHE_SLOTS || cache_bytes + c.size > CACHE_BYTES)) {
    size_t oldest = 0;
    for (size_t i = 1; i < cache_n; i++)
      if (depot_ms_before(cache[i].freed_ms, cache[oldest].freed_ms))
        oldest = i;
    if (depot_ms_before(c.freed_ms, cache[oldest].freed_ms)) break;
    evict[(*nevict)++] = cache[oldest];
    cache_bytes -= cache[oldest].size;
    cache[oldest] = cache[--cache_n];
  }
  if (cache_n == CACHE_SLOTS || cache_bytes + c.size > CACHE_BYTES) {
    evict[(*nevict)++] = c;
    return;
  }
  cache[cache_n++] = c;
  cache_bytes += c.size;
  depot_purge_ring();
}

/* Grows the mapped range [addr, addr + size) to len bytes, its pages and
 * their contents kept.  Returns its (possibly new) address, or 0 (the range
 * is as it was).  The caller has charged the growth to the limit.
 *
 * mremap grows a range in place when the pages after it are free and moves
 * it (its page tables) when they are not, but it takes only a range within
 * one mapping (VMA).  A range that spans two or more (a cached range joined
 * from neighbours mapped apart or moved, or a block served from one) it
 * refuses with EFAULT, a few times in every run of the suite's `large`;
 * such a range still grows in place when the pages after it are free: the
 * tail is mapped there. */
static uintptr_t grow_range(uintptr_t addr, size_t size, size_t len) {
  void *q = mremap((void *)addr, size, len, MREMAP_MAYMOVE);
  if (q != MAP_FAILED) {
    depot_os_account_remap(size, len);
    return (uintptr_t)q;
  }
  void *tail = (void *)(addr + size);
  if (depot_os_map_at(tail, len - size) != 0) return 0;
  depot_os_thp(tail, len - size, depot_options.thp); /* as a fresh mapping */
  return addr; /* depot_os_map_at accounted the tail */
}

/* Grows a cached range to len bytes (grow_range).  Returns its address, or
 * 0: the range could not grow and is back in the cache, whole, as old as it
 * was (so it still expires on time) and marked stuck (so no later request
 * tries to grow it again), to serve a request it fits; the caller maps
 * afresh.  Until 2026-12-02 such a range was unmapped, and the fresh
 * mapping faulted its pages in again. */
static uintptr_t cache_grow(cached_t c, size_t len) {
  if (depot_limit_charge(len - c.size) == 0) {
    uintptr_t a = grow_range(c.addr, c.size, len);
    if (a) return a;
    depot_limit_shrink(len - c.size);
  }
  cached_t evict[CACHE_SLOTS + 1];
  size_t nevict = 0;
  c.stuck = 1;
  pthread_mutex_lock(&huge_lock);
  cache_put(c, evict, &nevict);
  pthread_mutex_unlock(&huge_lock);
  unmap_all(evict, nevict);
  return 0;
}

/* Takes the cached range holding addr (the range cache_grow put back, or
 * what it has been joined into) out of the cache and unmaps it.  Returns 1,
 * or 0 where no cached range holds addr any more. */
static int cache_drop(uintptr_t addr) {
  cached_t c = {0, 0, 0, 0};
  pthread_mutex_lock(&huge_lock);
  for (size_t i = 0; i < cache_n; i++) {
    if (addr - cache[i].addr < cache[i].size) {
      c = cache[i];
      cache_bytes -= c.size;
      cache[i] = cache[--cache_n];
      break;
    }
  }
  pthread_mutex_unlock(&huge_lock);
  if (!c.size) return 0;
  unmap(c.addr, c.size);
  return 1;
}

/* A fresh mapping of len bytes at align, charged to the limit.  Returns 0
 * or an errno value. */
static int map_fresh(size_t len, size_t align, void **p) {
  if (depot_limit_charge(len) != 0) return ENOMEM;
  /* Accounted like any mapping: the overcommit policy may refuse it. */
  int err = depot_os_map_blocks(len, align, p);
  if (err) {
    depot_limit_shrink(len);
    return err;
  }
  depot_os_thp(*p, len, depot_options.thp);
  return 0;
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

void *depot_huge_alloc(size_t size, size_t align, unsigned domain,
                       size_t *dirty, size_t *usable) {
  if (align < OS_PAGE) align = OS_PAGE;
  size_t len = depot_huge_usable(size);
  if (len < size) return NULL;
  cached_t expired[CACHE_SLOTS], got = {0, 0, 0, 0};
  pthread_mutex_lock(&huge_lock);
  size_t nexp = cache_expire(0, expired);
  int reuse = cache_take(len, align, &got);
  /* Fault injection on reuse: the range goes back (joined again with what
   * it was split from; nothing is evicted, the cache holds what it held). */
  if (reuse && depot_os_commit_mapped() != 0) {
    cache_put(got, expired, &nexp);
    reuse = -1;
  }
  pthread_mutex_unlock(&huge_lock);
  unmap_all(expired, nexp);
  if (reuse < 0) return NULL;
  /* A reused range keeps its resident pages: no faults, old contents (only
   * in its old length, if it grew). */
  uintptr_t addr = reuse == 1   ? got.addr
                   : reuse == 2 ? cache_grow(got, len)
                                : 0;
  *dirty = addr ? (reuse == 1 ? len : got.size) : 0;
  void *p = (void *)addr;
  /* A range that could not grow went back to the cache, still mapped and
   * held: where a fresh mapping then does not fit (the memory limit, the
   * overcommit policy, RLIMIT_AS), it is unmapped, as before it could go
   * back, and the mapping tried again. */
  if (!p) {
    int err = map_fresh(len, align, &p);
    if (err && reuse == 2 && cache_drop(got.addr))
      err = map_fresh(len, align, &p);
    if (err) return NULL;
  }
  pthread_mutex_lock(&huge_lock);
  int err = table_add((uintptr_t)p, len, domain);
  pthread_mutex_unlock(&huge_lock);
  if (err) {
    unmap((uintptr_t)p, len);
    return NULL;
  }
  *usable = len;
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

void *depot_huge_any_of(unsigned domain) {
  uintptr_t a = 0;
  pthread_mutex_lock(&huge_lock);
  for (size_t i = 0; i < table_cap && !a; i++)
    if (table[i].addr && table[i].domain == domain) a = table[i].addr;
  pthread_mutex_unlock(&huge_lock);
  return (void *)a;
}

int depot_huge_free(void *p) {
  cached_t expired[2 * CACHE_SLOTS + 2];
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
  if (depot_config_live(DEPOT_CONF_purge_delay_ms) > 0)
    cache_put((cached_t){(uintptr_t)p, len, depot_os_now_ms(), 0}, expired,
              &nexp);
  else expired[nexp++] = (cached_t){(uintptr_t)p, len, 0, 0};
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
  if (len > old.size && depot_limit_charge(len - old.size) != 0) {
    pthread_mutex_unlock(&huge_lock);
    return NULL;
  }
  void *q;
  if (len > old.size) {
    q = (void *)grow_range((uintptr_t)p, old.size, len);
  } else {
    /* Shrinking unmaps the tail, whatever mappings the block spans. */
    q = mremap(p, old.size, len, 0);
    if (q == MAP_FAILED) q = NULL;
    else depot_os_account_remap(old.size, len);
  }
  if (!q) {
    if (len > old.size) depot_limit_shrink(len - old.size);
    pthread_mutex_unlock(&huge_lock);
    return NULL;
  }
  if (len < old.size) depot_limit_shrink(old.size - len);
  table_remove(e); /* re-filed under its new address and size */
  put(table, table_cap, (huge_entry_t){(uintptr_t)q, len, old.domain});
  table_count++;
  table_bytes += len;
  pthread_mutex_unlock(&huge_lock);
  return q;
}

size_t depot_huge_release_cache(void) {
  cached_t expired[CACHE_SLOTS];
  pthread_mutex_lock(&huge_lock);
  size_t n = cache_expire(1, expired);
  pthread_mutex_unlock(&huge_lock);
  unmap_all(expired, n);
  return n;
}

int depot_huge_expire(uint32_t *next_ms) {
  cached_t expired[CACHE_SLOTS];
  uint32_t delay = (uint32_t)depot_config_live(DEPOT_CONF_purge_delay_ms);
  pthread_mutex_lock(&huge_lock);
  size_t n = cache_expire(0, expired);
  int pending = cache_n > 0;
  for (size_t i = 0; i < cache_n; i++) {
    uint32_t due = cache[i].freed_ms + delay;
    if (i == 0 || depot_ms_before(due, *next_ms)) *next_ms = due;
  }
  pthread_mutex_unlock(&huge_lock);
  unmap_all(expired, n);
  return pending;
}

void depot_huge_stats(depot_huge_stats_t *out) {
  pthread_mutex_lock(&huge_lock);
  out->blocks = table_count;
  out->bytes = table_bytes;
  out->cached = cache_n;
  out->cached_bytes = cache_bytes;
  pthread_mutex_unlock(&huge_lock);
}

void depot_huge_check(void) {
  pthread_mutex_lock(&huge_lock);
  size_t live = 0, bytes = 0;
  for (size_t i = 0; i < table_cap; i++) {
    if (!table[i].addr) continue;
    live++;
    bytes += table[i].size;
    DEPOT_CHECK(table[i].addr % OS_PAGE == 0 && table[i].size % OS_PAGE == 0);
    DEPOT_CHECK(find(table[i].addr) == &table[i]); /* reachable by probing */
  }
  DEPOT_CHECK(live == table_count && bytes == table_bytes);
  DEPOT_CHECK(table_cap == 0 || table_count * 2 <= table_cap);
  size_t cached = 0;
  DEPOT_CHECK(cache_n <= CACHE_SLOTS);
  for (size_t i = 0; i < cache_n; i++) {
    cached += cache[i].size;
    DEPOT_CHECK(cache[i].size > 0 && !find(cache[i].addr));
    for (size_t j = 0; j < cache_n; j++) /* joined when adjacent, disjoint */
      DEPOT_CHECK(i == j || cache[i].addr + cache[i].size < cache[j].addr ||
                  cache[j].addr + cache[j].size < cache[i].addr);
  }
  DEPOT_CHECK(cached == cache_bytes && cache_bytes <= CACHE_BYTES);
  pthread_mutex_unlock(&huge_lock);
}

void depot_huge_prefork(void) { pthread_mutex_lock(&huge_lock); }
void depot_huge_postfork(void) { pthread_mutex_unlock(&huge_lock); }
