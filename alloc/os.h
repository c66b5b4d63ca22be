/* os.h: the OS layer.  Every primitive the allocator needs from the kernel,
 * each returning 0 or an errno value, never crashing on failure.
 *
 * Address space moves through four states:
 *   reserve  -> mapped PROT_NONE: address space only, touching it faults;
 *   commit   -> readable and writable (physical pages arrive on first touch);
 *   decommit -> still readable and writable, but the kernel drops the pages
 *               (madvise); the next read sees zeros;
 *   release  -> unmapped.
 * A test-only seam makes the next N reserve/commit calls fail as if the kernel
 * had refused them, so callers' out-of-memory paths can be exercised; the
 * layers above call depot_os_commit_mapped where they reuse memory, so the
 * seam fires after reuse too. */
#ifndef DEPOT_ALLOC_OS_H
#define DEPOT_ALLOC_OS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reserves size bytes aligned to align (a power of two, at least the OS page
 * size) with no access.  REQUIRES: size is a multiple of the OS page size. */
int depot_os_reserve(size_t size, size_t align, void **out);

/* Makes [p, p+size) of a reservation readable and writable. */
int depot_os_commit(void *p, size_t size);

/* Returns the physical pages of [p, p+size) to the OS; the range stays
 * accessible.  Eager (MADV_DONTNEED): the pages go at once and read back as
 * zeros.  Lazy (MADV_FREE): the kernel takes them when it needs memory, and
 * until then they may read back as they were; resident memory figures fall
 * only then. */
int depot_os_decommit(void *p, size_t size, int lazy);

/* Binds the pages of [p, p+size) to the kernel's NUMA node os_node (mbind):
 * preferred (best effort) or, with strict, required.  Call before the pages
 * are first touched. */
int depot_os_bind(void *p, size_t size, unsigned os_node, int strict);

/* Makes [p, p+size) of a mapping accessible (rw) or not (PROT_NONE), for
 * guard pages; pages made inaccessible are also given back to the OS. */
int depot_os_protect(void *p, size_t size, int rw);

/* Unmaps [p, p+size). */
int depot_os_release(void *p, size_t size);

/* Reserve and commit in one step, for metadata (tables reserved whole and
 * touched sparsely): mapped with MAP_NORESERVE, so that the kernel's
 * heuristic overcommit does not weigh the untouched part. */
int depot_os_map(size_t size, size_t align, void **out);

/* Reserve and commit in one step, for memory handed out as blocks (huge
 * blocks): an ordinary private mapping, without MAP_NORESERVE, so that the
 * kernel's overcommit policy decides as for any program's memory
 * (vm.overcommit_memory 0: a request larger than RAM + swap fails; 1: every
 * request is granted; 2: requests count against the commit limit). */
int depot_os_map_blocks(size_t size, size_t align, void **out);

/* Maps [p, p+size) readable and writable, accounted as depot_os_map_blocks,
 * only if none of it is mapped yet (MAP_FIXED_NOREPLACE).  Returns 0,
 * EEXIST when something else lives there (also on kernels before 4.17,
 * which may take p as a mere hint), or ENOMEM (out of memory, or the
 * address-space limit RLIMIT_AS reached).  REQUIRES: p and size are
 * multiples of the OS page size. */
int depot_os_map_at(void *p, size_t size);

/* Commit of memory that is accessible already: the reuse points (a free
 * span handed out again, metadata from a chunk mapped earlier, a cached
 * huge range, a thread cache, fresh or recycled).  Only the fault-injection seam applies: returns ENOMEM when a
 * failure is due, and the caller fails as if the OS had refused, changing
 * nothing. */
int depot_os_commit_mapped(void);

/* Fault injection (tests and the stress tool): calls of reserve, commit and
 * the three maps fail with ENOMEM
 *   - the next n calls (fail_next);
 *   - every nth call (fail_every; 0 stops it);
 *   - each call with probability rate (fail_rate; 0 stops it).
 * Failures injected so far: depot_os_failures_injected(). */
void depot_os_fail_next(unsigned n);
void depot_os_fail_every(unsigned n);
void depot_os_fail_rate(double rate);
unsigned long depot_os_failures_injected(void);

/* Accounts for a mapping that mremap() resized from old_size to new_size. */
void depot_os_account_remap(size_t old_size, size_t new_size);

/* Registers fork handlers, as pthread_atfork does (its error, or 0).
 * glibc's pthread_atfork is a wrapper in libc_nonshared.a that calls
 * __register_atfork with the caller's __dso_handle (so that dlclose drops
 * the handlers).  Linked into libdepot.so, the wrapper lands among the
 * unwinder's code, in a 64 KiB window that every process would fault in
 * at start-up for it alone (tools/copts.bzl, "layout"); so this makes the
 * wrapper's call itself where the C library has __register_atfork (weak),
 * and calls pthread_atfork elsewhere. */
int depot_os_atfork(void (*prepare)(void), void (*parent)(void),
                    void (*child)(void));

/* Reads a small file (of /proc or /sys) into buf, NUL-terminated: its
 * length, or -1 if it cannot be opened.  A length of cap - 1 may be a
 * truncated file.  Allocates nothing, and is no cancellation point (raw
 * system calls: program threads reach it inside malloc, through the
 * memory limit's cgroup reader and the idle-thread probe). */
long depot_os_read_small_file(const char *path, char *buf, size_t cap);

/* Threads of this process other than the caller that have not ended
 * (zombies, such as a main thread that called pthread_exit, do not count),
 * or -1 if /proc cannot tell.  Allocates nothing. */
int depot_os_other_live_threads(void);

/* A coarse monotonic clock in milliseconds, for purge delays (wraps every
 * 49 days: compare readings with depot_ms_before of common.h). */
uint32_t depot_os_now_ms(void);

/* Transparent huge pages for [p, p+size): mode 1 asks for them
 * (MADV_HUGEPAGE), 2 refuses them (MADV_NOHUGEPAGE), 0 leaves the system's
 * default. */
int depot_os_thp(void *p, size_t size, int mode);

#ifndef __cplusplus
/* Sleeps while *word == expected, at most ms milliseconds (UINT32_MAX: no
 * limit), or until depot_os_wake(word) (a futex: no lock, nothing for fork
 * to take).  Spurious returns happen. */
void depot_os_wait(_Atomic uint32_t *word, uint32_t expected, uint32_t ms);
void depot_os_wake(_Atomic uint32_t *word);
#endif

/* Bytes currently mapped through this layer (reserved or committed). */
size_t depot_os_mapped_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* DEPOT_ALLOC_OS_H */
