/* idle.c: flushing idle threads' caches (see idle.h).  Owns the protocol
 * between a cache's owner and a flusher (the purger, or a thread at the
 * soft memory limit), the owner's record of its own cache (a thread-local
 * pointer that a flusher never swaps), and the /proc readers it needs.
 *
 * Why a flush is safe.  Let T own cache C, and F be the flusher (it holds
 * the registry lock throughout, so flushers are serialised and T cannot
 * finish exiting: its thread-local slot stays valid).
 *
 *  1. Where T keeps C.  A fast path loads C from T's slot and is straight
 *     code: no call, no system call.  A slow path obtains C only through
 *     depot_thread_cache (or depot_idle_parked), which sets C->in_slow first,
 *     and clears it (depot_idle_leave) once it no longer holds C; a slow
 *     path may make system calls (locks, mmap) while it holds C.
 *  2. F parks C: park ACTIVE -> PARKED, then a CAS of T's slot from C to
 *     depot_tcache_empty.  Every load of the slot by T that follows the
 *     CAS reads the placeholder (T's stores to the slot come only from its
 *     own slow paths, which do not store C back while PARKED is set without
 *     first making the park word ACTIVE again, see 5).
 *  3. After the CAS, F reads /proc/<T>/syscall and finds T blocked inside
 *     a system call: the kernel answers that only once T is off its CPU,
 *     and T got there through a syscall instruction.  No fast path contains
 *     one, so a fast path on C that had loaded C before the CAS has ended,
 *     and a later one loads the placeholder (2).  T's stores made before it
 *     blocked are visible to F (the kernel's switch away from T is a full
 *     barrier, and reading the file takes T's run-queue lock), so
 *     in_slow == 0, read by F afterwards, says that T was not inside a slow
 *     path holding C when it blocked.  Hence T holds C nowhere: it can only
 *     reach C again through depot_idle_parked.
 *  4. Independently, F compares T's context switches (/proc status,
 *     voluntary + involuntary) read after T was seen blocked before the CAS
 *     with those read after T is seen blocked after it: equal counts mean T
 *     stayed off the CPU, in the same system call, across the CAS.  Either
 *     argument alone suffices; F requires both.
 *  5. F then moves park PARKED -> FLUSHING (a CAS, so that it loses to an
 *     owner who took C back meanwhile), empties the bins into the central
 *     pools, and stores PARKED with release.  T's slow path, finding the
 *     placeholder, moves park PARKED -> ACTIVE (acquire: it sees the flush),
 *     waits on the futex while it reads FLUSHING, and only then stores C
 *     into its slot.  If a check of 3 or 4 fails, F leaves C parked with
 *     its bins untouched (and tries again later while T stays blocked); T
 *     takes it back as it is.  While C is flushed, T's heap is marked
 *     parked, so that other threads' frees of its blocks go back to its
 *     spans instead of waiting in its inbox (park_heap); T clears the mark
 *     when it takes C back.
 *
 * The hole left: a signal handler that interrupts a fast path and then
 * blocks in a system call (a stop-the-world handler waiting in sigsuspend)
 * looks like 3.  While a handler runs, its signal is blocked (unless it was
 * installed with SA_NODEFER), so F refuses a thread that blocks a caught
 * signal it did not block when its cache was created or since.  A wait
 * that installs a signal mask of its own (sigsuspend, ppoll, pselect,
 * epoll_pwait with a mask) shows that mask instead, in which the handler's
 * signal may be unblocked: F refuses a thread in such a wait (masked_wait).
 * A handler installed with SA_NODEFER, or whose signal the thread blocked
 * when its cache was created and at each idle-bin pass since (sigmask0,
 * tcache.h), interrupting a fast path and blocking for longer than
 * idle_flush_ms, is not detected.
 *
 * Fork: a child's listed caches of threads that did not come along keep
 * their parents' thread ids, which the child could see again on threads of
 * its own; depot_idle_forked clears them (tid 0), and the flusher recycles
 * such caches without asking /proc anything.  Until then their owner heaps
 * have no thread to drain their inboxes: depot_idle_forked marks them
 * parked, so what the child frees of their blocks goes back to their spans
 * as it is posted (the recycling parks them properly). */
#define _GNU_SOURCE
#include "alloc/idle.h"

#ifdef DEPOT_TSAN
#include <dlfcn.h> /* in_sanitizer */
#include <elf.h>
#endif
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc/arena.h"
#include "alloc/central.h"
#include "alloc/common.h"
#include "alloc/config.h"
#include "alloc/os.h"

/* The calling thread's own cache, whatever its slot holds; written only by
 * the thread itself.  A global (hidden) symbol, as depot_tls is: a
 * static one with initial-exec TLS was given the wrong offset by the
 * linker of the unoptimised shared library. */
extern __thread depot_tcache_t *depot_idle_owned depot_hidden
    __attribute__((tls_model(DEPOT_TLS_MODEL)));
__thread depot_tcache_t *depot_idle_owned
    __attribute__((tls_model(DEPOT_TLS_MODEL)));

static _Atomic uint64_t n_parked, n_flushed, n_blocks, n_refused, n_orphans;

/* ---- the owner's side ---------------------------------------------------- */

/* A cache became active: the purger must not sleep for good while it may
 * fill and go idle.  The purger says it sleeps (depot_purge_asleep) before
 * it looks at the caches one last time; the owner made its cache ACTIVE (a
 * CAS, or listing it under the registry lock) before this fence and the
 * ring's look at asleep: one of the two sees the other. */
static void ring(void) {
  if (depot_config_live(DEPOT_CONF_idle_flush_ms) == 0) return;
  atomic_thread_fence(memory_order_seq_cst);
  depot_purge_ring();
}

void depot_idle_leave(void) {
  depot_tcache_t *tc = depot_idle_owned;
  if (tc) depot_store_release(&tc->in_slow, 0);
}

/* The owner's side of the park word: waits out a flush in progress, then
 * moves PARKED (or ACTIVE already) to ACTIVE; the acquire pairs with the
 * flusher's release of FLUSHING, so the flushed bins are seen. */
static void reclaim_from_flusher(depot_tcache_t *tc) {
  for (;;) {
    uint32_t s = depot_load_acquire(&tc->park);
    if (s == DEPOT_PARK_FLUSHING) {
      depot_os_wait(&tc->park, s, UINT32_MAX);
      continue;
    }
    /* ACTIVE: a flusher set PARKED and undid it (its swap of the slot
     * failed), or never parked it. */
    if (s == DEPOT_PARK_ACTIVE ||
        atomic_compare_exchange_strong(&tc->park, &s, DEPOT_PARK_ACTIVE))
      break;
  }
  depot_tsan_acquire(tc);
  if (tc->heap_parked) {
    /* From here other threads' frees of this heap's blocks wait in its
     * inbox for this thread again (depot_inbox_post), as when a thread
     * takes a parked heap (depot_owner_take): sequentially consistent. */
    tc->heap_parked = 0;
    atomic_store_explicit(&tc->owner->parked, 0, memory_order_seq_cst);
  }
}

depot_tcache_t *depot_idle_parked(void) {
  depot_tcache_t *tc = depot_idle_owned;
  if (!tc) return NULL;
  depot_store_relaxed(&tc->in_slow, 1);
  reclaim_from_flusher(tc);
  depot_idle_enter(tc);
  __atomic_store_n(tc->tls_slot, tc, __ATOMIC_RELEASE);
  ring();
  return tc;
}

void depot_idle_created(depot_tcache_t *tc) {
  depot_idle_owned = tc;
  ring();
}

void depot_idle_exiting(depot_tcache_t *tc) {
  depot_store_relaxed(&tc->in_slow, 1);
  /* From now on no flusher can swap the slot (its CAS expects tc). */
  __atomic_store_n(tc->tls_slot, &depot_tcache_dead, __ATOMIC_SEQ_CST);
  reclaim_from_flusher(tc);
  depot_idle_owned = NULL;
}

void depot_idle_forked(int32_t forker) {
  depot_tcache_t *mine = depot_idle_owned;
  /* A fork from a signal handler can catch this thread between listing its
   * new cache and owning it (init.c): the cache with the forking thread's
   * id is its own then. */
  if (!mine)
    for (depot_tcache_t *tc = depot_tcache_live(); tc && !mine;
         tc = tc->next_live)
      if (tc->tid == forker) mine = tc;
  if (mine) mine->tid = (int32_t)syscall(SYS_gettid);
  for (depot_tcache_t *tc = depot_tcache_live(); tc; tc = tc->next_live)
    if (tc != mine) {
      tc->tid = 0;
      tc->tls_slot = NULL;
      /* Single-threaded here: no post to order against.  The heap is
       * still the orphan's (not on a parked list) until its destroy. */
      if (tc->owner) depot_store_relaxed(&tc->owner->parked, 1);
    }
}

/* ---- /proc ------------------------------------------------------------------
 * Through depot_os_read_small_file: no allocation, no stdio, and no
 * cancellation point (a thread at the soft limit runs this inside malloc). */

/* Reads /proc/self/task/<tid>/<name> into buf, NUL-terminated; returns its
 * length, or -1. */
static int read_task_file(int32_t tid, const char *name, char *buf, int size) {
  char path[64] = "/proc/self/task/";
  char digits[12];
  size_t at = strlen(path);
  int n = 0;
  uint32_t t = (uint32_t)tid;
  do digits[n++] = (char)('0' + t % 10);
  while ((t /= 10) != 0);
  while (n) path[at++] = digits[--n];
  path[at++] = '/';
  if (at + strlen(name) + 1 > sizeof path) return -1;
  strcpy(path + at, name);
  return (int)depot_os_read_small_file(path, buf, (size_t)size);
}

#ifdef DEPOT_TSAN
/* ThreadSanitizer's builds break argument 3 at the top: its run-time,
 * called by the instrumented fast paths on every access, has locks of its
 * own and waits for them with raw futex calls, so an owner can be blocked
 * in a system call in the middle of a fast path (seen: a flush while the
 * owner was between two reads of its outbox).  There the flusher also
 * refuses a thread whose system call returns into the run-time's own code:
 * the executable segments of the object that holds __tsan_acquire, read
 * once from its program headers (dladdr gives where it is loaded). */
static int in_sanitizer(uintptr_t pc) {
  static uintptr_t lo[4], hi[4];
  static _Atomic int state; /* 0 unknown, 1 known; the registry lock orders */
  if (!depot_load_acquire(&state)) {
    Dl_info info;
    unsigned n = 0;
    if (dladdr((void *)&__tsan_acquire, &info) && info.dli_fbase) {
      uintptr_t base = (uintptr_t)info.dli_fbase;
      const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
      const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
      for (unsigned i = 0; i < eh->e_phnum && n < 4; i++)
        if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X)) {
          lo[n] = base + ph[i].p_vaddr;
          hi[n++] = base + ph[i].p_vaddr + ph[i].p_memsz;
        }
    }
    if (n == 0) lo[0] = 0, hi[0] = UINTPTR_MAX; /* not found: refuse all */
    depot_store_release(&state, 1);
  }
  for (unsigned i = 0; i < 4; i++)
    if (pc >= lo[i] && pc < hi[i]) return 1;
  return 0;
}

/* The user-mode address the system call in buf (/proc's "syscall" line:
 * number, six arguments, stack pointer, program counter) returns to. */
static uintptr_t syscall_pc(const char *buf) {
  const char *last = strrchr(buf, ' ');
  if (!last || last[1] != '0' || last[2] != 'x') return 0;
  uintptr_t pc = 0;
  for (const char *c = last + 3;; c++) {
    if (*c >= '0' && *c <= '9') pc = pc * 16 + (uintptr_t)(*c - '0');
    else if (*c >= 'a' && *c <= 'f') pc = pc * 16 + (uintptr_t)(*c - 'a' + 10);
    else break;
  }
  return pc;
}
#endif

/* Argument k (1 to 6) of the system call in buf (/proc's "syscall" line),
 * or UINTPTR_MAX where the line is cut short. */
static uintptr_t syscall_arg(const char *buf, unsigned k) {
  const char *c = buf;
  for (unsigned f = 0; f < k; f++) {
    c = strchr(c, ' ');
    if (!c) return UINTPTR_MAX;
    c++;
  }
  if (c[0] != '0' || c[1] != 'x') return UINTPTR_MAX;
  uintptr_t v = 0;
  for (c += 2;; c++) {
    if (*c >= '0' && *c <= '9') v = v * 16 + (uintptr_t)(*c - '0');
    else if (*c >= 'a' && *c <= 'f') v = v * 16 + (uintptr_t)(*c - 'a' + 10);
    else return v;
  }
}

/* Whether system call nr, with the arguments in buf, waits under a signal
 * mask of its caller's choosing: while it waits, the kernel reports that
 * mask as the thread's (SigBlk), not the one it restores after, so a
 * signal handler waiting in it (a stop-the-world handler in sigsuspend)
 * can look like a thread with no handler running (quiet's check).  Such a
 * wait is never taken for an idle one.  The mask is argument 1 of
 * rt_sigsuspend, 4 of ppoll, 5 of epoll_pwait(2), and behind argument 6
 * of pselect6 and io_pgetevents (any non-null pointer counts). */
static int masked_wait(long nr, const char *buf) {
  unsigned k = 0;
  if (nr == SYS_rt_sigsuspend) return 1;
  if (nr == SYS_ppoll) k = 4;
  if (nr == SYS_epoll_pwait) k = 5;
  if (nr == SYS_pselect6) k = 6;
#ifdef SYS_epoll_pwait2
  if (nr == SYS_epoll_pwait2) k = 5;
#endif
#ifdef SYS_io_pgetevents
  if (nr == SYS_io_pgetevents) k = 6;
#endif
  return k && syscall_arg(buf, k) != 0;
}

/* The system call tid is blocked in, or -1: running ("running"), blocked
 * outside a system call (a page fault: "-1 ..."), gone, or no such file
 * (or, in ThreadSanitizer's builds, blocked inside its run-time), or a
 * wait under a signal mask of its own (masked_wait). */
static long blocked_syscall(int32_t tid) {
  char buf[256];
  if (read_task_file(tid, "syscall", buf, sizeof buf) <= 0) return -1;
  if (buf[0] < '0' || buf[0] > '9') return -1;
#ifdef DEPOT_TSAN
  if (in_sanitizer(syscall_pc(buf))) return -1;
#endif
  long nr = 0;
  for (const char *c = buf; *c >= '0' && *c <= '9' && nr < 1000000; c++)
    nr = nr * 10 + (*c - '0');
  return masked_wait(nr, buf) ? -1 : nr;
}

/* The number after "key:" at the start of a line of text, in base 10 or 16;
 * -1 when absent. */
static int field(const char *text, const char *key, int base, uint64_t *out) {
  size_t k = strlen(key);
  for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l) {
    if (strncmp(l, key, k) != 0 || l[k] != ':') continue;
    const char *c = l + k + 1;
    while (*c == ' ' || *c == '\t') c++;
    uint64_t v = 0;
    int digits = 0;
    for (;; c++, digits++) {
      unsigned d;
      if (*c >= '0' && *c <= '9') d = (unsigned)(*c - '0');
      else if (base == 16 && *c >= 'a' && *c <= 'f')
        d = (unsigned)(*c - 'a' + 10);
      else break;
      v = v * (unsigned)base + d;
    }
    if (!digits) return -1;
    *out = v;
    return 0;
  }
  return -1;
}

/* Whether T (tc's owner) is blocked in a system call and looks out of any
 * signal handler; *switches: its context switches so far. */
static int quiet(const depot_tcache_t *tc, uint64_t *switches) {
  char buf[4096];
  uint64_t blk, cgt, vol, nonvol;
  if (blocked_syscall(tc->tid) < 0) return 0;
  if (read_task_file(tc->tid, "status", buf, sizeof buf) <= 0) return 0;
  if (field(buf, "SigBlk", 16, &blk) || field(buf, "SigCgt", 16, &cgt) ||
      field(buf, "voluntary_ctxt_switches", 10, &vol) ||
      field(buf, "nonvoluntary_ctxt_switches", 10, &nonvol))
    return 0;
  if (blk & cgt & ~depot_load_relaxed(&tc->sigmask0))
    return 0; /* maybe inside a handler */
  *switches = vol + nonvol;
  return 1;
}

/* Whether this process's /proc says what a thread is blocked in (the
 * caller's own file answers for a running thread): checked once, unless
 * the check failed for want of a descriptor or memory (asked again next
 * time: one failure then no longer turns idle flushing off for good). */
static int proc_usable(void) {
  static _Atomic int state; /* 0 unknown, 1 yes, -1 no */
  int s = depot_load_relaxed(&state);
  if (s == 0) {
    char buf[256];
    errno = 0;
    if (read_task_file((int32_t)syscall(SYS_gettid), "syscall", buf,
                       sizeof buf) > 0)
      s = 1;
    else if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) return 0;
    else s = -1;
    depot_store_relaxed(&state, s);
  }
  return s > 0;
}

/* ---- the flusher's side (registry lock held) ------------------------------ */

/* A racy look at whether tc's bins or outbox may hold blocks (limit_bytes
 * and the buckets' list ids are the owner's, written in its slow paths): a
 * hint that is checked again before anything is done.  The outbox counts:
 * a thread that only frees other threads' blocks has no limits but may
 * hold up to DEPOT_OUTBOX_BUCKETS full buckets there, and a pending one.
 * Kept out of ThreadSanitizer's view. */
__attribute__((no_sanitize_thread)) static int may_hold(
    const depot_tcache_t *tc) {
  if (*(const volatile size_t *)&tc->limit_bytes != 0) return 1;
  if (*(void *const volatile *)&tc->remote_pend != NULL) return 1;
  for (unsigned k = 0; k < DEPOT_OUTBOX_BUCKETS; k++)
    if (*(const volatile uint32_t *)&tc->outbox[k].list_id != DEPOT_OUTBOX_NONE)
      return 1;
  return 0;
}

/* Empties tc's bins and posts its outbox (park is FLUSHING: nobody else
 * touches them), then drains its owner heap's pools (the inbox: its own
 * flushed blocks and other threads' posts), so that their spans can be
 * purged.  Draining needs no ownership: a pool's stack may be popped by
 * any thread (central.h). */
static void empty_bins(depot_tcache_t *tc) {
  uint64_t blocks = depot_tcache_outbox_blocks(tc);
  for (unsigned i = 0; i < DEPOT_TCACHE_BINS; i++)
    blocks += depot_bin_count(&tc->bins[i]);
  depot_tcache_flush_all(tc);
  depot_owner_drain(tc->owner);
  depot_add_relaxed(&n_blocks, blocks);
}

/* Marks tc's owner heap parked (unless it is a node's shared heap, parked
 * for good) before its flush drains the inbox, as an exiting thread's heap
 * is (depot_owner_park, the same Dekker pair with depot_inbox_post): what
 * other threads free of its blocks while its thread sleeps then goes back
 * to the spans as it is posted, instead of waiting in the inbox until the
 * thread runs again (a flushed cache is not looked at again while it holds
 * nothing: its inbox could grow without bound).  The owner clears the mark
 * when it takes the cache back (reclaim_from_flusher).  Park FLUSHING. */
static void park_heap(depot_tcache_t *tc) {
  depot_owner_t *o = tc->owner;
  if (!o || o->id < DEPOT_MAX_NODES || tc->heap_parked) return;
  tc->heap_parked = 1;
  atomic_store_explicit(&o->parked, 1, memory_order_seq_cst);
}

/* Parks tc (if it is active) and flushes it if every check passes; see the
 * argument at the top.  Returns 1 if it flushed. */
static int try_flush(depot_tcache_t *tc) {
  uint64_t before, after;
  uint32_t s = depot_load_acquire(&tc->park);
  if (s == DEPOT_PARK_ACTIVE) {
    if (depot_load_relaxed(&tc->in_slow) || !quiet(tc, &before)) return 0;
    if (!atomic_compare_exchange_strong(&tc->park, &s, DEPOT_PARK_PARKED))
      return 0;
    depot_tcache_t *want = tc;
    if (!__atomic_compare_exchange_n(tc->tls_slot, &want, &depot_tcache_empty,
                                     0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
      /* T changed its slot: it is running (exiting, or taking the cache
       * back); undo, unless T has already made it ACTIVE itself. */
      s = DEPOT_PARK_PARKED;
      atomic_compare_exchange_strong(&tc->park, &s, DEPOT_PARK_ACTIVE);
      return 0;
    }
    depot_add_relaxed(&n_parked, 1);
  } else if (s == DEPOT_PARK_PARKED) {
    /* Parked earlier and refused then: the swap is long past. */
    if (!quiet(tc, &before)) return 0;
  } else {
    return 0;
  }
  if (!quiet(tc, &after) || after != before ||
      depot_load_acquire(&tc->in_slow)) {
    depot_add_relaxed(&n_refused, 1);
    return 0;
  }
  s = DEPOT_PARK_PARKED;
  if (!atomic_compare_exchange_strong(&tc->park, &s, DEPOT_PARK_FLUSHING))
    return 0; /* T took it back */
  depot_tsan_acquire(tc);
  park_heap(tc);
  empty_bins(tc);
  depot_tsan_release(tc);
  depot_store_release(&tc->park, DEPOT_PARK_PARKED);
  depot_os_wake(&tc->park);
  depot_add_relaxed(&n_flushed, 1);
  return 1;
}

/* Rounds of depot_idle_flush (registry lock): a cache whose flush_round is
 * the current one has been looked at in this round. */
static uint32_t round;

int depot_idle_flush(uint32_t idle_ms, uint32_t *next) {
  if (idle_ms == 0 || !proc_usable()) return 0;
  int32_t self = (int32_t)syscall(SYS_gettid);
  int pending = 0;
  depot_tcache_registry_lock();
  uint32_t this_round = ++round;
  depot_tcache_registry_unlock();
  /* One cache's checks per holding of the registry lock (they read /proc:
   * tens of microseconds), so that a thread starting or exiting waits for
   * one cache at most; the walk starts again from the head each time. */
  for (;;) {
    depot_tcache_t *orphan = NULL;
    int looked = 0;
    uint32_t now = depot_os_now_ms();
    depot_tcache_registry_lock();
    for (depot_tcache_t *tc = depot_tcache_live(); tc && !looked;
         tc = tc->next_live) {
      if (tc->flush_round == this_round) continue;
      tc->flush_round = this_round;
      if (tc->tid == 0) {
        /* No owner (fork): ours to recycle, once (FLUSHING marks it). */
        uint32_t s = depot_load_relaxed(&tc->park);
        if (s != DEPOT_PARK_FLUSHING &&
            atomic_compare_exchange_strong(&tc->park, &s,
                                           DEPOT_PARK_FLUSHING)) {
          orphan = tc;
          break;
        }
        continue;
      }
      if (tc->tid == self) continue;
      /* Parked and empty: nothing to do until the owner takes it back (and
       * rings the purger, depot_idle_parked); its heap is parked meanwhile,
       * so what is posted to it goes to its spans (park_heap). */
      if (depot_load_acquire(&tc->park) != DEPOT_PARK_ACTIVE && !may_hold(tc))
        continue;
      uint32_t due = depot_load_relaxed(&tc->slow_ms) + idle_ms;
      /* An idle cache is parked even when empty: the purger may then sleep
       * until its owner runs again. */
      int idle = !depot_ms_before(now, due);
      looked = idle;
      if (!idle || !try_flush(tc)) {
        /* Look again once it may be idle (or, if a check refused, a delay
         * later: a thread that computes without a slow path). */
        if (!depot_ms_before(now, due)) due = now + idle_ms;
        if (!pending || depot_ms_before(due, *next)) *next = due;
        pending = 1;
      }
    }
    depot_tcache_registry_unlock();
    if (looked) continue;
    if (!orphan) return pending;
    /* Not the owner, but nobody is: destroy's flush and unlinking are
     * safe, and the registry lock is not held across them.  Its counts
     * first: its thread may have been in a fast path at the fork. */
    depot_tcache_recount(orphan);
    depot_tcache_destroy(orphan); /* create resets park if it is reused */
    depot_add_relaxed(&n_orphans, 1);
  }
}

void depot_idle_stats(depot_idle_stats_t *out) {
  out->parked = depot_load_relaxed(&n_parked);
  out->flushed = depot_load_relaxed(&n_flushed);
  out->blocks = depot_load_relaxed(&n_blocks);
  out->refused = depot_load_relaxed(&n_refused);
  out->orphans = depot_load_relaxed(&n_orphans);
}
