/* icount.c: the loops whose instructions fastpath_icount.sh counts.
 *   icount depot|system pair32|mixed100 N
 * pair32: N times malloc(32) + free.  mixed100: N/100 rounds of 100 blocks
 * of sizes 8..508 allocated, then freed.  Each allocation is an ordinary
 * (out-of-line) call, as a program's would be; build with -fno-builtin so
 * the compiler cannot elide the system allocator's pairs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"

/* What an API entry point with a fixed domain compiles to (as DepotMem_Malloc
 * or the malloc override will): the inline fast path in an ordinary function. */
__attribute__((noipa)) static void *depot_m(size_t n) {
  return depot_alloc(n, DEPOT_DOM_RAW);
}
__attribute__((noipa)) static void depot_f(void *p) {
  depot_free(p, DEPOT_DOM_RAW);
}

/* One copy of the loops per allocator, with direct calls. */
#define DEFINE_LOOPS(name, M, F)                                   \
  static void name(const char *pattern, long n) {                  \
    void *ptrs[100];                                               \
    for (int i = 0; i < 100; i++) ptrs[i] = M(8 + (size_t)i * 5); \
    for (int i = 0; i < 100; i++) F(ptrs[i]); /* warm up */        \
    if (strcmp(pattern, "pair32") == 0) {                          \
      for (long i = 0; i < n; i++) F(M(32));                       \
    } else {                                                       \
      for (long r = 0; r < n / 100; r++) {                         \
        for (int i = 0; i < 100; i++) ptrs[i] = M(8 + (size_t)i * 5); \
        for (int i = 0; i < 100; i++) F(ptrs[i]);                  \
      }                                                            \
    }                                                              \
  }
DEFINE_LOOPS(run_depot, depot_m, depot_f)
DEFINE_LOOPS(run_system, malloc, free)

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: icount depot|system pair32|mixed100 N\n");
    return 2;
  }
  if (strcmp(argv[1], "depot") == 0) run_depot(argv[2], atol(argv[3]));
  else run_system(argv[2], atol(argv[3]));
  return 0;
}
