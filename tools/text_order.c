/* text_order.c: what an ordinary program asks of its malloc, run with
 * libdepot.so preloaded, so that tools/text_order.sh can list the library's
 * functions such a program executes (tools/libdepot.order), and
 * tests/text_layout_test.sh can check that they sit in the block the linker
 * puts first.  Nothing here is optional Depot behaviour (no statistics,
 * profiling or debug mode): only the C library's interface.
 *   text_order core     blocks up to 1 MiB, calloc, realloc, the aligned
 *                       calls, from the main thread and four threads that
 *                       free each other's blocks and exit
 *   text_order huge     the same and a 5 MiB block (a mapping of its own)
 *   text_order all      the same, a fork whose child allocates, and a
 *                       pause past the purge and idle delays (1 s each by
 *                       default): a long-lived program's background purger
 *                       returns free pages, flushes the idle main thread's
 *                       cache and reclaims, and the program allocates again
 *   text_order MODE rss then prints the resident KiB of the library's
 *                       mappings ("libdepot" in their path): "code N
 *                       rodata N" (executable, and read-only)
 * Exit status 0 when every call behaved. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define BLOCKS 2000

static void *sent[THREADS][BLOCKS]; /* thread t's blocks, freed by t + 1 */
static pthread_barrier_t handed;
static int failures;
static int huge, all; /* "huge": huge blocks too; "all": and fork */

/* Sums the Rss lines of /proc/self/smaps for the library's mappings with
 * and without execute permission (read-only ones only). */
static void print_rss(void) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) {
    perror("text_order: /proc/self/smaps");
    failures++;
    return;
  }
  char line[512], perms[8] = "";
  int ours = 0;
  unsigned long code = 0, rodata = 0, kib;
  while (fgets(line, sizeof line, f)) {
    char path[256] = "";
    if (sscanf(line, "%*x-%*x %7s %*s %*s %*s %255s", perms, path) >= 1 &&
        strchr(line, '-') < strchr(line, ' ') && strlen(perms) == 4) {
      ours = strstr(path, "libdepot") != NULL;
    } else if (ours && sscanf(line, "Rss: %lu kB", &kib) == 1) {
      if (perms[2] == 'x')
        code += kib;
      else if (perms[1] != 'w')
        rodata += kib;
    }
  }
  fclose(f);
  printf("code %lu rodata %lu\n", code, rodata);
}

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "text_order: %s failed\n", what);
    __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
  }
}

/* Every small class, some large and one huge block, written and freed;
 * the usual variants of malloc. */
static void sizes(unsigned seed) {
  void *keep[64];
  for (int r = 0; r < 8; r++) {
    for (int i = 0; i < 64; i++) {
      size_t n = 1 + (size_t)((seed + (unsigned)(i * 7919 + r)) % 32768);
      keep[i] = malloc(n);
      check(keep[i] != NULL, "malloc");
      if (keep[i]) memset(keep[i], i, n < 256 ? n : 256);
    }
    for (int i = 0; i < 64; i += 2) free(keep[i]);
    for (int i = 1; i < 64; i += 2) {
      void *p = realloc(keep[i], 40000 + (size_t)i);
      check(p != NULL, "realloc");
      keep[i] = p;
    }
    for (int i = 1; i < 64; i += 2) free(keep[i]);
  }
  void *big = malloc(300000);
  check(big != NULL, "malloc large");
  big = realloc(big, 600000);
  check(big != NULL, "realloc large");
  free(big);
  /* Enough blocks of enough classes to fill the cache: bins overflow to
   * the pools, and grow by taking budget from each other. */
  enum { CLASSES = 32, EACH = 600 };
  void **many = malloc(CLASSES * EACH * sizeof *many);
  check(many != NULL, "malloc");
  for (int k = 0; many && k < CLASSES * EACH; k++) {
    many[k] = malloc(16 + (size_t)(k / EACH) * 32);
    check(many[k] != NULL, "malloc");
  }
  for (int k = 0; many && k < CLASSES * EACH; k++) free(many[k]);
  free(many);
  if (huge) { /* mappings of their own, cached and reused, grown */
    for (int r = 0; r < 3; r++) {
      void *h[3] = {malloc(5u << 20), malloc(3u << 20), malloc(9u << 20)};
      check(h[0] && h[1] && h[2], "malloc huge");
      for (int i = 0; i < 3; i++)
        if (h[i]) memset(h[i], 1, 4096);
      void *g = realloc(h[1], 7u << 20);
      check(g != NULL, "realloc huge");
      if (g) h[1] = g;
      for (int i = 0; i < 3; i++) free(h[i]);
    }
  }
  void *c = calloc(100, 24), *a = aligned_alloc(64, 640), *m = memalign(256, 100);
  void *p = NULL;
  check(c && a && m && posix_memalign(&p, 4096, 5000) == 0, "calloc/aligned");
  check(malloc_usable_size(c) >= 2400, "malloc_usable_size");
  char *s = strdup("depot");
  check(s != NULL, "strdup");
  free(s);
  free(p);
  free(m);
  free(a);
  free(c);
}

/* Each thread allocates BLOCKS blocks for the next thread to free (remote
 * frees), frees the previous thread's, allocates until its bins run dry
 * (taking its own blocks back from its inbox), and exits (its cache is
 * torn down). */
static void *worker(void *arg) {
  unsigned t = (unsigned)(size_t)arg;
  sizes(t * 31u);
  for (int i = 0; i < BLOCKS; i++) {
    sent[t][i] = malloc(16 + (size_t)(i % 64) * 8);
    check(sent[t][i] != NULL, "malloc");
  }
  pthread_barrier_wait(&handed);
  unsigned from = (t + THREADS - 1) % THREADS;
  for (int i = 0; i < BLOCKS; i++) free(sent[from][i]);
  pthread_barrier_wait(&handed);
  for (int r = 0; r < 4; r++) {
    for (int i = 0; i < BLOCKS; i++) {
      sent[t][i] = malloc(16 + (size_t)(i % 64) * 8);
      check(sent[t][i] != NULL, "malloc");
    }
    for (int i = 0; i < BLOCKS; i++) free(sent[t][i]);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3 ||
      (strcmp(argv[1], "core") && strcmp(argv[1], "huge") &&
       strcmp(argv[1], "all")) ||
      (argc == 3 && strcmp(argv[2], "rss"))) {
    fprintf(stderr, "usage: text_order core|huge|all [rss]\n");
    return 2;
  }
  all = strcmp(argv[1], "all") == 0;
  huge = all || strcmp(argv[1], "huge") == 0;
  sizes(1);
  pthread_barrier_init(&handed, NULL, THREADS);
  pthread_t th[THREADS];
  for (unsigned t = 0; t < THREADS; t++)
    check(pthread_create(&th[t], NULL, worker, (void *)(size_t)t) == 0,
          "pthread_create");
  for (unsigned t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  pthread_barrier_destroy(&handed);
  if (all) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      sizes(2);
      _exit(failures ? 1 : 0);
    }
    int status = 0;
    check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0,
          "fork");
    /* Idle: the purger (started with the threads) finds pages free for
     * purge_delay_ms and a heap idle for as long; what it runs then any
     * long-lived program runs, at a time that depends on the machine's
     * speed (under callgrind a slower machine can reach it inside the run:
     * the likely cause of a layout test that failed on CI). */
    struct timespec pause = {2, 500 * 1000 * 1000};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
  }
  sizes(3);
  if (argc == 3) print_rss();
  return failures ? 1 : 0;
}
