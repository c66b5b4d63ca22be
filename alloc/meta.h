/* meta.h: memory for the allocator's own metadata (thread caches, central
 * pools, tables).  It comes straight from the OS layer, never from Depot's
 * blocks or the C library, so it can be used while Depot is starting.
 * Metadata is never returned; callers recycle their own objects. */
#ifndef DEPOT_ALLOC_META_H
#define DEPOT_ALLOC_META_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Zeroed memory aligned to a cache line, or NULL if the OS refuses. */
void *depot_meta_alloc(size_t size);

/* Fork safety (see alloc.c): the metadata lock. */
void depot_meta_prefork(void);
void depot_meta_postfork(void);

/* Bytes handed out so far (statistics). */
size_t depot_meta_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_META_H */
