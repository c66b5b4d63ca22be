/* env_probe.c: a small program the env tests run in a fresh process, under
 * environment variables that are read once at start-up.
 *   env_probe overflow   write one byte past a mem block, then free it
 *   env_probe owner      print who allocated a mem block: depot or libc
 *   env_probe stats      allocate a little and exit normally
 *   env_probe options    print the core options the configuration set */
#include <depot/depot.h>
#include <stdio.h>
#include <string.h>

#include "alloc/alloc_api.h"
#include "alloc/config.h"

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "overflow") == 0) {
    char *p = DepotMem_Malloc(24);
    p[24] = 'X';
    DepotMem_Free(p);
    puts("survived");
    return 0;
  }
  if (strcmp(mode, "owner") == 0) {
    void *p = DepotMem_Malloc(100);
    printf("owner=%s\n", depot_owns(p) ? "depot" : "libc");
    DepotMem_Free(p);
    return 0;
  }
  if (strcmp(mode, "stats") == 0) {
    for (int i = 0; i < 100; i++) DepotObject_Malloc(64); /* kept: in use */
    return 0;
  }
  if (strcmp(mode, "options") == 0) {
    printf("tcache_max_bytes=%zu tcache_batch=%u abort_on_bad_pointer=%d\n",
           depot_options.tcache_max_bytes, depot_options.tcache_batch,
           depot_options.on_bad_free == DEPOT_ON_BAD_FREE_ABORT);
    return 0;
  }
  fprintf(stderr, "usage: env_probe overflow|owner|stats|options\n");
  return 2;
}
