/* region.h: where segments come from and how any address is recognised.
 *
 *   - The heap region: a range of addresses chosen at start-up that
 *     segments are mapped into in address order, one at a time, with a
 *     page table of list ids: what the free fast path reads.
 *   - The segment map: one bit per possible segment of the address space,
 *     set for every segment of Depot's wherever it lives (region or an
 *     arena's own reservation), so "is this a segment of ours?" never
 *     faults.
 *
 * Invariants (checked by depot_region_check):
 *   - a segment's bit is set from the moment its header is written and
 *     stays set (segments are never unmapped), so an address whose bit is
 *     clear is not Depot's and an address whose bit is set may have its
 *     segment header read without faulting;
 *   - depot_region_pages[i] != 0 exactly for the region's pages of a span
 *     that serves a small class; its value is that span's list id shifted
 *     left by DEPOT_REGION_ENTRY_SHIFT (see depot_region_entry);
 *   - depot_region_used is a multiple of the segment size, at most the
 *     region's size, and every segment below it is mapped, as is the page
 *     table's part for it.
 */
#ifndef DEPOT_ALLOC_REGION_H
#define DEPOT_ALLOC_REGION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/common.h"
#include "alloc/span.h"

/* One bit per possible segment of the 47-bit user address space (4 MiB of
 * zero-initialised BSS: untouched parts cost no memory).  Bits are set with a
 * relaxed fetch_or when a segment is made (segments are never unmapped);
 * see the invariants above for why relaxed suffices. */
#define DEPOT_ADDRESS_BITS 47
#define DEPOT_SEGMAP_WORDS \
  ((size_t)1 << (DEPOT_ADDRESS_BITS - DEPOT_SEGMENT_SHIFT - 6))
extern depot_hidden _Atomic uint64_t depot_segmap[DEPOT_SEGMAP_WORDS];
_Static_assert(sizeof(uint64_t) * DEPOT_SEGMAP_WORDS == ((size_t)4 << 20),
               "the segment map is 4 MiB of BSS, as said above");

/* The heap region: addresses chosen once at start-up, mapped a segment at
 * a time at the region's front (so a process pays address space, which
 * RLIMIT_AS counts, only for segments it has used) and never given back
 * (their pages are purged instead).  So [base, base + used) is all mapped
 * segments, and the free fast path recognises a block of the region with
 * one subtraction and one compare, then reads its list id from the
 * region's page table, indexed by page number within the region and mapped
 * as the region grows.  Segments made while the region is full, while
 * another mapping sits at its front, or when it could not be placed live
 * elsewhere; their blocks take the slow path, which consults depot_segmap
 * and the span.
 *
 * base and used are plain words, written with relaxed atomic stores and
 * read with depot_load_plain (common.h), so that the free fast path's
 * bounds check is a subtraction and a compare with memory operands; pages
 * and its entries are relaxed atomics.  Any value a reader sees is safe:
 * base and pages are written once before any segment exists; used only
 * grows after the segment it covers is committed; a page's entry is written
 * under its central pool's lock before any block of the page is handed out.
 * A thread holding a block learned of it through the program's own
 * synchronisation, which orders those writes before its reads; a stale
 * value seen for a garbage pointer only sends it to the slow path. */
extern depot_hidden uintptr_t depot_region_base;
extern depot_hidden uintptr_t depot_region_used;
extern depot_hidden _Atomic(_Atomic uint32_t *) depot_region_pages;

/* Offset of a within the region if a is in a committed segment of it, else
 * a value >= depot_region_used (the caller compares). */
depot_inline uintptr_t depot_region_offset(uintptr_t a) {
  return a - depot_load_plain(&depot_region_base);
}
depot_inline int depot_region_contains(uintptr_t off) {
  return off < depot_load_plain(&depot_region_used);
}
/* A page's entry is its list id shifted left by DEPOT_REGION_ENTRY_SHIFT
 * (0 stays 0: no small class), so that an entry minus a thread cache's
 * owner_entry is at once the byte offset of the block's bin from its
 * domain's first bin in the cache (tcache.h: bins are 16 bytes, indexed by
 * the low bits of the list id):
 * the free fast path needs no shift.  Written only by
 * depot_region_set_list_id; read as an entry by the free fast path, as a
 * list id by everyone else. */
#define DEPOT_REGION_ENTRY_SHIFT 4
depot_static_assert((((uint64_t)DEPOT_MAX_OWNERS << DEPOT_LIST_OWNER_SHIFT) - 1)
                            << DEPOT_REGION_ENTRY_SHIFT <=
                        UINT32_MAX,
                    "every list id, shifted, fits an entry");
/* The entry of the page at region offset off (which must be contained). */
depot_inline uint32_t depot_region_entry(uintptr_t off) {
  return depot_load_relaxed(
      &depot_load_relaxed(&depot_region_pages)[off >> DEPOT_PAGE_SHIFT]);
}
/* The list id of the page at region offset off (which must be contained). */
depot_inline unsigned depot_region_list_id(uintptr_t off) {
  return depot_region_entry(off) >> DEPOT_REGION_ENTRY_SHIFT;
}
/* Sets the list id of npages pages from p (no-op outside the region). */
void depot_region_set_list_id(const void *p, size_t npages, uint32_t li);

/* Nonzero if a is inside a segment of Depot's.  Never faults, for any a. */
depot_inline int depot_segmap_test(uintptr_t a) {
  uintptr_t si = a >> DEPOT_SEGMENT_SHIFT;
  if (depot_unlikely(si >> (DEPOT_ADDRESS_BITS - DEPOT_SEGMENT_SHIFT)))
    return 0;
  return (int)((depot_load_relaxed(&depot_segmap[si >> 6]) >> (si & 63)) & 1);
}

/* Chooses the heap region's addresses, for up to want bytes; maps
 * nothing.  Returns want (0 when no free range of addresses was found;
 * every segment then comes from the arenas' own reservations).  Call once,
 * before any arena makes a segment. */
size_t depot_region_init(size_t want);

/* Maps the next segment at the region's front.  Returns 0; ENOSPC when the
 * region is used up or absent, or another mapping sits at its front (the
 * arena then makes a reservation of its own); or ENOMEM (the OS refused:
 * memory or the address-space limit).  Takes the region lock. */
int depot_region_take(depot_segment_t **out);

/* Marks seg as Depot's in the segment map (after its header is written). */
void depot_segmap_add(const depot_segment_t *seg);

/* The region's bounds, for checks and tests: its base, the most bytes it
 * may grow to and bytes mapped as segments so far. */
void depot_region_bounds(uintptr_t *base, size_t *size, size_t *used);

/* Checks the invariants above for the segment seg (region lock not needed:
 * reads of relaxed atomics and of headers that no longer change).  Aborts
 * through DEPOT_CHECK on a violation. */
void depot_region_check_segment(const depot_segment_t *seg);

/* Fork safety (init.c): the region lock. */
void depot_region_prefork(void);
void depot_region_postfork(void);

#endif /* DEPOT_ALLOC_REGION_H */
