/* guard.c: the guarded pool (guard.h).
 *
 *   pool: | guard | data 0 | guard | data 1 | guard | ... | data n-1 | guard |
 *
 * A slot's data area is DATA bytes (at least 16 KiB, whole OS pages); guard
 * pages are one OS page, never accessible.  A data area is accessible only
 * while its slot holds a live block.  The bytes between a block's end and
 * the next multiple of 16 (the block keeps malloc's alignment) are filled
 * with SLACK_BYTE and checked on free: an overflow the page cannot see.
 *
 * Synchronisation: pool_lock (lock 12 of alloc/README.md, takes nothing)
 * guards slot allocation, the freed-slot queue and state changes; each
 * slot's state is also an atomic, written with release after the slot's
 * fields, so that depot_guard_lookup (free, malloc_usable_size) and the
 * fault handler read a consistent slot without the lock. */
#define _GNU_SOURCE
#include "alloc/guard.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "alloc/config.h"
#include "alloc/log.h"
#include "alloc/meta.h"
#include "alloc/os.h"
#include "alloc/stacktrace.h"

#define MIN_DATA ((size_t)16 << 10)
#define STACK_MAX 24
#define SLACK_BYTE 0xAB

enum { SLOT_UNUSED = 0, SLOT_LIVE, SLOT_FREED };

typedef struct {
  _Atomic int state;
  unsigned domain;
  size_t size;     /* bytes asked for */
  uintptr_t block; /* the block's address */
  unsigned alloc_n, free_n;
  long alloc_tid, free_tid;
  void *alloc_stack[STACK_MAX];
  void *free_stack[STACK_MAX];
  uint32_t next_freed; /* queue of freed slots (pool_lock) */
} slot_t;

_Atomic int depot_guard_armed;

static depot_spin_t pool_lock;
static _Atomic uintptr_t pool_lo, pool_hi; /* [lo, hi): the whole pool */
static size_t page, data_size, stride;     /* stride = data + guard */
static slot_t *slots;                      /* guard_slots of them */
static uint32_t nslots;                    /* fixed at start-up */
static uint32_t next_unused;               /* pool_lock */
static uint32_t freed_head = UINT32_MAX,
                freed_tail = UINT32_MAX; /* pool_lock */
static struct sigaction previous_segv;

static __thread int64_t sample_left;
static __thread uint64_t rng;

static int pool_create(void);

/* The pool is mapped (address space only) and the fault handler installed
 * at start-up, so that no lock is held while either happens. */
void depot_guard_init(void) {
  depot_store_release(&depot_guard_armed, depot_options.guard_sample > 0 &&
                                              !slots && pool_create() == 0);
}

void depot_guard_prefork(void) { depot_spin_lock(&pool_lock); }
void depot_guard_postfork(void) { depot_spin_unlock(&pool_lock); }

/* ---- sampling ---------------------------------------------------------------- */

static uint64_t next_random(void) {
  if (rng == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rng = ((uint64_t)ts.tv_nsec << 20) ^ (uintptr_t)&rng ^ (uint64_t)getpid();
    rng |= 1;
  }
  rng ^= rng << 13; /* xorshift64 */
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Allocations until the next sample: uniform in [1, 2N - 1], mean N, for
 * N = guard_sample now (a run-time key: DepotMem_SetOption changes it while
 * the pool exists); N = 0 pauses sampling (INT64_MAX: never due). */
static int64_t draw(void) {
  uint64_t n = depot_config_live(DEPOT_CONF_guard_sample);
  if (n == 0) return INT64_MAX;
  return n <= 1 ? 1 : (int64_t)(1 + next_random() % (2 * n - 1));
}

/* Bumped when guard_sample changes at run time: each thread redraws its
 * countdown at its next slow path, so a new rate applies at once rather
 * than after the old countdown ran out.  Relaxed: only a hint to redraw. */
static _Atomic unsigned rate_gen;
static __thread unsigned seen_gen;

void depot_guard_rate_changed(void) {
  atomic_fetch_add_explicit(&rate_gen, 1, memory_order_relaxed);
}

int depot_guard_due(void) {
  unsigned g = atomic_load_explicit(&rate_gen, memory_order_relaxed);
  if (rng == 0 || g != seen_gen) {
    seen_gen = g;
    sample_left = draw();
  }
  if (--sample_left > 0) return 0;
  sample_left = draw();
  return 1;
}

void depot_guard_count(unsigned n) { sample_left -= n; }

/* ---- the pool ---------------------------------------------------------------- */

static void on_segv(int sig, siginfo_t *si, void *uc);

/* Maps the pool and installs the fault handler (start-up). */
static int pool_create(void) {
  page = (size_t)sysconf(_SC_PAGESIZE);
  data_size = (MIN_DATA + page - 1) & ~(page - 1);
  stride = data_size + page;
  nslots = depot_options.guard_slots;
  size_t bytes = (size_t)nslots * stride + page;
  void *base;
  slots = depot_meta_alloc((size_t)nslots * sizeof(slot_t));
  if (!slots || depot_os_reserve(bytes, page, &base) != 0) return -1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previous_segv);
  depot_store_release(&pool_hi, (uintptr_t)base + bytes);
  depot_store_release(&pool_lo, (uintptr_t)base);
  return 0;
}

static uintptr_t data_of(uint32_t i) {
  return depot_load_relaxed(&pool_lo) + page + (uintptr_t)i * stride;
}

static long thread_id(void) { return (long)syscall(SYS_gettid); }

void *depot_guard_alloc(size_t size, unsigned domain) {
  if (size > MIN_DATA) return NULL;
  size_t n = size ? size : 1;
  void *stack[STACK_MAX];
  unsigned depth = depot_stacktrace(stack, STACK_MAX, 2);
  uint64_t r = next_random();
  depot_spin_lock(&pool_lock);
  uint32_t i;
  if (next_unused < nslots) {
    i = next_unused++;
  } else if (freed_head != UINT32_MAX) {
    i = freed_head;
    freed_head = slots[i].next_freed;
    if (freed_head == UINT32_MAX) freed_tail = UINT32_MAX;
  } else {
    depot_spin_unlock(&pool_lock); /* full: no sample */
    return NULL;
  }
  uintptr_t data = data_of(i);
  if (depot_os_protect((void *)data, data_size, 1) != 0) {
    /* Keep the slot unused for the next try. */
    slots[i].next_freed = UINT32_MAX;
    if (freed_tail == UINT32_MAX) freed_head = i;
    else slots[freed_tail].next_freed = i;
    freed_tail = i;
    depot_spin_unlock(&pool_lock);
    return NULL;
  }
  int left =
      depot_options.guard_underflow == DEPOT_GUARD_UNDERFLOW ||
      (depot_options.guard_underflow == DEPOT_GUARD_BOTH && (r >> 32) & 1);
  size_t rounded = (n + 15) & ~(size_t)15;
  uintptr_t p = left ? data : data + data_size - rounded;
  memset((void *)(p + n), SLACK_BYTE, rounded - n);
  slot_t *s = &slots[i];
  s->domain = domain;
  s->size = n;
  s->block = p;
  s->alloc_n = depth;
  memcpy(s->alloc_stack, stack, depth * sizeof(void *));
  s->alloc_tid = thread_id();
  s->free_n = 0;
  depot_store_release(&s->state, SLOT_LIVE);
  depot_spin_unlock(&pool_lock);
  return (void *)p;
}

int depot_guard_contains(const void *p) {
  uintptr_t a = (uintptr_t)p, lo = depot_load_acquire(&pool_lo);
  return lo && a >= lo && a < depot_load_relaxed(&pool_hi);
}

/* The slot whose data area or following guard page holds a, or -1 for the
 * pool's first guard page. */
static int64_t slot_at(uintptr_t a) {
  uintptr_t lo = depot_load_acquire(&pool_lo);
  if (a < lo + page) return -1;
  int64_t i = (int64_t)((a - lo - page) / stride);
  return i < (int64_t)nslots ? i : (int64_t)nslots - 1;
}

int depot_guard_lookup(const void *p, size_t *size, unsigned *domain) {
  int64_t i = slot_at((uintptr_t)p);
  if (i < 0) return 0;
  slot_t *s = &slots[i];
  if (depot_load_acquire(&s->state) != SLOT_LIVE || s->block != (uintptr_t)p)
    return 0;
  *size = s->size;
  *domain = s->domain;
  return 1;
}

/* ---- reports ---------------------------------------------------------------- */

static void print_stack(const char *what, long tid, void *const *stack,
                        unsigned n) {
  depot_say("  %s by thread %ld:", what, tid);
  /* Depot's own innermost frames (hidden functions, so no symbol of its
   * object names them) are left out: the stack starts at the entry point
   * the program called (malloc, free, ...). */
  Dl_info self;
  unsigned first = 0;
  if (dladdr((void *)depot_stacktrace, &self))
    for (; first + 1 < n; first++) {
      Dl_info info;
      if (!dladdr((char *)stack[first] - 1, &info) ||
          info.dli_fbase != self.dli_fbase || info.dli_sname)
        break;
    }
  stack += first;
  n -= first;
  for (unsigned k = 0; k < n; k++) {
    Dl_info info;
    uintptr_t a = (uintptr_t)stack[k];
    /* a is a return address: a - 1 is in the calling instruction. */
    if (dladdr((void *)(a - 1), &info) && info.dli_fname) {
      uintptr_t obj_off = a - (uintptr_t)info.dli_fbase;
      if (info.dli_sname)
        depot_say("    #%u 0x%lx in %s+0x%lx (%s+0x%lx)", k, (unsigned long)a,
                  info.dli_sname,
                  (unsigned long)(a - (uintptr_t)info.dli_saddr),
                  info.dli_fname, (unsigned long)obj_off);
      else
        depot_say("    #%u 0x%lx (%s+0x%lx)", k, (unsigned long)a,
                  info.dli_fname, (unsigned long)obj_off);
    } else {
      depot_say("    #%u 0x%lx", k, (unsigned long)a);
    }
  }
  if (n == 0) depot_say("    (no stack)");
}

static void report(const char *kind, const char *access, uintptr_t addr,
                   const slot_t *s, void *const *here, unsigned here_n) {
  char where[128];
  uintptr_t b = s->block, e = b + s->size;
  if (addr >= e)
    snprintf(where, sizeof where, "%lu bytes after the end of",
             (unsigned long)(addr - e));
  else if (addr < b)
    snprintf(where, sizeof where, "%lu bytes before",
             (unsigned long)(b - addr));
  else
    snprintf(where, sizeof where, "at offset %lu in",
             (unsigned long)(addr - b));
  depot_say(
      "depot: guarded pool: %s: %s%s0x%lx, %s the %zu-byte block at 0x%lx "
      "(domain '%s')",
      kind, access, *access ? " at " : "", (unsigned long)addr, where, s->size,
      (unsigned long)b, depot_domain_name(s->domain));
  if (here)
    print_stack(*access ? "accessed" : "called", thread_id(), here, here_n);
  print_stack("allocated", s->alloc_tid, s->alloc_stack, s->alloc_n);
  if (s->free_n) print_stack("freed", s->free_tid, s->free_stack, s->free_n);
}

static __attribute__((noreturn)) void die(void) {
  signal(SIGABRT, SIG_DFL);
  abort();
}

void depot_guard_bad_free(const char *op, const void *p) {
  void *stack[STACK_MAX];
  unsigned n = depot_stacktrace(stack, STACK_MAX, 1);
  int64_t i = slot_at((uintptr_t)p);
  const slot_t *s = i >= 0 ? &slots[i] : NULL;
  int st = s ? depot_load_acquire(&s->state) : SLOT_UNUSED;
  if (st == SLOT_UNUSED) {
    depot_say("depot: guarded pool: invalid-free: %s(0x%lx): no block there",
              op, (unsigned long)(uintptr_t)p);
    print_stack("called", thread_id(), stack, n);
  } else {
    int twice = st == SLOT_FREED && s->block == (uintptr_t)p;
    char kind[64];
    snprintf(kind, sizeof kind, "%s in %s()",
             twice ? "double-free" : "invalid-free", op);
    report(kind, "", (uintptr_t)p, s, stack, n);
  }
  die();
}

void depot_guard_free(void *p) {
  void *stack[STACK_MAX];
  unsigned depth = depot_stacktrace(stack, STACK_MAX, 2);
  uintptr_t a = (uintptr_t)p;
  depot_spin_lock(&pool_lock);
  int64_t i = slot_at(a);
  slot_t *s = &slots[i];
  if (depot_load_relaxed(&s->state) != SLOT_LIVE || s->block != a) {
    depot_spin_unlock(&pool_lock); /* freed by another thread meanwhile */
    depot_guard_bad_free("free", p);
  }
  size_t rounded = (s->size + 15) & ~(size_t)15;
  for (size_t k = s->size; k < rounded; k++) {
    unsigned char c = ((unsigned char *)p)[k];
    if (c != SLACK_BYTE) {
      depot_spin_unlock(&pool_lock);
      char kind[96];
      snprintf(kind, sizeof kind,
               "heap-buffer-overflow (found on free: 0x%02x "
               "written)",
               c);
      report(kind, "", a + k, s, stack, depth);
      die();
    }
  }
  s->free_n = depth;
  memcpy(s->free_stack, stack, depth * sizeof(void *));
  s->free_tid = thread_id();
  depot_os_protect((void *)data_of((uint32_t)i), data_size, 0);
  depot_store_release(&s->state, SLOT_FREED);
  s->next_freed = UINT32_MAX;
  if (freed_tail == UINT32_MAX) freed_head = (uint32_t)i;
  else slots[freed_tail].next_freed = (uint32_t)i;
  freed_tail = (uint32_t)i;
  depot_spin_unlock(&pool_lock);
}

/* ---- the fault handler -------------------------------------------------------
 * A fault inside the pool is reported and then ends the process as the
 * fault would have: the default action is restored and the handler returns,
 * so the access faults again.  Any other fault goes to the handler the
 * program had installed before, or to the default action. */
static void on_segv(int sig, siginfo_t *si, void *uc) {
  uintptr_t a = (uintptr_t)si->si_addr;
  if (si->si_code > 0 && depot_guard_contains((void *)a)) {
    const char *access = "";
#ifdef REG_ERR
    access =
        ((ucontext_t *)uc)->uc_mcontext.gregs[REG_ERR] & 2 ? "WRITE" : "READ";
#endif
    int64_t i = slot_at(a);
    /* The block nearest the address: this slot's, or (in the guard page
     * after this slot's data) the next slot's if it is closer. */
    const slot_t *s = i >= 0 ? &slots[i] : NULL;
    if (i + 1 < (int64_t)nslots &&
        (s == NULL || depot_load_acquire(&s->state) == SLOT_UNUSED ||
         (a >= data_of((uint32_t)i) + data_size &&
          depot_load_acquire(&slots[i + 1].state) == SLOT_LIVE &&
          slots[i + 1].block - a < a - (s->block + s->size))))
      s = &slots[i + 1];
    int st = s ? depot_load_acquire(&s->state) : SLOT_UNUSED;
    void *stack[STACK_MAX];
    unsigned n = depot_stacktrace(stack, STACK_MAX, 1);
    if (st == SLOT_UNUSED) {
      depot_say("depot: guarded pool: wild access at 0x%lx (no block near it)",
                (unsigned long)a);
    } else {
      const char *kind = st == SLOT_FREED          ? "use-after-free"
                         : a >= s->block + s->size ? "heap-buffer-overflow"
                                                   : "heap-buffer-underflow";
      report(kind, access, a, s, stack, n);
    }
    signal(SIGSEGV, SIG_DFL);
    return;
  }
  if (previous_segv.sa_flags & SA_SIGINFO) {
    previous_segv.sa_sigaction(sig, si, uc);
  } else if (previous_segv.sa_handler != SIG_DFL &&
             previous_segv.sa_handler != SIG_IGN) {
    previous_segv.sa_handler(sig);
  } else {
    signal(SIGSEGV, SIG_DFL);
    if (si->si_code <= 0) raise(SIGSEGV); /* sent, not a fault */
  }
}
