/* dlopen_late.c: loads a Depot library with dlopen() after start-up (the
 * path is argv[1]) and allocates through it from two threads. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
static malloc_fn dm;
static free_fn df;

static void *work(void *arg) {
  (void)arg;
  for (int i = 0; i < 100000; i++) {
    char *p = dm((size_t)(i % 500) + 1);
    if (!p) return (void *)1;
    memset(p, 1, (size_t)(i % 500) + 1);
    df(p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  void *h = dlopen(argc > 1 ? argv[1] : "libdepot.so", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("FAIL dlopen: %s\n", dlerror());
    return 1;
  }
  dm = (malloc_fn)dlsym(h, "DepotMem_Malloc");
  df = (free_fn)dlsym(h, "DepotMem_Free");
  if (!dm || !df) {
    printf("FAIL dlsym\n");
    return 1;
  }
  pthread_t t[2];
  void *r0, *r1;
  pthread_create(&t[0], NULL, work, NULL);
  pthread_create(&t[1], NULL, work, NULL);
  pthread_join(t[0], &r0);
  pthread_join(t[1], &r1);
  printf("%s\n", r0 || r1 ? "FAIL" : "PASS");
  return r0 || r1;
}
