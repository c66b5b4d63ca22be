/* common.h: compiler helpers, the allocator's fixed geometry and the named
 * atomic helpers every file of the core shares.
 *
 * Glossary (the same words name the files of alloc/):
 *   block    - what a caller gets back from malloc; at least 16-byte aligned.
 *   page     - DEPOT_PAGE_SIZE bytes, the unit the page arenas hand out.
 *   span     - a run of pages inside one segment: free, serving one size class
 *              ("small"), or holding one large block ("large").
 *   segment  - DEPOT_SEGMENT_SIZE bytes, aligned to its size, owned by one
 *              arena and one NUMA node; its first pages hold its header.
 *   domain   - one of the three API families (raw, mem, object); spans serve
 *              exactly one domain so a free with the wrong family is caught.
 *   tcache   - per-thread cache: a free list per (domain, size class).
 *   central  - per-node, per-domain, per-class pool of batches of blocks.
 *   arena    - per-node page allocator over segments (span.h, arena.c).
 */
#ifndef DEPOT_ALLOC_COMMON_H
#define DEPOT_ALLOC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define depot_likely(x) __builtin_expect(!!(x), 1)
#define depot_unlikely(x) __builtin_expect(!!(x), 0)
#define depot_noinline __attribute__((noinline))
#define depot_cold __attribute__((cold, noinline))
#define depot_inline static inline __attribute__((always_inline))
/* Internal globals: no GOT indirection when the core is built into a shared
 * library (libdepot.so), so the fast paths address them directly. */
#define depot_hidden __attribute__((visibility("hidden")))
#define DEPOT_CACHE_LINE 64
#define depot_cache_aligned __attribute__((aligned(DEPOT_CACHE_LINE)))

/* Geometry.  A segment is 4 MiB: small enough that an idle one costs little,
 * large enough that its header (about 1% of it) is amortised. */
#define DEPOT_PAGE_SHIFT 13
#define DEPOT_PAGE_SIZE ((size_t)1 << DEPOT_PAGE_SHIFT)
#define DEPOT_SEGMENT_SHIFT 22
#define DEPOT_SEGMENT_SIZE ((size_t)1 << DEPOT_SEGMENT_SHIFT)
#define DEPOT_SEGMENT_MASK (DEPOT_SEGMENT_SIZE - 1)
#define DEPOT_SEGMENT_PAGES (DEPOT_SEGMENT_SIZE / DEPOT_PAGE_SIZE)
#define DEPOT_MIN_ALIGN 16

/* Largest NUMA node count the core is built for.  Node ids are stored in the
 * 16-bit list id of every small page (see span.h), 9 bits are left for them. */
#define DEPOT_MAX_NODES 64

/* The three API domains of the PyMem-style layer. */
typedef enum {
  DEPOT_DOM_RAW = 0,
  DEPOT_DOM_MEM = 1,
  DEPOT_DOM_OBJ = 2,
} depot_domain_t;
#define DEPOT_NDOMAINS 3

/* Atomic helpers that name their memory order, so that every ordering is a
 * visible decision at the call site (C only: users include <stdatomic.h>). */
#define depot_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define depot_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define depot_store_relaxed(p, v) \
  atomic_store_explicit((p), (v), memory_order_relaxed)
#define depot_store_release(p, v) \
  atomic_store_explicit((p), (v), memory_order_release)
#define depot_cas_weak_acq_rel(p, expected, desired)                       \
  atomic_compare_exchange_weak_explicit((p), (expected), (desired),        \
                                        memory_order_acq_rel,              \
                                        memory_order_acquire)
#define depot_add_relaxed(p, v) \
  atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define depot_sub_relaxed(p, v) \
  atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)

static inline uintptr_t depot_align_up(uintptr_t x, uintptr_t a) {
  return (x + a - 1) & ~(a - 1);
}
static inline int depot_is_pow2(size_t x) { return x && !(x & (x - 1)); }

#endif /* DEPOT_ALLOC_COMMON_H */
