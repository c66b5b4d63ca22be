/* stats.c: the core's statistics, gathered from each layer: OS mappings,
 * metadata, arenas, pools, thread caches, large and huge blocks.  Each
 * figure is read under the lock of the structure that owns it, one
 * structure at a time, so a report never holds two locks at once and is a
 * set of per-structure snapshots, not one atomic picture. */
#include <string.h>

#include "alloc/alloc.h"
#include "alloc/arena.h"
#include "alloc/central.h"
#include "alloc/huge.h"
#include "alloc/idle.h"
#include "alloc/init.h"
#include "alloc/limit.h"
#include "alloc/meta.h"
#include "alloc/numa.h"
#include "alloc/os.h"
#include "alloc/purger.h"
#include "alloc/tcache.h"

/* Adds a node's arena statistics, over its shards, to *sum. */
static void node_arena_stats(unsigned node, depot_arena_stats_t *sum) {
  for (unsigned k = 0; k < DEPOT_ARENA_SHARDS; k++) {
    depot_arena_stats_t as;
    depot_arena_stats(depot_arenas[node][k], &as);
    sum->segments += as.segments;
    sum->free_pages += as.free_pages;
    sum->dirty_pages += as.dirty_pages;
    sum->purged_pages += as.purged_pages;
    sum->binds_ok += as.binds_ok;
    sum->binds_failed += as.binds_failed;
  }
}

void depot_core_stats(depot_core_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->os_mapped_bytes = depot_os_mapped_bytes();
  out->meta_bytes = depot_meta_bytes();
  out->held_bytes = depot_limit_held();
  out->limit_bytes = depot_limit_bytes();
  out->limit_soft_bytes = depot_limit_soft_bytes();
  out->limit_hits = depot_limit_hits();
  out->limit_reclaims = depot_limit_reclaims();
  depot_purger_stats_t ps;
  depot_purger_stats(&ps);
  out->purger_running = (size_t)ps.running;
  out->purger_wakeups = ps.wakeups;
  out->purger_idle_reclaims = ps.idle_reclaims;
  depot_idle_stats_t is;
  depot_idle_stats(&is);
  out->idle_cache_flushes = is.flushed;
  out->idle_flushed_blocks = is.blocks;
  if (!depot_initialised()) return;
  out->batch_records = depot_central_records();
  depot_arena_stats_t as = {0};
  for (unsigned n = 0; n < depot_numa_nodes(); n++) node_arena_stats(n, &as);
  out->segments = as.segments;
  out->free_pages = as.free_pages;
  out->dirty_pages = as.dirty_pages;
  out->purged_pages = as.purged_pages;
  out->binds_ok = as.binds_ok;
  out->binds_failed = as.binds_failed;
  out->nodes = depot_numa_nodes();
  depot_huge_stats_t hs;
  depot_huge_stats(&hs);
  out->huge_blocks = hs.blocks;
  out->huge_bytes = hs.bytes;
}

void depot_core_class_stats(unsigned domain, unsigned cls,
                            depot_class_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (domain >= DEPOT_NDOMAINS || cls == 0 || cls >= DEPOT_NCLASSES ||
      !depot_initialised())
    return;
  unsigned i = (domain << DEPOT_LIST_CLASS_BITS) | cls;
  for (unsigned o = 0, limit = depot_owner_limit(); o < limit; o++) {
    depot_owner_t *owner = depot_owner(o);
    if (!owner) continue;
    depot_central_stats_t cs;
    depot_central_stats(&owner->pools[i], &cs);
    out->spans += cs.spans;
    out->span_bytes += cs.span_bytes;
    out->capacity += cs.capacity;
    out->out += cs.blocks_out;
    out->stacked += cs.stacked;
    /* Other threads' frees waiting in the owner's inbox: free blocks. */
    out->cached += depot_load_relaxed(&owner->inboxed[i]);
  }
  out->cached += depot_tcache_cached_blocks(i);
}

void depot_core_big_stats(unsigned domain, depot_big_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (domain >= DEPOT_NDOMAINS) return;
  depot_big_counts(domain, &out->large_blocks, &out->large_bytes,
                   &out->huge_blocks, &out->huge_bytes);
}

int depot_core_node_stats(unsigned node, depot_node_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (!depot_initialised() || node >= depot_numa_nodes()) return -1;
  depot_arena_stats_t as = {0};
  node_arena_stats(node, &as);
  out->segments = as.segments;
  out->free_pages = as.free_pages;
  out->binds_ok = as.binds_ok;
  out->binds_failed = as.binds_failed;
  for (unsigned o = 0, limit = depot_owner_limit(); o < limit; o++) {
    depot_owner_t *owner = depot_owner(o);
    if (!owner || owner->node != node) continue;
    for (unsigned i = 0; i < DEPOT_POOLS_PER_OWNER; i++) {
      unsigned cls = depot_list_class(i);
      if (cls == 0 || cls >= DEPOT_NCLASSES) continue;
      depot_central_stats_t cs;
      depot_central_stats(&owner->pools[i], &cs);
      out->small_spans += cs.spans;
      out->blocks_out += cs.blocks_out;
    }
  }
  return 0;
}

depot_numa_policy_t depot_core_numa_policy(void) { return depot_numa_policy(); }
