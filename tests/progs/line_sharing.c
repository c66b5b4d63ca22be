/* line_sharing.c: passive false sharing, counted deterministically.  The
 * scratch benchmark's pattern: the main thread allocates BLOCKS small
 * blocks and hands one to each of WORKERS threads; each worker frees the
 * block it was given and allocates one of its own, of the same size, which
 * it would then write for the rest of its life.  A worker "shares" when its
 * own block lies on a cache line that another thread was given (the main
 * thread's blocks, or another worker's).  The workers live together (as in
 * the benchmark) but take turns, and keep their blocks until all are done,
 * so the count does not depend on timing.  Prints "shared=K of WORKERS" and exits 0 when K is 0, 1
 * otherwise.  Run under LD_PRELOAD=libdepot.so (argv[1]: block size,
 * default 32). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define BLOCKS 64
#define WORKERS 4
#define LINE 64

static size_t size = 32;
static void *given[BLOCKS]; /* the main thread's blocks */
static void *own[WORKERS];  /* each worker's own block */

static pthread_mutex_t turn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cond = PTHREAD_COND_INITIALIZER;
static size_t turn; /* the worker whose turn it is (turn_lock) */
static pthread_barrier_t all_done;

static void *worker(void *arg) {
  size_t k = (size_t)(uintptr_t)arg;
  pthread_mutex_lock(&turn_lock);
  while (turn != k) pthread_cond_wait(&turn_cond, &turn_lock);
  pthread_mutex_unlock(&turn_lock);
  free(given[k]); /* freed by a thread other than its allocator */
  given[k] = NULL;
  own[k] = malloc(size);
  ((char *)own[k])[0] = 1;
  pthread_mutex_lock(&turn_lock);
  turn++;
  pthread_cond_broadcast(&turn_cond);
  pthread_mutex_unlock(&turn_lock);
  pthread_barrier_wait(&all_done); /* alive until every worker is done */
  return NULL;
}

static int same_line(const void *a, size_t asize, const void *b, size_t bsize) {
  uintptr_t a0 = (uintptr_t)a / LINE, a1 = ((uintptr_t)a + asize - 1) / LINE;
  uintptr_t b0 = (uintptr_t)b / LINE, b1 = ((uintptr_t)b + bsize - 1) / LINE;
  return a0 <= b1 && b0 <= a1;
}

int main(int argc, char **argv) {
  if (argc > 1) size = (size_t)atoi(argv[1]);
  if (size == 0 || size > 4096) size = 32;
  void *kept[BLOCKS]; /* every block main was given, for the comparison */
  for (int i = 0; i < BLOCKS; i++) kept[i] = given[i] = malloc(size);
  pthread_t t[WORKERS];
  pthread_barrier_init(&all_done, NULL, WORKERS);
  for (size_t k = 0; k < WORKERS; k++)
    if (pthread_create(&t[k], NULL, worker, (void *)(uintptr_t)k) != 0) {
      printf("FAIL: cannot start a thread\n");
      return 2;
    }
  for (size_t k = 0; k < WORKERS; k++) pthread_join(t[k], NULL);
  int shared = 0;
  for (int k = 0; k < WORKERS; k++) {
    int hit = 0;
    for (int i = 0; i < BLOCKS; i++) /* main's lines, the freed ones too */
      hit |= same_line(own[k], size, kept[i], size);
    for (int j = 0; j < WORKERS; j++)
      if (j != k) hit |= same_line(own[k], size, own[j], size);
    shared += hit;
  }
  printf("shared=%d of %d\n", shared, WORKERS);
  return shared == 0 ? 0 : 1;
}
