/* oversized.c: requests larger than the machine (a buffer sized from
 * untrusted input) get what the kernel's overcommit policy gives any
 * private mapping, /proc/sys/vm/overcommit_memory:
 *   0 (heuristic): a request larger than RAM + swap fails (NULL, ENOMEM);
 *   1 (always):    it is granted (pages arrive when touched);
 *   2 (never):     a request beyond the commit limit fails.
 * And a huge block's mapping does not ask the kernel to skip its
 * accounting (no "nr", MAP_NORESERVE, in its VmFlags), whatever the mode.
 *   oversized   (prints PASS or FAIL and the mode) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB ((size_t)1 << 30)

static int bad;

/* A field of /proc/meminfo in bytes (0 if absent). */
static size_t meminfo(const char *key) {
  FILE *f = fopen("/proc/meminfo", "r");
  char line[256];
  size_t kb = 0, n = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, n) == 0 && line[n] == ':') kb = strtoull(line + n + 1, NULL, 10);
  if (f) fclose(f);
  return kb * 1024;
}

/* Whether the mapping that holds p has the VmFlags "nr" (no reserve). */
static int mapped_noreserve(const void *p) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  int in = 0, nr = -1;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
      nr = strstr(line, " nr") != NULL;
      break;
    }
  }
  if (f) fclose(f);
  return nr;
}

static void expect(const char *what, size_t size, int granted) {
  errno = 0;
  char *p = malloc(size);
  int e = errno;
  if (granted) {
    if (!p) {
      fprintf(stderr, "FAILED: %s (%zu GiB) refused\n", what, size / GIB);
      bad = 1;
      return;
    }
    p[0] = 1;
    p[size - 1] = 1; /* two pages, not the whole block */
    free(p);
  } else if (p || e != ENOMEM) {
    fprintf(stderr, "FAILED: %s (%zu GiB) %s (errno %d)\n", what, size / GIB,
            p ? "granted" : "refused without ENOMEM", e);
    free(p);
    bad = 1;
  }
  errno = 0;
  p = calloc(size / 16, 16);
  if (granted != (p != NULL)) {
    fprintf(stderr, "FAILED: calloc for %s (%zu GiB) %s\n", what, size / GIB,
            p ? "granted" : "refused");
    bad = 1;
  }
  free(p);
}

int main(void) {
  FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = -1;
  if (!f || fscanf(f, "%d", &mode) != 1) return 2;
  fclose(f);
  size_t machine = meminfo("MemTotal") + meminfo("SwapTotal");
  size_t beyond = (2 * machine + GIB - 1) & ~(GIB - 1);
  size_t limit_left = meminfo("CommitLimit") - meminfo("Committed_AS");
  printf("overcommit_memory=%d, RAM + swap %zu GiB, commit room %zu GiB\n",
         mode, machine / GIB, limit_left / GIB);
  if (mode == 0) {
    expect("twice RAM + swap", beyond, 0);
    expect("64 TiB", (size_t)64 << 40, 0);
  } else if (mode == 1) {
    expect("twice RAM + swap", beyond, 1);
  } else if (mode == 2) {
    expect("twice the commit room", 2 * limit_left + GIB, 0);
    expect("64 TiB", (size_t)64 << 40, 0);
  }
  /* Whatever the mode: a modest huge block is granted and accounted. */
  char *p = malloc((size_t)64 << 20);
  if (!p) {
    fprintf(stderr, "FAILED: 64 MiB refused\n");
    bad = 1;
  } else {
    p[0] = 1;
    int nr = mapped_noreserve(p);
    if (nr != 0) {
      fprintf(stderr, "FAILED: the 64 MiB block's mapping %s\n",
              nr < 0 ? "was not found in smaps" : "has MAP_NORESERVE");
      bad = 1;
    }
    free(p);
  }
  printf("%s %s mode=%d\n", bad ? "FAIL" : "PASS",
         dlsym(RTLD_DEFAULT, "DepotMem_Stats") ? "depot" : "libc", mode);
  return bad;
}
