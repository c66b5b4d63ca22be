/* stacktrace.c: depot_stacktrace (stacktrace.h), shared by the guarded
 * pool's reports and the heap profiler's samples: libgcc's unwinder, and on
 * x86-64 a fast walk that replays what the unwinder found before.
 *
 * Why libgcc's unwinder is safe inside malloc: _Unwind_Backtrace reads the
 * unwind tables (.eh_frame) of the loaded objects; libgcc finds an
 * address's object with glibc's _dl_find_object (glibc 2.35 and later, GCC
 * 12 and later: lock-free, no allocation), and allocates only for frames
 * registered at run time with __register_frame_info, which nothing in a
 * Linux program does but a JIT compiler.  It is linked directly, not loaded
 * on first use as glibc's backtrace() loads it with dlopen, which
 * allocates: libdepot.so carries its own copy (libgcc_eh, -static-libgcc in
 * //:libdepot.so, its symbols hidden), so that a process preloading Depot
 * does not load libgcc_s for it (a tenth of a millisecond at start-up,
 * mostly libgcc_s's constructor running CPUID, which traps in a virtual
 * machine); a program that links the core itself gets the unwinder its
 * toolchain links.
 *
 * Why a fast walk: the unwinder finds and interprets each frame's unwind
 * table entry afresh, 3,000 instructions a frame, which made a profiler's
 * sample cost 5-7 us.  But what it computes for a frame depends only on
 * the return address: where the frame's CFA (its caller's stack pointer)
 * is, as the stack pointer plus a constant or as rbp + 16 (a frame that
 * keeps a frame pointer), and where the caller's rbp is (unchanged, or
 * saved at a constant distance below the CFA).  So each full walk leaves
 * one rule per return address in `rules` (learn), checked against what
 * the unwinder read (the return address is the word below the CFA; a
 * saved rbp is where the rule says), and later walks follow the rules, 20
 * instructions a frame, as long as every frame has one (fast_walk).
 *   - A rule is used only once two full walks found it alike; one whose
 *     CFA differs between two walks (a frame that changes its shape, a
 *     return address that stands for two kinds of frame) is never used
 *     again, one where only the caller's rbp was found in another place
 *     keeps its CFA and forgets the rbp (a later frame that needs rbp then
 *     ends the fast walk); signal frames get no rule.  A frame the rules
 *     do not cover sends the walk back to the unwinder, which adds the
 *     rules it was missing.
 *   - Never faults: the fast walk reads only the words below each CFA,
 *     each between the starting stack pointer and the highest CFA that a
 *     full walk of this thread reached from a stack pointer at or below it
 *     (`range`) on one stack: the frames the unwinder went through, each
 *     memory the stack's own code allocated, which stays mapped while the
 *     stack is in use.  A stack pointer outside that range (a signal stack,
 *     a coroutine's stack) takes the full walk, which sets the range anew.
 *     The CFA must rise at every frame, by at most MAX_FRAME.
 *   - One stack: the unwinder also goes from one stack to another without
 *     a signal frame, where the frame's unwind information says so (the
 *     split stacks of -fsplit-stack, whose __morestack leads to the
 *     previous segment; a fiber library's entry frame, whose CFA is where
 *     it saved its creator's stack pointer).  Such a frame spans the gap
 *     between two mappings (guard pages, other stacks): a rule learned
 *     from it would send a walk from another stack into the gap.  So a
 *     frame whose CFA is more than MAX_FRAME above its stack pointer, or
 *     not above it, is taken for a crossing: its return address is marked
 *     never to be used (the same one leads elsewhere from another stack),
 *     and the range ends below it, as at a signal frame.  (A frame with
 *     more than MAX_FRAME of arrays on the stack is thus always walked by
 *     the unwinder.)  A crossing by less cannot be told from a frame (two
 *     fiber stacks from one pool, next to each other): it may learn a
 *     rule, which a walk that starts in the range from another stack may
 *     follow into a gap.  The range is replaced, not widened, by each full
 *     walk that reached its stack's end (the frame where the unwinder
 *     stopped, a crossing or a signal frame): only a walk cut short by its
 *     caller's frame count widens it, so that a range left by an earlier
 *     stack at these addresses (a coroutine's, since unmapped) is not
 *     kept.
 *   - Frames that realign the stack with a DRAP register (GCC, for locals
 *     aligned above 16 bytes: CFA = the word at rbp - 8, the return address
 *     copied above rbp) are at a distance from the stack pointer that
 *     depends on the incoming alignment: no rule, ever (learn recognises
 *     them by their copied return address and saved CFA).  Realigning
 *     frames without DRAP keep a frame pointer (CFA = rbp + 16): their
 *     rules follow rbp, their offset is marked as varying.
 *   - Its result is the unwinder's: the same frames, the same end (the
 *     frame where the unwinder stopped is marked, and a return address of
 *     0 ends both).
 * The rules are one table for the process, insert-only, lock-free (each
 * entry's key and rule are single atomic words), in static memory: 4096
 * return addresses; later ones take the full walk.
 *
 * No recursion: a thread-local flag is set for the walk.  A call made while
 * it is set (a malloc that the unwinder made after all and that the
 * profiler sampled, a signal handler that interrupted a walk and walks
 * itself) returns 0 frames at once instead of walking again. */
#include "alloc/stacktrace.h"

#include <stdatomic.h>
#include <stdint.h>
#include <unwind.h>

#include "alloc/common.h"

#ifndef DEPOT_TLS_MODEL
#define DEPOT_TLS_MODEL "initial-exec"
#endif

/* The fast walk reads x86-64 frames (the return address below the CFA,
 * rbp as the frame pointer); elsewhere every walk is the unwinder's. */
#if defined(__x86_64__)
#define FAST_WALK 1
#else
#define FAST_WALK 0
#endif

/* Per thread: the walk flag and the stack range the fast walk may read.
 * One hidden struct rather than static variables, as prof.c's (the
 * initial-exec offsets of static thread-locals in a shared object came out
 * wrong with this toolchain). */
typedef struct {
  int walking;        /* nonzero while this thread walks its stack */
  uintptr_t lo, hi;   /* range: lo <= a stack pointer, hi >= its CFAs */
  unsigned long fast; /* walks the rules answered (tests) */
} walk_thread_t;
extern __thread walk_thread_t depot_stacktrace_thread depot_hidden
    __attribute__((tls_model(DEPOT_TLS_MODEL)));
__thread walk_thread_t depot_stacktrace_thread
    __attribute__((tls_model(DEPOT_TLS_MODEL)));
#define self depot_stacktrace_thread

#if FAST_WALK
/* ---- rules ------------------------------------------------------------------
 * A rule word: bits 0-1 how often a full walk found it (1 once, 2 twice or
 * more, 3 never to be used: two walks disagreed), bit 2 the CFA is rbp + 16
 * (a frame pointer frame), bits 32-63 the CFA's distance from the stack
 * pointer (for a frame pointer frame: used only when its rbp is not known,
 * and not at all once bit 6 says it changed), bit 3 the unwinder stopped
 * at this frame, bit 4 the caller's rbp is this frame's rbp, bit 5 where
 * the caller's rbp is is not known (two words of the frame hold its value,
 * or none: the walk goes on without it, up to a frame that needs it),
 * else it is saved 8 * bits 8-23 bytes below the CFA.  0: no rule yet. */
#define R_SEEN 3u
#define R_ONCE 1u
#define R_TWICE 2u
#define R_BAD 3u
#define R_FP 4u
#define R_END 8u
#define R_SAME 16u
#define R_LOST 32u
#define R_VARIES 64u
/* The bits that say where the caller's rbp is, and the count. */
#define R_BP ((uint64_t)R_SEEN | R_SAME | R_LOST | ((uint64_t)0xffff << 8))
#define R_SLOT(r) (((r) >> 8) & 0xffff)
#define R_OFF(r) ((r) >> 32)

/* The largest frame a rule covers (and a fast walk's step may span); a
 * larger one is taken for a crossing to another stack. */
#define MAX_FRAME ((uintptr_t)256 << 10)

#define RULES 4096
#define PROBES 16
depot_sparse_bss static struct {
  _Atomic uintptr_t ip; /* 0: free; set once */
  _Atomic uint64_t rule;
} rules[RULES];

static size_t rule_home(uintptr_t ip) {
  return (size_t)((ip * 0x9E3779B97F4A7C15ULL) >> 40) & (RULES - 1);
}

/* The rule for return address ip, or 0.  Relaxed loads: a rule word is
 * complete in itself (nothing else is published with it), and one read
 * before another thread's update is a rule a full walk found. */
static uint64_t rule_of(uintptr_t ip) {
  for (size_t i = rule_home(ip), k = 0; k < PROBES;
       i = (i + 1) & (RULES - 1), k++) {
    uintptr_t key = depot_load_relaxed(&rules[i].ip);
    if (key == ip) return depot_load_relaxed(&rules[i].rule);
    if (key == 0) return 0;
  }
  return 0;
}

/* Rule a (found before, count bits 0) and rule r found now, as one: r
 * twice if alike; with the rbp forgotten if only the rbp differs; with
 * the offset forgotten (R_VARIES) if only a frame pointer frame's offset
 * differs (a frame that allocates on the stack); else never to be used. */
static uint64_t merge(uint64_t a, uint64_t r) {
  uint64_t d = a ^ r, off = ~(uint64_t)0 << 32;
  if (!d) return r | R_TWICE;
  if (!(d & ~R_BP)) return (r & ~R_BP) | R_LOST | R_TWICE;
  if ((a & R_FP) && !(d & ~(off | R_VARIES)))
    return (a & ~off) | R_VARIES | R_TWICE;
  return a | R_BAD;
}

/* Records that a full walk found rule r (R_SEEN bits 0; R_BAD: a frame
 * never to be walked by rule) for ip. */
static void rule_seen(uintptr_t ip, uint64_t r) {
  for (size_t i = rule_home(ip), k = 0; k < PROBES;
       i = (i + 1) & (RULES - 1), k++) {
    uintptr_t key = depot_load_relaxed(&rules[i].ip);
    if (key == 0) {
      uintptr_t zero = 0;
      if (atomic_compare_exchange_strong_explicit(&rules[i].ip, &zero, ip,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
        uint64_t none = 0; /* another walk may have claimed it meanwhile */
        atomic_compare_exchange_strong_explicit(
            &rules[i].rule, &none, r | R_ONCE, memory_order_relaxed,
            memory_order_relaxed);
        return;
      }
      key = zero;
    }
    if (key != ip) continue;
    uint64_t old = depot_load_relaxed(&rules[i].rule);
    for (;;) {
      uint64_t seen = old & R_SEEN, next;
      if (seen == R_BAD) return;
      if ((r & R_SEEN) == R_BAD) next = old | R_BAD;
      else if (seen == 0) next = r | R_ONCE;
      else next = merge(old & ~(uint64_t)R_SEEN, r);
      if (next == old || atomic_compare_exchange_weak_explicit(
                             &rules[i].rule, &old, next, memory_order_relaxed,
                             memory_order_relaxed))
        return;
    }
  }
}

#endif /* FAST_WALK */

/* ---- the full walk ----------------------------------------------------------
 * _Unwind_Backtrace calls step once a frame, innermost first: the first is
 * depot_stacktrace's own.  At each, _Unwind_GetIP is the frame's return
 * address (where its callee returns to), _Unwind_GetCFA its stack pointer
 * (its callee's CFA) and register 6 its rbp; so frame k's CFA and its
 * caller's rbp come with frame k + 1, which is when k's rule is learned. */
typedef struct {
  void **out;
  unsigned max, skip, n;
  uintptr_t ip, sp, bp, hi; /* the previous frame; the highest CFA */
  int sig;                  /* the previous frame was interrupted by a signal */
  int crossed; /* a signal frame or a crossing was passed: the stack may be
                 another */
  int cut;     /* the walk ended at its caller's frame count */
} walk_t;

#if FAST_WALK
/* The one word of frame [sp, cfa) that holds the caller's rbp (value v),
 * or 0.  Prologues push the callee-saved registers (at most 6) first, just
 * below the return address: a word there is preferred; elsewhere (a
 * register saved by a move) only a word that no other in the frame equals,
 * and only in a frame of at most 4 KiB. */
__attribute__((no_sanitize("address", "thread"))) static uintptr_t saved_slot(
    uintptr_t sp, uintptr_t cfa, uintptr_t v) {
  uintptr_t slot = 0, pushes = cfa - 8 * 7;
  for (uintptr_t a = cfa - 16; a >= sp && a >= pushes; a -= 8) {
    if (*(const uintptr_t *)a != v) continue;
    if (slot) return 0; /* two: which one is unknown */
    slot = a;
  }
  if (slot || cfa - sp > 4096) return slot;
  for (uintptr_t a = pushes - 8; a >= sp; a -= 8) {
    if (*(const uintptr_t *)a != v) continue;
    if (slot) return 0;
    slot = a;
  }
  return slot;
}

/* Learns frame (ip, sp, bp)'s rule from its CFA and its caller's rbp and
 * return address, checking them against the stack. */
__attribute__((no_sanitize("address", "thread"))) static void learn(
    uintptr_t ip, uintptr_t sp, uintptr_t bp, uintptr_t cfa,
    uintptr_t caller_bp, uintptr_t caller_ip) {
  if (cfa <= sp || ((cfa | sp) & 7) || cfa - sp > MAX_FRAME ||
      *(const uintptr_t *)(cfa - 8) != caller_ip)
    return;
  uint64_t r;
  if (bp >= sp + 8 && bp <= cfa - 24 && !(bp & 7) &&
      *(const uintptr_t *)(bp - 8) == cfa &&
      *(const uintptr_t *)(bp + 8) == caller_ip &&
      *(const uintptr_t *)bp == caller_bp) {
    rule_seen(ip, R_BAD); /* DRAP: saved CFA, copied return address */
    return;
  }
  if (cfa == bp + 16) {
    if (*(const uintptr_t *)(cfa - 16) != caller_bp) return;
    r = R_FP | ((uint64_t)2 << 8) | ((uint64_t)(cfa - sp) << 32);
  } else if (bp == caller_bp) {
    r = R_SAME | ((uint64_t)(cfa - sp) << 32);
  } else {
    uintptr_t slot = saved_slot(sp, cfa, caller_bp);
    r = (slot ? (uint64_t)((cfa - slot) / 8) << 8 : R_LOST) |
        ((uint64_t)(cfa - sp) << 32);
  }
  rule_seen(ip, r);
}
#endif

static _Unwind_Reason_Code step(struct _Unwind_Context *ctx, void *arg) {
  walk_t *w = arg;
  int before = 0;
  uintptr_t ip = (uintptr_t)_Unwind_GetIPInfo(ctx, &before);
  uintptr_t sp = (uintptr_t)_Unwind_GetCFA(ctx);
#if FAST_WALK
  uintptr_t bp = (uintptr_t)_Unwind_GetGR(ctx, 6);
  /* The frame before a return address of 0 is the last: no rule but its
   * end (_start and a thread's first frame end so).  Frames next to where
   * a signal interrupted the thread get no rule: the interrupted frame's
   * address is not a return address, and its stack pointer is not its
   * callee's CFA (the signal frame's is the kernel's, maybe on another
   * stack). */
  /* A crossing to another stack (the file comment): the previous frame
   * spans two stacks. */
  if (w->ip && !w->sig && ip != 0 && (sp <= w->sp || sp - w->sp > MAX_FRAME)) {
    rule_seen(w->ip, R_BAD);
    w->crossed = 1;
  } else if (w->ip && !w->sig) {
    if (ip == 0) rule_seen(w->ip, R_END);
    else if (!before) learn(w->ip, w->sp, w->bp, sp, bp, ip);
  }
  w->bp = bp;
#endif
  w->ip = ip;
  w->sp = sp;
  w->sig = before; /* a signal interrupted this frame */
  /* The range ends where a signal interrupted the thread: the frames
   * beyond may be on another stack (the handler ran on sigaltstack), and
   * the memory between the two stacks is not the thread's. */
  if (before) w->crossed = 1;
  if (!w->crossed && sp > w->hi) w->hi = sp;
  if (ip == 0) return _URC_END_OF_STACK;
  if (w->skip > 0) {
    w->skip--;
    return _URC_NO_REASON;
  }
  if (w->n >= w->max) {
    w->cut = 1;
    return _URC_END_OF_STACK;
  }
  w->out[w->n++] = (void *)ip;
  return _URC_NO_REASON;
}

/* The unwinder's walk from the caller of depot_stacktrace, which is at
 * stack pointer sp (0: not known); learns the rules and the range. */
static depot_noinline unsigned full_walk(void **out, unsigned max,
                                         unsigned skip, uintptr_t sp) {
  /* + 2: depot_stacktrace's frame and this one's */
  walk_t w = {out, max, skip + 2, 0, 0, 0, 0, 0, 0, 0, 0};
  _Unwind_Reason_Code rc = _Unwind_Backtrace(step, &w);
#if FAST_WALK
  /* The unwinder found no caller of the last frame (it returns
   * _URC_END_OF_STACK only then; when step ends the walk it returns an
   * error code): the fast walk stops there too.  A last return address of
   * 0 ends both anyway. */
  if (rc == _URC_END_OF_STACK && w.ip && !w.sig) rule_seen(w.ip, R_END);
  /* The range: this walk's frames, up to its stack's end or the first
   * crossing.  A walk cut short widens the range it starts in (same stack:
   * the earlier walk went on from where this one stopped); any other
   * replaces it, so that a range left by an earlier stack at these
   * addresses (a coroutine's, since unmapped) is not kept. */
  if (sp && w.hi > sp) {
    if (w.cut && sp >= self.lo && sp <= self.hi) {
      if (w.hi > self.hi) self.hi = w.hi;
    } else {
      self.lo = sp;
      self.hi = w.hi;
    }
  }
#else
  (void)sp;
  (void)rc;
#endif
  return w.n;
}

#if FAST_WALK
#define FAIL ((unsigned)-1)
/* Follows the rules from frame (ip, sp, bp): the unwinder's result, or
 * FAIL where a frame has no rule fit to use.  Reads only words in
 * [sp, self.hi) (the range the file comment explains). */
__attribute__((no_sanitize("address", "thread"))) static unsigned fast_walk(
    void **out, unsigned max, unsigned skip, uintptr_t ip, uintptr_t sp,
    uintptr_t bp) {
  uintptr_t hi = self.hi;
  unsigned n = 0;
  int bp_known = 1;
  if (sp < self.lo || sp >= hi) return FAIL;
  for (;;) {
    if (ip == 0) return n;
    uint64_t r = rule_of(ip);
    if ((r & R_SEEN) != R_TWICE) return FAIL;
    if (skip > 0) {
      skip--;
    } else {
      if (n >= max) return n;
      out[n++] = (void *)ip;
    }
    if (r & R_END) return n;
    /* A frame pointer frame's CFA from its rbp, or where that is not
     * known, from its offset if that never changed. */
    if ((r & R_FP) && !bp_known && (r & R_VARIES)) return FAIL;
    uintptr_t cfa = (r & R_FP) && bp_known ? bp + 16 : sp + R_OFF(r);
    if (cfa <= sp || cfa > hi || cfa - sp > MAX_FRAME || (cfa & 7)) return FAIL;
    if (r & R_LOST) {
      bp_known = 0;
    } else if (!(r & R_SAME)) {
      uintptr_t slot = cfa - 8 * R_SLOT(r);
      if (slot < sp) return FAIL;
      bp = *(const uintptr_t *)slot;
    }
    ip = *(const uintptr_t *)(cfa - 8);
    sp = cfa;
  }
}
#endif

/* noinline: the first frame the unwinder reports is this function's own,
 * which the walk skips.  Its frame pointer (__builtin_frame_address makes
 * the compiler keep one) gives the caller's frame: the return address
 * above it, the caller's rbp in it, the caller's stack pointer 16 bytes
 * up. */
depot_noinline unsigned depot_stacktrace(void **out, unsigned max,
                                         unsigned skip) {
  if (max == 0 || self.walking) return 0;
  self.walking = 1;
#if FAST_WALK
  const uintptr_t *fp = __builtin_frame_address(0);
  uintptr_t sp = (uintptr_t)(fp + 2);
  unsigned n = fast_walk(out, max, skip, fp[1], sp, fp[0]);
  if (n == FAIL) n = full_walk(out, max, skip, sp);
  else self.fast++;
#else
  unsigned n = full_walk(out, max, skip, 0);
#endif
  self.walking = 0;
  return n;
}

depot_noinline unsigned depot_stacktrace_unwinder(void **out, unsigned max,
                                                  unsigned skip) {
  if (max == 0 || self.walking) return 0;
  self.walking = 1;
  unsigned n = full_walk(out, max, skip, 0);
  self.walking = 0;
  return n;
}

unsigned long depot_stacktrace_fast_walks(void) { return self.fast; }
