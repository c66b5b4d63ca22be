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

#include "alloc/common.h"
#include "alloc/sizeclass.h"
#include "alloc/span.h"
#include "alloc/tcache.h"

/* Tunables read once when Depot initialises (the configuration layer fills
 * them before the first allocation). */
typedef struct {
  size_t tcache_max_bytes;     /* per-thread cache budget */
  unsigned tcache_batch;       /* most blocks moved per refill or flush */
  size_t arena_reserve_bytes;  /* address space reserved from the OS at once */
  size_t huge_threshold_bytes; /* larger requests are mapped directly */
  size_t purge_threshold_bytes; /* idle dirty bytes an arena keeps */
  int abort_on_bad_pointer;    /* 1: abort on a bad free; 0: warn and leak */
} depot_core_options_t;
extern depot_core_options_t depot_core_options;

/* Slow paths (alloc.c). */
void *depot_alloc_slow(size_t size, unsigned domain);
void depot_free_slow(void *p, unsigned domain);

/* Allocates size bytes in domain. */
depot_inline void *depot_alloc(size_t size, unsigned domain) {
  depot_tcache_t *tc = depot_tls_tcache;
  if (depot_likely(size <= DEPOT_SMALL_MAX)) {
    depot_bin_t *bin =
        &tc->bins[(domain << DEPOT_LIST_CLASS_BITS) | depot_size_to_class(size)];
    void *p = bin->head;
    if (depot_likely(p != NULL)) {
      bin->head = *(void **)p;
      bin->count--;
      return p;
    }
  }
  return depot_alloc_slow(size, domain);
}

/* Frees p, allocated in domain. */
depot_inline void depot_free(void *p, unsigned domain) {
  uintptr_t a = (uintptr_t)p;
  depot_tcache_t *tc = depot_tls_tcache;
  if (depot_likely(depot_segmap_test(a))) {
    depot_segment_t *seg = depot_segment_base(a);
    /* One unsigned compare checks at once that the page serves a small class
     * (list id != 0), of this thread's node and of the caller's domain:
     * rel is the block's class exactly when all three hold. */
    uint32_t rel = (uint32_t)depot_load_relaxed(&seg->page_list[depot_page_index(a)]) -
                   tc->node_base - (domain << DEPOT_LIST_CLASS_BITS);
    if (depot_likely(rel - 1u < DEPOT_NCLASSES - 1u)) {
      depot_bin_t *bin = &tc->bins[(domain << DEPOT_LIST_CLASS_BITS) + rel];
      if (depot_likely(bin->count < bin->limit)) {
        *(void **)p = bin->head;
        bin->head = p;
        bin->count++;
        return;
      }
    }
  }
  depot_free_slow(p, domain);
}

void *depot_calloc(size_t n, size_t size, unsigned domain);
/* Resizes p (NULL: allocates).  size 0 resizes to a minimum block.  On
 * failure returns NULL and p stays valid with its contents. */
void *depot_realloc(void *p, size_t size, unsigned domain);
/* align: any power of two; otherwise NULL with errno = EINVAL. */
void *depot_aligned_alloc(size_t align, size_t size, unsigned domain);
/* Usable bytes of a live block (>= the size asked for), 0 if p is not one. */
size_t depot_usable_size(const void *p);
/* Nonzero if p is the address of a block in an in-use span or of a live huge
 * block.  Never faults, whatever p is. */
int depot_owns(const void *p);
/* The domain a block of Depot's was allocated in, or -1. */
int depot_domain_of(const void *p);

/* Initialises Depot if needed.  Returns 0 or an errno value. */
int depot_init(void);
/* Returns cached free memory: flushes the calling thread's cache, empties the
 * central pools into their spans and purges every arena. */
void depot_trim(void);
/* Flushes the calling thread's cache into the central pools. */
void depot_thread_flush(void);

/* Reports a bad pointer passed to op and aborts (or warns, per options). */
void depot_bad_pointer(const char *op, const void *p, const char *why);

typedef struct {
  size_t os_mapped_bytes; /* reserved or committed through the OS layer */
  size_t segments;
  size_t free_pages, dirty_pages, purged_pages; /* arenas */
  size_t huge_blocks, huge_bytes;
  size_t meta_bytes;
  size_t batch_records;
} depot_core_stats_t;
void depot_core_stats(depot_core_stats_t *out);

#endif /* DEPOT_ALLOC_ALLOC_H */
