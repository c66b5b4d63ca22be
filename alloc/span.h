/* span.h: segments, the spans inside them, list ids, and the lock-free map
 * from an address inside a segment to its page and span.  Definitions
 * only: arenas (arena.c) create and change spans, central pools
 * (central.c) own small ones, region.h finds segments.
 *
 * A segment is DEPOT_SEGMENT_SIZE bytes aligned to its size.  Its first
 * header_pages pages hold the header below; the rest are carved into spans.
 *
 *   segment base                                          base + 4 MiB
 *   | header pages | span | span (free) |   span   | ...          |
 *     pagemap[]    : per page, the span descriptor covering it
 *     slots[]      : span descriptors; a span's descriptor is the slot of
 *                    its first page (depot_span_slot)
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
 *     that serves a small class; its value is the span's list id (shifted
 *     left by DEPOT_REGION_ENTRY_SHIFT, region.h).
 *   - pagemap[i] is exact for every page of an in-use span and for the first
 *     and last page of a free span; elsewhere it may be stale, so a reader that
 *     starts from an arbitrary address checks depot_span_covers().
 */
#ifndef DEPOT_ALLOC_SPAN_H
#define DEPOT_ALLOC_SPAN_H

#include <stdatomic.h>
#include <stdint.h>

#include "alloc/common.h"
#include "alloc/sizeclass.h"

/* A list id names one bin of a thread cache and one central pool:
 *   bits 0..6  size class (1..40),  bits 7..8  domain,  bits 9..24  owner.
 * The owner is the heap that the span serves (central.h): owners 0 to
 * DEPOT_MAX_NODES - 1 are the nodes' shared heaps, the others one thread's
 * heap on one node each.  0 is no list (class 0 does not exist), which is
 * what the region's page table holds for pages that do not serve a small
 * class. */
#define DEPOT_LIST_CLASS_BITS 7
#define DEPOT_LIST_CLASS_MASK ((1u << DEPOT_LIST_CLASS_BITS) - 1)
#define DEPOT_LIST_DOMAIN_SHIFT DEPOT_LIST_CLASS_BITS
#define DEPOT_LIST_DOMAIN_BITS 2
#define DEPOT_LIST_OWNER_SHIFT \
  (DEPOT_LIST_DOMAIN_SHIFT + DEPOT_LIST_DOMAIN_BITS)
#define DEPOT_LISTS_PER_OWNER (1u << DEPOT_LIST_OWNER_SHIFT)
#define DEPOT_MAX_OWNERS (1u << 16)
_Static_assert(DEPOT_NCLASSES <= (1u << DEPOT_LIST_CLASS_BITS),
               "classes fit in the class bits");
_Static_assert(DEPOT_NDOMAINS <= (1u << DEPOT_LIST_DOMAIN_BITS),
               "domains fit in the domain bits");
_Static_assert(DEPOT_LIST_OWNER_SHIFT == 9 &&
                   DEPOT_MAX_NODES < DEPOT_MAX_OWNERS,
               "every owner's list ids fit in 25 bits, as described above");
static inline uint32_t depot_list_id(unsigned owner, unsigned domain,
                                     unsigned cls) {
  return (owner << DEPOT_LIST_OWNER_SHIFT) |
         (domain << DEPOT_LIST_DOMAIN_SHIFT) | cls;
}
static inline unsigned depot_list_class(unsigned li) {
  return li & DEPOT_LIST_CLASS_MASK;
}
static inline unsigned depot_list_domain(unsigned li) {
  return (li >> DEPOT_LIST_DOMAIN_SHIFT) & ((1u << DEPOT_LIST_DOMAIN_BITS) - 1);
}
static inline unsigned depot_list_owner(unsigned li) {
  return li >> DEPOT_LIST_OWNER_SHIFT;
}

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
  uint32_t block_size;            /* SMALL: class size; LARGE: usable bytes */
  uint16_t used;       /* SMALL: blocks outside the span (a span holds
                        * fewer than 65536 blocks: central.c checks) */
  uint16_t start_page; /* index of the first page in its segment */
  uint16_t npages;
  uint16_t heap;    /* SMALL and LARGE of a heap: its slot (heap.h); else 0 */
  uint32_t list_id; /* SMALL: see above */
  union {
    uint32_t dirty_ms; /* FREE and dirty: when its oldest pages were freed */
    uint32_t heap_gen; /* SMALL of a heap: its generation's low bits (heap.h) */
  };
  uint8_t state;  /* depot_span_state_t */
  uint8_t domain; /* SMALL and LARGE */
  uint8_t dirty;  /* FREE: some pages may be resident (not yet purged) */
  union {
    uint8_t in_partial; /* SMALL: linked into its central pool's partial list */
    uint8_t sampled;    /* LARGE: the block is a heap-profile sample (prof.h);
                         * cleared before the span goes back to its arena;
                         * DEPOT_SPAN_SPARE while it is a freed sample kept
                         * spare (alloc.c), so no block */
  };
} depot_span_t;
#define DEPOT_SPAN_SPARE 2
_Static_assert(sizeof(depot_span_t) == 64, "a span descriptor is a cache line");

struct depot_arena;

typedef struct depot_segment {
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
_Static_assert(DEPOT_SEGMENT_HEADER_PAGES * 100 <= DEPOT_SEGMENT_PAGES,
               "a segment's header is about 1% of it (common.h)");

depot_inline depot_segment_t *depot_segment_base(uintptr_t a) {
  return (depot_segment_t *)(a & ~(uintptr_t)DEPOT_SEGMENT_MASK);
}
depot_inline unsigned depot_page_index(uintptr_t a) {
  return (unsigned)((a & DEPOT_SEGMENT_MASK) >> DEPOT_PAGE_SHIFT);
}
/* The descriptor of the span that starts on page.  Slots are laid out by
 * page modulo 16, then page / 16, so that spans of 16 pages (128 KiB: the
 * span of most small classes), cut one after another from a segment's
 * front, have neighbouring descriptors: a small program's twenty classes
 * touch one page of descriptors, not five (one slot every 1 KiB). */
static inline depot_span_t *depot_span_slot(depot_segment_t *seg,
                                            unsigned page) {
  return &seg->slots[(page % 16) * (DEPOT_SEGMENT_PAGES / 16) + page / 16];
}
_Static_assert(DEPOT_SEGMENT_PAGES % 16 == 0, "depot_span_slot is a bijection");

static inline char *depot_span_start(const depot_span_t *s) {
  return (char *)depot_segment_base((uintptr_t)s) +
         ((size_t)s->start_page << DEPOT_PAGE_SHIFT);
}
static inline int depot_span_covers(const depot_span_t *s, unsigned page) {
  return s && s->state != DEPOT_SPAN_DEAD && page >= s->start_page &&
         page < (unsigned)s->start_page + s->npages;
}

#endif /* DEPOT_ALLOC_SPAN_H */
