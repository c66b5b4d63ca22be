/* uses_depot: a program built against an installed Depot (by
 * tests/install_test.sh, three ways).  It checks that the library it runs
 * on is the version of its header and that Depot serves its blocks: 100
 * blocks of malloc (or, with the argument "api", of DepotMem_RawMalloc)
 * must show up in Depot's statistics of the raw domain. */
#include <depot/depot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BLOCKS = 100 };

static uint64_t raw_blocks_in_use(void) {
  DepotMemStats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  if (DepotMem_Stats(&s) != 0) return 0;
  return s.domains[DEPOT_DOMAIN_RAW].total.blocks_in_use;
}

int main(int argc, char **argv) {
  int api = argc > 1 && strcmp(argv[1], "api") == 0;
  if (DepotMem_Version() != DEPOT_VERSION_NUMBER) {
    printf("FAIL: built against %d, running on %u\n", DEPOT_VERSION_NUMBER, DepotMem_Version());
    return 1;
  }
  uint64_t before = raw_blocks_in_use();
  void *blocks[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) blocks[i] = api ? DepotMem_RawMalloc(48) : malloc(48);
  uint64_t during = raw_blocks_in_use();
  for (int i = 0; i < BLOCKS; i++) api ? DepotMem_RawFree(blocks[i]) : free(blocks[i]);
  if (during < before + BLOCKS) {
    printf("FAIL: %s is not Depot's (raw blocks in use %llu, then %llu)\n",
           api ? "DepotMem_RawMalloc" : "malloc", (unsigned long long)before,
           (unsigned long long)during);
    return 1;
  }
  printf("PASS: Depot %u serves %s\n", DepotMem_Version(), api ? "the API" : "malloc");
  return 0;
}
