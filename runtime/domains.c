/* domains.c: the three API domains (raw, mem, object): their public
 * functions, Depot's own allocator for each, the start-up trampolines and
 * the pluggable-allocator table.
 *
 * Each domain's current allocator lives in `current`.  While it is Depot's
 * own, the public functions skip the indirect call and run the core's inline
 * fast paths.  `current` is written at start-up (before threads exist, from
 * a constructor) and by DepotMem_SetAllocator, whose contract forbids
 * changing a domain other threads are using; so plain fields suffice. */
#include <errno.h>
#include <stdlib.h>

#include "alloc/alloc.h"
#include "alloc/heap.h"
#include "alloc/prof.h"
#include "runtime/runtime.h"

/* The core numbers domains as the public enum does (common.h). */
_Static_assert(DEPOT_DOMAIN_RAW == 0 && DEPOT_DOMAIN_MEM == 1 &&
                   DEPOT_DOMAIN_OBJ == 2 && DEPOT_NDOMAINS == 3,
               "the public and the core's domain numbers must agree");

/* ---- Depot's own allocators ---------------------------------------------- */

#define DEPOT_OWN_ALLOCATOR(d, tag)                                   \
  static void *tag##_malloc(void *ctx, size_t n) {                    \
    (void)ctx;                                                        \
    return depot_alloc(n, d);                                         \
  }                                                                   \
  static void *tag##_calloc(void *ctx, size_t nelem, size_t elsize) { \
    (void)ctx;                                                        \
    return depot_calloc(nelem, elsize, d);                            \
  }                                                                   \
  static void *tag##_realloc(void *ctx, void *p, size_t n) {          \
    (void)ctx;                                                        \
    return depot_realloc(p, n, d);                                    \
  }                                                                   \
  static void tag##_free(void *ctx, void *p) {                        \
    (void)ctx;                                                        \
    depot_free(p, d);                                                 \
  }
DEPOT_OWN_ALLOCATOR(DEPOT_DOMAIN_RAW, raw)
DEPOT_OWN_ALLOCATOR(DEPOT_DOMAIN_MEM, mem)
DEPOT_OWN_ALLOCATOR(DEPOT_DOMAIN_OBJ, obj)

/* With prof=1 (prof.h) the domains' own allocators are these, which count
 * each request against the thread's countdown first.  The public
 * functions' inline path is for the allocators above only, so with
 * prof=0 nothing changes for them; with prof=1 their malloc makes the
 * indirect call below. */
#define DEPOT_OWN_PROF_ALLOCATOR(d, tag)                                      \
  static DEPOT_PROF_TEXT void *tag##_malloc_prof(void *ctx, size_t n) {       \
    (void)ctx;                                                                \
    void *q = depot_prof_take(n) ? depot_prof_alloc(n, DEPOT_MIN_ALIGN, d, 0) \
                                 : NULL;                                      \
    return q ? q : depot_alloc(n, d);                                         \
  }                                                                           \
  static DEPOT_PROF_TEXT void *tag##_calloc_prof(void *ctx, size_t nelem,     \
                                                 size_t elsize) {             \
    (void)ctx;                                                                \
    void *q = NULL;                                                           \
    if (!(elsize && nelem > PTRDIFF_MAX / elsize) &&                          \
        depot_prof_take(nelem * elsize))                                      \
      q = depot_prof_alloc(nelem * elsize, DEPOT_MIN_ALIGN, d, 1);            \
    return q ? q : depot_calloc(nelem, elsize, d);                            \
  }                                                                           \
  static DEPOT_PROF_TEXT void *tag##_realloc_prof(void *ctx, void *p,         \
                                                  size_t n) {                 \
    (void)ctx;                                                                \
    if (p) return depot_prof_realloc(p, n, d); /* counts the growth */        \
    void *q = depot_prof_take(n) ? depot_prof_alloc(n, DEPOT_MIN_ALIGN, d, 0) \
                                 : NULL;                                      \
    return q ? q : depot_alloc(n, d);                                         \
  }
DEPOT_OWN_PROF_ALLOCATOR(DEPOT_DOMAIN_RAW, raw)
DEPOT_OWN_PROF_ALLOCATOR(DEPOT_DOMAIN_MEM, mem)
DEPOT_OWN_PROF_ALLOCATOR(DEPOT_DOMAIN_OBJ, obj)

static const DepotMemAllocatorEx own[DEPOT_NDOMAINS] = {
    {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free},
    {NULL, mem_malloc, mem_calloc, mem_realloc, mem_free},
    {NULL, obj_malloc, obj_calloc, obj_realloc, obj_free},
};
static const DepotMemAllocatorEx own_prof[DEPOT_NDOMAINS] = {
    {NULL, raw_malloc_prof, raw_calloc_prof, raw_realloc_prof, raw_free},
    {NULL, mem_malloc_prof, mem_calloc_prof, mem_realloc_prof, mem_free},
    {NULL, obj_malloc_prof, obj_calloc_prof, obj_realloc_prof, obj_free},
};

/* ---- start-up trampolines -------------------------------------------------
 * Until the runtime has read its configuration, every domain points here;
 * ctx carries the domain number. */
static DepotMemAllocatorEx current[DEPOT_NDOMAINS];

static void *start_malloc(void *ctx, size_t n) {
  unsigned d = (unsigned)(uintptr_t)ctx;
  depot_runtime_init();
  return current[d].malloc(current[d].ctx, n);
}
static void *start_calloc(void *ctx, size_t nelem, size_t elsize) {
  unsigned d = (unsigned)(uintptr_t)ctx;
  depot_runtime_init();
  return current[d].calloc(current[d].ctx, nelem, elsize);
}
static void *start_realloc(void *ctx, void *p, size_t n) {
  unsigned d = (unsigned)(uintptr_t)ctx;
  depot_runtime_init();
  return current[d].realloc(current[d].ctx, p, n);
}
static void start_free(void *ctx, void *p) {
  unsigned d = (unsigned)(uintptr_t)ctx;
  depot_runtime_init();
  current[d].free(current[d].ctx, p);
}

static DepotMemAllocatorEx current[DEPOT_NDOMAINS] = {
    {(void *)0, start_malloc, start_calloc, start_realloc, start_free},
    {(void *)1, start_malloc, start_calloc, start_realloc, start_free},
    {(void *)2, start_malloc, start_calloc, start_realloc, start_free},
};

/* ---- the public functions -------------------------------------------------- */

#define DEPOT_DOMAIN_API(d, tag, Malloc, Calloc, Realloc, Free)            \
  void *Malloc(size_t n) {                                                 \
    const DepotMemAllocatorEx *a = &current[d];                            \
    if (depot_likely(a->malloc == tag##_malloc)) return depot_alloc(n, d); \
    return a->malloc(a->ctx, n);                                           \
  }                                                                        \
  void *Calloc(size_t nelem, size_t elsize) {                              \
    const DepotMemAllocatorEx *a = &current[d];                            \
    return a->calloc(a->ctx, nelem, elsize);                               \
  }                                                                        \
  void *Realloc(void *p, size_t n) {                                       \
    const DepotMemAllocatorEx *a = &current[d];                            \
    return a->realloc(a->ctx, p, n);                                       \
  }                                                                        \
  void Free(void *p) {                                                     \
    const DepotMemAllocatorEx *a = &current[d];                            \
    if (depot_likely(a->free == tag##_free)) {                             \
      depot_free(p, d);                                                    \
      return;                                                              \
    }                                                                      \
    a->free(a->ctx, p);                                                    \
  }
DEPOT_DOMAIN_API(DEPOT_DOMAIN_RAW, raw, DepotMem_RawMalloc, DepotMem_RawCalloc,
                 DepotMem_RawRealloc, DepotMem_RawFree)
DEPOT_DOMAIN_API(DEPOT_DOMAIN_MEM, mem, DepotMem_Malloc, DepotMem_Calloc,
                 DepotMem_Realloc, DepotMem_Free)
DEPOT_DOMAIN_API(DEPOT_DOMAIN_OBJ, obj, DepotObject_Malloc, DepotObject_Calloc,
                 DepotObject_Realloc, DepotObject_Free)

/* ---- the allocator table ----------------------------------------------------- */

void depot_domain_default(unsigned domain, DepotMemAllocatorEx *out) {
  *out = depot_prof_on() ? own_prof[domain] : own[domain];
}

int depot_domain_is_default(unsigned domain, const DepotMemAllocatorEx *a) {
  return (a->malloc == own[domain].malloc ||
          a->malloc == own_prof[domain].malloc) &&
         a->free == own[domain].free;
}

void depot_domain_get(unsigned domain, DepotMemAllocatorEx *out) {
  *out = current[domain];
}

void depot_domain_set(unsigned domain, const DepotMemAllocatorEx *a) {
  current[domain] = *a;
}

int DepotMem_GetAllocator(DepotMemAllocatorDomain domain,
                          DepotMemAllocatorEx *allocator) {
  if ((unsigned)domain >= DEPOT_NDOMAINS || !allocator) {
    errno = EINVAL;
    return -1;
  }
  depot_runtime_init();
  depot_domain_get(domain, allocator);
  return 0;
}

int DepotMem_SetAllocator(DepotMemAllocatorDomain domain,
                          const DepotMemAllocatorEx *allocator) {
  if ((unsigned)domain >= DEPOT_NDOMAINS || !allocator || !allocator->malloc ||
      !allocator->calloc || !allocator->realloc || !allocator->free) {
    errno = EINVAL;
    return -1;
  }
  depot_runtime_init();
  depot_domain_set(domain, allocator);
  return 0;
}

/* ---- DEPOTMALLOC=malloc: the C library behind every domain ---------------- */

static void *libc_malloc(void *ctx, size_t n) {
  (void)ctx;
  return malloc(n ? n : 1);
}
static void *libc_calloc(void *ctx, size_t nelem, size_t elsize) {
  (void)ctx;
  if (nelem == 0 || elsize == 0) nelem = elsize = 1;
  return calloc(nelem, elsize);
}
static void *libc_realloc(void *ctx, void *p, size_t n) {
  (void)ctx;
  return realloc(p, n ? n : 1); /* never frees: n = 0 resizes to 1 byte */
}
static void libc_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

void depot_domains_use_libc(void) {
  static const DepotMemAllocatorEx libc = {NULL, libc_malloc, libc_calloc,
                                           libc_realloc, libc_free};
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++) depot_domain_set(d, &libc);
}

int DepotMem_DomainOf(const void *ptr) {
  /* The common case in one load, as free's fast path finds it: a page of
   * a small span in the heap region carries the span's list id, which
   * holds the domain (0 elsewhere, and nothing is contained before
   * start-up).  No check that ptr starts a block: that costs a division. */
  uintptr_t off = depot_region_offset((uintptr_t)ptr);
  if (depot_likely(depot_region_contains(off))) {
    unsigned li = depot_region_list_id(off);
    /* A heap's span carries a domain past the three (heap.h): not a
     * domain's block. */
    if (li != 0)
      return depot_list_domain(li) < DEPOT_NDOMAINS ? (int)depot_list_domain(li)
                                                    : -1;
  }
  /* Before start-up Depot has handed out nothing (and has no region). */
  if (!ptr || !depot_initialised()) return -1;
  int d = depot_domain_of(ptr);
  if (d >= DEPOT_NDOMAINS) return -1; /* a heap's large or huge block */
  if (d >= 0) return d;
  /* A debug block: the program holds base + 2 * sizeof(size_t) of a live
   * block of Depot's, in a domain whose hooks are on (debug.c). */
  uintptr_t a = (uintptr_t)ptr;
  if (a % DEPOT_MIN_ALIGN != 0 || a < 2 * sizeof(size_t)) return -1;
  d = depot_domain_of((const char *)ptr - 2 * sizeof(size_t));
  uint64_t ignored;
  return d >= 0 && depot_debug_requested((unsigned)d, &ignored) ? d : -1;
}

void DepotMem_Trim(void) {
  depot_runtime_init();
  depot_heap_trim(); /* heaps' spare spans (alloc/heap.h) */
  depot_trim();
}
