/* stress.c: depot-stress, the stress tool.
 *
 * Worker threads run a seeded mix of what real programs do: malloc/free of
 * small, medium, large and huge blocks, realloc chains that grow and
 * shrink, calloc (checked zero), aligned allocation, blocks handed between
 * threads through a shared array of slots and freed by another thread, every
 * PyMem-style domain, a long-lived working set beside short-lived churn,
 * heaps (DepotHeap_*): shared ones every worker allocates from and frees
 * into at once, and each worker's own, which it resets or destroys and
 * remakes while the others run.
 * Workers exit after a random number of operations, handing their
 * long-lived blocks on, and are replaced.  Every block is filled with a
 * pattern derived from its address, size and the seed, and checked before
 * it is freed or reallocated: a mismatch stops the run with the seed, the
 * thread, the operation number and the block, and exit status 1.
 *
 *   tools/bazelw run //tools:stress -- --help
 */
#define _GNU_SOURCE
#include <depot/depot.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc/alloc_api.h"
#include "alloc/os.h"

/* ---- options -------------------------------------------------------------- */

static struct {
  unsigned threads;
  double seconds;
  unsigned long long ops; /* 0: run for `seconds` */
  unsigned long long seed;
  int system; /* --allocator system */
  double fault_rate;
  unsigned fault_every;
  unsigned weights[4]; /* small, medium, large, huge */
  unsigned slots;
} opt = {0, 10.0, 0, 1, 0, 0.0, 0, {70, 25, 5, 1}, 1024};

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: stress [options]\n"
      "  --threads N        worker threads at once (default: CPUs x 2)\n"
      "  --seconds S        run for S seconds (default 10)\n"
      "  --ops N            run for N operations in all instead\n"
      "  --seed X           seed; the same seed gives each worker the same\n"
      "                     sequence of operations (default 1)\n"
      "  --allocator A      depot (default) or system (the C library)\n"
      "  --fault-rate R     make each OS reserve/commit fail with probability "
      "R\n"
      "  --fault-every N    make every Nth OS reserve/commit fail\n"
      "  --sizes a,b,c,d    weights of small (<=1 KiB), medium (<=32 KiB),\n"
      "                     large (<=1 MiB) and huge (2..8 MiB) sizes\n"
      "                     (default 70,25,5,1)\n"
      "  --slots N          shared hand-off slots (default 1024)\n"
      "  --help             this text\n"
      "Exit status: 0 ok, 1 a block was corrupted, 2 bad usage.\n");
}

static int parse_args(int argc, char **argv) {
  static const struct option longs[] = {{"threads", 1, 0, 't'},
                                        {"seconds", 1, 0, 's'},
                                        {"ops", 1, 0, 'o'},
                                        {"seed", 1, 0, 'x'},
                                        {"allocator", 1, 0, 'a'},
                                        {"fault-rate", 1, 0, 'f'},
                                        {"fault-every", 1, 0, 'e'},
                                        {"sizes", 1, 0, 'z'},
                                        {"slots", 1, 0, 'l'},
                                        {"help", 0, 0, 'h'},
                                        {0, 0, 0, 0}};
  int c, li = 0;
  char *end;
  while ((c = getopt_long(argc, argv, "", longs, &li)) != -1) {
    errno = 0;
    switch (c) {
      case 't': opt.threads = (unsigned)strtoul(optarg, &end, 10); break;
      case 's': opt.seconds = strtod(optarg, &end); break;
      case 'o': opt.ops = strtoull(optarg, &end, 10); break;
      case 'x': opt.seed = strtoull(optarg, &end, 0); break;
      case 'f': opt.fault_rate = strtod(optarg, &end); break;
      case 'e': opt.fault_every = (unsigned)strtoul(optarg, &end, 10); break;
      case 'l': opt.slots = (unsigned)strtoul(optarg, &end, 10); break;
      case 'a':
        end = optarg + strlen(optarg);
        if (strcmp(optarg, "system") == 0) opt.system = 1;
        else if (strcmp(optarg, "depot") != 0) end = optarg;
        break;
      case 'z':
        if (sscanf(optarg, "%u,%u,%u,%u", &opt.weights[0], &opt.weights[1],
                   &opt.weights[2], &opt.weights[3]) != 4)
          end = optarg;
        else end = optarg + strlen(optarg);
        break;
      case 'h': usage(stdout); exit(0);
      default: return -1;
    }
    if (errno || *end) {
      fprintf(stderr, "stress: bad value '%s' for --%s\n", optarg,
              longs[li].name);
      return -1;
    }
  }
  if (optind < argc) return -1;
  if (!opt.threads) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    opt.threads = (unsigned)(n > 0 ? n * 2 : 2);
  }
  unsigned w =
      opt.weights[0] + opt.weights[1] + opt.weights[2] + opt.weights[3];
  if (!w || !opt.slots || opt.seconds <= 0 || opt.fault_rate < 0 ||
      opt.fault_rate > 1)
    return -1;
  return 0;
}

/* ---- allocator families --------------------------------------------------- */

enum { FAM_MALLOC, FAM_RAW, FAM_MEM, FAM_OBJ, FAM_HEAP, FAM_OWN_HEAP, NFAM };
static const char *const fam_names[NFAM] = {"malloc", "raw",  "mem",
                                            "obj",    "heap", "own-heap"};

typedef struct {
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void (*free)(void *);
} fam_ops_t;

/* Depot's C family is its raw domain (what libdepot.so's malloc runs). */
static void *d_malloc(size_t n) { return depot_alloc_call(n, 0); }
static void *d_calloc(size_t n, size_t s) { return depot_calloc(n, s, 0); }
static void *d_realloc(void *p, size_t n) { return depot_realloc(p, n, 0); }
static void d_free(void *p) { depot_free_call(p, 0); }

/* Heaps.  FAM_HEAP blocks come from SHARED_HEAPS heaps that every worker
 * uses at once (their blocks are handed off and freed by other threads);
 * FAM_OWN_HEAP blocks from the calling worker's own heap, which it resets,
 * or destroys and makes again, every RESET_EVERY operations (they are never
 * handed off: a reset frees them). */
#define SHARED_HEAPS 4
#define RESET_EVERY 3000
static DepotHeap *shared_heaps[SHARED_HEAPS];
static __thread DepotHeap *own_heap;
static __thread unsigned heap_turn;

static DepotHeap *shared_heap(void) {
  return shared_heaps[heap_turn++ % SHARED_HEAPS];
}
static DepotHeap *own(void) {
  if (!own_heap) own_heap = DepotHeap_New(NULL);
  if (!own_heap) errno = ENOMEM;
  return own_heap;
}
static void *h_malloc(size_t n) { return DepotHeap_Malloc(shared_heap(), n); }
static void *h_calloc(size_t n, size_t s) {
  return DepotHeap_Calloc(shared_heap(), n, s);
}
static void *h_realloc(void *p, size_t n) {
  return DepotHeap_Realloc(DepotHeap_Of(p), p, n);
}
static void *o_malloc(size_t n) {
  return own() ? DepotHeap_Malloc(own_heap, n) : NULL;
}
static void *o_calloc(size_t n, size_t s) {
  return own() ? DepotHeap_Calloc(own_heap, n, s) : NULL;
}

static fam_ops_t fams[NFAM];

static void setup_families(void) {
  if (opt.system) {
    for (int f = 0; f < NFAM; f++)
      fams[f] = (fam_ops_t){malloc, calloc, realloc, free};
    return;
  }
  fams[FAM_MALLOC] = (fam_ops_t){d_malloc, d_calloc, d_realloc, d_free};
  fams[FAM_RAW] = (fam_ops_t){DepotMem_RawMalloc, DepotMem_RawCalloc,
                              DepotMem_RawRealloc, DepotMem_RawFree};
  fams[FAM_MEM] = (fam_ops_t){DepotMem_Malloc, DepotMem_Calloc,
                              DepotMem_Realloc, DepotMem_Free};
  fams[FAM_OBJ] = (fam_ops_t){DepotObject_Malloc, DepotObject_Calloc,
                              DepotObject_Realloc, DepotObject_Free};
  fams[FAM_HEAP] = (fam_ops_t){h_malloc, h_calloc, h_realloc, DepotHeap_Free};
  fams[FAM_OWN_HEAP] =
      (fam_ops_t){o_malloc, o_calloc, h_realloc, DepotHeap_Free};
  for (int i = 0; i < SHARED_HEAPS; i++) {
    char name[16];
    snprintf(name, sizeof name, "shared-%d", i);
    DepotHeapOptions o = DEPOT_HEAP_OPTIONS_INIT;
    o.name = name;
    if (!(shared_heaps[i] = DepotHeap_New(&o))) {
      fprintf(stderr, "stress: no heap: %s\n", strerror(errno));
      exit(1);
    }
  }
}

static void *aligned(size_t align, size_t size) {
  if (opt.system) {
    void *p;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
  }
  return depot_aligned_alloc(align, size, 0);
}

/* ---- blocks and their patterns -------------------------------------------- */

typedef struct {
  unsigned char *p;
  size_t size;
  uint64_t seed;
  uint8_t fam;
} blk_t;

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static inline unsigned char pattern_at(uint64_t h, size_t i) {
  return (unsigned char)((h >> ((i & 7) * 8)) ^ (i >> 3));
}

/* The offsets a block's pattern covers: all of a small block; the ends and
 * every 4 KiB of a big one (filling megabytes would measure memset). */
#define WHOLE 4096u
#define EDGE 512u
static size_t next_offset(size_t size, size_t i) {
  if (size <= WHOLE || i + 1 < EDGE || i + 1 >= size - EDGE) return i + 1;
  size_t j = (i + 4096) & ~(size_t)4095;
  return j < size - EDGE ? j : size - EDGE;
}
#define FOR_PATTERN(size, i) \
  for (size_t i = 0; i < (size); i = next_offset((size), i))

static uint64_t block_hash(const blk_t *b) {
  return mix((uint64_t)(uintptr_t)b->p ^ (b->size * 0x100000001B3ull) ^
             b->seed);
}

static void fill(const blk_t *b) {
  uint64_t h = block_hash(b);
  FOR_PATTERN(b->size, i) b->p[i] = pattern_at(h, i);
}

static _Atomic int stopping;
static unsigned long long corrupt_at; /* self-test, see worker_main */

static void corrupt(const blk_t *b, unsigned thread, unsigned long long op,
                    const char *when, size_t i, unsigned char want) {
  fprintf(stderr,
          "\nstress: CORRUPTION %s: seed=%llu thread=%u op=%llu block=%p "
          "size=%zu family=%s offset=%zu expected=0x%02x found=0x%02x\n",
          when, opt.seed, thread, op, (void *)b->p, b->size, fam_names[b->fam],
          i, want, b->p[i]);
  _exit(1);
}

/* Checks b's pattern below `upto` (a realloc keeps only a prefix); on a
 * mismatch reports and ends the run. */
static void check_upto(const blk_t *b, size_t upto, unsigned thread,
                       unsigned long long op, const char *when) {
  uint64_t h = block_hash(b);
  FOR_PATTERN(b->size, i) {
    if (i >= upto) break;
    if (b->p[i] != pattern_at(h, i))
      corrupt(b, thread, op, when, i, pattern_at(h, i));
  }
}

static void check(const blk_t *b, unsigned thread, unsigned long long op,
                  const char *when) {
  check_upto(b, b->size, thread, op, when);
}

/* ---- counters ----------------------------------------------------------- */

/* K_NOERRNO: a NULL that did not set errno to ENOMEM (an error). */
enum {
  K_MALLOC,
  K_CALLOC,
  K_REALLOC,
  K_ALIGNED,
  K_FREE,
  K_HANDOFF,
  K_NULL,
  K_THREADS,
  K_NOERRNO,
  NK
};
static const char *const k_names[NK] = {
    "malloc",  "calloc",  "realloc",
    "aligned", "free",    "handoff",
    "null",    "threads", "null-without-ENOMEM"};
static _Atomic unsigned long long counts[NK];
static _Atomic unsigned long long total_ops;
static _Atomic long long live_blocks;

static void count(int k) {
  atomic_fetch_add_explicit(&counts[k], 1, memory_order_relaxed);
}

/* ---- shared slots ------------------------------------------------------- */

static _Atomic(blk_t *) *slots;

/* ---- a worker ------------------------------------------------------------- */

#define OWN 256
#define LONG_LIVED 32

typedef struct {
  unsigned id;
  uint64_t rng;
  unsigned long long op;
  blk_t own[OWN];
  unsigned n;
} worker_t;

static uint64_t next(worker_t *w) { return w->rng = mix(w->rng); }

static size_t pick_size(worker_t *w) {
  unsigned total =
      opt.weights[0] + opt.weights[1] + opt.weights[2] + opt.weights[3];
  unsigned r = (unsigned)(next(w) % total);
  uint64_t x = next(w);
  if (r < opt.weights[0]) return 1 + x % 1024;
  r -= opt.weights[0];
  if (r < opt.weights[1]) return 1025 + x % (32 * 1024 - 1024);
  r -= opt.weights[1];
  if (r < opt.weights[2]) return 32 * 1024 + 1 + x % (1024 * 1024);
  return ((size_t)2 << 20) + x % ((size_t)6 << 20);
}

static int new_block(worker_t *w, blk_t *b, int kind) {
  b->size = pick_size(w);
  b->seed = next(w);
  b->fam = (uint8_t)(next(w) % NFAM);
  const fam_ops_t *f = &fams[b->fam];
  errno = 0;
  if (kind == K_CALLOC) {
    b->p = f->calloc(1, b->size);
    if (b->p)
      for (size_t i = 0; i < b->size; i += (b->size > WHOLE ? 4093 : 1))
        if (b->p[i]) {
          fprintf(stderr,
                  "\nstress: CORRUPTION calloc not zero: seed=%llu thread=%u "
                  "op=%llu block=%p size=%zu offset=%zu\n",
                  opt.seed, w->id, w->op, (void *)b->p, b->size, i);
          _exit(1);
        }
  } else if (kind == K_ALIGNED) {
    size_t align = (size_t)16 << (next(w) % 13); /* 16 B .. 64 KiB */
    b->fam = FAM_MALLOC;
    b->p = aligned(align, b->size);
    if (b->p && (uintptr_t)b->p % align) {
      fprintf(stderr,
              "\nstress: misaligned block %p for alignment %zu (seed=%llu "
              "thread=%u op=%llu)\n",
              (void *)b->p, align, opt.seed, w->id, w->op);
      _exit(1);
    }
  } else {
    b->p = f->malloc(b->size);
  }
  if (!b->p) {
    count(K_NULL);
    if (kind != K_ALIGNED && errno != ENOMEM) count(K_NOERRNO);
    return 0;
  }
  count(kind);
  atomic_fetch_add_explicit(&live_blocks, 1, memory_order_relaxed);
  fill(b);
  return 1;
}

static void drop(worker_t *w, blk_t *b) {
  check(b, w->id, w->op, "before free");
  fams[b->fam].free(b->p);
  count(K_FREE);
  atomic_fetch_sub_explicit(&live_blocks, 1, memory_order_relaxed);
  b->p = NULL;
}

static void resize(worker_t *w, blk_t *b) {
  check(b, w->id, w->op, "before realloc");
  /* A chain: grow or shrink by up to 4x, within the same size range. */
  size_t n =
      next(w) % 2 ? b->size * (2 + next(w) % 3) : b->size / (2 + next(w) % 3);
  if (n == 0) n = 1;
  if (n > ((size_t)8 << 20)) n = (size_t)8 << 20;
  errno = 0;
  unsigned char *q = fams[b->fam].realloc(b->p, n);
  if (!q) {
    count(K_NULL); /* the block must be intact */
    if (errno != ENOMEM) count(K_NOERRNO);
    check(b, w->id, w->op, "after a failed realloc");
    return;
  }
  count(K_REALLOC);
  /* The kept prefix must still carry the old pattern (hashed from the old
   * address, size and seed). */
  blk_t moved = *b;
  size_t keep = n < b->size ? n : b->size;
  uint64_t h = block_hash(b);
  moved.p = q;
  FOR_PATTERN(b->size, i) {
    if (i >= keep) break;
    if (q[i] != pattern_at(h, i))
      corrupt(&moved, w->id, w->op, "realloc lost data", i, pattern_at(h, i));
  }
  b->p = q;
  b->size = n;
  b->seed = next(w);
  fill(b);
}

static void handoff(worker_t *w, blk_t *b) {
  if (b->fam == FAM_OWN_HEAP) return; /* its owner resets it */
  blk_t *rec = malloc(sizeof *rec);   /* the C library's: bookkeeping only */
  *rec = *b;
  blk_t *got = atomic_exchange(&slots[next(w) % opt.slots], rec);
  count(K_HANDOFF);
  if (got) {
    check(got, w->id, w->op, "taken from a slot");
    *b = *got;
    free(got);
  } else {
    b->p = NULL;
  }
}

/* Resets the worker's own heap, or destroys it (a new one is made on the
 * next allocation): its blocks are checked and forgotten, not freed. */
static void own_heap_life(worker_t *w) {
  for (unsigned k = 0; k < OWN; k++) {
    blk_t *b = &w->own[k];
    if (!b->p || b->fam != FAM_OWN_HEAP) continue;
    if (opt.system) {
      drop(w, b);
      continue;
    }
    check(b, w->id, w->op, "before its heap's reset");
    count(K_FREE);
    atomic_fetch_sub_explicit(&live_blocks, 1, memory_order_relaxed);
    b->p = NULL;
  }
  if (opt.system || !own_heap) return;
  if (next(w) % 2) {
    DepotHeap_Reset(own_heap);
  } else {
    DepotHeap_Destroy(own_heap);
    own_heap = NULL;
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  unsigned long long life = 2000 + next(w) % 30000;
  count(K_THREADS);
  for (w->op = 0;
       w->op < life && !atomic_load_explicit(&stopping, memory_order_relaxed);
       w->op++) {
    if (opt.ops && atomic_fetch_add_explicit(&total_ops, 1,
                                             memory_order_relaxed) >= opt.ops) {
      atomic_store(&stopping, 1);
      break;
    } else if (!opt.ops) {
      atomic_fetch_add_explicit(&total_ops, 1, memory_order_relaxed);
    }
    unsigned r = (unsigned)(next(w) % 100);
    if (w->op % RESET_EVERY == RESET_EVERY - 1) own_heap_life(w);
    if (corrupt_at && w->id == 0 && w->op == corrupt_at) {
      /* Self-test (STRESS_SELF_TEST_CORRUPT=N): damage a block behind the
       * allocator's back at operation N; the run must catch it. */
      for (unsigned k = 0; k < OWN; k++)
        if (w->own[k].p) {
          w->own[k].p[w->own[k].size / 2] ^= 0x5A;
          break;
        }
    }
    /* Slots [0, LONG_LIVED) are the long-lived working set, rarely touched. */
    unsigned k = r >= 95
                     ? (unsigned)(next(w) % LONG_LIVED)
                     : LONG_LIVED + (unsigned)(next(w) % (OWN - LONG_LIVED));
    blk_t *b = &w->own[k];
    if (r < 35 || r >= 95) { /* allocate (or replace) */
      if (b->p) drop(w, b);
      int kind = r % 8 == 0 ? K_CALLOC : r % 8 == 1 ? K_ALIGNED : K_MALLOC;
      new_block(w, b, kind);
    } else if (r < 60) {
      if (b->p) drop(w, b);
    } else if (r < 75) {
      if (b->p) resize(w, b);
    } else {
      if (b->p) handoff(w, b);
    }
  }
  /* Exit: the long-lived set lives on in the slots; the rest is freed. */
  for (unsigned k = 0; k < OWN; k++) {
    if (!w->own[k].p) continue;
    if (k < LONG_LIVED) handoff(w, &w->own[k]);
    if (w->own[k].p) drop(w, &w->own[k]);
  }
  if (own_heap && !opt.system) DepotHeap_Destroy(own_heap);
  own_heap = NULL;
  return NULL;
}

/* ---- monitor -------------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long status_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0) v = atol(line + n);
  if (f) fclose(f);
  return v;
}

static void progress(double start, int tty, int final) {
  double t = now_s() - start;
  unsigned long long ops = atomic_load(&total_ops);
  double frac = opt.ops ? (double)ops / (double)opt.ops : t / opt.seconds;
  if (frac > 1) frac = 1;
  double rate = t > 0 ? (double)ops / t / 1e6 : 0;
  long rss = status_kib("VmRSS:") / 1024;
  if (tty) {
    char bar[31];
    int fillto = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fillto ? '#' : '.';
    bar[30] = 0;
    double left = frac > 0 ? t / frac - t : 0;
    fprintf(stderr,
            "\r[%s] %3.0f%% | %.2f Mops/s | RSS %ld MiB | %02d:%02d, %02d:%02d "
            "left ",
            bar, frac * 100, rate, rss, (int)t / 60, (int)t % 60,
            (int)left / 60, (int)left % 60);
    if (final) fputc('\n', stderr);
  } else {
    fprintf(stderr, "stress: %.1f s, %llu ops, %.2f Mops/s, RSS %ld MiB\n", t,
            ops, rate, rss);
  }
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv) {
  if (parse_args(argc, argv) != 0) {
    usage(stderr);
    return 2;
  }
  if (opt.system && (opt.fault_rate > 0 || opt.fault_every))
    fprintf(stderr,
            "stress: fault injection needs --allocator depot; ignored\n");
  setup_families();
  const char *self_test = getenv("STRESS_SELF_TEST_CORRUPT");
  if (self_test) corrupt_at = strtoull(self_test, NULL, 10);
  slots = calloc(opt.slots, sizeof *slots);
  worker_t *ws = calloc(opt.threads, sizeof *ws);
  pthread_t *tids = calloc(opt.threads, sizeof *tids);
  int *running = calloc(opt.threads, sizeof *running);
  if (!slots || !ws || !tids || !running) {
    fprintf(stderr, "stress: out of memory for bookkeeping\n");
    return 2;
  }
  if (!opt.system) {
    if (opt.fault_rate > 0) depot_os_fail_rate(opt.fault_rate);
    if (opt.fault_every) depot_os_fail_every(opt.fault_every);
  }
  int tty = isatty(STDERR_FILENO);
  double start = now_s(), last = start;
  unsigned next_id = 0;
  while (!atomic_load(&stopping)) {
    for (unsigned i = 0; i < opt.threads; i++) {
      if (running[i]) {
        if (pthread_tryjoin_np(tids[i], NULL) != 0) continue;
        running[i] = 0;
      }
      if (atomic_load(&stopping)) break;
      memset(&ws[i], 0, sizeof ws[i]);
      ws[i].id = next_id++;
      ws[i].rng = mix(opt.seed ^ mix(ws[i].id));
      if (pthread_create(&tids[i], NULL, worker_main, &ws[i]) == 0)
        running[i] = 1;
    }
    usleep(2000);
    double t = now_s();
    if (!opt.ops && t - start >= opt.seconds) atomic_store(&stopping, 1);
    if (t - last >= (tty ? 0.5 : 5.0)) {
      progress(start, tty, 0);
      last = t;
    }
  }
  for (unsigned i = 0; i < opt.threads; i++)
    if (running[i]) pthread_join(tids[i], NULL);
  double elapsed = now_s() - start;
  progress(start, tty, 1);
  unsigned long injected = 0;
  if (!opt.system) {
    depot_os_fail_rate(0);
    depot_os_fail_every(0);
    injected = depot_os_failures_injected();
  }
  /* A quiescent point: every worker has been joined. */
  if (!opt.system) depot_check_heap();
  /* Free what the slots still hold, checking it. */
  worker_t cleaner = {.id = next_id};
  for (unsigned s = 0; s < opt.slots; s++) {
    blk_t *b = atomic_exchange(&slots[s], NULL);
    if (!b) continue;
    drop(&cleaner, b);
    free(b);
  }
  /* The bookkeeping too: under LeakSanitizer (an ASan build run without
   * detect_leaks=0) a leak report ends the process before stdout, and so
   * the summary below, is flushed. */
  free(running);
  free(tids);
  free(ws);
  free(slots);
  /* After injection: every kind of allocation must work again. */
  int errors = 0;
  for (size_t size = 16; size <= ((size_t)8 << 20); size *= 8) {
    for (int f = 0; f < NFAM; f++) {
      void *p = fams[f].malloc(size);
      if (!p) {
        fprintf(stderr, "stress: %zu-byte %s allocation fails after the run\n",
                size, fam_names[f]);
        errors++;
        continue;
      }
      memset(p, 1, size);
      fams[f].free(p);
    }
  }
  if (!opt.system) {
    DepotMem_Trim(); /* the quarantine (DEPOT_CONF=quarantine_bytes) too */
    depot_check_heap();
  }
  long long live = atomic_load(&live_blocks);
  if (live != 0) {
    fprintf(stderr, "stress: %lld blocks unaccounted for\n", live);
    errors++;
  }
  if (atomic_load(&counts[K_NOERRNO])) {
    fprintf(stderr,
            "stress: %llu failed allocations left errno other than ENOMEM\n",
            atomic_load(&counts[K_NOERRNO]));
    errors++;
  }
  unsigned long long in_use = 0;
  if (!opt.system) {
    DepotMemStats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    DepotMem_Stats(&st);
    in_use = st.total.blocks_in_use;
    if (in_use) {
      fprintf(stderr,
              "stress: Depot counts %llu blocks in use after everything "
              "was freed\n",
              in_use);
      errors++;
    }
  }
  unsigned long long ops = atomic_load(&total_ops);
  if (opt.ops && ops > opt.ops) ops = opt.ops;
#if defined(__SANITIZE_ADDRESS__)
  const char *build = "asan";
#elif defined(__SANITIZE_THREAD__)
  const char *build = "tsan";
#else
  const char *build = "plain";
#endif
  printf("stress: allocator=%s threads=%u seed=%llu %.1f s build=%s\n",
         opt.system ? "system" : "depot", opt.threads, opt.seed, elapsed,
         build);
  printf("  operations: %llu (%.2f M/s)\n  ", ops, (double)ops / elapsed / 1e6);
  for (int k = 0; k < NK; k++)
    printf("%s %llu%s", k_names[k], atomic_load(&counts[k]),
           k + 1 < NK ? ", " : "\n");
  printf("  allocation failures (NULL): %llu, injected OS failures: %lu\n",
         atomic_load(&counts[K_NULL]), injected);
  printf("  peak RSS: %ld MiB\n", status_kib("VmHWM:") / 1024);
  printf("  errors: %d\n", errors);
  return errors ? 1 : 0;
}
