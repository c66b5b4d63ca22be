/* trim_rss.c: allocates 1 GiB (or argv[1] MiB) in small blocks across
 * threads, frees it all, and checks that resident memory falls back to
 * within a small margin of where it started.
 *   trim_rss [MIB]            the main thread calls malloc_trim(0)
 *   trim_rss MIB wait MS      no malloc_trim: each thread, after its frees,
 *                             sleeps MS milliseconds and then allocates and
 *                             frees one large block, which makes its arena
 *                             check for pages due for purging.  Prints
 *                             the figures and exits 0: the caller knows
 *                             what to expect of the purge delay it set. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t per_thread;
static long wait_ms = -1;       /* -1: malloc_trim mode */
static pthread_barrier_t freed; /* workers and main: every block is freed */
#define THREADS 4

static void *fill(void *arg) {
  (void)arg;
  size_t n = 0, cap = per_thread / 64 + 16, count = 0;
  void **v = malloc(cap * sizeof *v);
  while (n < per_thread && count < cap) {
    size_t s = 16 + (count * 37) % 240;
    v[count] = malloc(s);
    memset(v[count], 0x5A, s);
    n += s;
    count++;
  }
  for (size_t i = 0; i < count; i++) free(v[i]);
  free(v);
  if (wait_ms >= 0) {
    pthread_barrier_wait(&freed);
    struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    /* A large block: a span from this thread's arena, handed out and taken
     * back, each time checking for due purges. */
    void *big = malloc((size_t)256 << 10);
    free(big);
  }
  return NULL;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
  if (argc > 3 && strcmp(argv[2], "wait") == 0) wait_ms = atol(argv[3]);
  per_thread = (mib << 20) / THREADS;
  const char *who = dlsym(RTLD_DEFAULT, "DepotMem_Stats") ? "depot" : "libc";
  size_t start = rss_bytes();
  pthread_t t[THREADS];
  if (wait_ms >= 0) pthread_barrier_init(&freed, NULL, THREADS + 1);
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, fill, NULL);
  if (wait_ms >= 0) {
    pthread_barrier_wait(&freed);
    size_t after_free = rss_bytes();
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    size_t end = rss_bytes();
    printf("%s rss start=%zu MiB, after free=%zu MiB, after wait=%zu MiB\n",
           who, start >> 20, after_free >> 20, end >> 20);
    return 0;
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  size_t before_trim = rss_bytes();
  malloc_trim(0);
  size_t end = rss_bytes();
  int ok = end <= start + ((size_t)32 << 20);
  printf("%s %s rss start=%zu MiB, after free=%zu MiB, after trim=%zu MiB\n",
         ok ? "PASS" : "FAIL", who, start >> 20, before_trim >> 20, end >> 20);
  return ok ? 0 : 1;
}
