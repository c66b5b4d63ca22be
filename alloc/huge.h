/* huge.h: huge blocks.  Requests above the huge threshold bypass the arenas:
 * each is its own OS mapping, unmapped on free.  A hash table keyed by the
 * block's address (behind one mutex: huge calls make system calls anyway)
 * records each mapping, so that free, realloc and usable-size can recognise
 * a huge block and a stray pointer is never mistaken for one. */
#ifndef DEPOT_ALLOC_HUGE_H
#define DEPOT_ALLOC_HUGE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A zero-filled block of at least size bytes aligned to align (a power of
 * two); NULL if the OS refuses. */
void *depot_huge_alloc(size_t size, size_t align, unsigned domain);

/* The usable size of a huge block of size bytes: whole OS pages. */
static inline size_t depot_huge_usable(size_t size) {
  return (size + 4095) & ~(size_t)4095;
}

/* If p is a live huge block: stores its usable size and domain, returns 1. */
int depot_huge_lookup(const void *p, size_t *usable, unsigned *domain);

/* Unmaps the huge block p.  Returns 0 if p is not a live huge block. */
int depot_huge_free(void *p);

/* Fork safety (see alloc.c): the table's lock. */
void depot_huge_prefork(void);
void depot_huge_postfork(void);

typedef struct {
  size_t blocks, bytes;
} depot_huge_stats_t;
void depot_huge_stats(depot_huge_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_HUGE_H */
