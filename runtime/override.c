/* override.c: the C allocation family, for libdepot.so and for programs
 * that link //:depot_malloc.  With these exported, LD_PRELOAD=libdepot.so
 * (or linking it) puts every malloc of a program on Depot.
 *
 * The family allocates in the raw domain, so DepotMem_RawMalloc blocks and
 * malloc blocks are interchangeable.  Semantics are the C library's, which
 * differ from the Depot API's: realloc(p, 0) frees p and returns NULL, as
 * glibc does; posix_memalign reports EINVAL or ENOMEM through its result and
 * leaves *out untouched; memalign and valloc follow glibc (a non-power-of-two
 * alignment is rounded up).
 *
 * mallinfo2, mallinfo and malloc_info answer glibc's questions with Depot's
 * figures; mallopt maps the parameters that have a Depot equivalent.
 *
 * Debug mode (DEPOTMALLOC=debug or debug=1) applies here too: every block
 * of the family then carries debug.c's header, guard bytes, fills and serial
 * number.  It costs the cache-hit paths nothing: while debug mode is on the
 * thread caches hold nothing (depot_tcache_bypass), so every call misses,
 * and the misses below (and the family's other functions) look at the mode.
 *
 * Nothing here needs the dynamic loader (no dlsym), the runtime's start-up
 * or any lock before the first allocation: the core initialises itself on
 * its slow path, so this works before constructors run and while the
 * loader itself allocates. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc/alloc.h"
#include "alloc/config.h"
#include "alloc/huge.h"
#include "alloc/init.h"
#include "alloc/os.h"
#include "alloc/prof.h"
#include "runtime/plt_rebind.h"
#include "runtime/runtime.h"

#define RAW DEPOT_DOMAIN_RAW
#define EXPORT __attribute__((visibility("default")))

/* The fuzzer builds this file with DEPOT_OVERRIDE_PREFIX set, so that it can
 * drive the family without replacing its own (sanitizer's) malloc. */
#ifdef DEPOT_OVERRIDE_PREFIX
#define DEPOT_PASTE2(a, b) a##b
#define DEPOT_PASTE(a, b) DEPOT_PASTE2(a, b)
#define NAME(f) DEPOT_PASTE(DEPOT_OVERRIDE_PREFIX, f)
#else
#define NAME(f) f
#endif

static size_t page_size(void) {
  static size_t cached;
  if (!cached) cached = (size_t)sysconf(_SC_PAGESIZE);
  return cached;
}

static void choose_entries(void);
static void rebind_later(void);
static _Atomic int entries_chosen; /* see choose_entries */

/* The misses of malloc and free.  The first call of the process comes
 * here too (no thread has a cache yet), so the mode is known before any
 * block exists; malloc's then picks the entry points' versions. */

static depot_noinline void *alloc_miss(size_t size, unsigned d) {
  void *p = depot_unlikely(depot_debug_c_mode()) ? depot_debug_c_malloc(size)
                                                 : depot_alloc_slow(size, d);
  if (depot_unlikely(!depot_load_relaxed(&entries_chosen))) choose_entries();
  return p;
}

static depot_noinline void free_miss(void *p, unsigned d) {
  if (depot_unlikely(p && depot_debug_c_mode())) depot_debug_c_free(p);
  else depot_free_slow(p, d);
}

/* ---- heap profiling: two versions of each allocating entry point --------
 * Each body below takes `prof` as a constant: the version with prof 0 is
 * the entry point of a build without profiling; the one with prof 1 first
 * counts the request against the thread's countdown (depot_prof_take: a
 * decrement and a predicted branch) and, when it holds a sample point,
 * serves it from sample() (prof.h).  free has one version: samples are
 * blocks its fast path misses.
 *
 * The exported names are the versions with prof 0.  With prof=1, the first
 * miss of malloc after start-up (alloc_miss: the configuration is loaded by
 * then) writes a direct jump to the counting version over the first
 * instruction of each exported entry point (choose_entries), as the Linux
 * kernel's static keys patch their branches: profiling off costs nothing
 * at all.  Then the PLT slots that the program and its libraries hold for
 * the plain versions are pointed at the counting ones (plt_rebind.c), so
 * that their calls cost the decrement and the branch and nothing else;
 * calls through the plain entry points (slots bound later, libdepot.so's
 * own calls) pay the jump besides.  The
 * jump is written with one aligned atomic store (the entry points are
 * aligned to 16 bytes), and only while the process has one thread: a
 * process whose first allocation comes after its second thread started
 * (a late dlopen) keeps the plain versions and is told so, as is one whose
 * text cannot be made writable (a policy forbids it); the DepotMem domains
 * are sampled either way.  Where no jump can be written
 * (DEPOT_PROF_PATCH 0: machines other than x86-64 and AArch64) the entry
 * points test depot_prof_counting instead. */
#define DEPOT_ARGS(...) __VA_ARGS__
#if defined(__x86_64__) || defined(__aarch64__)
#define DEPOT_PROF_PATCH 1
#define DEPOT_ENTRY(ret, name, params, args)                \
  static DEPOT_PROF_TEXT ret name##_prof params {           \
    return name##_body(1, DEPOT_ARGS args);                 \
  }                                                         \
  static DEPOT_PROF_TEXT __attribute__((aligned(16), used)) \
  ret name##_plain params {                                 \
    return name##_body(0, DEPOT_ARGS args);                 \
  }                                                         \
  EXPORT ret NAME(name)                                     \
  params __attribute__((alias(#name "_plain")));
#else
#define DEPOT_PROF_PATCH 0
#define DEPOT_ENTRY(ret, name, params, args)     \
  EXPORT DEPOT_PROF_TEXT ret NAME(name) params { \
    if (depot_unlikely(depot_prof_counting))     \
      return name##_body(1, DEPOT_ARGS args);    \
    return name##_body(0, DEPOT_ARGS args);      \
  }
#endif

/* A request that holds a sample point: the sample, or NULL to go the usual
 * way (profiling inactive).  In debug mode the request is not counted here
 * but by the raw domain's allocator under the debug hooks (domains.c),
 * which serves debug mode's blocks: only malloc, whose debug test is on its
 * miss path, counts first and gives the bytes back. */
depot_inline void *sample_body(size_t size, size_t align, int zero) {
  if (depot_debug_c_mode()) {
    depot_prof_left = (int64_t)((uint64_t)depot_prof_left + size);
    return NULL;
  }
  void *q = depot_prof_alloc(size, align, RAW, zero);
  rebind_later();
  return q;
}
static depot_noinline DEPOT_PROF_TEXT void *sample(size_t size, size_t align,
                                                   int zero) {
  return sample_body(size, align, zero);
}

/* malloc's sample, or its usual block: a tail call from malloc, so that the
 * counting version needs no stack frame.  sample_body inline: one frame
 * less for each sample's stack walk. */
static depot_noinline DEPOT_PROF_TEXT void *malloc_sampled(size_t size) {
  void *q = sample_body(size, DEPOT_MIN_ALIGN, 0);
  return q ? q : depot_alloc_with(size, RAW, alloc_miss);
}

depot_inline void *malloc_body(int prof, size_t size) {
  if (prof && depot_prof_take(size)) return malloc_sampled(size);
  return depot_alloc_with(size, RAW, alloc_miss);
}
DEPOT_ENTRY(void *, malloc, (size_t size), (size))

EXPORT void NAME(free)(void *p) { depot_free_with(p, RAW, free_miss); }

depot_inline void *calloc_body(int prof, size_t n, size_t size) {
  if (depot_debug_c_mode()) return depot_debug_c_calloc(n, size);
  if (prof && !(size && n > PTRDIFF_MAX / size) && depot_prof_take(n * size)) {
    void *q = sample(n * size, DEPOT_MIN_ALIGN, 1);
    if (q) return q;
  }
  return depot_calloc(n, size, RAW);
}
DEPOT_ENTRY(void *, calloc, (size_t n, size_t size), (n, size))

depot_inline void *realloc_body(int prof, void *p, size_t size) {
  if (p && size == 0) {
    NAME(free)(p);
    return NULL;
  }
  if (depot_debug_c_mode()) return depot_debug_c_realloc(p, size);
  /* A block's realloc counts its growth only (depot_prof_realloc). */
  if (prof && p) return depot_prof_realloc(p, size, RAW);
  if (prof && depot_prof_take(size)) {
    void *q = sample(size, DEPOT_MIN_ALIGN, 0);
    if (q) return q;
  }
  return depot_realloc(p, size, RAW);
}
DEPOT_ENTRY(void *, realloc, (void *p, size_t size), (p, size))

EXPORT DEPOT_PROF_TEXT void *NAME(reallocarray)(void *p, size_t n,
                                                size_t size) {
  if (size && n > SIZE_MAX / size) {
    errno = ENOMEM;
    return NULL;
  }
  return NAME(realloc)(p, n * size);
}

/* align: a power of two. */
depot_inline void *aligned(int prof, size_t align, size_t size) {
  if (depot_debug_c_mode()) return depot_debug_c_aligned(align, size);
  if (prof && depot_prof_take(size)) {
    void *q = sample(size, align, 0);
    if (q) return q;
  }
  return depot_aligned_alloc(align, size, RAW);
}

depot_inline int posix_memalign_body(int prof, void **out, size_t align,
                                     size_t size) {
  if (align < sizeof(void *) || !depot_is_pow2(align)) return EINVAL;
  int saved = errno;
  void *p = aligned(prof, align, size);
  errno = saved;
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
DEPOT_ENTRY(int, posix_memalign, (void **out, size_t align, size_t size),
            (out, align, size))

depot_inline void *aligned_alloc_body(int prof, size_t align, size_t size) {
  if (!depot_is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned(prof, align, size);
}
DEPOT_ENTRY(void *, aligned_alloc, (size_t align, size_t size), (align, size))

depot_inline void *memalign_body(int prof, size_t align, size_t size) {
  if (align > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return NULL;
  }
  size_t a = DEPOT_MIN_ALIGN;
  while (a < align) a <<= 1; /* glibc rounds an odd alignment up */
  return aligned(prof, a, size);
}
DEPOT_ENTRY(void *, memalign, (size_t align, size_t size), (align, size))

#if DEPOT_PROF_PATCH
/* Each entry point that has two versions: its name, its plain version (the
 * exported symbol), its counting version. */
#define ENTRY_NAME2(f) #f
#define ENTRY_NAME(f) ENTRY_NAME2(f) /* NAME(f) expanded, then a string */
#define ENTRY(f) \
  {ENTRY_NAME(NAME(f)), (void *)f##_plain, (const void *)f##_prof}
static const depot_rebind_t entries[] = {
    ENTRY(malloc),        ENTRY(calloc),        ENTRY(realloc),
    ENTRY(posix_memalign), ENTRY(aligned_alloc), ENTRY(memalign),
};
#undef ENTRY
#define N_ENTRIES (sizeof entries / sizeof entries[0])
/* Set once every entry point jumps to its counting version.  A flag only
 * (relaxed): a later pass is right whenever it runs, since a slot holds
 * the plain or the counting address and either is correct. */
static _Atomic int entries_switched;

/* Writes a jump to `to` over the first instruction at `from` (aligned to
 * 16 bytes, in this object's text).  Returns 0, or -1 if the page cannot be
 * made writable or `to` is out of a direct jump's reach. */
static int write_jump(void *from, const void *to) {
  uintptr_t a = (uintptr_t)from, ps = (uintptr_t)sysconf(_SC_PAGESIZE);
  /* A landing pad for indirect branches (CET's endbr64, BTI's bti c) stays
   * where it is: the jump goes after it. */
  uint32_t first = __atomic_load_n((uint32_t *)from, __ATOMIC_RELAXED);
  if (first == 0xFA1E0FF3u || first == 0xD503245Fu) a += 4;
  from = (void *)a;
  void *page = (void *)(a & ~(ps - 1));
  size_t len = a + 8 - (uintptr_t)page; /* the 8 bytes never cross a page */
  intptr_t rel = (intptr_t)to - (intptr_t)a;
#if defined(__x86_64__)
  rel -= 5; /* jmp rel32: from the end of its 5 bytes */
  /* Within one cache line: x86 stores those 8 bytes atomically. */
  if ((a & 63) > 56 || rel != (int32_t)rel) return -1;
#else
  if (a % 4 != 0 || rel % 4 != 0 || rel >= (1 << 27) || rel < -(1 << 27))
    return -1;
#endif
  if (mprotect(page, len, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) return -1;
#if defined(__x86_64__)
  /* One 8-byte store: E9 and rel32, then the original bytes 5 to 7. */
  uint64_t old, jump;
  memcpy(&old, from, 8);
  jump = (old & ~(uint64_t)0xFFFFFFFFFF) | 0xE9 | (uint64_t)(uint32_t)rel << 8;
  __atomic_store_n((volatile uint64_t *)from, jump, __ATOMIC_SEQ_CST);
#else
  uint32_t b = 0x14000000u | ((uint32_t)(rel >> 2) & 0x03FFFFFFu);
  __atomic_store_n((uint32_t *)from, b, __ATOMIC_SEQ_CST);
  __builtin___clear_cache((char *)from, (char *)from + 4);
#endif
  mprotect(page, len, PROT_READ | PROT_EXEC);
  return 0;
}
#endif

/* Once, after start-up: with prof=1, points the family's entry points at
 * their counting versions (see above).  Concurrent callers: the first
 * does it. */
static depot_noinline void choose_entries(void) {
  if (!depot_initialised() || atomic_exchange(&entries_chosen, 1)) return;
#if DEPOT_PROF_PATCH
  if (!depot_prof_on()) return;
  /* Only while no other thread exists: then no thread can be inside the
   * bytes the jump overwrites (a thread stopped after an entry point's
   * first instruction would resume in the middle of the jump). */
  if (depot_os_other_live_threads() != 0) {
    depot_say(
        "depot: prof: malloc and its family are not sampled: other threads "
        "were running when profiling started (their code is switched only "
        "while one thread exists); the DepotMem domains are");
    return;
  }
  for (size_t i = 0; i < N_ENTRIES; i++)
    if (write_jump((void *)entries[i].from, entries[i].to) != 0) {
      /* The ones before it stay switched: they are sampled. */
      depot_say(
          "depot: prof: cannot switch %s to its sampling version (its code "
          "cannot be made writable): it and the entry points after it "
          "(malloc, calloc, realloc, posix_memalign, aligned_alloc, "
          "memalign, in that order) are not sampled; the DepotMem domains "
          "are",
          entries[i].name);
      return;
    }
  /* The calls through PLT slots bound already skip the jump. */
  depot_plt_rebind(entries, N_ENTRIES, 1);
  atomic_store_explicit(&entries_switched, 1, memory_order_relaxed);
#endif
}

#if DEPOT_PROF_PATCH
/* Slots bound after start-up (a program without -z now binds each on its
 * first call) still reach the counting versions through the jump; the
 * samples numbered 1, 2, 4, ..., 64 look for them again (a pass costs
 * about 10,000 instructions), writable slots only, and only while no
 * thread but the first has allocated: a pass holds the loader's lock of
 * its object list (dl_iterate_phdr), which glibc's fork does not reset in
 * the child, so a fork by another thread during a pass would leave the
 * child's loader locked.  Slots bound once threads run keep the jump. */
static void rebind_later(void) {
  static _Atomic unsigned seen;
  if (!atomic_load_explicit(&entries_switched, memory_order_relaxed) ||
      depot_load_relaxed(&depot_threads_started) ||
      atomic_load_explicit(&seen, memory_order_relaxed) >= 64)
    return;
  unsigned n = atomic_fetch_add_explicit(&seen, 1, memory_order_relaxed) + 1;
  if ((n & (n - 1)) == 0) depot_plt_rebind(entries, N_ENTRIES, 0);
}
#else
static void rebind_later(void) {}
#endif

EXPORT DEPOT_PROF_TEXT void *NAME(valloc)(size_t size) {
  return NAME(memalign)(page_size(), size);
}

EXPORT DEPOT_PROF_TEXT void *NAME(pvalloc)(size_t size) {
  size_t ps = page_size();
  if (size > SIZE_MAX - ps) {
    errno = ENOMEM;
    return NULL;
  }
  size_t rounded = (size + ps - 1) & ~(ps - 1);
  return NAME(memalign)(ps, rounded ? rounded : ps);
}

EXPORT size_t NAME(malloc_usable_size)(void *p) {
  if (!p) return 0;
  if (depot_unlikely(depot_tcache_bypass) && depot_debug_c_mode())
    return depot_debug_c_usable(p); /* what the caller asked for */
  return depot_usable_size_fast(p); /* servers call it on every malloc */
}

/* Returns 1 if memory went back to the OS, 0 if there was none to return. */
EXPORT int NAME(malloc_trim)(size_t pad) {
  (void)pad;
  depot_core_stats_t before, after;
  depot_core_stats(&before);
  depot_trim();
  depot_core_stats(&after);
  return after.purged_pages > before.purged_pages;
}

EXPORT void NAME(malloc_stats)(void) { DepotMem_PrintStats(STDERR_FILENO, 0); }

/* ---- C23 sized frees, malloc_good_size ----------------------------------- */

/* In debug mode (the debug hooks on the raw domain: DEPOTMALLOC=debug or
 * malloc_debug, or DepotMem_SetupDebugHooks) the sized frees check what
 * they are told against the block: a size larger than the block, or a
 * block not at the stated alignment, is reported like any bad free (abort,
 * or with on_bad_free=warn a warning and the block leaked).  Without debug
 * mode they are free(). */
static int sized_free_ok(const char *op, void *p, size_t size, size_t align) {
  uint64_t requested;
  if (!p || !depot_debug_requested(RAW, &requested)) return 1;
  size_t usable =
      depot_debug_c_mode() ? depot_debug_c_usable(p) : depot_usable_size(p);
  if (usable == 0) return 1; /* not a block: depot_free reports it */
  const char *why = NULL;
  if (size > usable) why = "size larger than the block";
  else if (align && (!depot_is_pow2(align) || (uintptr_t)p % align))
    why = "block not at the stated alignment";
  if (!why) return 1;
  depot_bad_pointer(op, p, why);
  return 0;
}

EXPORT void NAME(free_sized)(void *p, size_t size) {
  if (sized_free_ok("free_sized", p, size, 0)) NAME(free)(p);
}

EXPORT void NAME(free_aligned_sized)(void *p, size_t align, size_t size) {
  if (sized_free_ok("free_aligned_sized", p, size, align)) NAME(free)(p);
}

/* The usable size malloc(size) returns (macOS and jemalloc have it): a
 * small block's class size, whole arena pages up to the huge threshold,
 * whole OS pages above it (the placement rule of alloc.c's big_alloc). */
EXPORT size_t NAME(malloc_good_size)(size_t size) {
  if (depot_debug_c_mode()) return size; /* debug blocks: exactly that */
  if (size <= DEPOT_SMALL_MAX)
    return depot_class_size[depot_size_to_class(size ? size : 1)];
  if (size > PTRDIFF_MAX || depot_init() != 0) return size;
  if (size > depot_options.huge_threshold_bytes) return depot_huge_usable(size);
  return (size + DEPOT_PAGE_SIZE - 1) & ~(DEPOT_PAGE_SIZE - 1);
}

/* ---- glibc's questions, Depot's answers ------------------------------------ */

/* The statistics in a block of Depot's own (they are large for a stack). */
static DepotMemStats *stats_now(void) {
  DepotMemStats *s = NAME(malloc)(sizeof *s);
  if (!s) return NULL;
  s->size = sizeof *s;
  DepotMem_Stats(s);
  return s;
}

/* arena: memory held in the heap region's spans; ordblks: free small
 * blocks; hblks/hblkhd: huge blocks, mapped one by one; uordblks: bytes in
 * use; fordblks: bytes held but free; keepcost: free pages not yet purged
 * (what a trim would return). */
EXPORT struct mallinfo2 NAME(mallinfo2)(void) {
  struct mallinfo2 mi;
  memset(&mi, 0, sizeof mi);
  DepotMemStats *s = stats_now();
  if (!s) return mi;
  uint64_t huge_blocks = 0, huge_bytes = 0;
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++) {
    huge_blocks += s->domains[d].huge.blocks_in_use;
    huge_bytes += s->domains[d].huge.bytes_held;
  }
  mi.arena = s->held_bytes > huge_bytes ? s->held_bytes - huge_bytes : 0;
  mi.ordblks = s->total.free_blocks;
  mi.hblks = huge_blocks;
  mi.hblkhd = huge_bytes;
  mi.uordblks = s->total.bytes_in_use;
  mi.fordblks = s->held_bytes > s->total.bytes_in_use
                    ? s->held_bytes - s->total.bytes_in_use
                    : 0;
  mi.keepcost = s->dirty_bytes;
  NAME(free)(s);
  return mi;
}

/* The same in int fields, which glibc's mallinfo truncates too. */
EXPORT struct mallinfo NAME(mallinfo)(void) {
  struct mallinfo2 m2 = NAME(mallinfo2)();
  struct mallinfo mi;
  memset(&mi, 0, sizeof mi);
  mi.arena = (int)m2.arena;
  mi.ordblks = (int)m2.ordblks;
  mi.hblks = (int)m2.hblks;
  mi.hblkhd = (int)m2.hblkhd;
  mi.uordblks = (int)m2.uordblks;
  mi.fordblks = (int)m2.fordblks;
  mi.keepcost = (int)m2.keepcost;
  return mi;
}

/* glibc's XML: one heap (Depot's, all domains and nodes), a <size> element
 * per size class with free blocks (from/to the class's range, total bytes
 * and count of its free blocks), totals, and the system figures. */
EXPORT int NAME(malloc_info)(int options, FILE *fp) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  DepotMemStats *s = stats_now();
  if (!s) return -1;
  unsigned long long free_count = 0, free_bytes = 0, huge_count = 0,
                     huge_bytes = 0;
  fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", fp);
  uint64_t from = 1;
  for (unsigned c = 0; c < DEPOT_STATS_CLASSES; c++) {
    uint64_t count = 0, size = s->domains[0].classes[c].block_size;
    if (!size) break; /* past the last class */
    for (unsigned d = 0; d < DEPOT_NDOMAINS; d++)
      count += s->domains[d].classes[c].free_blocks;
    if (count)
      fprintf(
          fp,
          "<size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n",
          (unsigned long long)from, (unsigned long long)size,
          (unsigned long long)(count * size), (unsigned long long)count);
    free_count += count;
    free_bytes += count * size;
    from = size + 1;
  }
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++) {
    huge_count += s->domains[d].huge.blocks_in_use;
    huge_bytes += s->domains[d].huge.bytes_held;
  }
  fprintf(fp,
          "</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
          "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
          "<system type=\"current\" size=\"%llu\"/>\n"
          "<system type=\"max\" size=\"%llu\"/>\n"
          "<aspace type=\"total\" size=\"%llu\"/>\n"
          "<aspace type=\"mprotect\" size=\"%llu\"/>\n</heap>\n",
          free_count, free_bytes, (unsigned long long)s->held_bytes,
          (unsigned long long)s->held_bytes,
          (unsigned long long)s->os_mapped_bytes,
          (unsigned long long)s->os_mapped_bytes);
  fprintf(fp,
          "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
          "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
          "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>\n"
          "<system type=\"current\" size=\"%llu\"/>\n"
          "<system type=\"max\" size=\"%llu\"/>\n"
          "<aspace type=\"total\" size=\"%llu\"/>\n"
          "<aspace type=\"mprotect\" size=\"%llu\"/>\n</malloc>\n",
          free_count, free_bytes, huge_count, huge_bytes,
          (unsigned long long)s->held_bytes, (unsigned long long)s->held_bytes,
          (unsigned long long)s->os_mapped_bytes,
          (unsigned long long)s->os_mapped_bytes);
  NAME(free)(s);
  return 0;
}

/* M_MMAP_THRESHOLD is Depot's huge threshold (within its range); every other parameter has no Depot equivalent and
 * returns 0, as glibc does for one it does not know.  1 on success. */
EXPORT int NAME(mallopt)(int param, int value) {
  char text[32];
  switch (param) {
    case M_MMAP_THRESHOLD:
      if (value < 0) return 0;
      snprintf(text, sizeof text, "%d", value);
      return DepotMem_SetOption("huge_threshold_bytes", text) == 0;
    default: return 0;
  }
}
