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
 * Shapes of the classic allocator benchmarks, written for this suite
 * (sizes drawn from a small-object histogram, see size_histogram):
 *   scratch-warm  scratch, but each worker allocates once before its first
 *                 remote free, as real programs do
 *   thrash-many   active false sharing: all threads allocate a batch of
 *                 small objects at once (fresh memory carved side by side),
 *                 then each writes its own objects over and over
 *   histo-lifo    bursts of histogram sizes freed in reverse order
 *   histo-fifo    a queue of histogram sizes: the oldest block is freed
 *   xfree-lifo    histo-lifo, 25% of the blocks freed by another thread
 *   xfree-fifo    histo-fifo, 25% of the blocks freed by another thread
 *                 (run with more threads than cores as well)
 *
 * Memory probes (their time is not a measurement; what counts is memory):
 *   thread-rss    `threads` threads (16) each allocate and free 300 small
 *                 blocks in ten classes, then wait; prints the resident
 *                 memory they added per thread (per_thread_kib)
 *   classes40     one block in each of 40 size classes, filled; prints the
 *                 resident memory added (added_kib)
 *   small-st      a small single-threaded program: ~10,000 small blocks
 *   small-thread  the same work done by the program's only extra thread
 *
 * Prints one line: "RESULT name threads=T seconds=S peak_rss_kib=K ops=N",
 * then the probe's own figure where it has one, the time being that of
 * the work alone (threads started and joined), the peak RSS the process's
 * own high-water mark (VmHWM).  At --scale 1 (the suite's quick mode) each
 * timed workload runs at least about 0.4 s under the fastest allocator on a
 * 2-core VM.  The work per thread is fixed (scaled by --scale), so a thread
 * sweep measures throughput: ideal scaling keeps the time flat and
 * multiplies ops/s. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
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

/* A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), read without
 * malloc (no stdio) so that the probes measure only their own blocks. */
static long status_kib(const char *key) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *at = strstr(buf, key);
  return at ? atol(at + strlen(key)) : 0;
}

static long peak_rss_kib(void) { return status_kib("VmHWM:"); }

static unsigned long long scaled(double n) {
  return (unsigned long long)(n * scale);
}

/* Runs fn in `threads` threads (argument: the thread's index). */
static double run_threads(void *(*fn)(void *)) {
  pthread_t *t = calloc(threads, sizeof *t);
  double start = now();
  for (uintptr_t i = 0; i < threads; i++)
    pthread_create(&t[i], NULL, fn, (void *)i);
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
/* Per thread at --scale 1, as are the others: 0.3 s at least under every
 * allocator in quick mode (12e6 ran 0.283 s under tcmalloc, 2026-12-02). */
#define LARSON_OPS 16e6
static _Atomic(void *) *larson_pool;

static void *larson_worker(void *arg) {
  uint64_t s = (uintptr_t)arg + 1;
  size_t pool = (size_t)threads * LARSON_PER_THREAD;
  unsigned long long ops = scaled(LARSON_OPS);
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
  *ops = scaled(LARSON_OPS) * threads;
  return secs;
}

/* ---- xmalloc (producers and consumers) -------------------------------------- */

#define RING 4096
#define XMALLOC_OPS 25e6 /* per producer-consumer pair */
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
      while (h - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING)
        sched_yield();
      r->slot[h % RING] = p;
      atomic_store_explicit(&r->head, h + 1, memory_order_release);
    }
  } else { /* consumer */
    for (unsigned long long i = 0; i < per_pair; i++) {
      size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
      while (atomic_load_explicit(&r->head, memory_order_acquire) == t)
        sched_yield();
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
  per_pair = scaled(XMALLOC_OPS);
  double secs = run_threads(xmalloc_worker);
  *ops = per_pair * (threads / 2);
  free(rings);
  threads = saved;
  return secs;
}

/* ---- false sharing ---------------------------------------------------------- */

#define WRITES 20000
#define FS_ROUNDS 32e3
/* scratch: main allocates one object per worker, side by side; each worker
 * frees its object (a remote free), then allocates and writes its own:
 * an allocator that hands the freed block out again in the worker puts two
 * workers on one line (passive false sharing).  scratch-warm: each worker
 * has allocated (and keeps) one object before that free, so its thread
 * cache already exists.  thrash: each worker allocates and writes its own
 * object.  thrash-many: the workers start together and each allocates
 * FS_MANY objects at once, so fresh memory is carved for all of them at
 * the same moment; a line shared between two workers' objects is written
 * by both (active false sharing). */
enum fs_mode { FS_SCRATCH, FS_SCRATCH_WARM, FS_THRASH, FS_THRASH_MANY };
#define FS_MANY 64
static void **scratch_initial;
static unsigned long long fs_rounds;
static enum fs_mode fs_mode;
static pthread_barrier_t fs_start;
/* The cache lines of each worker's objects in its first round, to count
 * the workers that write a line another worker writes (deterministic,
 * whatever the hardware makes of it). */
static uintptr_t (*fs_lines)[FS_MANY];

static void fs_record(unsigned id, int i, void *p) {
  fs_lines[id][i] = (uintptr_t)p / 64;
}

static unsigned fs_shared_workers(void) {
  unsigned shared = 0, n = fs_mode == FS_THRASH_MANY ? FS_MANY : 1;
  for (unsigned w = 0; w < threads; w++) {
    int hit = 0;
    for (unsigned v = 0; v < threads && !hit; v++)
      for (unsigned i = 0; i < n && v != w && !hit; i++)
        for (unsigned j = 0; j < n && !hit; j++)
          hit = fs_lines[w][i] == fs_lines[v][j];
    shared += hit;
  }
  return shared;
}

static void write_hot(char *p) {
  volatile char *v = p;
  for (int w = 0; w < WRITES; w++) v[w & 7]++;
}

static void write_hot_many(char **objs) {
  for (int w = 0; w < WRITES; w++)
    ((volatile char *)objs[w % FS_MANY])[w & 7]++;
}

static void *fs_worker(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  void *warm = NULL;
  if (fs_mode == FS_SCRATCH_WARM) {
    warm = malloc(8);
    memset(warm, 0, 8);
  }
  /* allocated by main, next to the others' */
  if (fs_mode <= FS_SCRATCH_WARM) free(scratch_initial[id]);
  pthread_barrier_wait(&fs_start);
  for (unsigned long long r = 0; r < fs_rounds; r++) {
    if (fs_mode == FS_THRASH_MANY) {
      char *objs[FS_MANY];
      for (int i = 0; i < FS_MANY; i++) objs[i] = malloc(8);
      if (r == 0)
        for (int i = 0; i < FS_MANY; i++) fs_record(id, i, objs[i]);
      write_hot_many(objs);
      for (int i = 0; i < FS_MANY; i++) free(objs[i]);
    } else {
      char *p = malloc(8);
      if (r == 0) fs_record(id, 0, p);
      write_hot(p);
      free(p);
    }
  }
  free(warm);
  return NULL;
}

static double false_sharing(enum fs_mode mode, unsigned long long *ops,
                            long *shared) {
  fs_rounds = scaled(FS_ROUNDS);
  fs_mode = mode;
  pthread_barrier_init(&fs_start, NULL, threads);
  if (mode <= FS_SCRATCH_WARM) {
    scratch_initial = malloc(threads * sizeof(void *));
    for (unsigned i = 0; i < threads; i++) scratch_initial[i] = malloc(8);
  }
  fs_lines = calloc(threads, sizeof *fs_lines);
  double secs = run_threads(fs_worker);
  *shared = (long)fs_shared_workers();
  free(fs_lines);
  if (mode <= FS_SCRATCH_WARM) free(scratch_initial);
  pthread_barrier_destroy(&fs_start);
  *ops = fs_rounds * threads * WRITES;
  return secs;
}

/* ---- mstress: long-lived working set and churn ------------------------------ */

/* Per thread at --scale 1: 0.3 s at least under every allocator in quick
 * mode on the 2-core VM, in its fast mode too (6.5e6 ran 0.127 s under
 * mimalloc, 2026-12-01). */
#define MSTRESS_OPS 16e6

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
  unsigned long long ops = scaled(MSTRESS_OPS);
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
  *ops =
      (scaled(MSTRESS_OPS) + 20000) * threads; /* the working set counts too */
  return run_threads(mstress_worker);
}

/* ---- large -------------------------------------------------------------------- */

/* Per thread at --scale 1: 0.3 s at least under every allocator in quick
 * mode (1500 ran 0.129 s under tcmalloc, 2026-12-01). */
#define LARGE_OPS 4000

static void *large_worker(void *arg) {
  uint64_t s = (uintptr_t)arg * 13 + 5;
  enum { KEEP = 8 };
  void *keep[KEEP] = {0};
  unsigned long long ops = scaled(LARGE_OPS);
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
  *ops = scaled(LARGE_OPS) * threads;
  return run_threads(large_worker);
}

/* ---- pyobject ------------------------------------------------------------------ */

#define PYOBJECT_OPS 18e6

static double pyobject(unsigned long long *ops) {
  void *(*omalloc)(size_t) =
      (void *(*)(size_t))dlsym(RTLD_DEFAULT, "DepotObject_Malloc");
  void (*ofree)(void *) =
      (void (*)(void *))dlsym(RTLD_DEFAULT, "DepotObject_Free");
  if (!omalloc || !ofree) omalloc = malloc, ofree = free;
  enum { LIVE = 100000 };
  void **objs = calloc(LIVE, sizeof(void *));
  uint64_t s = 3;
  double start = now();
  for (int i = 0; i < LIVE; i++) {
    size_t n =
        16 + (rng_next(&s) % 8) * 16 + (rng_next(&s) % 16 == 0 ? 400 : 0);
    objs[i] = omalloc(n);
    touch(objs[i], n);
  }
  unsigned long long n_ops = scaled(PYOBJECT_OPS);
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

/* ---- sizes from a histogram; LIFO and FIFO orders; cross-thread frees ---- */

/* A small-object size histogram: requests of C and C++ programs are mostly
 * under 64 bytes, with a thin tail to 32 KiB (weights in thousandths; a
 * size is uniform within its bucket; mean about 240 bytes). */
/* clang-format off */
static const struct { unsigned lo, hi, weight; } size_histogram[] = {
    {8, 16, 200},    {17, 32, 240},    {33, 48, 130},     {49, 64, 100},
    {65, 96, 80},    {97, 128, 60},    {129, 256, 80},    {257, 512, 50},
    {513, 1024, 30}, {1025, 4096, 25}, {4097, 32768, 5},
};
/* clang-format on */
#define HISTOGRAM_BUCKETS (sizeof size_histogram / sizeof size_histogram[0])
static unsigned char histogram_pick[1000]; /* thousandth -> bucket */

static void histogram_init(void) {
  unsigned at = 0;
  for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++)
    for (unsigned w = 0; w < size_histogram[b].weight && at < 1000; w++)
      histogram_pick[at++] = (unsigned char)b;
}

/* A size drawn from the histogram. */
static size_t histogram_size(uint64_t *s) {
  uint64_t r = rng_next(s);
  unsigned b = histogram_pick[r % 1000];
  size_t lo = size_histogram[b].lo, hi = size_histogram[b].hi;
  return lo + (r >> 20) % (hi - lo + 1);
}

/* Writes what a program writes into a new object: its header (up to 64
 * bytes) and its last byte. */
static void init_block(void *p, size_t n, unsigned char fill) {
  memset(p, fill, n < 64 ? n : 64);
  ((volatile char *)p)[n - 1] = (char)fill;
}

/* Each thread's mailbox: blocks sent to it by other threads, a stack
 * linked through the blocks' first word.  A sender pushes a chain of up to
 * OUTBOX blocks with one compare-and-swap (release: the links and the
 * blocks' contents are visible to the owner); the owner takes the whole
 * stack with one exchange (acquire) and frees every block: the frees the
 * allocator sees are frees of blocks another thread allocated.  Nobody
 * waits for a lock, so the shapes run with more threads than cores.
 * `pending` counts the blocks sent and not yet freed (relaxed: a gauge for
 * back-pressure, transiently off by a chain); a thread that is not
 * scheduled cannot drain, so a sender whose target holds more than
 * SHAPE_INFLIGHT blocks yields until it has caught up.  A thread that has
 * left its loop keeps draining (every 100 us) until every thread has left
 * (`shape_left`), so the bound holds to the end: earlier, a thread that
 * finished first stopped draining while the others still sent to it, and
 * the peak memory of every allocator swung by 2-3x between runs with how
 * far apart the threads finished.  The peak memory then measures the
 * allocator, not the scheduler. */
#define OUTBOX 32
#define SHAPE_INFLIGHT 8192
typedef struct {
  _Alignas(64) _Atomic(void *) head;
  _Atomic long pending;
} mailbox_t;
static mailbox_t *mailboxes;
static _Atomic unsigned shape_left; /* threads out of their loop */
static int shape_fifo;        /* else LIFO */
static unsigned shape_remote; /* percent of the blocks sent away */
/* Allocations per thread at --scale 1: fewer where blocks travel. */
#define SHAPE_OPS (shape_remote ? 10e6 : 16e6)
#define SHAPE_QUEUE 4000 /* FIFO: blocks alive per thread */
#define SHAPE_BURST 512  /* LIFO: deepest burst */

typedef struct {
  unsigned id;
  uint64_t rng;
  void *out_head, *out_tail; /* the chain being gathered for out_to */
  unsigned out_n, out_to;
} shape_thread_t;

static void mailbox_drain(unsigned id) {
  void *p =
      atomic_exchange_explicit(&mailboxes[id].head, NULL, memory_order_acquire);
  long n = 0;
  for (; p; n++) {
    void *next = *(void **)p;
    free(p);
    p = next;
  }
  if (n)
    atomic_fetch_sub_explicit(&mailboxes[id].pending, n, memory_order_relaxed);
}

static void outbox_flush(shape_thread_t *t) {
  if (!t->out_n) return;
  mailbox_t *box = &mailboxes[t->out_to];
  void *old = atomic_load_explicit(&box->head, memory_order_relaxed);
  do *(void **)t->out_tail = old;
  while (!atomic_compare_exchange_weak_explicit(&box->head, &old, t->out_head,
                                                memory_order_release,
                                                memory_order_relaxed));
  atomic_fetch_add_explicit(&box->pending, (long)t->out_n,
                            memory_order_relaxed);
  t->out_head = t->out_tail = NULL;
  t->out_n = 0;
  /* Draining our own mailbox while we wait: two senders never wait on
   * each other. */
  while (atomic_load_explicit(&box->pending, memory_order_relaxed) >
         SHAPE_INFLIGHT) {
    mailbox_drain(t->id);
    sched_yield();
  }
  /* The next chain goes to another thread, never this one. */
  t->out_to =
      (t->id + 1 + (unsigned)(rng_next(&t->rng) % (threads - 1))) % threads;
}

/* The end of a block's life: freed here, or (shape_remote percent of the
 * time) sent to another thread, which frees it. */
static void shape_release(shape_thread_t *t, void *p) {
  if (shape_remote && threads > 1 && rng_next(&t->rng) % 100 < shape_remote) {
    *(void **)p = t->out_head;
    if (!t->out_head) t->out_tail = p;
    t->out_head = p;
    if (++t->out_n == OUTBOX) outbox_flush(t);
  } else {
    free(p);
  }
}

static void *shape_worker(void *arg) {
  shape_thread_t t = {.id = (unsigned)(uintptr_t)arg};
  t.rng = t.id * 1000003ull + 17;
  t.out_to = threads > 1 ? (t.id + 1) % threads : 0;
  unsigned char fill = (unsigned char)(t.id + 1);
  unsigned long long ops = scaled(SHAPE_OPS);
  if (shape_fifo) {
    void **queue = calloc(SHAPE_QUEUE, sizeof(void *));
    for (unsigned long long i = 0; i < ops; i++) {
      size_t slot = i % SHAPE_QUEUE, n = histogram_size(&t.rng);
      if (queue[slot]) shape_release(&t, queue[slot]); /* the oldest */
      queue[slot] = malloc(n);
      init_block(queue[slot], n, fill);
      if (i % 64 == 0) mailbox_drain(t.id);
    }
    for (size_t k = 0; k < SHAPE_QUEUE; k++)
      if (queue[k]) shape_release(&t, queue[k]);
    free(queue);
  } else {
    void *stack[SHAPE_BURST];
    for (unsigned long long i = 0; i < ops;) {
      size_t depth = 1 + rng_next(&t.rng) % SHAPE_BURST;
      for (size_t k = 0; k < depth; k++, i++) {
        size_t n = histogram_size(&t.rng);
        stack[k] = malloc(n);
        init_block(stack[k], n, fill);
      }
      while (depth) shape_release(&t, stack[--depth]); /* newest first */
      mailbox_drain(t.id);
    }
  }
  outbox_flush(&t);
  /* Every chain this thread sends is pushed before its count goes up
   * (release), so once every thread is counted (acquire) nothing more
   * will be sent: the last drain frees the rest. */
  atomic_fetch_add_explicit(&shape_left, 1, memory_order_release);
  while (atomic_load_explicit(&shape_left, memory_order_acquire) < threads) {
    mailbox_drain(t.id);
    usleep(100);
  }
  mailbox_drain(t.id);
  return NULL;
}

static double shape(int fifo, unsigned remote_pct, unsigned long long *ops) {
  histogram_init();
  shape_fifo = fifo;
  shape_remote = remote_pct;
  mailboxes = aligned_alloc(64, threads * sizeof *mailboxes);
  for (unsigned i = 0; i < threads; i++) {
    atomic_init(&mailboxes[i].head, NULL);
    atomic_init(&mailboxes[i].pending, 0);
  }
  atomic_store_explicit(&shape_left, 0, memory_order_relaxed);
  double secs = run_threads(shape_worker);
  free(mailboxes);
  *ops = scaled(SHAPE_OPS) * threads;
  return secs;
}

/* ---- memory probes -------------------------------------------------------------- */

/* thread-rss: main does the threads' work first (so the allocator's own
 * start-up is not counted), then `threads` threads each allocate 30 blocks
 * in each of ten small classes, write them, free them all and wait until
 * main has read the resident memory. */
#define PROBE_BLOCKS 300
static pthread_barrier_t probe_done, probe_measured;
static const size_t probe_classes[10] = {16, 32,  48,  64,  80,
                                         96, 128, 160, 192, 256};

static void probe_work(void) {
  void *blocks[PROBE_BLOCKS];
  for (int i = 0; i < PROBE_BLOCKS; i++) {
    size_t n = probe_classes[i % 10];
    blocks[i] = malloc(n);
    memset(blocks[i], i, n);
  }
  for (int i = 0; i < PROBE_BLOCKS; i++) free(blocks[i]);
}

static void *probe_thread(void *arg) {
  (void)arg;
  probe_work();
  pthread_barrier_wait(&probe_done);
  pthread_barrier_wait(&probe_measured);
  return NULL;
}

static double thread_rss(unsigned long long *ops, long *per_thread_kib) {
  enum { MOST = 256 };
  pthread_t t[MOST];
  unsigned n = threads < MOST ? threads : MOST;
  probe_work();
  pthread_barrier_init(&probe_done, NULL, n + 1);
  pthread_barrier_init(&probe_measured, NULL, n + 1);
  long before = status_kib("VmRSS:");
  double start = now();
  for (unsigned i = 0; i < n; i++)
    pthread_create(&t[i], NULL, probe_thread, NULL);
  pthread_barrier_wait(&probe_done);
  long after = status_kib("VmRSS:");
  double secs = now() - start;
  pthread_barrier_wait(&probe_measured);
  for (unsigned i = 0; i < n; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&probe_done);
  pthread_barrier_destroy(&probe_measured);
  *per_thread_kib = (after - before) / (long)n;
  *ops = (unsigned long long)n * PROBE_BLOCKS;
  return secs;
}

/* classes40: one block in each of 40 size classes (16 bytes to 32 KiB, four
 * classes per doubling above 128), each filled as a program fills it. */
static double classes40(unsigned long long *ops, long *added_kib) {
  void *blocks[40];
  long before = status_kib("VmRSS:");
  double start = now();
  for (int i = 0; i < 40; i++) {
    /* 16, 32, .. 128, then 160, 192, 224, 256, 320, .. 32768 */
    size_t size =
        i < 8 ? 16 * (size_t)(i + 1)
              : ((size_t)128 << ((i - 8) / 4)) * (size_t)(5 + (i - 8) % 4) / 4;
    blocks[i] = malloc(size);
    memset(blocks[i], i, size);
  }
  double secs = now() - start;
  *added_kib = peak_rss_kib() - before;
  for (int i = 0; i < 40; i++) free(blocks[i]);
  *ops = 40;
  return secs;
}

/* small-st and small-thread: a small program's heap, 10,000 blocks of
 * histogram sizes (about 2.4 MiB live), a tenth of them replaced
 * five times over, then all freed; by main, or by the only extra thread. */
static void *small_program(void *arg) {
  enum { LIVE = 10000 };
  uint64_t s = 99;
  void **live = calloc(LIVE, sizeof(void *));
  for (int i = 0; i < LIVE; i++) {
    size_t n = histogram_size(&s);
    live[i] = malloc(n);
    init_block(live[i], n, 1);
  }
  for (int i = 0; i < LIVE / 2; i++) {
    size_t k = rng_next(&s) % LIVE, n = histogram_size(&s);
    free(live[k]);
    live[k] = malloc(n);
    init_block(live[k], n, 2);
  }
  for (int i = 0; i < LIVE; i++) free(live[i]);
  free(live);
  (void)arg;
  return NULL;
}

static double small(int in_thread, unsigned long long *ops) {
  histogram_init();
  double start = now();
  if (in_thread) {
    pthread_t t;
    pthread_create(&t, NULL, small_program, NULL);
    pthread_join(t, NULL);
  } else {
    small_program(NULL);
  }
  *ops = 15000;
  return now() - start;
}

/* ---- main --------------------------------------------------------------------- */

static const char usage[] =
    "usage: workloads NAME [--threads T] [--scale S]\n"
    "  NAME: larson xmalloc scratch scratch-warm thrash thrash-many mstress "
    "large\n"
    "        pyobject histo-lifo histo-fifo xfree-lifo xfree-fifo\n"
    "        thread-rss classes40 small-st small-thread (memory probes)\n";

int main(int argc, char **argv) {
  if (argc < 2 || argc % 2 != 0) {
    fputs(usage, stderr);
    return 2;
  }
  const char *name = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    char *end;
    if (strcmp(argv[i], "--threads") == 0) {
      long t = strtol(argv[i + 1], &end, 10);
      if (*end || t < 1 || t > 4096) {
        fprintf(stderr, "workloads: --threads wants 1 to 4096, not '%s'\n",
                argv[i + 1]);
        return 2;
      }
      threads = (unsigned)t;
    } else if (strcmp(argv[i], "--scale") == 0) {
      scale = strtod(argv[i + 1], &end);
      if (*end || !(scale > 0 && scale <= 1000)) {
        fprintf(stderr,
                "workloads: --scale wants a number in (0, 1000], not '%s'\n",
                argv[i + 1]);
        return 2;
      }
    } else {
      fprintf(stderr, "workloads: unknown option '%s'\n%s", argv[i], usage);
      return 2;
    }
  }
  unsigned long long ops = 0;
  long probe = -1; /* a probe's own figure */
  const char *probe_key = NULL;
  double secs;
  if (strcmp(name, "larson") == 0) secs = larson(&ops);
  else if (strcmp(name, "xmalloc") == 0) secs = xmalloc(&ops);
  else if (strcmp(name, "scratch") == 0)
    secs = false_sharing(FS_SCRATCH, &ops, &probe),
    probe_key = "shared_workers";
  else if (strcmp(name, "scratch-warm") == 0)
    secs = false_sharing(FS_SCRATCH_WARM, &ops, &probe),
    probe_key = "shared_workers";
  else if (strcmp(name, "thrash") == 0)
    secs = false_sharing(FS_THRASH, &ops, &probe), probe_key = "shared_workers";
  else if (strcmp(name, "thrash-many") == 0)
    secs = false_sharing(FS_THRASH_MANY, &ops, &probe),
    probe_key = "shared_workers";
  else if (strcmp(name, "mstress") == 0) secs = mstress(&ops);
  else if (strcmp(name, "large") == 0) secs = large(&ops);
  else if (strcmp(name, "pyobject") == 0) secs = pyobject(&ops);
  else if (strcmp(name, "histo-lifo") == 0) secs = shape(0, 0, &ops);
  else if (strcmp(name, "histo-fifo") == 0) secs = shape(1, 0, &ops);
  else if (strcmp(name, "xfree-lifo") == 0) secs = shape(0, 25, &ops);
  else if (strcmp(name, "xfree-fifo") == 0) secs = shape(1, 25, &ops);
  else if (strcmp(name, "thread-rss") == 0)
    secs = thread_rss(&ops, &probe), probe_key = "per_thread_kib";
  else if (strcmp(name, "classes40") == 0)
    secs = classes40(&ops, &probe), probe_key = "added_kib";
  else if (strcmp(name, "small-st") == 0) secs = small(0, &ops);
  else if (strcmp(name, "small-thread") == 0) secs = small(1, &ops);
  else {
    fprintf(stderr, "workloads: unknown workload '%s'\n%s", name, usage);
    return 2;
  }
  printf("RESULT %s threads=%u seconds=%.6f peak_rss_kib=%ld ops=%llu", name,
         threads, secs, peak_rss_kib(), ops);
  if (probe_key) printf(" %s=%ld", probe_key, probe);
  printf("\n");
  return 0;
}
