/* os.c: the Linux implementation of the OS layer (os.h). */
#define _GNU_SOURCE
#include "alloc/os.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc/common.h"

/* Calls left to fail.  Relaxed: it is a test knob, not a synchronisation. */
static _Atomic unsigned os_fail_budget;
/* Statistics only; relaxed. */
static _Atomic size_t os_mapped;

void depot_os_fail_next(unsigned n) { depot_store_relaxed(&os_fail_budget, n); }

size_t depot_os_mapped_bytes(void) { return depot_load_relaxed(&os_mapped); }

/* Consumes one injected failure if any is pending. */
static int os_injected_failure(void) {
  unsigned n = depot_load_relaxed(&os_fail_budget);
  while (n > 0) {
    if (atomic_compare_exchange_weak_explicit(&os_fail_budget, &n, n - 1,
                                              memory_order_relaxed,
                                              memory_order_relaxed))
      return 1;
  }
  return 0;
}

static int os_mmap_aligned(size_t size, size_t align, int prot, void **out) {
  if (size == 0 || !depot_is_pow2(align) || size + align < size) return EINVAL;
  if (os_injected_failure()) return ENOMEM;
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  /* Over-map by align, then trim both ends so the kept range is aligned. */
  size_t len = size + align;
  void *raw = mmap(NULL, len, prot, flags, -1, 0);
  if (raw == MAP_FAILED) return errno ? errno : ENOMEM;
  uintptr_t start = depot_align_up((uintptr_t)raw, align);
  size_t head = start - (uintptr_t)raw;
  size_t tail = len - head - size;
  if (head) munmap(raw, head);
  if (tail) munmap((void *)(start + size), tail);
  depot_add_relaxed(&os_mapped, size);
  *out = (void *)start;
  return 0;
}

int depot_os_reserve(size_t size, size_t align, void **out) {
  return os_mmap_aligned(size, align, PROT_NONE, out);
}

int depot_os_map(size_t size, size_t align, void **out) {
  return os_mmap_aligned(size, align, PROT_READ | PROT_WRITE, out);
}

int depot_os_commit(void *p, size_t size) {
  if (os_injected_failure()) return ENOMEM;
  return mprotect(p, size, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
}

int depot_os_decommit(void *p, size_t size, int lazy) {
#ifdef MADV_FREE
  if (lazy && madvise(p, size, MADV_FREE) == 0) return 0;
#endif
  /* MADV_FREE unsupported (kernels before 4.5): fall back to eager. */
  return madvise(p, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

int depot_os_release(void *p, size_t size) {
  if (munmap(p, size) != 0) return errno;
  depot_sub_relaxed(&os_mapped, size);
  return 0;
}

/* mbind(2) without libnuma: mode numbers from <linux/mempolicy.h>. */
#define DEPOT_MPOL_PREFERRED 1
#define DEPOT_MPOL_BIND 2
#define DEPOT_BIND_MAX_NODES 1024

int depot_os_bind(void *p, size_t size, unsigned os_node, int strict) {
  unsigned long mask[DEPOT_BIND_MAX_NODES / (8 * sizeof(unsigned long))] = {0};
  if (os_node >= DEPOT_BIND_MAX_NODES) return EINVAL;
  mask[os_node / (8 * sizeof(unsigned long))] |=
      1ul << (os_node % (8 * sizeof(unsigned long)));
  /* The kernel counts maxnode one short of the bits it reads. */
  long r = syscall(SYS_mbind, p, size,
                   strict ? DEPOT_MPOL_BIND : DEPOT_MPOL_PREFERRED, mask,
                   (unsigned long)DEPOT_BIND_MAX_NODES + 1, 0ul);
  return r == 0 ? 0 : errno;
}
