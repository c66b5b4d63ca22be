/* fuzz_depot.c: a libFuzzer target.  The input is a sequence of operations
 * on every entry point: the malloc family (built with a name prefix, so the
 * fuzzer's own malloc stays the sanitizer's), the three domains, aligned and
 * zero-size requests, realloc to zero, calloc overflow, trim, configuration
 * strings, and the paths around them: a thread that allocates, frees blocks
 * of the main thread's and hands its own over before it exits; fork (the
 * child allocates and checks the heap); injected OS failures (each
 * allocation then either works or is a NULL with ENOMEM); the debug hooks
 * (installed around a few operations, then the previous allocators back);
 * a heap (DepotHeap_*) as a fifth family, reset or destroyed and made again
 * while the helper thread's cache still holds its blocks.
 * A shadow model records each live block's family, size and fill byte; a
 * block is checked whenever it is freed or reallocated, every live block
 * and the core's structures (depot_check_heap) every CHECK_EVERY steps and
 * at the end.
 *
 * Cheap per input: nothing maps or unmaps per execution on purpose (trim
 * and fork run at most once in TRIM_EVERY / FORK_EVERY executions, /dev/null
 * is opened once), so the run is not spent in the kernel. */
#define _GNU_SOURCE
#include <depot/depot.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc/alloc_api.h"
#include "alloc/config.h"
#include "alloc/os.h"

enum { CHECK_EVERY = 16, TRIM_EVERY = 64, FORK_EVERY = 256, THREAD_EVERY = 64 };
static unsigned long executions;

/* Whether a costly operation may run now: the first time, then at most once
 * in every `every` executions (*last: the execution it last ran in). */
static int due(unsigned long *last, unsigned long every) {
  if (*last && executions - *last < every) return 0;
  *last = executions;
  return 1;
}

void *fz_malloc(size_t);
void fz_free(void *);
void *fz_calloc(size_t, size_t);
void *fz_realloc(void *, size_t);
void *fz_reallocarray(void *, size_t, size_t);
int fz_posix_memalign(void **, size_t, size_t);
void *fz_aligned_alloc(size_t, size_t);
void *fz_memalign(size_t, size_t);
void *fz_valloc(size_t);
void *fz_pvalloc(size_t);
size_t fz_malloc_usable_size(void *);
int fz_malloc_trim(size_t);

/* The heap family's current heap: reset, or destroyed and made again, by
 * run_heap_life (its blocks leave the shadow model then). */
static DepotHeap *fz_heap;
static DepotHeap *the_heap(void) {
  if (!fz_heap) fz_heap = DepotHeap_New(NULL); /* ENOMEM under faults */
  return fz_heap;
}
static void *heap_malloc(size_t n) {
  return the_heap() ? DepotHeap_Malloc(fz_heap, n) : NULL;
}
static void *heap_calloc(size_t n, size_t m) {
  return the_heap() ? DepotHeap_Calloc(fz_heap, n, m) : NULL;
}
static void *heap_realloc(void *p, size_t n) {
  return the_heap() ? DepotHeap_Realloc(fz_heap, p, n) : NULL;
}

enum { F_LIBC, F_RAW, F_MEM, F_OBJ, F_HEAP, NF };
typedef struct {
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void (*free)(void *);
} fam_t;
static const fam_t fams[NF] = {
    {fz_malloc, fz_calloc, fz_realloc, fz_free},
    {DepotMem_RawMalloc, DepotMem_RawCalloc, DepotMem_RawRealloc, DepotMem_RawFree},
    {DepotMem_Malloc, DepotMem_Calloc, DepotMem_Realloc, DepotMem_Free},
    {DepotObject_Malloc, DepotObject_Calloc, DepotObject_Realloc, DepotObject_Free},
    {heap_malloc, heap_calloc, heap_realloc, DepotHeap_Free},
};

#define MAXLIVE 64
typedef struct {
  unsigned char *p;
  size_t size;
  uint8_t fam, tag;
} live_t;
static live_t live[MAXLIVE];

typedef struct {
  const uint8_t *d;
  size_t n, i;
} in_t;
static unsigned get8(in_t *in) { return in->i < in->n ? in->d[in->i++] : 0; }
static unsigned get16(in_t *in) { return get8(in) | get8(in) << 8; }

/* Offsets a pattern covers: all of a small block, the ends of a big one. */
static size_t next_off(size_t size, size_t i) {
  return size <= 4096 || i + 1 < 256 || i + 1 >= size - 256 ? i + 1 : size - 256;
}
static unsigned char byte_at(uint8_t tag, size_t i) {
  return (unsigned char)(tag ^ (i * 31));
}
static void fill(live_t *b) {
  for (size_t i = 0; i < b->size; i = next_off(b->size, i)) b->p[i] = byte_at(b->tag, i);
}
/* Checks b's pattern below upto (a realloc keeps only a prefix; the offsets
 * are those b->size chose when the block was filled). */
static void verify(const live_t *b, size_t upto) {
  for (size_t i = 0; i < upto && i < b->size; i = next_off(b->size, i))
    if (b->p[i] != byte_at(b->tag, i)) {
      fprintf(stderr, "fuzz: block %p (%zu bytes, family %u) corrupted at %zu\n",
              (void *)b->p, b->size, b->fam, i);
      abort();
    }
}
static void must(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "fuzz: contract broken: %s\n", what);
    abort();
  }
}

static size_t decode_size(in_t *in) {
  unsigned b = get8(in);
  switch (b & 7) {
    case 0: return 0;
    case 1: case 2: case 3: return get8(in);
    case 4: case 5: return get16(in) % 8193;
    case 6: return 32768 + (size_t)get16(in) * 8;       /* large */
    default: return (b & 0x80) ? ((size_t)2 << 20) + get16(in) : 40000; /* huge */
  }
}

static void drop(live_t *b) {
  if (!b->p) return;
  verify(b, b->size);
  fams[b->fam].free(b->p);
  b->p = NULL;
}

static void adopt(live_t *b, void *p, size_t size, unsigned fam, uint8_t tag) {
  must(((uintptr_t)p & 15) == 0, "16-byte alignment");
  if (fam == F_LIBC) must(fz_malloc_usable_size(p) >= size, "usable size");
  b->p = p;
  b->size = size;
  b->fam = (uint8_t)fam;
  b->tag = tag;
  fill(b);
}

/* Config strings print their complaints: keep the fuzzer's log readable. */
static void quietly_load_config(const char *text) {
  static int devnull = -2, saved = -1;
  if (devnull == -2) devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (saved < 0) saved = dup(2);
  if (devnull >= 0) dup2(devnull, 2);
  depot_config_load_from(NULL, text);
  depot_config_load_from(NULL, NULL);
  if (saved >= 0) dup2(saved, 2);
}

/* ---- threads --------------------------------------------------------------- */

/* A thread's work: free the blocks given to it (allocated by the main
 * thread: remote frees), allocate its own, free some, hand the rest back. */
typedef struct {
  live_t give[4], back[4];
  size_t sizes[4];
  uint8_t fam, tag;
} thread_job_t;

static void *thread_main(void *arg) {
  thread_job_t *job = arg;
  for (unsigned k = 0; k < 4; k++) drop(&job->give[k]);
  for (unsigned k = 0; k < 4; k++) {
    void *p = fams[job->fam].malloc(job->sizes[k]);
    must(p != NULL, "malloc in a thread");
    adopt(&job->back[k], p, job->sizes[k], job->fam, (uint8_t)(job->tag + k));
  }
  drop(&job->back[job->tag & 3]);
  return NULL; /* the thread's cache goes back as it exits */
}

/* A long-lived helper thread runs most jobs (creating and ending a thread
 * maps and unmaps its stack and the sanitizers' per-thread state); a fresh
 * thread, whose cache is recycled as it exits, once in THREAD_EVERY
 * executions. */
static sem_t helper_go, helper_done;
static thread_job_t *helper_job;

static void *helper_main(void *arg) {
  (void)arg;
  for (;;) {
    while (sem_wait(&helper_go) != 0) continue;
    thread_main(helper_job);
    sem_post(&helper_done);
  }
  return NULL;
}

static int helper_run(thread_job_t *job) {
  static int state; /* 0: not started, 1: running, -1: could not start */
  if (state == 0) {
    pthread_t t;
    state = sem_init(&helper_go, 0, 0) == 0 && sem_init(&helper_done, 0, 0) == 0 &&
                    pthread_create(&t, NULL, helper_main, NULL) == 0
                ? 1
                : -1;
  }
  if (state < 0) return -1;
  helper_job = job;
  sem_post(&helper_go);
  while (sem_wait(&helper_done) != 0) continue;
  return 0;
}

static void run_thread(in_t *in) {
  static unsigned long last;
  thread_job_t job;
  memset(&job, 0, sizeof job);
  job.fam = (uint8_t)(get8(in) % NF);
  job.tag = (uint8_t)get8(in);
  for (unsigned k = 0; k < 4; k++) {
    live_t *b = &live[get8(in) % MAXLIVE];
    job.give[k] = *b; /* moved, not copied: the thread frees it */
    b->p = NULL;
    job.sizes[k] = decode_size(in);
  }
  pthread_t t;
  if (due(&last, THREAD_EVERY) && pthread_create(&t, NULL, thread_main, &job) == 0)
    pthread_join(t, NULL);
  else if (helper_run(&job) != 0)
    thread_main(&job); /* no thread to be had: the same work here */
  for (unsigned k = 0; k < 4; k++) { /* blocks of a dead thread live on */
    live_t *b = &live[get8(in) % MAXLIVE];
    if (!job.back[k].p) continue;
    drop(b);
    *b = job.back[k];
  }
}

/* ---- fork ------------------------------------------------------------------ */

/* The child finds every block intact, allocates, frees and checks the heap
 * (the fork handlers left every lock free and every structure whole). */
static void run_fork(in_t *in) {
  static unsigned long last;
  size_t n = decode_size(in);
  if (!due(&last, FORK_EVERY)) return;
  pid_t pid = fork();
  if (pid == 0) {
    for (unsigned k = 0; k < MAXLIVE; k++)
      if (live[k].p) verify(&live[k], live[k].size);
    void *p = fz_malloc(n);
    if (!p) _exit(3);
    fz_free(p);
    for (unsigned k = 0; k < MAXLIVE; k += 2) drop(&live[k]);
    depot_check_heap();
    _exit(0);
  }
  must(pid > 0, "fork");
  int status = 0;
  must(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "the forked child allocates and finds the heap whole");
}

/* ---- fault injection ----------------------------------------------------- */

/* The next few OS calls (or reuse points) fail: each allocation either works
 * or returns NULL with ENOMEM, and a failed realloc keeps its block. */
static void run_faults(in_t *in) {
  unsigned how = get8(in);
  if (how & 1) depot_os_fail_next(1 + how % 8);
  else depot_os_fail_every(1 + how % 4);
  for (unsigned k = 0, steps = 1 + get8(in) % 6; k < steps; k++) {
    live_t *b = &live[get8(in) % MAXLIVE];
    unsigned fam = get8(in) % NF;
    size_t n = decode_size(in);
    errno = 0;
    if (b->p && (get8(in) & 1)) { /* realloc */
      verify(b, b->size);
      unsigned char *q = fams[b->fam].realloc(b->p, n ? n : 1);
      if (!q) {
        must(errno == ENOMEM, "a failed realloc sets ENOMEM");
        verify(b, b->size); /* and keeps the block */
        continue;
      }
      size_t keep = b->size < n ? b->size : n;
      live_t old = *b;
      old.p = q;
      verify(&old, keep);
      b->p = q;
      b->size = n ? n : 1;
      fill(b);
      continue;
    }
    drop(b);
    void *p = fams[fam].malloc(n);
    if (!p) {
      must(errno == ENOMEM, "a failed malloc sets ENOMEM");
      continue;
    }
    adopt(b, p, n, fam, (uint8_t)k);
  }
  depot_os_fail_next(0);
  depot_os_fail_every(0);
}

/* ---- heaps ----------------------------------------------------------------- */

/* Resets the heap, or destroys it and makes a new one: its blocks leave the
 * model (each checked first); the helper thread's cache may still hold some
 * of them, which must never come back.  Then the heap's statistics agree
 * with the model. */
static void run_heap_life(in_t *in) {
  DepotHeap *h = the_heap();
  must(h != NULL, "a heap");
  for (unsigned k = 0; k < MAXLIVE; k++)
    if (live[k].p && live[k].fam == F_HEAP) {
      verify(&live[k], live[k].size);
      must(DepotHeap_Of(live[k].p) == h, "a heap block knows its heap");
      live[k].p = NULL;
    }
  if (get8(in) & 1) {
    DepotHeap_Reset(h);
  } else {
    DepotHeap_Destroy(h);
    fz_heap = NULL;
  }
  DepotHeapStats st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  must(DepotHeap_Stats(the_heap(), &st) == 0 && st.blocks_in_use == 0 && st.bytes_held == 0,
       "a reset or new heap holds nothing");
}

/* ---- debug hooks ----------------------------------------------------------- */

/* Installs the debug hooks, runs a few operations on blocks of its own
 * through them (fresh bytes are 0xCD, calloc zeroes, realloc keeps data),
 * and puts the previous allocators back: blocks in live[] never cross. */
static void run_debug_hooks(in_t *in) {
  DepotMemAllocatorEx saved[3];
  for (int d = 0; d < 3; d++) DepotMem_GetAllocator((DepotMemAllocatorDomain)d, &saved[d]);
  DepotMem_SetupDebugHooks();
  live_t mine[3];
  memset(mine, 0, sizeof mine);
  for (unsigned k = 0; k < 3; k++) {
    unsigned fam = F_RAW + get8(in) % 3;
    size_t n = decode_size(in);
    unsigned char *p = (get8(in) & 1) ? fams[fam].calloc(1, n) : fams[fam].malloc(n);
    must(p != NULL, "debug malloc");
    for (size_t i = 0; i < n && i < 64; i++)
      must(p[i] == 0 || p[i] == 0xCD, "debug hooks fill fresh bytes");
    adopt(&mine[k], p, n, fam, (uint8_t)k);
    size_t m = decode_size(in);
    unsigned char *q = fams[fam].realloc(p, m);
    must(q != NULL, "debug realloc");
    live_t old = mine[k];
    old.p = q;
    verify(&old, m < n ? m : n);
    mine[k].p = q;
    mine[k].size = m;
    fill(&mine[k]);
  }
  for (unsigned k = 0; k < 3; k++) drop(&mine[k]);
  for (int d = 0; d < 3; d++) DepotMem_SetAllocator((DepotMemAllocatorDomain)d, &saved[d]);
}

/* Heap profiling on (issue 13), with a small interval so that many blocks
 * take the sampled paths; set before the first allocation, which reads the
 * configuration.  -DDEPOT_FUZZ_NO_PROF fuzzes without it. */
#ifndef DEPOT_FUZZ_NO_PROF
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  setenv("DEPOT_CONF", "prof=1,prof_sample=4k", 0);
  return 0;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in_t in = {data, size, 0};
  unsigned steps = 0;
  executions++;
  while (in.i < in.n) {
    unsigned op = get8(&in) % 17;
    live_t *b = &live[get8(&in) % MAXLIVE];
    unsigned fam = get8(&in) % NF;
    uint8_t tag = (uint8_t)get8(&in);
    switch (op) {
      case 0: { /* allocate */
        drop(b);
        size_t n = decode_size(&in);
        void *p = fams[fam].malloc(n);
        must(p != NULL, "malloc of a modest size");
        adopt(b, p, n, fam, tag);
        break;
      }
      case 1: { /* calloc, overflowing or not */
        drop(b);
        /* Up to 8 MiB (huge, from the cache too), or an overflowing product:
         * a calloc of gigabytes would spend the run clearing pages. */
        size_t count = get16(&in) % 2048, el = get16(&in) % 4097;
        if (get8(&in) & 1) count = (count + 1) << 48;
        errno = 0;
        unsigned char *p = fams[fam].calloc(count, el);
        if (count && el > (size_t)PTRDIFF_MAX / count) {
          must(p == NULL && errno == ENOMEM, "overflowing calloc fails with ENOMEM");
          break;
        }
        if (count * el > ((size_t)256 << 10)) { /* too big to check byte by byte */
          if (p) fams[fam].free(p);
          break;
        }
        must(p != NULL, "calloc of a modest size");
        for (size_t i = 0; i < count * el; i++) must(p[i] == 0, "calloc zeroes");
        adopt(b, p, count * el, fam, tag);
        break;
      }
      case 2: { /* realloc, to zero too */
        if (!b->p) break;
        size_t n = decode_size(&in);
        verify(b, b->size);
        size_t keep = n < b->size ? n : b->size;
        live_t old = *b;
        unsigned char *q = fams[b->fam].realloc(b->p, n);
        if (b->fam == F_LIBC && n == 0) {
          must(q == NULL, "realloc(p, 0) frees, as glibc's does");
          b->p = NULL;
          break;
        }
        must(q != NULL, "realloc of a modest size");
        old.p = q;
        verify(&old, keep); /* the prefix survived */
        b->p = q;
        b->size = n;
        b->tag = tag;
        fill(b);
        break;
      }
      case 3:
        drop(b);
        break;
      case 4: { /* aligned, through each entry point */
        drop(b);
        size_t align = (size_t)1 << (get8(&in) % 23), n = decode_size(&in);
        void *p = NULL;
        switch (get8(&in) % 5) {
          case 0: {
            int r = fz_posix_memalign(&p, align, n);
            if (align < sizeof(void *)) {
              must(r == EINVAL && p == NULL, "posix_memalign rejects a small alignment");
              break;
            }
            must(r == 0, "posix_memalign");
            break;
          }
          case 1: p = fz_aligned_alloc(align, n); break;
          case 2: p = fz_memalign(align, n); break;
          case 3: p = fz_valloc(n); align = 4096; break;
          default: p = fz_pvalloc(n); align = 4096; break;
        }
        if (!p) break;
        must((uintptr_t)p % align == 0, "alignment honoured");
        adopt(b, p, n, F_LIBC, tag);
        break;
      }
      case 5: { /* zero bytes: distinct, non-NULL */
        void *a = fams[fam].malloc(0), *c = fams[fam].malloc(0);
        must(a && c && a != c, "zero-byte blocks are distinct and non-NULL");
        fams[fam].free(a);
        fams[fam].free(c);
        break;
      }
      case 6: { /* trim returns pages to the OS: one execution in TRIM_EVERY */
        static unsigned long last_trim;
        if (!due(&last_trim, TRIM_EVERY)) break;
        if (tag & 1) DepotMem_Trim();
        else fz_malloc_trim(0);
        break;
      }
      case 7: { /* configuration text */
        char text[49];
        size_t len = get8(&in) % 48, k = 0;
        for (; k < len && in.i < in.n; k++) text[k] = (char)get8(&in);
        text[k] = 0;
        if (!strstr(text, "strict")) quietly_load_config(text);
        break;
      }
      case 8: { /* impossible sizes */
        errno = 0;
        must(fams[fam].malloc(SIZE_MAX - get8(&in)) == NULL && errno == ENOMEM,
             "a request above PTRDIFF_MAX fails with ENOMEM");
        errno = 0;
        must(fz_reallocarray(NULL, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM,
             "reallocarray overflow");
        break;
      }
      case 9: /* usable size of a live block */
        if (b->p) {
          must(depot_usable_size(b->p) >= b->size ||
                   (b->fam != F_LIBC && depot_usable_size(b->p) == 0),
               "usable size covers the block");
          must(depot_owns(b->p) || b->fam != F_LIBC, "Depot owns its block");
          if (b->fam == F_HEAP)
            must(DepotHeap_Of(b->p) == fz_heap &&
                     DepotHeap_UsableSize(b->p) >= (b->size ? b->size : 1),
                 "a heap block's heap and usable size");
        }
        break;
      case 10: { /* statistics */
        DepotMemStats st;
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        must(DepotMem_Stats(&st) == 0, "statistics");
        break;
      }
      case 12:
        run_thread(&in);
        break;
      case 13:
        run_fork(&in);
        break;
      case 14:
        run_faults(&in);
        break;
      case 15:
        run_debug_hooks(&in);
        break;
      case 16:
        run_heap_life(&in);
        break;
      default: { /* reallocarray */
        if (!b->p || b->fam != F_LIBC) break;
        size_t n = get8(&in) + 1, m = get8(&in);
        verify(b, b->size);
        unsigned char *q = fz_reallocarray(b->p, n, m);
        if (n * m == 0) { /* glibc frees on a zero size too */
          b->p = NULL;
          break;
        }
        must(q != NULL, "reallocarray of a modest size");
        live_t old = *b;
        old.p = q;
        verify(&old, n * m); /* the prefix survived */
        b->p = q;
        b->size = n * m;
        fill(b);
      }
    }
    if (++steps % CHECK_EVERY == 0) { /* blocks touched were checked already */
      for (unsigned k = 0; k < MAXLIVE; k++)
        if (live[k].p) verify(&live[k], live[k].size);
      depot_check_heap(); /* every structure of the core */
    }
  }
  for (unsigned k = 0; k < MAXLIVE; k++) drop(&live[k]); /* each verified */
  depot_check_heap();
  return 0;
}
