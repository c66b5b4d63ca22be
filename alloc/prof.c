/* prof.c: the heap profiler (see prof.h): the per-thread countdown to the
 * next sample point, the stack and sample tables, the profile writer.
 *
 * Tables (mapped once at start-up when prof=1, pages touched as used):
 *   stacks[]  distinct call stacks, written once under prof_lock, never
 *             changed; chained from buckets[] by hash; stack 0 collects the
 *             samples whose stack found the table full;
 *   counts[]  per stack: sampled objects and bytes in use and allocated;
 *   snap[]    the copy of counts[] a dump formats (owned by the dumper);
 *   peak[]    counts[] as they were at the highest in-use estimate;
 *   live[]    live samples by address (open addressing, linear probing,
 *             grown by doubling): the stack, size and weight of each.
 * Invariant (prof_lock): for every stack, live_objs and live_bytes are the
 * sums of objs and bytes over its entries in live[], and live_estimate is
 * the sum of their estimates.  A sample that realloc grows or shrinks stays
 * one sample (depot_prof_resize): its line follows its size class, and it
 * counts once as allocated, at the largest size it reached (top, on line
 * top_stack) since it was sampled or since the last reset.
 *
 * The profile's numbers are raw sample counts in requested bytes; the header
 * heap_v2/<prof_sample> tells pprof to scale each line by
 * 1 / (1 - exp(-average size / prof_sample)), the chance that a block of
 * that size holds a sample point, which makes the estimate unbiased. */
#define _GNU_SOURCE
#include "alloc/prof.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc/config.h"
#include "alloc/log.h"
#include "alloc/os.h"
#include "alloc/stacktrace.h"

int depot_prof_counting;
_Atomic size_t depot_prof_live_count;

typedef struct {
  uint64_t live_objs, live_bytes;   /* sampled, in use now */
  uint64_t alloc_objs, alloc_bytes; /* sampled, since start or reset */
} counts_t;

typedef struct {
  uint64_t hash;
  uint16_t depth;
  uint16_t size_class; /* size_class() of the samples counted here */
  uint32_t next;       /* next stack of the bucket, 1-based; 0 ends */
  void *frames[DEPOT_PROF_DEPTH];
} stack_rec_t;

typedef struct {
  uintptr_t addr;           /* 0: empty slot */
  uint64_t bytes, estimate; /* requested now; what it stands for */
  uint64_t top;             /* its allocated-since count: the largest size */
  uint32_t stack;           /* the line counting it in use */
  uint32_t top_stack;       /* the line counting top as allocated; NO_TOP:
                             * none (a reset came after its last growth) */
} live_t;
#define NO_TOP UINT32_MAX

#define BUCKETS (2 * DEPOT_PROF_STACKS)
#define LIVE_MIN 4096

static struct {
  int on;          /* prof=1 and the tables are mapped */
  double interval; /* prof_sample, mean bytes between sample points */
  stack_rec_t *stacks;
  counts_t *counts, *snap, *peak;
  uint32_t *buckets;
  uint32_t nstacks, peak_nstacks;
  live_t *live;
  size_t live_cap, live_n;
  uint64_t samples, dropped, live_est, peak_est, peak_captured, mark;
} P; /* all fields but on and interval: prof_lock */

static _Atomic uint64_t nested, dumps;
/* A spin lock: held for a few hundred instructions per sample (a dump's
 * copy of the counters is the longest hold); a pthread mutex cost 50
 * instructions a lock and unlock, twice per sample (its record and its
 * free). */
static depot_spin_t prof_lock;
/* One dump at a time owns snap[] and the output buffers. */
static _Atomic int dump_busy, dump_pending;
static _Atomic unsigned dump_seq;
static pid_t prof_pid;

/* Per thread.  One hidden struct rather than static variables: the
 * initial-exec model's offsets of static thread-locals in a shared object
 * came out wrong with this toolchain (they read their neighbours). */
typedef struct {
  uint64_t rng;   /* 0: not seeded yet */
  int in_prof;    /* taking a sample */
  int holds_lock; /* in (or entering) prof_lock */
  int dumping;    /* this thread owns dump_busy */
} prof_thread_t;
#define PROF_TLS __thread __attribute__((tls_model(DEPOT_TLS_MODEL)))

extern PROF_TLS prof_thread_t depot_prof_thread depot_hidden;
PROF_TLS prof_thread_t depot_prof_thread;
#define rng depot_prof_thread.rng
#define in_prof depot_prof_thread.in_prof
#define holds_lock depot_prof_thread.holds_lock
#define dumping depot_prof_thread.dumping

/* Linker-made bounds of DEPOT_PROF_TEXT (the allocation slow paths). */
extern char __start_depot_prof_text[]
    __attribute__((weak, visibility("hidden")));
extern char __stop_depot_prof_text[]
    __attribute__((weak, visibility("hidden")));

static int dump_now(const char *path, const char *kind, int from_signal);

/* ---- the table lock --------------------------------------------------------
 * holds_lock is set before the lock is taken, so that a signal handler on
 * this thread never waits for a lock its own thread holds. */
static void lock(void) {
  holds_lock = 1;
  /* The signal fences (compiler barriers, no instruction) keep holds_lock
   * set all the while this thread may hold the lock, as this thread's
   * signal handler sees it: the spin lock is inline atomics, which a
   * compiler may move a plain store across (acquire lets an earlier one
   * sink after it, release a later one rise before it), where the
   * pthread mutex it replaced was an opaque call. */
  atomic_signal_fence(memory_order_seq_cst);
  depot_spin_lock(&prof_lock);
}
static void unlock(void) {
  depot_spin_unlock(&prof_lock);
  atomic_signal_fence(memory_order_seq_cst);
  holds_lock = 0;
  /* A signal asked for a dump while this thread held the lock. */
  if (!dumping && depot_load_relaxed(&dump_pending) &&
      atomic_exchange(&dump_pending, 0))
    dump_now(NULL, "signal", 0);
}

void depot_prof_prefork(void) { lock(); }
void depot_prof_postfork(void) {
  if (getpid() != prof_pid) { /* the child: only this thread is left */
    prof_pid = getpid();
    depot_store_relaxed(&dump_busy, 0);
    depot_store_relaxed(&dump_pending, 0);
  }
  depot_spin_unlock(&prof_lock);
  atomic_signal_fence(memory_order_seq_cst); /* as unlock */
  holds_lock = 0;
}

/* ---- numbers: no libm ------------------------------------------------------ */

/* ln(u) for u in (0, 1]: u = m * 2^e with m in [0.7, 1.4), ln m by the
 * atanh series (|t| < 0.18, so 6 terms give 1e-10). */
static double ln(double u) {
  uint64_t b;
  memcpy(&b, &u, sizeof b);
  int e = (int)((b >> 52) & 0x7ff) - 1023;
  b = (b & (((uint64_t)1 << 52) - 1)) | ((uint64_t)1023 << 52);
  double m;
  memcpy(&m, &b, sizeof m);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  double t = (m - 1) / (m + 1), t2 = t * t;
  double s =
      2 * t *
      (1 + t2 * (1.0 / 3 +
                 t2 * (1.0 / 5 +
                       t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 * (1.0 / 11))))));
  return s + e * 0.6931471805599453;
}

/* 1/i for i < 20: the series below multiply by these rather than divide
 * (a division costs 15-20 cycles, and every sample computes its weight). */
static const double inv[20] = {
    0,        1,        1.0 / 2,  1.0 / 3,  1.0 / 4,  1.0 / 5,  1.0 / 6,
    1.0 / 7,  1.0 / 8,  1.0 / 9,  1.0 / 10, 1.0 / 11, 1.0 / 12, 1.0 / 13,
    1.0 / 14, 1.0 / 15, 1.0 / 16, 1.0 / 17, 1.0 / 18, 1.0 / 19};

/* 1 - exp(-x) for x >= 0, without cancellation for small x. */
static double one_minus_exp_neg(double x) {
  if (x < 0x1p-6) {
    /* The common case (blocks below 8 KiB at the default interval): five
     * terms, relative error below x^5 / 720 < 2e-12. */
    return x *
           (1 - x * 0.5 * (1 - x * inv[3] * (1 - x * 0.25 * (1 - x * 0.2))));
  }
  if (x < 0.5) {
    /* x (1 - x/2 (1 - x/3 (1 - ...))): 13 terms, error below 1e-14. */
    double sum = 1;
    for (int i = 13; i >= 2; i--) sum = 1 - x * inv[i] * sum;
    return x * sum;
  }
  if (x > 40) return 1;
  /* exp(-x) = 2^-k exp(-r), r in [0, ln 2). */
  int k = (int)(x / 0.6931471805599453);
  double r = x - k * 0.6931471805599453, term = 1, e = 1;
  for (int i = 1; i < 18; i++) {
    term *= -r * inv[i];
    e += term;
  }
  while (k-- > 0) e *= 0.5;
  return 1 - e;
}

/* The unbiased estimate of the bytes that objs samples of bytes in all
 * stand for (what pprof computes from a heap_v2 line). */
static uint64_t estimate(uint64_t bytes, uint64_t objs) {
  if (objs == 0) return 0;
  double p = one_minus_exp_neg((double)bytes / (double)objs / P.interval);
  return p > 0 ? (uint64_t)((double)bytes / p) : bytes;
}

static uint64_t next_random(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1DULL;
}

/* Bytes to the next sample point: exponential with mean prof_sample. */
static int64_t draw(void) {
  double u = (double)((next_random() >> 11) + 1) * 0x1p-53; /* (0, 1] */
  double v = -ln(u) * P.interval;
  if (v < 1) return 1;
  if (v > 0x1p62) return (int64_t)1 << 62;
  return (int64_t)v;
}

/* ---- sampling ---------------------------------------------------------------
 * depot_prof_left is a thread's distance in bytes to its next sample point,
 * drawn from the exponential distribution of mean prof_sample; the entry
 * points subtract each request from it (prof.h).  The allocation that takes
 * it below zero holds the point and is the sample; the rest of that block
 * is skipped and the distance drawn afresh, which the exponential's lack of
 * memory allows.  So a block of s bytes is sampled with probability
 * 1 - exp(-s / prof_sample) whatever came before it, and every sample is
 * one block. */
DEPOT_PROF_TEXT int depot_prof_due(size_t size) {
  if (!P.on) { /* prof=0: never come back */
    depot_prof_left = INT64_MAX;
    return 0;
  }
  if (depot_unlikely(rng == 0)) {
    /* The thread's first allocation: its first distance starts here. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rng = ((uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL) ^
          (uint64_t)(uintptr_t)&depot_prof_left ^
          ((uint64_t)syscall(SYS_gettid) << 32) ^ (uint64_t)ts.tv_sec;
    if (rng == 0) rng = 1;
    int64_t first = draw();
    if ((uint64_t)first >= size) {
      depot_prof_left = first - (int64_t)size;
      return 0;
    }
  }
  depot_prof_left = draw();
  /* While prof_active=0 the countdown runs on, so that switching it back
   * on samples without bias at once. */
  if (!depot_config_live(DEPOT_CONF_prof_active)) return 0;
  if (in_prof) {
    depot_add_relaxed(&nested, 1);
    return 0;
  }
  return 1;
}

/* Samples are counted by stack and by size class: pprof scales each line of
 * a profile by 1 / (1 - exp(-average size / prof_sample)), which is the
 * right weight for each sample only when the line's sizes are alike.  Four
 * classes per power of two: sizes in a class differ by less than 19%, so
 * the line's estimate is within a fraction of a percent of the sum of its
 * samples' own. */
static unsigned size_class(size_t size) {
  if (size < 4) return (unsigned)size;
  unsigned lg = 63u - (unsigned)__builtin_clzll((unsigned long long)size);
  return 4 * lg + (unsigned)((size >> (lg - 2)) & 3);
}

static uint64_t hash_frames(void *const *f, unsigned n) {
  uint64_t h = 0xcbf29ce484222325ULL ^ n;
  for (unsigned i = 0; i < n; i++) {
    h ^= (uint64_t)(uintptr_t)f[i];
    h *= 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return h;
}

/* The stack's index, inserted if new; 0 when the table is full. */
static uint32_t stack_get(uint64_t h, void *const *f, unsigned n,
                          unsigned cls) {
  h ^= (uint64_t)cls * 0x9E3779B97F4A7C15ULL;
  uint32_t *head = &P.buckets[h & (BUCKETS - 1)];
  for (uint32_t i = *head; i; i = P.stacks[i - 1].next) {
    stack_rec_t *s = &P.stacks[i - 1];
    if (s->hash == h && s->depth == n && s->size_class == cls &&
        memcmp(s->frames, f, n * sizeof *f) == 0)
      return i - 1;
  }
  if (P.nstacks == DEPOT_PROF_STACKS) return 0;
  uint32_t i = P.nstacks++;
  stack_rec_t *s = &P.stacks[i];
  s->hash = h;
  s->depth = (uint16_t)n;
  s->size_class = (uint16_t)cls;
  memcpy(s->frames, f, n * sizeof *f);
  s->next = *head;
  *head = i + 1;
  return i;
}

static size_t live_slot(uintptr_t a, size_t cap) {
  return (size_t)(((a >> 4) * 0x9E3779B97F4A7C15ULL) >> 20) & (cap - 1);
}

/* Maps a table of cap empty slots and moves every live entry into it. */
static int live_grow(size_t cap) {
  void *m;
  if (depot_os_map(cap * sizeof(live_t), DEPOT_PAGE_SIZE, &m) != 0) return -1;
  live_t *t = m;
  for (size_t i = 0; i < P.live_cap; i++) {
    if (!P.live[i].addr) continue;
    size_t j = live_slot(P.live[i].addr, cap);
    while (t[j].addr) j = (j + 1) & (cap - 1);
    t[j] = P.live[i];
  }
  if (P.live) depot_os_release(P.live, P.live_cap * sizeof(live_t));
  P.live = t;
  P.live_cap = cap;
  return 0;
}

static live_t *live_find(uintptr_t a) {
  if (!P.live) return NULL;
  for (size_t j = live_slot(a, P.live_cap); P.live[j].addr;
       j = (j + 1) & (P.live_cap - 1))
    if (P.live[j].addr == a) return &P.live[j];
  return NULL;
}

/* Empties slot i, moving later entries of its probe run back into it. */
static void live_delete(size_t i) {
  size_t mask = P.live_cap - 1;
  for (size_t j = (i + 1) & mask; P.live[j].addr; j = (j + 1) & mask) {
    size_t home = live_slot(P.live[j].addr, P.live_cap);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      P.live[i] = P.live[j];
      i = j;
    }
  }
  P.live[i].addr = 0;
  P.live_n--;
}

/* After live_est grew (prof_lock held): the peak copy and the interval
 * mark.  Returns 1 when an interval profile is due. */
static int grew(void) {
  if (P.live_est > P.peak_est) {
    P.peak_est = P.live_est;
    /* The peak copy is taken again when the heap has grown by 1/32
     * since the last one: copying at every new high would cost a table
     * copy per sample while the heap grows. */
    if (depot_options.prof_peak &&
        P.live_est >= P.peak_captured + P.peak_captured / 32) {
      memcpy(P.peak, P.counts, P.nstacks * sizeof(counts_t));
      P.peak_nstacks = P.nstacks;
      P.peak_captured = P.live_est;
    }
  }
  size_t every = depot_options.prof_interval;
  if (every && P.live_est >= P.mark + every) {
    P.mark = P.live_est;
    return 1;
  }
  return 0;
}

/* Whether frame address a lies in the allocation slow paths. */
static int own_frame(const void *a) {
  return (const char *)a >= __start_depot_prof_text &&
         (const char *)a < __stop_depot_prof_text;
}

DEPOT_PROF_TEXT void depot_prof_record(void *p, size_t requested) {
  if (!P.on) return;
  if (in_prof) {
    depot_add_relaxed(&nested, 1);
    return;
  }
  in_prof = 1;
  void *raw[DEPOT_PROF_DEPTH + 16];
  unsigned n = depot_stacktrace(raw, DEPOT_PROF_DEPTH + 16, 0), first = 0;
  while (first < n && own_frame(raw[first])) first++;
  void **f = raw + first;
  n -= first;
  if (n > DEPOT_PROF_DEPTH) n = DEPOT_PROF_DEPTH;
  uint64_t h = hash_frames(f, n);
  uint64_t bytes = requested, est = estimate(bytes, 1);
  int interval_due = 0;
  lock();
  if (P.live_n * 2 >= P.live_cap &&
      live_grow(P.live_cap ? 2 * P.live_cap : LIVE_MIN) != 0) {
    P.dropped++;
  } else {
    uint32_t s = stack_get(h, f, n, size_class(requested));
    if (s == 0) P.dropped++;
    size_t j = live_slot((uintptr_t)p, P.live_cap);
    while (P.live[j].addr) j = (j + 1) & (P.live_cap - 1);
    P.live[j] = (live_t){(uintptr_t)p, bytes, est, bytes, s, s};
    P.live_n++;
    depot_add_relaxed(&depot_prof_live_count, 1);
    counts_t *c = &P.counts[s];
    c->live_objs++;
    c->live_bytes += bytes;
    c->alloc_objs++;
    c->alloc_bytes += bytes;
    P.samples++;
    P.live_est += est;
    interval_due = grew();
  }
  unlock();
  in_prof = 0;
  if (interval_due) dump_now(NULL, "interval", 0);
}

/* Stack s's line for samples of the given size: the same frames in that
 * size's class (stack 0, the full table's, keeps them all). */
static uint32_t restack(uint32_t s, size_t requested) {
  unsigned cls = size_class(requested);
  const stack_rec_t *r = &P.stacks[s];
  if (s == 0 || r->size_class == cls) return s;
  return stack_get(r->hash ^ (uint64_t)r->size_class * 0x9E3779B97F4A7C15ULL,
                   r->frames, r->depth, cls);
}

int depot_prof_resize(const void *old, void *p, size_t requested) {
  if (!P.on) return 0;
  uint64_t est = estimate(requested, 1);
  int interval_due = 0;
  lock();
  live_t *e = live_find((uintptr_t)old);
  if (e) {
    live_t v = *e;
    counts_t *c = &P.counts[v.stack];
    c->live_objs--;
    c->live_bytes -= v.bytes;
    uint32_t s = restack(v.stack, requested);
    c = &P.counts[s];
    c->live_objs++;
    c->live_bytes += requested;
    if (v.top_stack == NO_TOP || requested > v.top) {
      if (v.top_stack != NO_TOP) {
        P.counts[v.top_stack].alloc_objs--;
        P.counts[v.top_stack].alloc_bytes -= v.top;
      }
      c->alloc_objs++;
      c->alloc_bytes += requested;
      v.top = requested;
      v.top_stack = s;
    }
    uint64_t was = P.live_est;
    P.live_est = P.live_est - v.estimate + est;
    v.bytes = requested;
    v.estimate = est;
    v.stack = s;
    v.addr = (uintptr_t)p;
    if (p == old) {
      *e = v;
    } else { /* moved: its slot follows its address */
      live_delete((size_t)(e - P.live));
      size_t j = live_slot(v.addr, P.live_cap);
      while (P.live[j].addr) j = (j + 1) & (P.live_cap - 1);
      P.live[j] = v;
      P.live_n++;
    }
    if (P.live_est > was) interval_due = grew();
    else if (P.live_est < P.mark) P.mark = P.live_est;
  }
  unlock();
  if (interval_due) dump_now(NULL, "interval", 0);
  return e != NULL;
}

int depot_prof_is_sample(const void *p) {
  if (!P.on) return 0;
  lock();
  int found = live_find((uintptr_t)p) != NULL;
  unlock();
  return found;
}

int depot_prof_release(const void *p) {
  if (!P.on) return 0;
  lock();
  live_t *e = live_find((uintptr_t)p);
  if (e) {
    counts_t *c = &P.counts[e->stack];
    c->live_objs--;
    c->live_bytes -= e->bytes;
    P.live_est -= e->estimate;
    if (P.live_est < P.mark) P.mark = P.live_est;
    live_delete((size_t)(e - P.live));
    depot_sub_relaxed(&depot_prof_live_count, 1);
  }
  unlock();
  return e != NULL;
}

/* ---- start-up and switches ------------------------------------------------- */

int depot_prof_init(void) {
  prof_pid = getpid();
  if (!depot_options.prof) return 0;
  size_t stacks = DEPOT_PROF_STACKS * sizeof(stack_rec_t);
  size_t counts = DEPOT_PROF_STACKS * sizeof(counts_t);
  size_t total = stacks + 3 * counts + BUCKETS * sizeof(uint32_t);
  void *m;
  if (depot_os_map(depot_align_up(total, DEPOT_PAGE_SIZE), DEPOT_PAGE_SIZE,
                   &m) != 0) {
    depot_say(
        "depot: prof: cannot map the sample tables (%zu bytes); "
        "profiling is off",
        total);
    return 0;
  }
  char *c = m;
  P.stacks = (stack_rec_t *)c;
  P.counts = (counts_t *)(c + stacks);
  P.snap = (counts_t *)(c + stacks + counts);
  P.peak = (counts_t *)(c + stacks + 2 * counts);
  P.buckets = (uint32_t *)(c + stacks + 3 * counts);
  /* Stack 0: samples whose stack found the table full.  Its one frame is
   * this function, so that pprof names it. */
  P.stacks[0].depth = 1;
  P.stacks[0].frames[0] = (void *)(uintptr_t)depot_prof_init;
  P.nstacks = 1;
  P.interval = (double)depot_options.prof_sample;
  P.on = 1;
  depot_prof_counting = 1;
  return 0;
}

int depot_prof_on(void) { return P.on; }

void depot_prof_reset(void) {
  if (!P.on) return;
  lock();
  for (uint32_t i = 0; i < P.nstacks; i++)
    P.counts[i].alloc_objs = P.counts[i].alloc_bytes = 0;
  /* Live samples no longer count as allocated: one that grows later
   * counts again, at its new size. */
  for (size_t i = 0; i < P.live_cap; i++) P.live[i].top_stack = NO_TOP;
  unlock();
}

void depot_prof_get_stats(depot_prof_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->nested = depot_load_relaxed(&nested);
  out->dumps = depot_load_relaxed(&dumps);
  if (!P.on) return;
  lock();
  out->samples = P.samples;
  out->live_samples = P.live_n;
  out->stacks = P.nstacks;
  out->dropped = P.dropped;
  out->live_estimate = P.live_est;
  out->peak_estimate = P.peak_est;
  out->table_bytes = P.live_cap * sizeof(live_t) +
                     P.nstacks * (sizeof(stack_rec_t) + 3 * sizeof(counts_t)) +
                     BUCKETS * sizeof(uint32_t);
  unlock();
}

/* ---- writing -----------------------------------------------------------------
 * Everything below runs with dump_busy owned: the buffers are static, and
 * nothing allocates. */

depot_sparse_bss static char obuf[1 << 16];
static size_t olen;
static int ofd;
static char opath[512];

static void out_flush(void) {
  for (size_t done = 0; done < olen;) {
    ssize_t w = write(ofd, obuf + done, olen - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += (size_t)w;
  }
  olen = 0;
}
static void out_str(const char *s) {
  for (; *s; s++) {
    if (olen == sizeof obuf) out_flush();
    obuf[olen++] = *s;
  }
}
static void fmt_u(char *buf, uint64_t v, unsigned base) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
  buf[n] = 0;
}
static void out_u(uint64_t v) {
  char b[24];
  fmt_u(b, v, 10);
  out_str(b);
}
static void out_hex(uint64_t v) {
  char b[24];
  fmt_u(b, v, 16);
  out_str("0x");
  out_str(b);
}

/* <prof_prefix>.<pid>.<seq>.<kind>.heap into opath. */
static void name_file(const char *kind) {
  char num[24];
  size_t n = 0;
  const char *parts[8] = {
      depot_options.prof_prefix, ".", NULL, ".", NULL, ".", kind, ".heap"};
  char pid[24];
  fmt_u(pid, (uint64_t)getpid(), 10);
  fmt_u(num, atomic_fetch_add(&dump_seq, 1), 10);
  parts[2] = pid;
  parts[4] = num;
  for (int i = 0; i < 8; i++)
    for (const char *s = parts[i]; *s && n + 1 < sizeof opath; s++)
      opath[n++] = *s;
  opath[n] = 0;
}

static void write_maps(void) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  out_flush();
  for (;;) {
    ssize_t r = read(fd, obuf, sizeof obuf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    olen = (size_t)r;
    out_flush();
  }
  close(fd);
}

/* Writes snap[0..n) to opath. */
static int write_profile(uint32_t n) {
  ofd = open(opath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (ofd < 0) return errno;
  olen = 0;
  counts_t t = {0, 0, 0, 0};
  for (uint32_t i = 0; i < n; i++) {
    t.live_objs += P.snap[i].live_objs;
    t.live_bytes += P.snap[i].live_bytes;
    t.alloc_objs += P.snap[i].alloc_objs;
    t.alloc_bytes += P.snap[i].alloc_bytes;
  }
  out_str("heap profile: ");
  out_u(t.live_objs);
  out_str(": ");
  out_u(t.live_bytes);
  out_str(" [");
  out_u(t.alloc_objs);
  out_str(": ");
  out_u(t.alloc_bytes);
  out_str("] @ heap_v2/");
  out_u((uint64_t)P.interval);
  out_str("\n");
  for (uint32_t i = 0; i < n; i++) {
    const counts_t *c = &P.snap[i];
    if (!c->live_objs && !c->alloc_objs) continue;
    out_u(c->live_objs);
    out_str(": ");
    out_u(c->live_bytes);
    out_str(" [");
    out_u(c->alloc_objs);
    out_str(": ");
    out_u(c->alloc_bytes);
    out_str("] @");
    for (uint32_t k = 0; k < P.stacks[i].depth; k++) {
      out_str(" ");
      out_hex((uint64_t)(uintptr_t)P.stacks[i].frames[k]);
    }
    out_str("\n");
  }
  out_str("\nMAPPED_LIBRARIES:\n");
  write_maps();
  out_flush();
  close(ofd);
  depot_add_relaxed(&dumps, 1);
  return 0;
}

/* One frame as "function+0xoffset (object)" when the loader knows a name.
 * dladdr allocates nothing; it takes the loader's lock, which is why only
 * the report at exit calls it. */
static void describe_frame(void *a, char *buf, size_t len) {
  Dl_info info;
  memset(&info, 0, sizeof info);
  int known = dladdr(a, &info) != 0;
  char hex[24];
  fmt_u(hex, (uint64_t)(uintptr_t)a, 16);
  size_t n = 0;
  const char *s;
#define PUT(str) \
  for (s = (str); *s && n + 1 < len; s++) buf[n++] = *s
  if (known && info.dli_sname) {
    char off[24];
    fmt_u(off, (uint64_t)((char *)a - (char *)info.dli_saddr), 16);
    PUT(info.dli_sname);
    PUT("+0x");
    PUT(off);
  } else {
    PUT("0x");
    PUT(hex);
  }
  if (known && info.dli_fname) {
    const char *base = strrchr(info.dli_fname, '/');
    PUT(" (");
    PUT(base ? base + 1 : info.dli_fname);
    PUT(")");
  }
#undef PUT
  buf[n] = 0;
}

/* The leak report (snap[] holds the counts at exit). */
static void leak_report(uint32_t n) {
  uint64_t bytes = 0, objs = 0;
  uint32_t stacks = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (!P.snap[i].live_objs) continue;
    stacks++;
    bytes += estimate(P.snap[i].live_bytes, P.snap[i].live_objs);
    objs +=
        (uint64_t)((double)estimate(P.snap[i].live_bytes, P.snap[i].live_objs) *
                   P.snap[i].live_objs / P.snap[i].live_bytes);
  }
  if (!stacks) { /* silence, as a clean exit elsewhere (verbose=1 says it) */
    if (depot_options.verbose)
      depot_say(
          "depot: prof: no leaks: no sampled block is still in use at "
          "exit");
    return;
  }
  depot_say(
      "depot: prof: leaks: about %llu bytes in %llu blocks from %u "
      "stacks are still in use at exit (estimated from samples); "
      "profile %s",
      (unsigned long long)bytes, (unsigned long long)objs, stacks, opath);
  /* The ten largest, by estimate. */
  uint8_t shown[DEPOT_PROF_STACKS / 8] = {0};
  for (int k = 0; k < 10; k++) {
    uint32_t best = n;
    uint64_t best_est = 0;
    for (uint32_t i = 0; i < n; i++) {
      if (!P.snap[i].live_objs || (shown[i / 8] >> (i % 8) & 1)) continue;
      uint64_t e = estimate(P.snap[i].live_bytes, P.snap[i].live_objs);
      if (best == n || e > best_est) best = i, best_est = e;
    }
    if (best == n) break;
    shown[best / 8] |= (uint8_t)(1u << (best % 8));
    char line[768];
    size_t len = 0;
    for (uint32_t f = 0; f < P.stacks[best].depth && f < 6; f++) {
      char fr[160];
      describe_frame(P.stacks[best].frames[f], fr, sizeof fr);
      for (const char *s = f ? " < " : ""; *s && len + 1 < sizeof line; s++)
        line[len++] = *s;
      for (const char *s = fr; *s && len + 1 < sizeof line; s++)
        line[len++] = *s;
    }
    line[len] = 0;
    depot_say("depot: prof: leak: ~%llu bytes: %s",
              (unsigned long long)best_est, line);
  }
  depot_say(
      "depot: prof: google-pprof --text --inuse_space <program> %s "
      "names every function",
      opath);
}

static int dump_body(const char *path, const char *kind, int from_signal);

/* Takes a dump: copies the counters under the lock, then writes them.
 * Writing calls open/write/close, which are cancellation points, from
 * inside malloc and free (interval and pending signal dumps): cancellation
 * is off meanwhile, so that neither dump_busy nor the lock is ever left
 * held and malloc and free stay non-cancellation points, as POSIX says
 * (glibc's pthread_setcancelstate only flips bits of the thread's own
 * descriptor, so it is also safe in the signal path). */
static int dump_now(const char *path, const char *kind, int from_signal) {
  if (!P.on) return EINVAL;
  int old;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  int err = dump_body(path, kind, from_signal);
  pthread_setcancelstate(old, NULL);
  return err;
}

static int dump_body(const char *path, const char *kind, int from_signal) {
  if (from_signal) {
    if (dumping || atomic_exchange(&dump_busy, 1)) {
      depot_store_relaxed(&dump_pending, 1);
      return EAGAIN;
    }
  } else {
    while (atomic_exchange(&dump_busy, 1)) sched_yield();
  }
  dumping = 1;
  int peak = strcmp(kind, "peak") == 0;
  uint32_t n;
  if (from_signal) {
    /* Never wait for a lock this thread holds: leave the dump to it. */
    for (;;) {
      if (holds_lock) {
        depot_store_relaxed(&dump_pending, 1);
        dumping = 0;
        depot_store_release(&dump_busy, 0);
        return EAGAIN;
      }
      if (!depot_load_relaxed(&prof_lock) &&
          !atomic_exchange_explicit(&prof_lock, 1, memory_order_acquire))
        break; /* taken, as depot_spin_lock would */
      sched_yield();
    }
    holds_lock = 1;
  } else {
    lock();
  }
  n = peak ? P.peak_nstacks : P.nstacks;
  memcpy(P.snap, peak ? P.peak : P.counts, n * sizeof(counts_t));
  unlock();
  if (path) {
    size_t len = strlen(path);
    if (len >= sizeof opath) len = sizeof opath - 1;
    memcpy(opath, path, len);
    opath[len] = 0;
  } else {
    name_file(kind);
  }
  int err = write_profile(n);
  if (err == 0 && strcmp(kind, "leak") == 0) leak_report(n);
  dumping = 0;
  depot_store_release(&dump_busy, 0);
  if (depot_load_relaxed(&dump_pending) && atomic_exchange(&dump_pending, 0))
    dump_now(NULL, "signal", 0);
  return err;
}

int depot_prof_dump(const char *path, const char *kind) {
  return dump_now(path, kind, 0);
}

void depot_prof_dump_from_signal(void) {
  int saved = errno;
  dump_now(NULL, "signal", 1);
  errno = saved;
}

void depot_prof_at_exit(void) {
  if (!P.on) return;
  if (depot_options.prof_final) dump_now(NULL, "final", 0);
  if (depot_options.prof_peak) dump_now(NULL, "peak", 0);
  if (depot_options.prof_leak) dump_now(NULL, "leak", 0);
}
