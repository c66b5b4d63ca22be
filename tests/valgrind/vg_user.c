/* vg_user.c: a program with three bugs for memcheck to find in its own code
 * (mode "bugs"), or none (mode "clean": heavy use of every entry point from
 * several threads, which must produce no report at all). */
#include <depot/depot.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void *volatile sink;

static void leak(void) { sink = DepotMem_Malloc(100); sink = NULL; }

static void read_uninitialised(void) {
  char *p = DepotObject_Malloc(32);
  if (p[7] == 42) puts("forty-two"); /* p[7] was never written */
  DepotObject_Free(p);
}

static void use_after_free(void) {
  char *p = DepotMem_RawMalloc(64);
  memset(p, 1, 64);
  DepotMem_RawFree(p);
  sink = (void *)(size_t)(p[40] == 1); /* freed */
}

static void *churn(void *arg) {
  unsigned seed = (unsigned)(size_t)arg;
  void *v[64] = {0};
  for (int i = 0; i < 20000; i++) {
    seed = seed * 1103515245u + 12345u;
    int k = (int)(seed % 64);
    size_t n = 1 + (seed >> 8) % (i % 97 == 0 ? 100000 : 600);
    switch ((seed >> 4) % 4) {
      case 0: DepotMem_Free(v[k]); v[k] = DepotMem_Malloc(n); memset(v[k], 1, n); break;
      case 1: DepotMem_Free(v[k]); v[k] = DepotMem_Calloc(1, n); break;
      case 2: if (v[k]) { v[k] = DepotMem_Realloc(v[k], n); memset(v[k], 2, n); } break;
      default: DepotMem_Free(v[k]); v[k] = NULL;
    }
  }
  for (int k = 0; k < 64; k++) DepotMem_Free(v[k]);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "bugs") == 0) {
    leak();
    read_uninitialised();
    use_after_free();
    puts("bugs run done");
    return 0;
  }
  pthread_t t[3];
  for (size_t i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn, (void *)(i + 1));
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  DepotMem_Trim();
  puts("clean run done");
  return 0;
}
