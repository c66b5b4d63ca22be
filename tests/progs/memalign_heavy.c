/* memalign_heavy.c: many aligned blocks from several threads, every block's
 * alignment and contents checked before it is freed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE 512

static void *worker(void *arg) {
  uintptr_t seed = (uintptr_t)arg, bad = 0;
  void *blocks[LIVE] = {0};
  size_t sizes[LIVE] = {0}, aligns[LIVE] = {0};
  for (unsigned i = 0; i < 200000; i++) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    unsigned k = (unsigned)(seed >> 33) % LIVE;
    if (blocks[k]) {
      unsigned char *p = blocks[k];
      if ((uintptr_t)p % aligns[k]) bad++;
      for (size_t j = 0; j < sizes[k]; j += 61)
        if (p[j] != (unsigned char)(k + j)) bad++;
      free(p);
    }
    aligns[k] = (size_t)16 << ((seed >> 20) % 10); /* 16 B .. 8 KiB */
    sizes[k] = 1 + (seed >> 40) % 3000;
    if (posix_memalign(&blocks[k], aligns[k], sizes[k]) != 0) {
      bad++;
      blocks[k] = NULL;
      continue;
    }
    for (size_t j = 0; j < sizes[k]; j += 61)
      ((unsigned char *)blocks[k])[j] = (unsigned char)(k + j);
  }
  for (unsigned k = 0; k < LIVE; k++) free(blocks[k]);
  return (void *)bad;
}

int main(void) {
  pthread_t t[4];
  uintptr_t bad = 0;
  for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    bad += (uintptr_t)r;
  }
  printf("%s %s\n", bad ? "FAIL" : "PASS",
         dlsym(RTLD_DEFAULT, "DepotMem_Stats") ? "depot" : "libc");
  return bad ? 1 : 0;
}
