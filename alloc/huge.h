/* huge.h: huge blocks.  Requests above the huge threshold bypass the arenas:
 * each is its own OS mapping.  A hash table keyed by the block's address
 * (behind one mutex: huge calls are rare and costly anyway) records each
 * mapping, so that free, realloc and usable-size can recognise a huge block
 * and a stray pointer is never mistaken for one.
 *
 * Freed mappings wait in a small cache for the purge delay before they are
 * unmapped, so that a program that frees and allocates huge blocks in turn
 * does not fault its pages in again each time.
 * Growing or shrinking a huge block moves no data (mremap). */
#ifndef DEPOT_ALLOC_HUGE_H
#define DEPOT_ALLOC_HUGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A block of at least size bytes aligned to align (a power of two); NULL if
 * the OS refuses.  *dirty is how many leading bytes may hold old data (a
 * range from the cache; 0 for a fresh mapping, all zeros); *usable is its
 * usable size. */
void *depot_huge_alloc(size_t size, size_t align, unsigned domain,
                       size_t *dirty, size_t *usable);

/* Resizes the huge block p to at least size bytes (still huge), keeping its
 * contents; may move it.  Returns the block, or NULL (p unchanged). */
void *depot_huge_resize(void *p, size_t size);

/* Unmaps every cached mapping now (trim, or the OS refused memory).
 * Returns how many there were. */
size_t depot_huge_release_cache(void);

/* Unmaps the cached mappings that have waited the purge delay.  Returns 1
 * and when the next one falls due in *next_ms if any remain, else 0. */
int depot_huge_expire(uint32_t *next_ms);

/* The usable size of a huge block of size bytes: whole OS pages. */
static inline size_t depot_huge_usable(size_t size) {
  return (size + 4095) & ~(size_t)4095;
}

/* If p is a live huge block: stores its usable size and domain, returns 1. */
int depot_huge_lookup(const void *p, size_t *usable, unsigned *domain);

/* A live huge block of the given domain, or NULL (a walk of the table: a
 * heap's reset frees its huge blocks one by one with it). */
void *depot_huge_any_of(unsigned domain);
/* Unmaps the huge block p.  Returns 0 if p is not a live huge block. */
int depot_huge_free(void *p);

/* Checks the table and the cache: the count and bytes are those of the live
 * entries, every entry is reachable by probing, cached ranges are disjoint,
 * not adjacent (they are joined) and within the cache's bounds.  Takes the
 * table's lock; aborts on a violation. */
void depot_huge_check(void);

/* Fork safety (init.c): the table's lock. */
void depot_huge_prefork(void);
void depot_huge_postfork(void);

typedef struct {
  size_t blocks, bytes;        /* live huge blocks */
  size_t cached, cached_bytes; /* freed mappings waiting in the cache */
} depot_huge_stats_t;
void depot_huge_stats(depot_huge_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_HUGE_H */
