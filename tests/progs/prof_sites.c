/* prof_sites.c: a program with known call sites for the heap-profile
 * tests (tests/prof_test.cc), run with libdepot.so preloaded and
 * DEPOT_CONF=prof=1,...  Several threads allocate blocks of many sizes from
 * two functions, site_three_quarters and site_one_quarter, so that they hold
 * 75% and 25% of the live bytes, beside short-lived churn; the true live
 * bytes of each (as asked for: what the profile estimates) are printed for
 * the test to compare with the profile.
 *   prof_sites inuse MIB    keep MIB live at exit (prof_final writes it)
 *   prof_sites peak MIB     a transient peak (site_transient) freed before
 *                           exit, then a small live heap
 *   prof_sites leak         site_leaked's blocks are never freed,
 *                           site_freed's are
 *   prof_sites signal N     N signals (SIGUSR2) while the threads allocate
 *   prof_sites fork         children of a profiling parent that allocates in
 *                           threads write their own profiles */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4

static size_t live_goal; /* bytes per thread */
static atomic_size_t true_big, true_small;
static atomic_int stop;

static uint32_t next(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

/* Many sizes: mostly small classes, some large blocks (above 32 KiB). */
static size_t some_size(uint32_t *s) {
  uint32_t r = next(s);
  if (r % 64 == 0) return 32768 + next(s) % 98304;
  if (r % 4 == 0) return 1024 + next(s) % 7168;
  return 8 + next(s) % 1000;
}

__attribute__((noinline)) void *site_three_quarters(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  return p;
}

__attribute__((noinline)) void *site_one_quarter(size_t n) {
  void *p = malloc(n);
  memset(p, 2, n);
  return p;
}

__attribute__((noinline)) void site_churn(uint32_t *s) {
  void *p = malloc(some_size(s));
  *(volatile char *)p = 3;
  free(p);
}

typedef struct {
  void **blocks;
  size_t n, cap;
} list_t;

static void keep(list_t *l, void *p) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 1024;
    l->blocks = realloc(l->blocks, l->cap * sizeof *l->blocks);
  }
  l->blocks[l->n++] = p;
}

static void *fill(void *arg) {
  uint32_t seed = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
  size_t big = 0, small = 0;
  list_t *l = calloc(1, sizeof *l);
  while (big + small < live_goal) {
    size_t n = some_size(&seed);
    /* Whichever site is behind its share allocates next. */
    void *p = big < 3 * small ? site_three_quarters(n) : site_one_quarter(n);
    if (big < 3 * small) big += n;
    else small += n;
    keep(l, p);
    if (next(&seed) % 4 == 0) site_churn(&seed);
  }
  atomic_fetch_add(&true_big, big);
  atomic_fetch_add(&true_small, small);
  return l;
}

static void run_threads(void *(*fn)(void *), void **results) {
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, fn, (void *)(i + 1));
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], results ? &results[i] : NULL);
}

static void print_truth(void) {
  size_t b = atomic_load(&true_big), s = atomic_load(&true_small);
  printf("TRUE big=%zu small=%zu total=%zu\n", b, s, b + s);
}

__attribute__((noinline)) void *site_transient(size_t n) { return malloc(n); }

__attribute__((noinline)) void *site_leaked(size_t n) { return malloc(n); }

__attribute__((noinline)) void *site_freed(size_t n) { return malloc(n); }

static void *churn_forever(void *arg) {
  uint32_t seed = (uint32_t)(uintptr_t)arg;
  void *slots[256] = {0};
  while (!atomic_load(&stop)) {
    unsigned k = next(&seed) % 256;
    free(slots[k]);
    slots[k] = site_one_quarter(some_size(&seed));
  }
  for (int k = 0; k < 256; k++) free(slots[k]);
  return NULL;
}

typedef int (*dump_fn)(const char *);

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "inuse";
  if (strcmp(mode, "inuse") == 0) {
    live_goal = (size_t)(argc > 2 ? atoi(argv[2]) : 64) << 20;
    live_goal /= THREADS;
    /* The threads exit before the profile is written: their blocks stay. */
    run_threads(fill, NULL);
    print_truth();
    return 0;
  }
  if (strcmp(mode, "peak") == 0) {
    size_t mib = (size_t)(argc > 2 ? atoi(argv[2]) : 64);
    live_goal = (4u << 20) / THREADS;
    void *results[THREADS];
    run_threads(fill, results);
    list_t t = {0};
    for (size_t done = 0; done < mib << 20; done += 4096)
      keep(&t, site_transient(1 + done % 8000));
    for (size_t i = 0; i < t.n; i++) free(t.blocks[i]);
    print_truth();
    printf("TRANSIENT %zu MiB freed\n", mib);
    return 0;
  }
  if (strcmp(mode, "leak") == 0) {
    static void *freed[20000];
    for (int i = 0; i < 20000; i++) freed[i] = site_freed(100 + i % 3000);
    for (int i = 0; i < 20000; i++) free(freed[i]);
    for (int i = 0; i < 10000; i++) {
      void *p = site_leaked(100 + i % 3000);
      *(volatile char *)p = 1; /* never freed */
    }
    puts("LEAKED 10000 blocks");
    return 0;
  }
  if (strcmp(mode, "signal") == 0) {
    int n = argc > 2 ? atoi(argv[2]) : 10;
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
      pthread_create(&t[i], NULL, churn_forever, (void *)(i + 1));
    for (int i = 0; i < n; i++) {
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
      kill(getpid(), SIGUSR2);
    }
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("SIGNALS %d\n", n);
    return 0;
  }
  if (strcmp(mode, "fork") == 0) {
    dump_fn dump = (dump_fn)dlsym(RTLD_DEFAULT, "DepotMem_DumpProfile");
    if (!dump) {
      puts("no DepotMem_DumpProfile: not running on libdepot.so");
      return 1;
    }
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
      pthread_create(&t[i], NULL, churn_forever, (void *)(i + 1));
    int bad = 0;
    for (int i = 0; i < 8; i++) {
      pid_t pid = fork();
      if (pid == 0) {
        alarm(20);
        for (int k = 0; k < 4000; k++) {
          void *p = site_leaked(4096);
          *(volatile char *)p = 1;
        }
        _exit(dump(NULL) == 0 ? 0 : 2);
      }
      int st;
      waitpid(pid, &st, 0);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("FORKS bad=%d\n", bad);
    return bad != 0;
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
