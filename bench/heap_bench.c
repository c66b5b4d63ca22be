/* heap_bench.c: Depot's heaps (DepotHeap_*, issue 15) against mimalloc's
 * (mi_heap_*), and against Depot's default domain.
 *
 *   pair         malloc+free of 32 bytes in a heap, and in the raw domain;
 *                target: a heap pair within 1.1x of the domain's
 *   batch        100 mixed sizes allocated, then freed, in a heap
 *   request      per-request pattern from several threads: create a heap,
 *                allocate a few thousand mixed blocks (a third freed one by
 *                one), destroy it; target: at least as fast as mimalloc
 *   destroy      a heap of one million 64-byte blocks destroyed at once,
 *                against freeing them one by one; target: 20x faster
 *   idle heaps   resident memory per heap with 10000 heaps alive, each
 *                holding one 64-byte block (and 2000 holding one of 4 KiB)
 * Times are CPU time (the thread's, or the process's for the threads of the
 * per-request pattern), the best of seven rounds in which the families take
 * turns: a busy machine's other processes fall out.
 *
 * Depot is linked statically (//:depot: the API, no malloc override);
 * mimalloc is loaded with dlopen (Debian's libmimalloc2.0, the suite's
 * peer), so its heaps are called without replacing malloc.  Without it the
 * mimalloc columns say "n/a".
 *   heap_bench [--threads=N] [--quick] [--mimalloc=PATH] [--profile=FAMILY]
 *              [--requests=N]
 * --profile=depot|mimalloc runs only that family's per-request pattern (for
 * perf record; --requests=N requests a thread, else 1400, 140 quick);
 * --profile=pair-heap|pair-domain|batch one loop alone; --profile=idle4k or
 * idle4k-mimalloc the idle heaps holding a 4 KiB block alone. */
#define _GNU_SOURCE
#include <depot/depot.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the two families behind one table ------------------------------------ */

typedef struct {
  const char *name;
  void *(*heap_new)(void);
  void *(*heap_malloc)(void *h, size_t n);
  void (*heap_free)(void *p);
  void (*heap_destroy)(void *h);
} family_t;

static void *depot_new(void) { return DepotHeap_New(NULL); }
static void *depot_malloc(void *h, size_t n) { return DepotHeap_Malloc(h, n); }
static void depot_destroy(void *h) { DepotHeap_Destroy(h); }
static const family_t depot = {"depot", depot_new, depot_malloc, DepotHeap_Free,
                               depot_destroy};

static void *(*mi_heap_new_p)(void);
static void *(*mi_heap_malloc_p)(void *, size_t);
static void (*mi_free_p)(void *);
static void (*mi_heap_destroy_p)(void *);
static void *mi_new(void) { return mi_heap_new_p(); }
static family_t mimalloc = {"mimalloc", NULL, NULL, NULL, NULL};

static int load_mimalloc(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return 0;
  mi_heap_new_p = (void *(*)(void))dlsym(lib, "mi_heap_new");
  mi_heap_malloc_p = (void *(*)(void *, size_t))dlsym(lib, "mi_heap_malloc");
  mi_free_p = (void (*)(void *))dlsym(lib, "mi_free");
  mi_heap_destroy_p = (void (*)(void *))dlsym(lib, "mi_heap_destroy");
  if (!mi_heap_new_p || !mi_heap_malloc_p || !mi_free_p || !mi_heap_destroy_p)
    return 0;
  mimalloc.heap_new = mi_new;
  mimalloc.heap_malloc = mi_heap_malloc_p;
  mimalloc.heap_free = mi_free_p;
  mimalloc.heap_destroy = mi_heap_destroy_p;
  return 1;
}

/* CPU time, not wall-clock time: on a shared machine a thread that is
 * preempted does not count the time other processes ran. */
static double clock_of(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static double now(void) { return clock_of(CLOCK_THREAD_CPUTIME_ID); }

/* Keeps the compiler from removing work whose result is unused. */
static volatile uintptr_t sink;

static unsigned rnd(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

/* ---- pair and batch ------------------------------------------------------- */

static double pair_heap(const family_t *f, long n) {
  void *h = f->heap_new();
  double t = now();
  for (long i = 0; i < n; i++) {
    void *p = f->heap_malloc(h, 32);
    sink += (uintptr_t)p;
    f->heap_free(p);
  }
  t = now() - t;
  f->heap_destroy(h);
  return t / (double)n * 1e9;
}

static double pair_domain(long n) {
  double t = now();
  for (long i = 0; i < n; i++) {
    void *p = DepotMem_RawMalloc(32);
    sink += (uintptr_t)p;
    DepotMem_RawFree(p);
  }
  return (now() - t) / (double)n * 1e9;
}

static double batch_heap(const family_t *f, long rounds) {
  void *h = f->heap_new(), *v[100];
  unsigned s = 1;
  size_t sizes[100];
  for (int i = 0; i < 100; i++) sizes[i] = 8 + rnd(&s) % 500;
  double t = now();
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < 100; i++) v[i] = f->heap_malloc(h, sizes[i]);
    for (int i = 0; i < 100; i++) f->heap_free(v[i]);
  }
  t = now() - t;
  f->heap_destroy(h);
  return t / (double)(rounds * 100) * 1e9;
}

static double batch_domain(long rounds) {
  void *v[100];
  unsigned s = 1;
  size_t sizes[100];
  for (int i = 0; i < 100; i++) sizes[i] = 8 + rnd(&s) % 500;
  double t = now();
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < 100; i++) v[i] = DepotMem_RawMalloc(sizes[i]);
    for (int i = 0; i < 100; i++) DepotMem_RawFree(v[i]);
  }
  return (now() - t) / (double)(rounds * 100) * 1e9;
}

/* ---- the per-request pattern ---------------------------------------------- */

enum { REQUEST_BLOCKS = 3000 };

typedef struct {
  const family_t *f;
  long requests;
  unsigned seed;
} request_arg_t;

static void *request_thread(void *arg) {
  request_arg_t *a = arg;
  void **v = malloc(REQUEST_BLOCKS * sizeof *v);
  unsigned s = a->seed;
  for (long r = 0; r < a->requests; r++) {
    void *h = a->f->heap_new();
    for (int i = 0; i < REQUEST_BLOCKS; i++) {
      /* Mostly small, some buffers of a few KiB. */
      size_t n = rnd(&s) % 16 ? 16 + rnd(&s) % 240 : 1024 + rnd(&s) % 7000;
      char *p = a->f->heap_malloc(h, n);
      p[0] = (char)i; /* touched, as a request would */
      v[i] = p;
      if (i % 3 == 2) { /* a third freed one by one */
        a->f->heap_free(v[i - 1]);
        v[i - 1] = NULL;
      }
    }
    a->f->heap_destroy(h);
  }
  free(v);
  return NULL;
}

/* Requests per CPU second (all threads' CPU time) over threads threads. */
static double request_rate(const family_t *f, int threads, long requests) {
  pthread_t t[64];
  request_arg_t a[64];
  double start = clock_of(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < threads; i++) {
    a[i] = (request_arg_t){f, requests, (unsigned)i + 7};
    pthread_create(&t[i], NULL, request_thread, &a[i]);
  }
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  return (double)(threads * requests) /
         (clock_of(CLOCK_PROCESS_CPUTIME_ID) - start);
}

/* ---- destroy against one-by-one free -------------------------------------- */

static void destroy_vs_free(const family_t *f, long n, double *destroy_ms,
                            double *free_ms) {
  void **v = malloc((size_t)n * sizeof *v);
  void *h = f->heap_new();
  for (long i = 0; i < n; i++) v[i] = f->heap_malloc(h, 64);
  double t = now();
  f->heap_destroy(h);
  *destroy_ms = (now() - t) * 1e3;
  h = f->heap_new();
  for (long i = 0; i < n; i++) v[i] = f->heap_malloc(h, 64);
  t = now();
  for (long i = 0; i < n; i++) f->heap_free(v[i]);
  *free_ms = (now() - t) * 1e3;
  f->heap_destroy(h);
  free(v);
}

/* ---- memory of idle heaps ------------------------------------------------- */

static double resident_kib(void) {
  long pages = 0, resident = 0;
  FILE *fp = fopen("/proc/self/statm", "r");
  if (fp) {
    if (fscanf(fp, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(fp);
  }
  return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1024.0;
}

/* Resident bytes per heap with n heaps alive, each with one block of size
 * bytes. */
static double idle_heap_bytes(const family_t *f, int n, size_t size) {
  void **hs = malloc((size_t)n * sizeof *hs);
  double before = resident_kib();
  for (int i = 0; i < n; i++) {
    hs[i] = f->heap_new();
    *(char *)f->heap_malloc(hs[i], size) = 1;
  }
  double after = resident_kib();
  for (int i = 0; i < n; i++) f->heap_destroy(hs[i]);
  free(hs);
  return (after - before) * 1024.0 / n;
}

/* ---- the report ------------------------------------------------------------ */

int main(int argc, char **argv) {
  int threads = 2, quick = 0;
  long requests_arg = 0;
  const char *mi_path = "libmimalloc.so.2", *profile = NULL;
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--threads=", 10) == 0) threads = atoi(argv[i] + 10);
    else if (strcmp(argv[i], "--quick") == 0) quick = 1;
    else if (strncmp(argv[i], "--mimalloc=", 11) == 0) mi_path = argv[i] + 11;
    else if (strncmp(argv[i], "--profile=", 10) == 0) profile = argv[i] + 10;
    else if (strncmp(argv[i], "--requests=", 11) == 0)
      requests_arg = atol(argv[i] + 11);
    else {
      fprintf(stderr,
              "usage: %s [--threads=N] [--quick] [--mimalloc=PATH] "
              "[--profile=FAMILY] [--requests=N]\n",
              argv[0]);
      return 2;
    }
  }
  if (threads < 1 || threads > 64) threads = 2;
  int have_mi = load_mimalloc(mi_path);
  long pairs = quick ? 2000000 : 20000000, rounds = pairs / 100;
  long requests = quick ? 140 : 1400, blocks = 1000000;
  if (requests_arg > 0) requests = requests_arg;
  if (profile && strcmp(profile, "batch") == 0) {
    printf("%.2f ns\n", batch_heap(&depot, rounds * 5));
    return 0;
  }
  /* pair-heap and pair-domain: 1M pairs alone, for an instruction count
   * (valgrind --tool=callgrind; this machine's counters may be absent). */
  if (profile && strcmp(profile, "pair-heap") == 0) {
    printf("%.2f ns\n", pair_heap(&depot, 1000000));
    return 0;
  }
  /* idle4k and idle4k-mimalloc: the idle heaps of one 4 KiB block alone, in
   * a fresh process (no memory left resident by the other measures). */
  if (profile && strncmp(profile, "idle4k", 6) == 0) {
    int mi = strcmp(profile, "idle4k-mimalloc") == 0;
    if (mi && !have_mi) return 1;
    printf("%.0f bytes per heap\n",
           idle_heap_bytes(mi ? &mimalloc : &depot, 2000, 4096));
    return 0;
  }
  if (profile && strcmp(profile, "pair-domain") == 0) {
    printf("%.2f ns\n", pair_domain(1000000));
    return 0;
  }
  if (profile) {
    int mi = strcmp(profile, "mimalloc") == 0;
    if (mi && !have_mi) return 1;
    printf("%.0f requests/s\n",
           request_rate(mi ? &mimalloc : &depot, threads, requests));
    return 0;
  }

  /* Timings are the best of several rounds, the families taking turns, so
   * that a busy machine's noise (other processes) falls out. */
  enum { ROUNDS = 7 };
  double d_pair = 1e30, h_pair = 1e30, m_pair = 1e30;
  double d_batch = 1e30, h_batch = 1e30, m_batch = 1e30;
  double h_req = 0, m_req = 0;
#define BEST_MIN(var, expr) \
  do {                      \
    double v_ = (expr);     \
    if (v_ < var) var = v_; \
  } while (0)
#define BEST_MAX(var, expr) \
  do {                      \
    double v_ = (expr);     \
    if (v_ > var) var = v_; \
  } while (0)
  for (int r = 0; r < ROUNDS; r++) {
    BEST_MIN(d_pair, pair_domain(pairs / ROUNDS));
    BEST_MIN(h_pair, pair_heap(&depot, pairs / ROUNDS));
    if (have_mi) BEST_MIN(m_pair, pair_heap(&mimalloc, pairs / ROUNDS));
    BEST_MIN(d_batch, batch_domain(rounds / ROUNDS));
    BEST_MIN(h_batch, batch_heap(&depot, rounds / ROUNDS));
    if (have_mi) BEST_MIN(m_batch, batch_heap(&mimalloc, rounds / ROUNDS));
    BEST_MAX(h_req, request_rate(&depot, threads, requests / ROUNDS + 1));
    if (have_mi)
      BEST_MAX(m_req, request_rate(&mimalloc, threads, requests / ROUNDS + 1));
  }
  if (!have_mi) m_pair = m_batch = 0;
  double h_dms, h_fms, m_dms = 0, m_fms = 0;
  destroy_vs_free(&depot, blocks, &h_dms, &h_fms);
  if (have_mi) destroy_vs_free(&mimalloc, blocks, &m_dms, &m_fms);
  double h_idle = idle_heap_bytes(&depot, 10000, 64);
  double m_idle = have_mi ? idle_heap_bytes(&mimalloc, 10000, 64) : 0;
  double h_idle4k = idle_heap_bytes(&depot, 2000, 4096);
  double m_idle4k = have_mi ? idle_heap_bytes(&mimalloc, 2000, 4096) : 0;

  printf("# Depot heaps against mimalloc's (%s), %d threads for requests\n\n",
         have_mi ? mi_path : "mimalloc not found", threads);
  printf("| measure | depot heap | depot raw domain | mimalloc heap |\n");
  printf("|---|---|---|---|\n");
  printf("| 32-byte pair, ns | %.2f | %.2f | %.2f |\n", h_pair, d_pair, m_pair);
  printf("| 100-mixed batch, ns per block | %.2f | %.2f | %.2f |\n", h_batch,
         d_batch, m_batch);
  printf("| per-request, requests per CPU second | %.0f | | %.0f |\n", h_req,
         m_req);
  printf("| destroy 1M blocks, ms | %.2f | | %.2f |\n", h_dms, m_dms);
  printf("| free 1M blocks one by one, ms | %.2f | | %.2f |\n", h_fms, m_fms);
  printf(
      "| resident bytes per idle heap (one 64-byte block) | %.0f | | %.0f |\n",
      h_idle, m_idle);
  printf(
      "| resident bytes per idle heap (one 4 KiB block) | %.0f | | %.0f |\n\n",
      h_idle4k, m_idle4k);
  printf("| target | figure | met |\n|---|---|---|\n");
  printf("| heap pair within 1.1x of the domain's | %.2fx | %s |\n",
         h_pair / d_pair, h_pair <= 1.1 * d_pair ? "yes" : "NO");
  if (have_mi)
    printf("| per-request at least as fast as mimalloc | %.2fx | %s |\n",
           h_req / m_req, h_req >= m_req ? "yes" : "NO");
  printf("| destroy at least 20x faster than one-by-one free | %.1fx | %s |\n",
         h_fms / h_dms, h_fms >= 20 * h_dms ? "yes" : "NO");
  return 0;
}
