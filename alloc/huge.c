/* huge.c: huge blocks and their table (see huge.h).  The table is an open
 * addressing hash with linear probing and backward-shift deletion, stored in
 * memory mapped from the OS layer and doubled when half full. */
#include "alloc/huge.h"

#include <pthread.h>
#include <stdint.h>

#include <stdatomic.h>

#include "alloc/common.h"
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

/* Makes room for one more entry.  Returns 0 or an errno value. */
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

void *depot_huge_alloc(size_t size, size_t align, unsigned domain) {
  if (align < OS_PAGE) align = OS_PAGE;
  size_t len = depot_huge_usable(size);
  if (len < size) return NULL;
  void *p;
  if (depot_os_map(len, align, &p) != 0) return NULL;
  pthread_mutex_lock(&huge_lock);
  int err = reserve_one();
  if (!err) {
    put(table, table_cap, (huge_entry_t){(uintptr_t)p, len, domain});
    table_count++;
    table_bytes += len;
  }
  pthread_mutex_unlock(&huge_lock);
  if (err) {
    depot_os_release(p, len);
    return NULL;
  }
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

int depot_huge_free(void *p) {
  pthread_mutex_lock(&huge_lock);
  huge_entry_t *e = find((uintptr_t)p);
  if (!e) {
    pthread_mutex_unlock(&huge_lock);
    return 0;
  }
  size_t len = e->size;
  /* Backward-shift deletion: pull later entries of the probe run into the
   * hole unless they already sit at or after their home slot. */
  size_t hole = (size_t)(e - table), mask = table_cap - 1;
  for (size_t i = (hole + 1) & mask; table[i].addr; i = (i + 1) & mask) {
    size_t home = slot_of(table[i].addr, table_cap);
    if (((i - home) & mask) >= ((i - hole) & mask)) {
      table[hole] = table[i];
      hole = i;
    }
  }
  table[hole].addr = 0;
  table_count--;
  table_bytes -= len;
  pthread_mutex_unlock(&huge_lock);
  depot_os_release(p, len);
  return 1;
}

void depot_huge_stats(depot_huge_stats_t *out) {
  pthread_mutex_lock(&huge_lock);
  out->blocks = table_count;
  out->bytes = table_bytes;
  pthread_mutex_unlock(&huge_lock);
}

void depot_huge_prefork(void) { pthread_mutex_lock(&huge_lock); }
void depot_huge_postfork(void) { pthread_mutex_unlock(&huge_lock); }
