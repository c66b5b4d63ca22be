/* heap_api.c: the DepotHeap_* functions of <depot/depot.h> over the core's
 * heaps (alloc/heap.h).  A DepotHeap is the core's depot_heap_t; this file
 * owns only the checks of the public structs and their conversions. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "alloc/heap.h"
#include "runtime/runtime.h"

#define CORE(h) ((depot_heap_t *)(h))

_Static_assert(sizeof(((DepotHeapStats *)0)->name) == DEPOT_HEAP_NAME_MAX,
               "a heap's name fits both structs");

DepotHeap *DepotHeap_New(const DepotHeapOptions *opts) {
  depot_heap_options_t o = {DEPOT_HEAP_NODE_ANY, 0, NULL};
  if (opts) {
    /* Older callers pass a smaller struct: every field up to name is there
     * from the first version. */
    if (opts->size < offsetof(DepotHeapOptions, name) + sizeof opts->name ||
        opts->node < DEPOT_HEAP_NODE_ANY) {
      errno = EINVAL;
      return NULL;
    }
    o.node = opts->node;
    o.limit = opts->limit_bytes;
    o.name = opts->name;
  }
  depot_runtime_init(); /* the NUMA map is installed: node numbers hold */
  return (DepotHeap *)depot_heap_new(&o);
}

void DepotHeap_Reset(DepotHeap *heap) { depot_heap_reset(CORE(heap)); }
void DepotHeap_Destroy(DepotHeap *heap) { depot_heap_destroy(CORE(heap)); }

void *DepotHeap_Malloc(DepotHeap *heap, size_t size) {
  return depot_heap_alloc(CORE(heap), size);
}
void *DepotHeap_Calloc(DepotHeap *heap, size_t nelem, size_t elsize) {
  return depot_heap_calloc(CORE(heap), nelem, elsize);
}
void *DepotHeap_Realloc(DepotHeap *heap, void *ptr, size_t new_size) {
  return depot_heap_realloc(CORE(heap), ptr, new_size);
}
void *DepotHeap_AlignedAlloc(DepotHeap *heap, size_t alignment, size_t size) {
  return depot_heap_aligned_alloc(CORE(heap), alignment, size);
}
void DepotHeap_Free(void *ptr) { depot_heap_free(ptr); }
size_t DepotHeap_UsableSize(const void *ptr) {
  return ptr ? depot_heap_usable_size(ptr) : 0;
}
DepotHeap *DepotHeap_Of(const void *ptr) {
  return (DepotHeap *)depot_heap_of(ptr);
}

const char *DepotHeap_Name(const DepotHeap *heap) {
  return heap ? CORE(heap)->name : NULL;
}

int DepotHeap_Stats(const DepotHeap *heap, DepotHeapStats *stats) {
  depot_heap_stats_t s;
  if (!stats || stats->size < sizeof *stats ||
      depot_heap_stats(CORE(heap), &s) != 0) {
    errno = EINVAL;
    return -1;
  }
  size_t size = stats->size;
  memset(stats, 0, sizeof *stats);
  stats->size = size;
  stats->blocks_in_use = s.blocks;
  stats->bytes_in_use = s.bytes;
  stats->blocks_cached = s.cached;
  stats->bytes_held = s.held;
  stats->peak_bytes_held = s.peak;
  stats->limit_bytes = s.limit;
  stats->limit_hits = s.limit_hits;
  stats->spans = s.spans;
  stats->node = s.node;
  memcpy(stats->name, s.name, sizeof stats->name);
  return 0;
}
