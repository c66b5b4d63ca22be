/* probe.h: test-only views into the allocator core's internals, as plain C
 * functions that the C++ tests can call (the core's own headers use C11
 * atomics, which C++17 cannot include). */
#ifndef DEPOT_TESTS_PROBE_H
#define DEPOT_TESTS_PROBE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Pages a segment can hand out (a whole segment less its header). */
size_t probe_span_max_pages(void);
size_t probe_page_size(void);

/* depot_usable_size_fast(p), the fast path of malloc_usable_size. */
size_t probe_usable_size_fast(const void *p);
/* DEPOT_CHECK_LEVEL of the core's build. */
int probe_check_level(void);

/* The calling thread's cache: bytes held in its bins, the sum of its limits,
 * and its budget (all 0 if the thread has no cache). */
size_t probe_tcache_held_bytes(void);
size_t probe_tcache_limit_bytes(void);
size_t probe_tcache_budget(void);

/* A private arena for unit tests of the page arena. */
typedef struct probe_arena probe_arena_t;
probe_arena_t *probe_arena_new(void);
/* Start address of a new span of npages aligned to align_pages, or NULL. */
void *probe_arena_alloc(probe_arena_t *a, size_t npages, size_t align_pages);
/* Frees the span starting at p. */
void probe_arena_free(probe_arena_t *a, void *p);
void probe_arena_purge(probe_arena_t *a);
/* Statistics and the number of free spans in the arena's bins. */
void probe_arena_stats(probe_arena_t *a, size_t *segments, size_t *free_pages,
                       size_t *dirty_pages, size_t *free_spans);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_TESTS_PROBE_H */
