/* os.c: the Linux implementation of the OS layer (os.h). */
#define _GNU_SOURCE
#include "alloc/os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc/common.h"

/* For depot_os_atfork: the C library's registration (glibc) and this
 * object's DSO handle (crtbegin's), both possibly absent. */
extern int __register_atfork(void (*)(void), void (*)(void), void (*)(void),
                             void *) __attribute__((weak));
extern void *__dso_handle __attribute__((weak, visibility("hidden")));

int depot_os_atfork(void (*prepare)(void), void (*parent)(void),
                    void (*child)(void)) {
  if (__register_atfork)
    return __register_atfork(prepare, parent, child,
                             &__dso_handle ? __dso_handle : NULL);
  return pthread_atfork(prepare, parent, child);
}

/* Fault injection knobs and counters.  Relaxed throughout: they are test
 * knobs, not synchronisation. */
static _Atomic unsigned os_fail_budget;    /* calls left to fail */
static _Atomic unsigned os_fail_every;     /* fail every nth call; 0: off */
static _Atomic uint64_t os_fail_threshold; /* fail if hash < this; 0: off */
static _Atomic uint64_t os_calls;          /* calls seen while injecting */
static _Atomic unsigned long os_failures;  /* failures injected */
/* Statistics only; relaxed. */
static _Atomic size_t os_mapped;

void depot_os_fail_next(unsigned n) { depot_store_relaxed(&os_fail_budget, n); }
void depot_os_fail_every(unsigned n) { depot_store_relaxed(&os_fail_every, n); }
void depot_os_fail_rate(double rate) {
  uint64_t t = rate <= 0   ? 0
               : rate >= 1 ? UINT64_MAX
                           : (uint64_t)(rate * 18446744073709551615.0);
  depot_store_relaxed(&os_fail_threshold, t);
}
unsigned long depot_os_failures_injected(void) {
  return depot_load_relaxed(&os_failures);
}

size_t depot_os_mapped_bytes(void) { return depot_load_relaxed(&os_mapped); }

void depot_os_account_remap(size_t old_size, size_t new_size) {
  depot_add_relaxed(&os_mapped, new_size);
  depot_sub_relaxed(&os_mapped, old_size);
}

/* A well-mixed 64-bit hash (the finaliser of splitmix64). */
static uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Whether this call fails by injection (consuming a pending one). */
static int os_injected_failure(void) {
  int fail = 0;
  unsigned n = depot_load_relaxed(&os_fail_budget);
  while (n > 0 && !fail)
    fail = atomic_compare_exchange_weak_explicit(
        &os_fail_budget, &n, n - 1, memory_order_relaxed, memory_order_relaxed);
  unsigned every = depot_load_relaxed(&os_fail_every);
  uint64_t threshold = depot_load_relaxed(&os_fail_threshold);
  if (!fail && (every || threshold)) {
    uint64_t call = depot_add_relaxed(&os_calls, 1) + 1;
    fail =
        (every && call % every == 0) || (threshold && mix64(call) < threshold);
  }
  if (fail) depot_add_relaxed(&os_failures, 1);
  return fail;
}

static int os_mmap_aligned(size_t size, size_t align, int prot, int flags,
                           void **out) {
  if (size == 0 || !depot_is_pow2(align) || size + align < size) return EINVAL;
  if (os_injected_failure()) return ENOMEM;
  flags |= MAP_PRIVATE | MAP_ANONYMOUS;
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
  return os_mmap_aligned(size, align, PROT_NONE, MAP_NORESERVE, out);
}

int depot_os_map(size_t size, size_t align, void **out) {
  return os_mmap_aligned(size, align, PROT_READ | PROT_WRITE, MAP_NORESERVE,
                         out);
}

int depot_os_map_blocks(size_t size, size_t align, void **out) {
  return os_mmap_aligned(size, align, PROT_READ | PROT_WRITE, 0, out);
}

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000 /* Linux 4.17; older kernels ignore it */
#endif

int depot_os_map_at(void *p, size_t size) {
  if (os_injected_failure()) return ENOMEM;
  void *r = mmap(p, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (r == MAP_FAILED) return errno == ENOMEM ? ENOMEM : EEXIST;
  if (r != p) { /* taken as a hint: the range was not free */
    munmap(r, size);
    return EEXIST;
  }
  depot_add_relaxed(&os_mapped, size);
  return 0;
}

int depot_os_commit_mapped(void) { return os_injected_failure() ? ENOMEM : 0; }

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

void depot_spin_wait(depot_spin_t *l) {
  while (atomic_exchange_explicit(l, 1, memory_order_acquire)) sched_yield();
}

int depot_os_protect(void *p, size_t size, int rw) {
  if (!rw) (void)madvise(p, size, MADV_DONTNEED); /* best effort */
  return mprotect(p, size, rw ? PROT_READ | PROT_WRITE : PROT_NONE) ? errno : 0;
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

uint32_t depot_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint32_t)((uint64_t)ts.tv_sec * 1000u +
                    (uint64_t)ts.tv_nsec / 1000000u);
}

int depot_os_thp(void *p, size_t size, int mode) {
  if (mode == 0) return 0;
  return madvise(p, size, mode == 1 ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0
             ? 0
             : errno;
}

void depot_os_wait(_Atomic uint32_t *word, uint32_t expected, uint32_t ms) {
  struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected,
          ms == UINT32_MAX ? NULL : &ts, NULL, 0);
}

void depot_os_wake(_Atomic uint32_t *word) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

long depot_os_read_small_file(const char *path, char *buf, size_t cap) {
  if (cap == 0) return -1;
  long fd;
  do fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return -1;
  size_t n = 0;
  while (n + 1 < cap) {
    long r = syscall(SYS_read, (int)fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  syscall(SYS_close, (int)fd);
  buf[n] = 0;
  return (long)n;
}

/* Reads /proc/self/task with getdents64 and each task's stat with read(2):
 * no allocation, no stdio, so the purger may call it at any time.  A task
 * whose state is Z (a thread that called pthread_exit, the group leader
 * included, stays listed as a zombie until the process ends) or X is not
 * live. */
int depot_os_other_live_threads(void) {
  int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  long self = syscall(SYS_gettid);
  int live = 0;
  char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0) live = -1;
      break;
    }
    for (long at = 0; at < n;) {
      /* struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name. */
      unsigned short reclen;
      memcpy(&reclen, buf + at + 16, sizeof reclen);
      const char *name = buf + at + 19;
      at += reclen;
      long tid = 0;
      size_t digits = 0;
      for (; name[digits] >= '0' && name[digits] <= '9' && digits < 19;
           digits++)
        tid = tid * 10 + (name[digits] - '0');
      if (tid <= 0 || tid == self || name[digits] != 0) continue;
      /* "<tid>/stat" beside the directory, put together by hand: snprintf
       * would bring two 64 KiB windows of the C library's printf code into
       * every process whose purger runs (128 KiB resident, measured). */
      char rel[32], stat[512];
      memcpy(rel, name, digits);
      memcpy(rel + digits, "/stat", sizeof "/stat");
      int fd = openat(dir, rel, O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT || errno == ESRCH) continue; /* gone meanwhile */
        /* Unreadable for another reason (EMFILE: no descriptor left): /proc
         * cannot tell.  Counting the task live could keep the purger of a
         * process whose last thread ended (the task a zombie) for ever;
         * counting it gone could end the purger while the program runs. */
        live = -1;
        goto out;
      }
      ssize_t r = read(fd, stat, sizeof stat - 1);
      close(fd);
      if (r <= 0) continue;
      stat[r] = 0;
      const char *paren = strrchr(stat, ')');
      char state = paren && paren[1] == ' ' ? paren[2] : '?';
      if (state != 'Z' && state != 'X') live++;
    }
  }
out:
  close(dir);
  return live;
}
