/* debug.c: the debug hooks (DepotMem_SetupDebugHooks, DEPOTMALLOC=debug).
 *
 * They wrap each domain's current allocator.  A debug block of n bytes,
 * with S = sizeof(size_t):
 *
 *   base                    p = base + 2S              p + n
 *   | n (S bytes) | id | S-1 x 0xFD | data (n bytes) | S x 0xFD | serial (S) |
 *
 * id is the domain's API letter ('r', 'm', 'o'); serial counts every debug
 * malloc and realloc.  Fresh data is filled with 0xCD (calloc: zeros), freed
 * blocks with 0xDD.  Free and realloc check, in order: that the pointer came
 * from Depot (when the wrapped allocator is Depot's own), the id, the
 * leading pad, the trailing pad; a violation prints one report and aborts.
 *
 * In debug mode (DEPOTMALLOC=debug, debug=1) the C library's family makes
 * the same blocks with id 'r' (it allocates in the raw domain, as
 * DepotMem_RawMalloc does, and the two stay interchangeable), through the
 * depot_debug_c_* functions below, which override.c calls.  An aligned
 * block (alignment A > 16) is made with A bytes before p instead of 2S:
 *
 *   real          p - 3S           p - 2S                 p = real + A
 *   | (unused)  | A (S bytes) | n | ALIGNED (S) | id | pad | data | ...
 *
 * and free finds real by trying p - 32, p - 64, ... for the live block that
 * contains p (Depot's classification never faults), before reading a byte.
 *
 * When the quarantine is on (quarantine.h) a freed block is held, filled,
 * and checked when it leaves, instead of going back at once. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "runtime/runtime.h"

#define SST sizeof(size_t)
#define OVERHEAD (4 * SST)
#define FORBIDDEN_BYTE 0xFD
#define CLEAN_BYTE 0xCD
#define DEAD_BYTE 0xDD
/* In the size word: an aligned block (see above). */
#define ALIGNED ((size_t)1 << (8 * SST - 1))

typedef struct {
  char api_id;
  unsigned domain;
  int installed;
  int base_is_depot;          /* base is Depot's own allocator of the domain */
  DepotMemAllocatorEx base;   /* the allocator the hooks wrap */
  _Atomic uint64_t requested; /* bytes asked for by live blocks; relaxed */
} debug_ctx_t;

static debug_ctx_t dbg[DEPOT_NDOMAINS] = {
    {.api_id = 'r', .domain = 0},
    {.api_id = 'm', .domain = 1},
    {.api_id = 'o', .domain = 2},
};
static debug_ctx_t cfam;              /* the C library's family: see below */
static _Atomic size_t serial_counter; /* relaxed: only needs uniqueness */

static size_t get_word(const unsigned char *q) {
  size_t v;
  memcpy(&v, q, SST);
  return v;
}
static size_t get_size(const unsigned char *q) {
  return get_word(q) & ~ALIGNED;
}

/* Who allocates with each API id, for the reports. */
static const char *family_of(unsigned char id) {
  switch (id) {
    case 'r': return "malloc's family or DepotMem_Raw*";
    case 'm': return "DepotMem_*";
    case 'o': return "DepotObject_*";
    default: return "?";
  }
}
static void put_size(unsigned char *q, size_t v) { memcpy(q, &v, SST); }

/* ---- reports ----------------------------------------------------------------- */

/* Describes the pad of len bytes at q, as CPython's dump does.  lead: the pad
 * just before p, whose bytes are named p-len .. p-1; else tail+0 .. */
static void dump_pad(int lead, const unsigned char *q, size_t len) {
  size_t bad = 0;
  for (size_t i = 0; i < len; i++) bad += q[i] != FORBIDDEN_BYTE;
  char where[48];
  if (lead) snprintf(where, sizeof where, "p-%zu", len);
  else snprintf(where, sizeof where, "tail=%p", (const void *)q);
  if (!bad) {
    depot_say(
        "    The %zu pad bytes at %s are FORBIDDENBYTE (0x%02x), as "
        "expected.",
        len, where, FORBIDDEN_BYTE);
    return;
  }
  depot_say("    The %zu pad bytes at %s are not all FORBIDDENBYTE (0x%02x):",
            len, where, FORBIDDEN_BYTE);
  for (size_t i = 0; i < len; i++) {
    const char *ouch = q[i] != FORBIDDEN_BYTE ? " *** OUCH" : "";
    if (lead) depot_say("        at p-%zu: 0x%02x%s", len - i, q[i], ouch);
    else depot_say("        at tail+%zu: 0x%02x%s", i, q[i], ouch);
  }
}

/* One report for the block at p, then abort.  usable: bytes known readable
 * from base (0: only the header is). */
static void __attribute__((noreturn))
fail(const debug_ctx_t *c, const char *op, const unsigned char *p,
     const char *what, size_t usable) {
  const unsigned char *base = p - 2 * SST;
  size_t n = get_size(base);
  int whole = usable && n <= usable - OVERHEAD;
  depot_say("Debug memory block at address p=%p: API '%c'", (const void *)p,
            base[SST] >= 0x20 && base[SST] < 0x7f ? base[SST] : '?');
  depot_say("    %zu bytes originally requested", n);
  dump_pad(1, base + SST + 1, SST - 1);
  if (whole) {
    dump_pad(0, p + n, SST);
    depot_say("    The block was made by call #%zu to debug malloc/realloc.",
              get_size(p + n + SST));
    char line[3 * 16 + 1];
    size_t shown = n < 16 ? n : 16;
    for (size_t i = 0; i < shown; i++) snprintf(line + 3 * i, 4, " %02x", p[i]);
    line[3 * shown] = 0;
    depot_say("    Data at p:%s%s", shown ? line : " (none)",
              n > shown ? " ..." : "");
  } else {
    depot_say("    (the size is not plausible: the tail is not shown)");
  }
  unsigned char id = base[SST];
  char ids[200];
  if (id == (unsigned char)c->api_id || id < 0x20 || id >= 0x7f)
    snprintf(ids, sizeof ids, "API '%c' used, block's API '%c')", c->api_id,
             id >= 0x20 && id < 0x7f ? id : '?');
  else
    snprintf(ids, sizeof ids,
             "API '%c' used, block's API '%c'); a block of %s "
             "passed to %s",
             c->api_id, id, family_of(id), family_of((unsigned char)c->api_id));
  depot_say("depot: debug hooks: %s(%p): %s (%s", op, (const void *)p, what,
            ids);
  abort();
}

/* The real start of an aligned block whose user pointer is p: the live
 * block, at p - 32, p - 64, ..., that contains p; NULL if none.  Reads
 * nothing of the program's memory. */
static unsigned char *aligned_start(unsigned char *p) {
  for (size_t a = 4 * SST; a && a <= ((size_t)1 << 30) && a <= (uintptr_t)p;
       a <<= 1) {
    unsigned char *r = p - a;
    if (depot_pointer_why(r) == NULL)
      return (size_t)(p - r) < depot_usable_size(r) ? r : NULL;
  }
  return NULL;
}

/* Checks the block at p for op; returns its header (p - 2S).  Never
 * returns on a bad block.  *real (if asked) is where the core's block
 * starts (the header, but for aligned blocks). */
static unsigned char *check_real(const debug_ctx_t *c, const char *op,
                                 void *ptr, unsigned char **real) {
  unsigned char *p = ptr, *base = p - 2 * SST, *r = base;
  size_t usable = 0;
  if (c->base_is_depot) {
    /* Only read the header once Depot vouches for it. */
    const char *why = depot_pointer_why(base);
    if (why) {
      r = aligned_start(p);
      if (r == NULL || r >= base || !(get_word(base) & ALIGNED) ||
          get_word(base - SST) != (size_t)(p - r)) {
        if (r != NULL || strcmp(why, DEPOT_WHY_INTERIOR) == 0)
          depot_say(
              "depot: debug hooks: %s(%p): an interior pointer (inside "
              "a block of Depot's, not one that API '%c' handed out)",
              op, ptr, c->api_id);
        else
          depot_say(
              "depot: debug hooks: %s(%p): not allocated by Depot's API "
              "'%c' (a foreign pointer, or freed already)",
              op, ptr, c->api_id);
        abort();
      }
    }
    usable = depot_usable_size(r) - (size_t)(base - r);
  }
  if (real) *real = r;
  /* Depot's free lists keep the free key in a freed block's second word,
   * where the id and the leading pads were.  Ask about the key before
   * comparing the id: the key is random and odd, so one process in 128 has
   * a key whose low byte is an odd id ('m', 'o'), and its double free was
   * reported as an underflow of the pads.  A live block's second word is
   * the id and seven FORBIDDEN_BYTEs, which a random key matches with odds
   * of 2^-56. */
  if (usable && depot_block_freed(base))
    fail(c, op, p, "bad ID: the block was freed already (double free?)",
         usable);
  if (base[SST] != (unsigned char)c->api_id)
    fail(c, op, p,
         base[SST] == DEAD_BYTE
             ? "bad ID: the block was freed already (double "
               "free?)"
             : "bad ID: the block belongs to another API",
         usable);
  for (size_t i = SST + 1; i < 2 * SST; i++)
    if (base[i] != FORBIDDEN_BYTE)
      fail(c, op, p, "bad leading pad byte (buffer underflow)", usable);
  size_t n = get_size(base);
  if (usable && n > usable - OVERHEAD)
    fail(c, op, p, "bad size in the header (buffer underflow)", usable);
  for (size_t i = 0; i < SST; i++)
    if (p[n + i] != FORBIDDEN_BYTE)
      fail(c, op, p, "bad trailing pad byte (buffer overflow)", usable);
  return base;
}

static unsigned char *check(const debug_ctx_t *c, const char *op, void *ptr) {
  return check_real(c, op, ptr, NULL);
}

/* Frees a checked block: filled with DEAD_BYTE, then held in the
 * quarantine or given back. */
static void release(debug_ctx_t *c, unsigned char *base, unsigned char *real) {
  unsigned char *p = base + 2 * SST;
  size_t n = get_size(base);
  size_t serial = get_word(p + n + SST);
  atomic_fetch_sub_explicit(&c->requested, n, memory_order_relaxed);
  memset(base, DEAD_BYTE, n + OVERHEAD);
  if (c->base_is_depot)
    depot_free_quarantined(real, c->domain, (size_t)(p - real), n, serial);
  else c->base.free(c->base.ctx, base);
}

/* ---- the hooks --------------------------------------------------------------- */

/* Writes the header and trailer of a block of n bytes at base; returns p. */
static void *finish(debug_ctx_t *c, unsigned char *base, size_t n) {
  unsigned char *p = base + 2 * SST;
  put_size(base, n);
  base[SST] = (unsigned char)c->api_id;
  memset(base + SST + 1, FORBIDDEN_BYTE, SST - 1);
  memset(p + n, FORBIDDEN_BYTE, SST);
  put_size(
      p + n + SST,
      atomic_fetch_add_explicit(&serial_counter, 1, memory_order_relaxed) + 1);
  atomic_fetch_add_explicit(&c->requested, n, memory_order_relaxed);
  return p;
}

static int too_big(size_t n) {
  if (n <= (size_t)PTRDIFF_MAX - OVERHEAD) return 0;
  errno = ENOMEM;
  return 1;
}

static void *debug_malloc(void *ctx, size_t n) {
  debug_ctx_t *c = ctx;
  if (too_big(n)) return NULL;
  unsigned char *base = c->base.malloc(c->base.ctx, n + OVERHEAD);
  if (!base) return NULL;
  void *p = finish(c, base, n);
  memset(p, CLEAN_BYTE, n);
  return p;
}

static void *debug_calloc(void *ctx, size_t nelem, size_t elsize) {
  debug_ctx_t *c = ctx;
  if (elsize && nelem > ((size_t)PTRDIFF_MAX - OVERHEAD) / elsize) {
    errno = ENOMEM;
    return NULL;
  }
  size_t n = nelem * elsize;
  unsigned char *base = c->base.calloc(c->base.ctx, 1, n + OVERHEAD);
  return base ? finish(c, base, n) : NULL;
}

static void debug_free(void *ctx, void *p) {
  debug_ctx_t *c = ctx;
  if (!p) return;
  unsigned char *real;
  unsigned char *base = check_real(c, "free", p, &real);
  release(c, base, real);
}

static void *debug_realloc(void *ctx, void *p, size_t n) {
  debug_ctx_t *c = ctx;
  if (!p) return debug_malloc(ctx, n);
  if (too_big(n)) return NULL;
  unsigned char *real;
  unsigned char *base = check_real(c, "realloc", p, &real);
  size_t old = get_size(base);
  if (real != base) { /* aligned: a fresh block, the old one released */
    unsigned char *q = debug_malloc(ctx, n);
    if (!q) return NULL;
    memcpy(q, p, old < n ? old : n);
    release(c, base, real);
    return q;
  }
  /* On failure the old block, header included, is untouched. */
  unsigned char *nb = c->base.realloc(c->base.ctx, base, n + OVERHEAD);
  if (!nb) return NULL;
  atomic_fetch_sub_explicit(&c->requested, old, memory_order_relaxed);
  unsigned char *q = finish(c, nb, n);
  if (n > old) memset(q + old, CLEAN_BYTE, n - old);
  return q;
}

void depot_debug_install(void) {
  for (unsigned d = 0; d < DEPOT_NDOMAINS; d++) {
    DepotMemAllocatorEx cur;
    depot_domain_get(d, &cur);
    if (cur.malloc == debug_malloc) continue;
    dbg[d].base = cur;
    dbg[d].base_is_depot = depot_domain_is_default(d, &cur);
    dbg[d].installed = 1;
    DepotMemAllocatorEx hooks = {&dbg[d], debug_malloc, debug_calloc,
                                 debug_realloc, debug_free};
    depot_domain_set(d, &hooks);
  }
}

void DepotMem_SetupDebugHooks(void) {
  depot_runtime_init();
  depot_debug_install();
}

int depot_debug_requested(unsigned domain, uint64_t *bytes) {
  int family = domain == DEPOT_DOMAIN_RAW && cfam.base_is_depot;
  if (domain >= DEPOT_NDOMAINS || !(dbg[domain].installed || family)) return 0;
  /* Blocks of API 'r' may be freed by the other context: add the two. */
  *bytes = atomic_load_explicit(&dbg[domain].requested, memory_order_relaxed);
  if (family)
    *bytes += atomic_load_explicit(&cfam.requested, memory_order_relaxed);
  return 1;
}

/* ---- the C library's family in debug mode (override.c) ------------------- */

/* The family's own context: always over Depot's raw allocator, whatever
 * the raw domain's hooks wrap (DEPOTMALLOC=malloc_debug routes the domains
 * to the C library, that is, to this family). */
static debug_ctx_t cfam = {.api_id = 'r', .domain = DEPOT_DOMAIN_RAW};

static void cfam_init(void) {
  depot_domain_default(DEPOT_DOMAIN_RAW, &cfam.base);
  cfam.base_is_depot = 1;
}

static debug_ctx_t *raw_ctx(void) { return &cfam; }

int depot_debug_c_mode(void) {
  /* 1 once start-up has decided that debug mode is off (it never changes
   * after): realloc and the other entry points that ask on every call pay
   * one relaxed load. */
  static _Atomic int off;
  if (atomic_load_explicit(&off, memory_order_relaxed)) return 0;
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  if (depot_init() != 0) return 0;
  if (!depot_options.debug) {
    atomic_store_explicit(&off, 1, memory_order_relaxed);
    return 0;
  }
  pthread_once(&once, cfam_init);
  return 1;
}

void *depot_debug_c_malloc(size_t n) { return debug_malloc(raw_ctx(), n); }

void *depot_debug_c_calloc(size_t nelem, size_t elsize) {
  return debug_calloc(raw_ctx(), nelem, elsize);
}

void depot_debug_c_free(void *p) {
  debug_ctx_t *c = raw_ctx();
  if (!p) return;
  unsigned char *real;
  unsigned char *base = check_real(c, "free", p, &real);
  release(c, base, real);
}

void *depot_debug_c_realloc(void *p, size_t n) {
  return debug_realloc(raw_ctx(), p, n);
}

void *depot_debug_c_aligned(size_t align, size_t n) {
  debug_ctx_t *c = raw_ctx();
  if (align <= 2 * SST) return debug_malloc(c, n);
  if (n > (size_t)PTRDIFF_MAX - OVERHEAD - align) {
    errno = ENOMEM;
    return NULL;
  }
  unsigned char *real =
      depot_aligned_alloc(align, align + n + 2 * SST, DEPOT_DOMAIN_RAW);
  if (!real) return NULL;
  unsigned char *p = finish(c, real + align - 2 * SST, n);
  put_size(p - 2 * SST, n | ALIGNED);
  put_size(p - 3 * SST, align);
  memset(p, CLEAN_BYTE, n);
  return p;
}

size_t depot_debug_c_usable(void *p) {
  return get_size(check(raw_ctx(), "malloc_usable_size", p));
}
