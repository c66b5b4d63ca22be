/* limit.h: memory Depot holds from the OS, and the memory limit.  Above the
 * configuration, below everything that takes memory from the OS (meta,
 * region's segments through the arenas, huge blocks).
 *
 * "Held" counts what Depot may have resident: pages of segments that are in
 * use or free but not yet purged (segment headers included), huge blocks
 * and the huge cache, metadata.  It is an upper bound: a purged page that
 * coalesces with a dirty free span counts as dirty until it is purged again
 * (charged when it joins, as growth: arena.c's free_run).
 *
 * Every growth is charged before it happens (depot_limit_charge): with
 * memory_limit set, a charge that would pass the soft limit fails, so that
 * the caller (alloc.c) can purge everything and retry with the hard limit
 * allowed; one that would pass the hard limit fails for good.  So the held
 * figure never exceeds the hard limit through growth.
 *
 * Synchronisation: the counters are atomics (held is changed by a CAS so
 * that two threads cannot both pass the limit); the cgroup's figure is
 * refreshed by one thread at a time (a CAS on its time stamp). */
#ifndef DEPOT_ALLOC_LIMIT_H
#define DEPOT_ALLOC_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Charges bytes of growth.  Returns 0, or ENOMEM (nothing charged) when it
 * would pass the soft limit (the hard one while this thread has set
 * depot_limit_allow_hard). */
int depot_limit_charge(size_t bytes);
/* Growth that is never refused (metadata), and memory given back. */
void depot_limit_grow(size_t bytes);
void depot_limit_shrink(size_t bytes);
/* While set, this thread's charges may go up to the hard limit. */
void depot_limit_allow_hard(int on);

/* Bytes held now. */
size_t depot_limit_held(void);
/* The hard limit in force (0: none) and the soft one. */
uint64_t depot_limit_bytes(void);
uint64_t depot_limit_soft_bytes(void);
/* Whether a limit is set at all (cheap). */
int depot_limit_active(void);

/* Statistics: allocations refused at the hard limit, and purges forced by
 * the soft one. */
void depot_limit_count_hit(void);
void depot_limit_count_reclaim(void);
uint64_t depot_limit_hits(void);
uint64_t depot_limit_reclaims(void);

/* Re-reads the control group's limit if memory_limit=cgroup and the last
 * reading is older than DEPOT_CGROUP_REFRESH_MS (or force). */
#define DEPOT_CGROUP_REFRESH_MS 5000u
void depot_limit_refresh(int force);
/* The control group's limit before the margin (UINT64_MAX: none found). */
uint64_t depot_limit_cgroup_raw(void);

/* The memory limit of the control group the process is in, read from
 * self_cgroup (the format of /proc/self/cgroup) and the cgroup file systems
 * mounted at mount (e.g. /sys/fs/cgroup): for cgroup v1, memory.limit_in_bytes
 * under mount/memory; for v2, the smaller of memory.max and memory.high;
 * the smallest over the group and its ancestors.  Returns 0 and the limit
 * (UINT64_MAX when every level is unlimited), or ENOENT when the process's
 * group or every file is unreadable.  Files that hold garbage count as
 * unlimited.  Allocates nothing. */
int depot_cgroup_limit(const char *self_cgroup, const char *mount,
                       uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_LIMIT_H */
