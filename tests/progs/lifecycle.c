/* lifecycle.c: linked with //:depot (no malloc override).  Threads are
 * started before Depot initialises; some never allocate; others allocate,
 * hand blocks to main and exit at arbitrary points while those blocks live
 * on.  At the end, with every block freed, Depot must count none in use. */
#define _DEFAULT_SOURCE
#include <depot/depot.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define THREADS 8
#define HANDED 200

static atomic_int go;
static void *handed[THREADS][HANDED + 32];

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  if (id < 2) return NULL; /* never allocates */
  while (!atomic_load(&go)) usleep(100);
  unsigned seed = (unsigned)id * 2654435761u;
  void *local[64] = {0};
  int exit_at = 1000 + id * 3000; /* exits mid-stream, holding blocks */
  for (int i = 0; i < exit_at; i++) {
    seed = seed * 1103515245u + 12345u;
    unsigned k = seed % 64;
    DepotObject_Free(local[k]);
    local[k] = DepotObject_Malloc(1 + (seed >> 10) % 600);
    memset(local[k], id, 1);
    if (i < HANDED) handed[id][i] = DepotObject_Malloc(32 + (size_t)i);
  }
  /* Half of what it holds it frees, half it leaves to main. */
  for (int k = 0; k < 32; k++) DepotObject_Free(local[k]);
  for (int k = 32; k < 64; k++) handed[id][HANDED + k - 32] = local[k];
  return NULL;
}

int main(void) {
  pthread_t t[THREADS];
  for (intptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  usleep(20000); /* threads exist before Depot's first allocation */
  void *first = DepotObject_Malloc(8);
  atomic_store(&go, 1);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < THREADS; i++)
    for (int j = 0; j < HANDED + 32; j++) DepotObject_Free(handed[i][j]);
  DepotObject_Free(first);
  DepotMemStats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  DepotMem_Stats(&s);
  unsigned long long in_use = s.domains[DEPOT_DOMAIN_OBJ].total.blocks_in_use;
  printf("%s in_use=%llu\n", in_use == 0 ? "PASS" : "FAIL", in_use);
  return in_use != 0;
}
