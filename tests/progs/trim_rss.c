/* trim_rss.c: allocates 1 GiB (or argv[1] MiB) in small blocks across
 * threads, frees it all, calls malloc_trim(0) and checks that resident
 * memory falls back to within a small margin of where it started. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
  return NULL;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
  per_thread = (mib << 20) / THREADS;
  size_t start = rss_bytes();
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, fill, NULL);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  size_t before_trim = rss_bytes();
  malloc_trim(0);
  size_t end = rss_bytes();
  size_t margin = (size_t)32 << 20;
  int ok = end <= start + margin;
  printf("%s %s rss start=%zu MiB, after free=%zu MiB, after trim=%zu MiB\n",
         ok ? "PASS" : "FAIL", dlsym(RTLD_DEFAULT, "DepotMem_Stats") ? "depot" : "libc",
         start >> 20, before_trim >> 20, end >> 20);
  return ok ? 0 : 1;
}
