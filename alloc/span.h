/* span.h: segments, the spans inside them, and the lock-free map from any
 * address to its segment, page and span.
 *
 * A segment is DEPOT_SEGMENT_SIZE bytes aligned to its size.  Its first
 * header_pages pages hold the header below; the rest are carved into spans.
 *
 *   segment base                                          base + 4 MiB
 *   | header pages | span | span (free) |   span   | ...          |
 *     pagemap[]    : per page, the span descriptor covering it
 *     slots[]      : span descriptors; a span's descriptor is slots[first page]
 *
 * Segments are cut from the heap region (below) while it lasts.  Its page
 * table holds, per page, the list id of the small span covering it, or 0:
 * the only thing free() needs to find a block's cache bin.
 *
 * Invariants:
 *   - depot_segmap has the bit of a segment set for as long as the segment is
 *     mapped, so an address whose bit is clear is not Depot's and an address
 *     whose bit is set may have its header read without faulting.
 *   - depot_region_pages[i] != 0 exactly for the region's pages of a span
 *     that serves a small class; its value is the span's list id.
 *   - pagemap[i] is exact for every page of an in-use span and for the first
 *     and last page of a free span; elsewhere it may be stale, so a reader that
 *     starts from an arbitrary address checks depot_span_covers().
 */
#ifndef DEPOT_ALLOC_SPAN_H
#define DEPOT_ALLOC_SPAN_H

#include <stdatomic.h>
#include <stdint.h>

#include "alloc/common.h"

/* A list id names one free list of a thread cache and one central pool:
 *   bits 0..6  size class (1..72),  bits 7..8  domain,  bits 9..15  node. */
#define DEPOT_LIST_CLASS_BITS 7
#define DEPOT_LIST_DOMAIN_SHIFT DEPOT_LIST_CLASS_BITS
#define DEPOT_LIST_NODE_SHIFT 9
#define DEPOT_LISTS_PER_NODE (1u << DEPOT_LIST_NODE_SHIFT)
static inline uint16_t depot_list_id(unsigned node, unsigned domain,
                                     unsigned cls) {
  return (uint16_t)((node << DEPOT_LIST_NODE_SHIFT) |
                    (domain << DEPOT_LIST_DOMAIN_SHIFT) | cls);
}
static inline unsigned depot_list_class(unsigned li) { return li & 127u; }
static inline unsigned depot_list_domain(unsigned li) { return (li >> 7) & 3u; }
static inline unsigned depot_list_node(unsigned li) { return li >> 9; }

typedef enum {
  DEPOT_SPAN_DEAD = 0, /* descriptor slot not the start of a span */
  DEPOT_SPAN_FREE,     /* owned by the arena's free bins */
  DEPOT_SPAN_SMALL,    /* owned by the central pool of its list id */
  DEPOT_SPAN_LARGE,    /* one block, owned by the caller until freed */
} depot_span_state_t;

/* A span descriptor.  Synchronisation: a FREE span's fields belong to its
 * arena's lock; a SMALL span's (free list, bump, used, partial links) to its
 * central pool's lock; a LARGE span's are written under the arena lock before
 * the block is returned and only read afterwards. */
typedef struct depot_span {
  struct depot_span *next, *prev; /* arena free bin or central partial list */
  void *free;                     /* SMALL: blocks returned to this span */
  char *bump;                     /* SMALL: next never-handed-out block */
  char *bump_end;                 /* SMALL: end of the carvable area */
  uint32_t used;                  /* SMALL: blocks outside the span */
  uint32_t block_size;            /* SMALL: class size; LARGE: usable bytes */
  uint16_t start_page;            /* index of the first page in its segment */
  uint16_t npages;
  uint16_t list_id; /* SMALL: see above */
  uint8_t state;    /* depot_span_state_t */
  uint8_t domain;   /* SMALL and LARGE */
  uint8_t dirty;    /* FREE: some pages may be resident (not yet purged) */
  uint8_t in_partial; /* SMALL: linked into its central pool's partial list */
  uint32_t dirty_ms;  /* FREE and dirty: when its oldest pages were freed */
} depot_span_t;
_Static_assert(sizeof(depot_span_t) == 64, "a span descriptor is a cache line");

struct depot_arena;

#define DEPOT_SEGMENT_MAGIC 0x44505347u /* "DPSG" */

typedef struct depot_segment {
  uint32_t magic;
  uint16_t node;
  uint16_t header_pages;
  struct depot_arena *arena;
  struct depot_segment *next; /* the arena's list of segments (arena lock) */
  /* Relaxed atomics: written under the arena lock, read lock-free by the
   * slow paths of free and by ownership checks; see the invariant above. */
  _Atomic(depot_span_t *) pagemap[DEPOT_SEGMENT_PAGES];
  depot_span_t slots[DEPOT_SEGMENT_PAGES];
} depot_segment_t;

#define DEPOT_SEGMENT_HEADER_PAGES \
  ((sizeof(depot_segment_t) + DEPOT_PAGE_SIZE - 1) / DEPOT_PAGE_SIZE)

/* One bit per possible segment of the 47-bit user address space (4 MiB of
 * zero-initialised BSS: untouched parts cost no memory).  Bits are set with a
 * relaxed fetch_or when a segment is mapped and cleared before it is unmapped;
 * see the invariant above for why relaxed suffices. */
#define DEPOT_ADDRESS_BITS 47
#define DEPOT_SEGMAP_WORDS \
  ((size_t)1 << (DEPOT_ADDRESS_BITS - DEPOT_SEGMENT_SHIFT - 6))
extern depot_hidden _Atomic uint64_t depot_segmap[DEPOT_SEGMAP_WORDS];

/* The heap region: one large reservation, made once at start-up, that
 * segments are cut from in address order and never given back (their pages
 * are purged instead).  So [base, base + used) is all committed segments,
 * and the free fast path recognises a block of the region with one
 * subtraction and one compare, then reads its list id from the region's
 * page table, indexed by page number within the region.  Segments made when
 * the region is exhausted or could not be reserved live elsewhere; their
 * blocks take the slow path, which consults depot_segmap and the span.
 *
 * All three are relaxed atomics: base and pages are written once before any
 * segment exists; used only grows after the segment it covers is committed;
 * a page's entry is written under its central pool's lock before any block
 * of the page is handed out.  A thread holding a block learned of it through
 * the program's own synchronisation, which orders those writes before its
 * reads; a stale value seen for a garbage pointer only sends it to the slow
 * path. */
extern depot_hidden _Atomic uintptr_t depot_region_base;
extern depot_hidden _Atomic uintptr_t depot_region_used;
extern depot_hidden _Atomic(_Atomic uint16_t *) depot_region_pages;

/* Offset of a within the region if a is in a committed segment of it, else
 * a value >= depot_region_used (the caller compares). */
depot_inline uintptr_t depot_region_offset(uintptr_t a) {
  return a - depot_load_relaxed(&depot_region_base);
}
depot_inline int depot_region_contains(uintptr_t off) {
  return off < depot_load_relaxed(&depot_region_used);
}
/* The list id of the page at region offset off (which must be contained). */
depot_inline unsigned depot_region_list_id(uintptr_t off) {
  return depot_load_relaxed(
      &depot_load_relaxed(&depot_region_pages)[off >> DEPOT_PAGE_SHIFT]);
}
/* Sets the list id of npages pages from p (no-op outside the region). */
void depot_region_set_list_id(const void *p, size_t npages, uint16_t li);

/* Nonzero if a is inside a segment of Depot's.  Never faults, for any a. */
depot_inline int depot_segmap_test(uintptr_t a) {
  uintptr_t si = a >> DEPOT_SEGMENT_SHIFT;
  if (depot_unlikely(si >> (DEPOT_ADDRESS_BITS - DEPOT_SEGMENT_SHIFT)))
    return 0;
  return (int)((depot_load_relaxed(&depot_segmap[si >> 6]) >> (si & 63)) & 1);
}

depot_inline depot_segment_t *depot_segment_base(uintptr_t a) {
  return (depot_segment_t *)(a & ~(uintptr_t)DEPOT_SEGMENT_MASK);
}
depot_inline unsigned depot_page_index(uintptr_t a) {
  return (unsigned)((a & DEPOT_SEGMENT_MASK) >> DEPOT_PAGE_SHIFT);
}
static inline char *depot_span_start(const depot_span_t *s) {
  return (char *)depot_segment_base((uintptr_t)s) +
         ((size_t)s->start_page << DEPOT_PAGE_SHIFT);
}
static inline int depot_span_covers(const depot_span_t *s, unsigned page) {
  return s && s->state != DEPOT_SPAN_DEAD && page >= s->start_page &&
         page < (unsigned)s->start_page + s->npages;
}

#endif /* DEPOT_ALLOC_SPAN_H */
