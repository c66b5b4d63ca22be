/* icount.c: the loops whose instructions fastpath_icount.sh counts.
 *   icount pair32|mixed100 N
 * pair32: N times malloc(32) + free.  mixed100: N/100 rounds of 100 blocks
 * of sizes 8..508 allocated, then freed.  The allocator is whatever the
 * C library's malloc resolves to: glibc's, or a library preloaded with
 * LD_PRELOAD (libdepot.so, jemalloc, tcmalloc, mimalloc), so every allocator
 * is measured through the same binary and the same calls.  Each allocation
 * is an ordinary (out-of-line) call, as a program's would be; build with
 * -fno-builtin so the compiler cannot elide the pairs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run(const char *pattern, long n) {
  void *ptrs[100];
  for (int i = 0; i < 100; i++) ptrs[i] = malloc(8 + (size_t)i * 5);
  for (int i = 0; i < 100; i++) free(ptrs[i]); /* warm up */
  if (strcmp(pattern, "pair32") == 0) {
    for (long i = 0; i < n; i++) free(malloc(32));
  } else {
    for (long r = 0; r < n / 100; r++) {
      for (int i = 0; i < 100; i++) ptrs[i] = malloc(8 + (size_t)i * 5);
      for (int i = 0; i < 100; i++) free(ptrs[i]);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "pair32") && strcmp(argv[1], "mixed100"))) {
    fprintf(stderr, "usage: icount pair32|mixed100 N\n");
    return 2;
  }
  run(argv[1], atol(argv[2]));
  return 0;
}
