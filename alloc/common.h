/* common.h: the bottom of the core.  Compiler helpers, the allocator's
 * fixed geometry and the named atomic helpers that every file of alloc/
 * shares; nothing here calls anything.
 *
 * Glossary.  Each word has one meaning in the code and the comments; the
 * file that owns the thing is named in brackets.
 *   block    - what a caller gets back; at least 16-byte aligned.
 *   small    - a block of a size class (<= DEPOT_SMALL_MAX), carved from a
 *              span that serves that class [sizeclass, central].
 *   large    - a block above the small maximum served as one span, a run of
 *              pages of an arena [arena].
 *   huge     - a block above the huge threshold, mapped directly [huge].
 *   big      - large or huge: whatever is not small (statistics) [alloc].
 *   page     - DEPOT_PAGE_SIZE bytes, the unit arenas hand out.
 *   span     - a run of pages inside one segment: free, serving one size
 *              class (a small span) or holding one large block [span].
 *   segment  - DEPOT_SEGMENT_SIZE bytes aligned to its size, owned by one
 *              arena shard of one NUMA node; its first pages hold its header.
 *   region   - the one big reservation segments are cut from, with its page
 *              table of list ids that free() reads [region].
 *   domain   - one of the three API families (raw, mem, object), numbered as
 *              the public DepotMemAllocatorDomain; spans serve exactly one
 *              domain so that a free with the wrong family is caught.
 *   list id  - owner, domain and class of a small block in 25 bits; names
 *              one cache list and one central pool [span].
 *   bin      - a thread cache's free list of one list id [tcache]; the word
 *              means nothing else (an arena keeps free spans on its "free
 *              lists by length" [arena]).
 *   batch    - a chain of free blocks moved as one between a thread cache
 *              and a central pool; its length is the class's batch size.
 *   record   - the descriptor of a batch on a pool's lock-free stack, from one
 *              type-stable table [central].
 *   stash    - a thread's private list of spare records [central].
 *   tcache   - per-thread cache: a bin per (domain, class) [tcache].
 *   pool     - per-node, per-domain, per-class central pool [central].
 *   arena    - per-node page allocator over segments [arena]; each node has
 *              DEPOT_ARENA_SHARDS of them, one lock each ("shards").
 *   node     - a NUMA node as the core numbers it (0..n-1, hwloc's order);
 *              the kernel's number is its "OS node" [placement].
 *   carve    - cut never-used blocks out of a small span, bump by bump
 *              [central].
 *   partial  - a small span with blocks left to hand out, on its pool's
 *              partial list [central].
 *   dirty    - a free span whose pages may still be resident [arena].
 *   purge    - giving a free span's pages back to the OS, keeping the
 *              address range [arena, os].
 *   home     - the node a thread allocates from now [numa].
 *   owner    - the heap a small span serves, named in its list id: a node's
 *              shared heap (owner id = node), or an "owner heap": one
 *              thread's, on one node, whose spans only that thread carves
 *              and whose blocks only its cache holds [central].
 *   remote   - a free of a small block by a thread other than its owner.
 *   outbox   - a thread's 64 buckets of remote frees, one list id each, each
 *              posted whole to its owner's inbox [tcache].
 *   inbox    - an owner heap's multi-producer queue of posted chains of
 *              remote frees: a post is one exchange; the owner drains it
 *              on its refill slow path, splicing chains onto its bins
 *              [central].
 *   parked   - an owner heap whose thread ended: kept whole for the next
 *              thread of its node; its inbox is drained into its spans by
 *              whoever posts to it [central].
 */
#ifndef DEPOT_ALLOC_COMMON_H
#define DEPOT_ALLOC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define depot_likely(x) __builtin_expect(!!(x), 1)
#define depot_unlikely(x) __builtin_expect(!!(x), 0)
#define depot_noinline __attribute__((noinline))
#define depot_cold __attribute__((cold, noinline))
#define depot_inline static inline __attribute__((always_inline))
/* Internal globals: no GOT indirection when the core is built into a shared
 * library (libdepot.so), so the fast paths address them directly. */
#define depot_hidden __attribute__((visibility("hidden")))

/* The TLS model: initial-exec by default (fast, but a library using it can
 * only be loaded at start-up or preloaded); the dlopen variant of
 * libdepot.so builds with DEPOT_TLS_MODEL="global-dynamic". */
#ifndef DEPOT_TLS_MODEL
#define DEPOT_TLS_MODEL "initial-exec"
#endif

/* A thread's own words, one TLS object so that one GOT load (the object's
 * offset from the thread pointer) reaches them all: the malloc that counts
 * bytes for the heap profiler reads the countdown and then the cache.  Owner:
 * the thread; tcache.h's depot_tls_tcache (which idle.c may swap: see there)
 * and prof.h's depot_prof_left name the fields.  Defined in tcache.c. */
#ifndef __cplusplus
struct depot_tcache;
typedef struct {
  struct depot_tcache *tcache; /* offset 0: the fast paths' first load */
  int64_t prof_left;           /* bytes to this thread's next sample point */
} depot_tls_t;
extern __thread depot_tls_t depot_tls depot_hidden
    __attribute__((tls_model(DEPOT_TLS_MODEL)));
#endif
#define DEPOT_CACHE_LINE 64
#define depot_cache_aligned __attribute__((aligned(DEPOT_CACHE_LINE)))
/* For a large static array touched a page or two at a time (the segment
 * map, the owner table, report buffers): placed after every other static
 * variable (x86-64's large-data bss, still zero-filled and untouched until
 * used), so that the small variables the allocator writes at start-up
 * share a few pages instead of one page at each end of every such array. */
#if defined(__x86_64__) && defined(__ELF__) && defined(__GNUC__) && \
    !defined(__clang__)
#define depot_sparse_bss __attribute__((section(".lbss.depot")))
#else
#define depot_sparse_bss
#endif
/* A compile-time check, in headers that C++ (the tests) includes too. */
#ifdef __cplusplus
#define depot_static_assert static_assert
#else
#define depot_static_assert _Static_assert
#endif

/* Geometry.  A segment is 4 MiB: small enough that an idle one costs little,
 * large enough that its header (about 1% of it) is amortised. */
#define DEPOT_PAGE_SHIFT 13
#define DEPOT_PAGE_SIZE ((size_t)1 << DEPOT_PAGE_SHIFT)
#define DEPOT_SEGMENT_SHIFT 22
#define DEPOT_SEGMENT_SIZE ((size_t)1 << DEPOT_SEGMENT_SHIFT)
#define DEPOT_SEGMENT_MASK (DEPOT_SEGMENT_SIZE - 1)
#define DEPOT_SEGMENT_PAGES (DEPOT_SEGMENT_SIZE / DEPOT_PAGE_SIZE)
#define DEPOT_MIN_ALIGN 16

/* Largest NUMA node count the core is built for.  Each node has a shared
 * owner heap whose id is the node's number (central.h). */
#define DEPOT_MAX_NODES 64

/* The three API domains, numbered as the public DepotMemAllocatorDomain
 * (raw 0, mem 1, object 2; the runtime asserts it). */
#define DEPOT_NDOMAINS 3

/* Atomic helpers that name their memory order, so that every ordering is a
 * visible decision at the call site (C only: users include <stdatomic.h>). */
#define depot_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define depot_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define depot_store_relaxed(p, v) \
  atomic_store_explicit((p), (v), memory_order_relaxed)
#define depot_store_release(p, v) \
  atomic_store_explicit((p), (v), memory_order_release)
#define depot_cas_weak_acq_rel(p, expected, desired) \
  atomic_compare_exchange_weak_explicit(             \
      (p), (expected), (desired), memory_order_acq_rel, memory_order_acquire)
#define depot_add_relaxed(p, v) \
  atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define depot_sub_relaxed(p, v) \
  atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)

/* x, hidden from the optimiser (no instruction): it cannot tell that the
 * result is x, so it reloads what is read through a pointer rather than
 * keep a copy of an earlier value in a register, and cannot fold a value
 * into an expression it computed before.  A pointer and a 32-bit form. */
static inline void *depot_opaque_ptr(void *x) {
#if defined(__GNUC__)
  __asm__("" : "+r"(x));
#endif
  return x;
}
static inline uint32_t depot_opaque_u32(uint32_t x) {
#if defined(__GNUC__)
  __asm__("" : "+r"(x));
#endif
  return x;
}

/* ThreadSanitizer builds (GCC's and Clang's spelling). */
#if defined(__SANITIZE_THREAD__)
#define DEPOT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DEPOT_TSAN 1
#endif
#endif

/* A read of a plain (not _Atomic) word that other threads write only with
 * __atomic_store_n, and whose every value is safe to act on (the region's
 * bounds, region.h): a plain load, which the compiler may fold into an
 * arithmetic instruction's operand (an atomic load it keeps as a separate
 * mov), except under ThreadSanitizer, where it is the relaxed atomic load
 * that it is on x86 anyway (an aligned word is never torn). */
#ifdef DEPOT_TSAN
#define depot_load_plain(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#else
#define depot_load_plain(p) (*(p))
#endif

depot_static_assert(
    DEPOT_SEGMENT_SIZE % DEPOT_PAGE_SIZE == 0 && DEPOT_SEGMENT_PAGES == 512,
    "a segment is 512 pages of 8 KiB (4 MiB), as described above");

static inline uintptr_t depot_align_up(uintptr_t x, uintptr_t a) {
  return (x + a - 1) & ~(a - 1);
}
static inline int depot_is_pow2(size_t x) { return x && !(x & (x - 1)); }

/* Text without the locale (configuration parsing runs before the allocator
 * works): ASCII lower case, and whether s[0..n) is the lower-case word w,
 * ignoring case in s. */
static inline int depot_ascii_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}
static inline int depot_word_is(const char *s, size_t n, const char *w) {
  size_t i = 0;
  for (; i < n && w[i]; i++)
    if (depot_ascii_lower((unsigned char)s[i]) != w[i]) return 0;
  return i == n && w[i] == 0;
}

/* Compares two readings of depot_os_now_ms (os.h), which wrap every 49
 * days: nonzero if a is earlier than b. */
static inline int depot_ms_before(uint32_t a, uint32_t b) {
  return (int32_t)(a - b) < 0;
}

/* A spin lock, for locks held briefly and rarely contended (the quarantine,
 * the guarded pool): unlike a pthread mutex, not one of the 64 locks
 * ThreadSanitizer's deadlock detector lets a thread hold, which
 * depot_lock_all nearly fills.  Acquire on taking, release on dropping. */
#ifndef __cplusplus
#include <stdatomic.h>
typedef _Atomic int depot_spin_t;
void depot_spin_wait(depot_spin_t *l); /* os.c: yields until l is free */
static inline void depot_spin_lock(depot_spin_t *l) {
  if (__builtin_expect(atomic_exchange_explicit(l, 1, memory_order_acquire), 0))
    depot_spin_wait(l);
}
static inline void depot_spin_unlock(depot_spin_t *l) {
  atomic_store_explicit(l, 0, memory_order_release);
}
#endif

#endif /* DEPOT_ALLOC_COMMON_H */
