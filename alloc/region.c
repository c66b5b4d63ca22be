/* region.c: the heap region, its page table and the segment map (see
 * region.h).  The region's addresses are chosen once; region_lock orders
 * the mapping of segments (and of the page table) at its front. */
#define _GNU_SOURCE
#include "alloc/region.h"

#include <errno.h>
#include <pthread.h>

#include "alloc/check.h"
#include "alloc/config.h"
#include "alloc/os.h"

depot_sparse_bss _Atomic uint64_t depot_segmap[DEPOT_SEGMAP_WORDS];
uintptr_t depot_region_base; /* see region.h for why plain */
uintptr_t depot_region_used;
_Atomic(_Atomic uint32_t *) depot_region_pages;

/* All written once by depot_region_init, before any segment: the most
 * bytes the region may grow to (0: no region), and the address range kept
 * for its page table, which is mapped as the region grows. */
static size_t region_size;
static size_t table_size;
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t table_mapped; /* bytes of the page table mapped (region_lock) */

#define REGION_MIN ((size_t)64 << 20) /* smallest region worth having */
/* The page table grows by this much at a time (a multiple of any OS page
 * size; 4-byte entries: it covers 128 MiB of region). */
#define TABLE_STEP ((size_t)64 << 10)

/* Where the region goes.  The kernel finds a free range for the page table
 * and twice the region (a reservation of it, given back at once, so that it
 * costs nothing): the table goes at the bottom, the region above it and
 * grows upwards.  The kernel places new mappings from the top of free
 * ranges downwards, so other mappings fill the upper half first.  Under an
 * address-space limit set before start-up, the range halves until one fits
 * (the region may still grow past it while its addresses stay free). */
size_t depot_region_init(size_t want) {
  want &= ~(size_t)DEPOT_SEGMENT_MASK;
  size_t table = depot_align_up((want >> DEPOT_PAGE_SHIFT) * sizeof(uint32_t),
                                DEPOT_SEGMENT_SIZE);
  for (size_t len = want; len >= REGION_MIN; len /= 2) {
    void *r;
    if (depot_os_reserve(table + 2 * len, DEPOT_SEGMENT_SIZE, &r) != 0)
      continue;
    depot_os_release(r, table + 2 * len);
    region_size = want;
    table_size = table;
    depot_store_relaxed(&depot_region_pages, r);
    __atomic_store_n(&depot_region_base, (uintptr_t)r + table,
                     __ATOMIC_RELAXED);
    return want;
  }
  return 0;
}

/* Maps the page table for the first bytes of the region (lock held). */
static int table_cover(size_t bytes) {
  size_t need = depot_align_up((bytes >> DEPOT_PAGE_SHIFT) * sizeof(uint32_t),
                               TABLE_STEP);
  char *t = (char *)depot_load_relaxed(&depot_region_pages);
  while (table_mapped < need) {
    DEPOT_CHECK_INTERNAL(table_mapped + TABLE_STEP <= table_size);
    int err = depot_os_map_at(t + table_mapped, TABLE_STEP);
    if (err) return err;
    table_mapped += TABLE_STEP;
  }
  return 0;
}

void depot_region_set_list_id(const void *p, size_t npages, uint32_t li) {
  uintptr_t off = depot_region_offset((uintptr_t)p);
  if (!depot_region_contains(off)) return;
  _Atomic uint32_t *t = depot_load_relaxed(&depot_region_pages);
  for (size_t i = 0; i < npages; i++)
    depot_store_relaxed(&t[(off >> DEPOT_PAGE_SHIFT) + i],
                        li << DEPOT_REGION_ENTRY_SHIFT);
}

int depot_region_take(depot_segment_t **out) {
  int err = ENOSPC;
  pthread_mutex_lock(&region_lock);
  uintptr_t used = depot_load_plain(&depot_region_used);
  if (region_size && used + DEPOT_SEGMENT_SIZE <= region_size) {
    char *seg = (char *)depot_load_plain(&depot_region_base) + used;
    err = table_cover(used + DEPOT_SEGMENT_SIZE);
    if (err == 0) err = depot_os_map_at(seg, DEPOT_SEGMENT_SIZE);
    if (err == 0) {
      /* thp=always|never: huge pages for the heap, or none (best effort: a
       * kernel without THP refuses, which changes nothing). */
      depot_os_thp(seg, DEPOT_SEGMENT_SIZE, depot_options.thp);
      *out = (depot_segment_t *)seg;
      /* The table entries and the segment's header are written before any
       * block of it exists, and blocks travel with the program's
       * synchronisation: relaxed is enough (see region.h). */
      __atomic_store_n(&depot_region_used, used + DEPOT_SEGMENT_SIZE,
                       __ATOMIC_RELAXED);
    } else if (err != ENOMEM) {
      err = ENOSPC; /* another mapping lives there: try again next time */
    }
  }
  pthread_mutex_unlock(&region_lock);
  return err;
}

void depot_segmap_add(const depot_segment_t *seg) {
  uintptr_t si = (uintptr_t)seg >> DEPOT_SEGMENT_SHIFT;
  /* Relaxed: a reader that can reach a block of seg learned of it through
   * synchronisation that also orders this store (see region.h). */
  atomic_fetch_or_explicit(&depot_segmap[si >> 6], (uint64_t)1 << (si & 63),
                           memory_order_relaxed);
}

void depot_region_bounds(uintptr_t *base, size_t *size, size_t *used) {
  *base = depot_load_plain(&depot_region_base);
  *size = region_size;
  *used = depot_load_plain(&depot_region_used);
}

void depot_region_check_segment(const depot_segment_t *seg) {
  uintptr_t a = (uintptr_t)seg;
  DEPOT_CHECK((a & DEPOT_SEGMENT_MASK) == 0);
  DEPOT_CHECK(depot_segmap_test(a));
  DEPOT_CHECK(depot_segmap_test(a + DEPOT_SEGMENT_SIZE - 1));
  uintptr_t off = depot_region_offset(a);
  if (!depot_region_contains(off)) return;
  DEPOT_CHECK(off % DEPOT_SEGMENT_SIZE == 0);
  DEPOT_CHECK(depot_load_plain(&depot_region_used) <= region_size);
  DEPOT_CHECK(off + DEPOT_SEGMENT_SIZE <= depot_load_plain(&depot_region_used));
}

void depot_region_prefork(void) { pthread_mutex_lock(&region_lock); }
void depot_region_postfork(void) { pthread_mutex_unlock(&region_lock); }
