/* ctl.h: the names of the run-time control interface (DepotMem_GetOption,
 * DepotMem_SetOption): every configuration key by its own name, and the
 * statistics below as "stats.<name>".  The topology tool prints both, with
 * the configuration table, as the README's reference. */
#ifndef DEPOT_RUNTIME_CTL_H
#define DEPOT_RUNTIME_CTL_H

#include "depot/depot.h"

/* X(name, value from DepotMemStats s, help) */
#define DEPOT_CTL_STATS(X)                                                  \
  X(resident_bytes, s.resident_bytes,                                       \
    "the process's resident memory (what top shows as RES)")                \
  X(os_mapped_bytes, s.os_mapped_bytes,                                     \
    "address space Depot reserved or mapped (most of it never touched)")    \
  X(held_bytes, s.held_bytes,                                               \
    "memory Depot holds from the OS: in use, cached, or free and not yet "  \
    "purged (what memory_limit bounds)")                                    \
  X(dirty_bytes, s.dirty_bytes, "free pages waiting for the purge delay")   \
  X(bytes_in_use, s.total.bytes_in_use,                                     \
    "bytes of blocks the program holds (by block size)")                    \
  X(bytes_held, s.total.bytes_held,                                         \
    "bytes of spans and mappings serving blocks")                           \
  X(blocks_in_use, s.total.blocks_in_use, "blocks the program holds")       \
  X(memory_limit_bytes, s.memory_limit_bytes,                               \
    "the memory limit in force (0: none)")                                  \
  X(memory_limit_hits, s.memory_limit_hits,                                 \
    "allocations refused with ENOMEM at the limit")                         \
  X(soft_limit_purges, s.soft_limit_purges,                                 \
    "purges forced by memory_limit_soft before growing")                    \
  X(purger_running, s.purger_running, "1 while the background purger runs") \
  X(purger_idle_reclaims, s.purger_idle_reclaims,                           \
    "times the purger found the heap idle and returned everything free")    \
  X(idle_cache_flushes, s.idle_cache_flushes,                               \
    "caches of idle threads (blocked, idle_flush_ms without a refill) "     \
    "emptied")                                                              \
  X(idle_flushed_blocks, s.idle_flushed_blocks,                             \
    "blocks those flushes gave back to the central pools")

#endif /* DEPOT_RUNTIME_CTL_H */
