/* region.c: the heap region, its page table and the segment map (see
 * region.h).  The region is reserved once; region_lock orders the cutting
 * of segments from it. */
#define _GNU_SOURCE
#include "alloc/region.h"

#include <errno.h>
#include <pthread.h>

#include "alloc/check.h"
#include "alloc/config.h"
#include "alloc/os.h"

_Atomic uint64_t depot_segmap[DEPOT_SEGMAP_WORDS];
_Atomic uintptr_t depot_region_base;
_Atomic uintptr_t depot_region_used;
_Atomic(_Atomic uint16_t *) depot_region_pages;

/* The region's size; written once by depot_region_init, before any segment. */
static size_t region_size;
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER;

#define REGION_MIN ((size_t)64 << 20) /* smallest region worth having */

size_t depot_region_init(size_t want) {
  want &= ~(size_t)DEPOT_SEGMENT_MASK;
  for (; want >= REGION_MIN; want /= 2) {
    void *r;
    /* Readable and writable from the start (not backed until touched): a
     * segment cut from it needs no mprotect, which would take the process's
     * mapping lock and stall every thread's page faults. */
    if (depot_os_map(want, DEPOT_SEGMENT_SIZE, &r) != 0) continue;
    void *pages; /* committed by the kernel as entries are first written */
    if (depot_os_map((want >> DEPOT_PAGE_SHIFT) * sizeof(uint16_t), 4096,
                     &pages) != 0) {
      depot_os_release(r, want);
      continue;
    }
    /* thp=always|never: huge pages for the whole heap, or none (best
     * effort: a kernel without THP refuses, which changes nothing). */
    depot_os_thp(r, want, depot_options.thp);
    region_size = want;
    depot_store_relaxed(&depot_region_pages, pages);
    depot_store_relaxed(&depot_region_base, (uintptr_t)r);
    return want;
  }
  return 0;
}

void depot_region_set_list_id(const void *p, size_t npages, uint16_t li) {
  uintptr_t off = depot_region_offset((uintptr_t)p);
  if (!depot_region_contains(off)) return;
  _Atomic uint16_t *t = depot_load_relaxed(&depot_region_pages);
  for (size_t i = 0; i < npages; i++)
    depot_store_relaxed(&t[(off >> DEPOT_PAGE_SHIFT) + i], li);
}

int depot_region_take(depot_segment_t **out) {
  int err = ENOSPC;
  pthread_mutex_lock(&region_lock);
  uintptr_t used = depot_load_relaxed(&depot_region_used);
  if (used + DEPOT_SEGMENT_SIZE <= region_size) {
    char *seg = (char *)depot_load_relaxed(&depot_region_base) + used;
    err = depot_os_commit_mapped();
    if (err == 0) {
      *out = (depot_segment_t *)seg;
      /* The segment's header is written before any block of it exists, and
       * blocks travel with the program's synchronisation: relaxed is enough
       * (see region.h). */
      depot_store_relaxed(&depot_region_used, used + DEPOT_SEGMENT_SIZE);
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
  *base = depot_load_relaxed(&depot_region_base);
  *size = region_size;
  *used = depot_load_relaxed(&depot_region_used);
}

void depot_region_check_segment(const depot_segment_t *seg) {
  uintptr_t a = (uintptr_t)seg;
  DEPOT_CHECK((a & DEPOT_SEGMENT_MASK) == 0);
  DEPOT_CHECK(depot_segmap_test(a));
  DEPOT_CHECK(depot_segmap_test(a + DEPOT_SEGMENT_SIZE - 1));
  uintptr_t off = depot_region_offset(a);
  if (!depot_region_contains(off)) return;
  DEPOT_CHECK(off % DEPOT_SEGMENT_SIZE == 0);
  DEPOT_CHECK(depot_load_relaxed(&depot_region_used) <= region_size);
}

void depot_region_prefork(void) { pthread_mutex_lock(&region_lock); }
void depot_region_postfork(void) { pthread_mutex_unlock(&region_lock); }
