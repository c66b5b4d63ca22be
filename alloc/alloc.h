/* alloc.h: the allocator core's entry points, for the layers above (the
 * PyMem-style API, the malloc override).  Every block belongs to one domain
 * (raw, mem, object); a block must be freed, reallocated or queried with the
 * domain it was allocated in, which is checked.
 *
 * Contract of the core (the API layers add their own on top):
 *   - every block is aligned to at least 16 bytes;
 *   - depot_alloc(0) returns a distinct minimum-size block;
 *   - sizes above PTRDIFF_MAX and overflowing calloc products return NULL
 *     with errno = ENOMEM; so does running out of memory, which leaves every
 *     live block intact;
 *   - depot_free(NULL) does nothing; freeing a pointer Depot never handed out,
 *     or with the wrong domain, is reported (see depot_bad_pointer).
 *
 * The fast paths below are a cache hit in the thread's cache: a few loads
 * and stores, one predicted branch each, no lock and no atomic RMW. */
#ifndef DEPOT_ALLOC_ALLOC_H
#define DEPOT_ALLOC_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "alloc/alloc_api.h"
#include "alloc/check.h"
#include "alloc/common.h"
#include "alloc/region.h"
#include "alloc/sizeclass.h"
#include "alloc/span.h"
#include "alloc/tcache.h"
#include "alloc/valgrind.h"

/* Large and huge blocks of domain d now (statistics; relaxed counters). */
void depot_big_counts(unsigned d, size_t *large_blocks, size_t *large_bytes,
                      size_t *huge_blocks, size_t *huge_bytes);

/* What a pointer is (alloc.c's classification, used by heap.c too).  Never
 * faults, whatever p is.  heap: for a block of a heap (domain
 * DEPOT_NDOMAINS, heap.h), its heap's slot; else 0. */
typedef enum {
  BLOCK_BAD = 0,
  BLOCK_SMALL,
  BLOCK_LARGE,
  BLOCK_HUGE,
  BLOCK_GUARD
} depot_block_kind_t;
typedef struct {
  depot_block_kind_t kind;
  unsigned domain;
  unsigned heap;
  size_t usable;
  depot_span_t *span; /* SMALL and LARGE */
  unsigned list_id;   /* SMALL */
  const char *why;    /* BAD */
} depot_block_info_t;
depot_block_kind_t depot_classify(const void *p, depot_block_info_t *bi);
/* Heaps (heap.c) set this hook so that a heap block passed to a domain's
 * function is reported with its heap's name. */
extern const char *(*depot_heap_name_hook)(unsigned slot);
/* Set by heap.c before main when heaps are linked in: gives the heaps'
 * spare spans back to the arenas (the memory limit's reclaim calls it). */
extern void (*depot_heap_trim_hook)(void);

/* The memory limit (alloc.c): after a failure, depot_limit_reclaim flushes
 * the calling thread's cache and purges what can be purged, and returns 1
 * if a limit is set (then one more try may go up to the hard limit, and
 * depot_limit_done(its result) ends it, counting a failure as a hit). */
int depot_limit_reclaim(void);
void *depot_limit_done(void *p);

/* Slow paths (alloc.c). */
void *depot_alloc_slow(size_t size, unsigned domain);
void depot_free_slow(void *p, unsigned domain);

/* Heap profiling (prof.h): what an entry point calls when depot_prof_take
 * says its request holds a sample point.  Returns the sample (size bytes of
 * domain d, aligned to align, zeroed if zero), or NULL when this request is
 * not to be sampled after all (profiling inactive, or no memory): the
 * caller then goes its usual way. */
void *depot_prof_alloc(size_t size, size_t align, unsigned d, int zero);
/* realloc of block p (not NULL) with prof=1, in place of depot_realloc:
 * counts the block's growth against the countdown (a crossing makes it a
 * sample) and keeps a sample sampled at its new size. */
void *depot_prof_realloc(void *p, size_t size, unsigned d);

_Static_assert(sizeof(depot_bin_t) == 1u << DEPOT_REGION_ENTRY_SHIFT,
               "an entry minus owner_entry[d] is a bin's byte offset");
_Static_assert(DEPOT_MIN_ALIGN == 16 && sizeof(depot_bin_t) == DEPOT_MIN_ALIGN,
               "blocks are 16-byte aligned and a rounded size is a bin offset");

/* What a cache miss calls: depot_alloc_slow and depot_free_slow, or a
 * caller's function that ends in them (the malloc override's, which routes
 * misses through debug mode when it is on). */
typedef void *depot_alloc_miss_fn(size_t size, unsigned domain);
typedef void depot_free_miss_fn(void *p, unsigned domain);

/* Allocates size bytes in domain, calling miss on a cache miss.
 * REQUIRES: domain < DEPOT_NDOMAINS. */
depot_inline void *depot_alloc_with(size_t size, unsigned domain,
                                    depot_alloc_miss_fn *miss) {
  depot_tcache_t *tc = depot_tls_cache();
  /* The byte offset of the domain's first bin in the cache: a multiple of
   * 16 (asserted in tcache.h). */
  const size_t first = offsetof(depot_tcache_t, bins) +
                       sizeof(depot_bin_t) * (domain << DEPOT_LIST_CLASS_BITS);
  depot_bin_t *bin;
  /* Bins are 16 bytes and classes step by 16 up to 128, so a rounded-up
   * size is the byte offset of its bin; first is folded into the rounding
   * (one instruction fewer than adding it). */
  if (depot_likely(size <= 128))
    bin = (depot_bin_t *)((char *)tc + ((size + 15 + first) & ~(size_t)15));
  else if (depot_likely(size <= DEPOT_CLASS_TABLE_MAX))
    bin = (depot_bin_t *)((char *)tc + first +
                          depot_class16_of_16ths[(size + 15) >> 4]);
  else if (depot_likely(size <= DEPOT_SMALL_MAX))
    bin = (depot_bin_t *)((char *)tc + first) + depot_size_to_class(size);
  else return miss(size, domain);
#if defined(__GNUC__) && defined(__x86_64__)
  /* bin in the d register (rdx), so that the block, which is returned,
   * can be loaded straight into rax (the compiler otherwise picks the
   * other way round and adds a mov before the ret).  No instruction. */
  __asm__("" : "+d"(bin));
#endif
  void *p = bin->head;
  if (depot_likely(p != NULL)) {
    bin->head = *(void **)p;
    ((uintptr_t *)p)[1] = 0; /* the free key (see depot_free) */
    bin->room++;
    depot_tsan_release(tc);
    DEPOT_VG_ALLOCATED(p, size ? size : 1, 0);
    return p;
  }
  return miss(size, domain);
}

/* Allocates size bytes in domain.  REQUIRES: domain < DEPOT_NDOMAINS. */
depot_inline void *depot_alloc(size_t size, unsigned domain) {
  return depot_alloc_with(size, domain, depot_alloc_slow);
}

/* Frees p, allocated in domain, calling miss on a cache miss.  REQUIRES:
 * domain < DEPOT_NDOMAINS. */
depot_inline void depot_free_with(void *p, unsigned domain,
                                  depot_free_miss_fn *miss) {
  depot_tcache_t *tc = depot_tls_cache();
  uintptr_t off = depot_region_offset((uintptr_t)p);
  if (DEPOT_VG && p) DEPOT_VG_FREED(p);
  if (depot_likely(depot_region_contains(off))) {
    /* i is the byte offset of the bin of the block's list id from the
     * domain's first bin if the block is of this thread's owner heap
     * (entries are pre-shifted: region.h; owner_entry[domain]: tcache.h).
     * One unsigned compare checks at once that the page serves a small
     * class, of this thread's heap (so of its node) and of the caller's
     * domain: a remote free fails it.  It lets class 0 through, which no
     * page has but a page of no small class (entry 0) while the thread's
     * owner is node 0's shared heap (owner_entry[0] 0): that lands on a bin of
     * no class, whose room is always 0 (depot_tcache_check), so the room
     * test below sends it to the miss before anything reads the block (it
     * may not be one: a garbage pointer in the region's last bytes would
     * read past the region's end). */
    uint32_t i = depot_region_entry(off) - tc->owner_entry[domain];
    if (depot_likely(i < (uint32_t)DEPOT_NCLASSES
                             << DEPOT_REGION_ENTRY_SHIFT)) {
      depot_bin_t *bins = &tc->bins[domain << DEPOT_LIST_CLASS_BITS];
      depot_bin_t *bin = (depot_bin_t *)((char *)bins + i);
      /* room is decremented first, so that the decrement's flags are the
       * test (no separate load and compare of room).  The free key: every
       * block in a bin carries depot_free_key in its second word (alloc
       * clears it), so a block freed twice while still cached is seen
       * here; the slow path walks the bin to confirm (a program's data may
       * equal the key) and reports it, as glibc's tcache does.  Costs a
       * load, a compare and a store.  A bin that had no room (room <= 0:
       * full, over its limit after a refill, or of no class), or a block
       * that carries the key, gets the room back and the miss frees the
       * block, which nothing here has written. */
      uintptr_t key = depot_free_key;
      if (depot_likely(--bin->room >= 0)) {
        if (depot_likely(((uintptr_t *)p)[1] != key)) {
          *(void **)p = bin->head;
          ((uintptr_t *)p)[1] = key;
          bin->head = p;
          depot_tsan_release(tc);
          return;
        }
      }
      /* Through an opaque pointer: the compiler would otherwise keep
       * room's old value in a register to restore it (an instruction on
       * every hit). */
      bin = (depot_bin_t *)depot_opaque_ptr(bin);
      bin->room++;
      depot_tsan_release(tc);
    } else if (depot_tcache_remote_push(
                   tc, p,
                   (depot_opaque_u32(i) +
                    ((depot_tcache_t *)depot_opaque_ptr(tc))
                        ->owner_entry[domain]) >>
                       DEPOT_REGION_ENTRY_SHIFT,
                   domain)) {
      /* A remote free (another owner's small block): into the outbox,
       * posted home a bucket at a time (tcache.h).  Its list id is rebuilt
       * from i here, so that the hit path keeps no copy of it (the
       * compiler would otherwise keep one: an instruction on every hit). */
      return;
    }
  }
  miss(p, domain);
}

/* Frees p, allocated in domain.  REQUIRES: domain < DEPOT_NDOMAINS. */
depot_inline void depot_free(void *p, unsigned domain) {
  depot_free_with(p, domain, depot_free_slow);
}

/* Reports p, an address inside a small block but not its start, passed to
 * malloc_usable_size (alloc.c; debug builds). */
void depot_usable_size_interior(const void *p);

/* malloc_usable_size: fast for small blocks (a page-table read, the span's
 * first page, one 32-bit division).  What it promises:
 *   - for a pointer malloc returned, the block's usable size, as
 *     depot_usable_size says;
 *   - for an address inside a small block, the bytes from there to the
 *     block's end, never more (in builds with DEPOT_CHECK_LEVEL >= 2, as
 *     --config=debug, it is reported as a bad pointer instead);
 *   - for an address inside a large or huge block, or one that is not
 *     Depot's, 0 (depot_usable_size: the slow path).
 * A freed block's answer is meaningless (not unsafe: every read stays in the
 * region's page table and a segment header). */
depot_inline size_t depot_usable_size_fast(const void *p) {
  uintptr_t a = (uintptr_t)p, off = depot_region_offset(a);
  if (depot_likely(depot_region_contains(off))) {
    unsigned li = depot_region_list_id(off);
    if (depot_likely(li != 0)) {
      const depot_span_t *s = depot_load_relaxed(
          &depot_segment_base(a)->pagemap[depot_page_index(a)]);
      uint32_t size = depot_class_size[depot_list_class(li)];
      uint32_t into = (uint32_t)(a - (uintptr_t)depot_span_start(s)) % size;
      if (DEPOT_CHECK_LEVEL >= 2 && into != 0) depot_usable_size_interior(p);
      return size - into;
    }
  }
  return depot_usable_size(p);
}

#endif /* DEPOT_ALLOC_ALLOC_H */
