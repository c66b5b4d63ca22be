/* workloads.c: the benchmark suite's multithreaded workloads, written for
 * Depot in the spirit of the classic allocator benchmarks.  Every
 * allocation goes through malloc/free, so the allocator under test is
 * whichever is preloaded (LD_PRELOAD) or none (the C library's).
 *
 *   workloads NAME [--threads T] [--scale S]
 *
 *   larson     threads repeatedly free a random block of a shared pool and
 *              replace it with a new one of random size; blocks are often
 *              freed by a thread other than the one that allocated them
 *   xmalloc    producer threads allocate, consumer threads free (cross-
 *              thread frees at a high rate)
 *   scratch    passive false sharing: objects allocated by one thread are
 *              freed by the workers, who then allocate and write their own
 *   thrash     active false sharing: each thread allocates small objects
 *              and writes to them repeatedly
 *   mstress    a long-lived working set across size classes beside
 *              short-lived churn
 *   large      blocks of 256 KiB to 32 MiB, each page touched
 *   pyobject   CPython's pattern: many small objects, in Depot's object
 *              domain when Depot is loaded (DepotObject_Malloc), else malloc
 *
 * Prints one line: "RESULT name threads=T seconds=S peak_rss_kib=K ops=N",
 * the time being that of the work alone (threads started and joined).  The
 * work per thread is fixed (scaled by --scale), so a thread sweep measures
 * throughput: ideal scaling keeps the time flat and multiplies ops/s. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned threads = 2;
static double scale = 1.0;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static long peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) v = atol(line + 6);
  if (f) fclose(f);
  return v;
}

static unsigned long long scaled(double n) { return (unsigned long long)(n * scale); }

/* Runs fn in `threads` threads (argument: the thread's index). */
static double run_threads(void *(*fn)(void *)) {
  pthread_t *t = calloc(threads, sizeof *t);
  double start = now();
  for (uintptr_t i = 0; i < threads; i++) pthread_create(&t[i], NULL, fn, (void *)i);
  for (unsigned i = 0; i < threads; i++) pthread_join(t[i], NULL);
  double secs = now() - start;
  free(t);
  return secs;
}

static void touch(void *p, size_t n) {
  volatile char *c = p;
  c[0] = 1;
  c[n - 1] = 2;
}

/* ---- larson ------------------------------------------------------------------ */

#define LARSON_PER_THREAD 1000
static _Atomic(void *) *larson_pool;

static void *larson_worker(void *arg) {
  uint64_t s = (uintptr_t)arg + 1;
  size_t pool = (size_t)threads * LARSON_PER_THREAD;
  unsigned long long ops = scaled(4000000);
  for (unsigned long long i = 0; i < ops; i++) {
    size_t n = 16 + rng_next(&s) % 1008;
    void *p = malloc(n);
    touch(p, n);
    void *old = atomic_exchange_explicit(&larson_pool[rng_next(&s) % pool], p,
                                         memory_order_acq_rel);
    free(old);
  }
  return NULL;
}

static double larson(unsigned long long *ops) {
  size_t pool = (size_t)threads * LARSON_PER_THREAD;
  larson_pool = calloc(pool, sizeof *larson_pool);
  for (size_t i = 0; i < pool; i++) larson_pool[i] = malloc(16 + i % 1008);
  double secs = run_threads(larson_worker);
  for (size_t i = 0; i < pool; i++) free(larson_pool[i]);
  free(larson_pool);
  *ops = scaled(4000000) * threads;
  return secs;
}

/* ---- xmalloc (producers and consumers) -------------------------------------- */

#define RING 4096
typedef struct {
  _Atomic size_t head, tail;
  void *slot[RING];
} ring_t;
static ring_t *rings;
static unsigned long long per_pair;

static void *xmalloc_worker(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg, pair = id / 2;
  ring_t *r = &rings[pair];
  uint64_t s = id + 7;
  if (id % 2 == 0) { /* producer */
    for (unsigned long long i = 0; i < per_pair; i++) {
      void *p = malloc(16 + rng_next(&s) % 496);
      touch(p, 16);
      size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
      while (h - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING) sched_yield();
      r->slot[h % RING] = p;
      atomic_store_explicit(&r->head, h + 1, memory_order_release);
    }
  } else { /* consumer */
    for (unsigned long long i = 0; i < per_pair; i++) {
      size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
      while (atomic_load_explicit(&r->head, memory_order_acquire) == t) sched_yield();
      free(r->slot[t % RING]);
      atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    }
  }
  return NULL;
}

static double xmalloc(unsigned long long *ops) {
  unsigned saved = threads;
  if (threads < 2) threads = 2;
  threads &= ~1u; /* pairs */
  rings = calloc(threads / 2, sizeof *rings);
  per_pair = scaled(750000);
  double secs = run_threads(xmalloc_worker);
  *ops = per_pair * (threads / 2);
  free(rings);
  threads = saved;
  return secs;
}

/* ---- false sharing ---------------------------------------------------------- */

#define WRITES 20000
static void **scratch_initial;
static unsigned long long fs_rounds;

static void write_hot(char *p) {
  volatile char *v = p;
  for (int w = 0; w < WRITES; w++) v[w & 7]++;
}

static void *scratch_worker(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  free(scratch_initial[id]); /* allocated by main, next to the others' */
  for (unsigned long long r = 0; r < fs_rounds; r++) {
    char *p = malloc(8);
    write_hot(p);
    free(p);
  }
  return NULL;
}

static void *thrash_worker(void *arg) {
  (void)arg;
  for (unsigned long long r = 0; r < fs_rounds; r++) {
    char *p = malloc(8);
    write_hot(p);
    free(p);
  }
  return NULL;
}

static double false_sharing(int passive, unsigned long long *ops) {
  fs_rounds = scaled(4000);
  if (passive) {
    scratch_initial = malloc(threads * sizeof(void *));
    for (unsigned i = 0; i < threads; i++) scratch_initial[i] = malloc(8);
  }
  double secs = run_threads(passive ? scratch_worker : thrash_worker);
  if (passive) free(scratch_initial);
  *ops = fs_rounds * threads * WRITES;
  return secs;
}

/* ---- mstress: long-lived working set and churn ------------------------------ */

static void *mstress_worker(void *arg) {
  uint64_t s = (uintptr_t)arg * 77 + 1;
  enum { LIVE = 20000, SHORT = 8 };
  void **live = calloc(LIVE, sizeof(void *));
  void *shortlived[SHORT] = {0};
  for (int i = 0; i < LIVE; i++) {
    size_t n = 8 + rng_next(&s) % 4096;
    live[i] = malloc(n);
    touch(live[i], n);
  }
  unsigned long long ops = scaled(1500000);
  for (unsigned long long i = 0; i < ops; i++) {
    uint64_t r = rng_next(&s);
    if (r % 10 == 0) { /* replace a long-lived block */
      size_t k = (r >> 8) % LIVE, n = 8 + (r >> 24) % 4096;
      free(live[k]);
      live[k] = malloc(n);
      touch(live[k], n);
    } else { /* churn */
      size_t k = (r >> 8) % SHORT, n = 8 + (r >> 16) % 256;
      free(shortlived[k]);
      shortlived[k] = malloc(n);
      touch(shortlived[k], n);
    }
  }
  for (int k = 0; k < SHORT; k++) free(shortlived[k]);
  for (int i = 0; i < LIVE; i++) free(live[i]);
  free(live);
  return NULL;
}

static double mstress(unsigned long long *ops) {
  *ops = (scaled(1500000) + 20000) * threads; /* the working set counts too */
  return run_threads(mstress_worker);
}

/* ---- large -------------------------------------------------------------------- */

static void *large_worker(void *arg) {
  uint64_t s = (uintptr_t)arg * 13 + 5;
  enum { KEEP = 8 };
  void *keep[KEEP] = {0};
  unsigned long long ops = scaled(1500);
  for (unsigned long long i = 0; i < ops; i++) {
    /* 256 KiB .. 32 MiB, smaller sizes more often (log-uniform). */
    size_t n = (size_t)256 << 10 << (rng_next(&s) % 8);
    n += rng_next(&s) % n;
    if (n > ((size_t)32 << 20)) n = (size_t)32 << 20;
    size_t k = rng_next(&s) % KEEP;
    free(keep[k]);
    volatile char *p = keep[k] = malloc(n);
    for (size_t off = 0; off < n; off += 4096) p[off] = 1; /* fault pages in */
  }
  for (int k = 0; k < KEEP; k++) free(keep[k]);
  return NULL;
}

static double large(unsigned long long *ops) {
  *ops = scaled(1500) * threads;
  return run_threads(large_worker);
}

/* ---- pyobject ------------------------------------------------------------------ */

static double pyobject(unsigned long long *ops) {
  void *(*omalloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "DepotObject_Malloc");
  void (*ofree)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "DepotObject_Free");
  if (!omalloc || !ofree) omalloc = malloc, ofree = free;
  enum { LIVE = 100000 };
  void **objs = calloc(LIVE, sizeof(void *));
  uint64_t s = 3;
  double start = now();
  for (int i = 0; i < LIVE; i++) {
    size_t n = 16 + (rng_next(&s) % 8) * 16 + (rng_next(&s) % 16 == 0 ? 400 : 0);
    objs[i] = omalloc(n);
    touch(objs[i], n);
  }
  unsigned long long n_ops = scaled(3000000);
  for (unsigned long long i = 0; i < n_ops; i++) {
    /* Objects die young: mostly recent ones, sometimes old ones. */
    uint64_t r = rng_next(&s);
    size_t k = r % 4 ? LIVE - 1 - (r >> 8) % 1000 : (r >> 8) % LIVE;
    ofree(objs[k]);
    size_t n = 16 + ((r >> 32) % 8) * 16;
    objs[k] = omalloc(n);
    touch(objs[k], n);
  }
  for (int i = 0; i < LIVE; i++) ofree(objs[i]);
  double secs = now() - start;
  free(objs);
  *ops = n_ops;
  return secs;
}

/* ---- main --------------------------------------------------------------------- */

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: workloads larson|xmalloc|scratch|thrash|mstress|large|pyobject "
                    "[--threads T] [--scale S]\n");
    return 2;
  }
  const char *name = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--threads") == 0) threads = (unsigned)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--scale") == 0) scale = atof(argv[i + 1]);
  }
  if (threads < 1) threads = 1;
  unsigned long long ops = 0;
  double secs;
  if (strcmp(name, "larson") == 0) secs = larson(&ops);
  else if (strcmp(name, "xmalloc") == 0) secs = xmalloc(&ops);
  else if (strcmp(name, "scratch") == 0) secs = false_sharing(1, &ops);
  else if (strcmp(name, "thrash") == 0) secs = false_sharing(0, &ops);
  else if (strcmp(name, "mstress") == 0) secs = mstress(&ops);
  else if (strcmp(name, "large") == 0) secs = large(&ops);
  else if (strcmp(name, "pyobject") == 0) secs = pyobject(&ops);
  else {
    fprintf(stderr, "workloads: unknown workload '%s'\n", name);
    return 2;
  }
  printf("RESULT %s threads=%u seconds=%.6f peak_rss_kib=%ld ops=%llu\n", name, threads,
         secs, peak_rss_kib(), ops);
  return 0;
}
