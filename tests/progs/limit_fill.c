/* limit_fill.c: allocates 1 MiB blocks (every page touched) until the
 * allocator says ENOMEM, then checks what the memory limit promises: every
 * family fails with ENOMEM (posix_memalign returns it), every live block is
 * intact, and allocation works again once memory is freed.  Prints
 * "PASS depot ENOMEM after N MiB" and the limit hits.  Run under
 * LD_PRELOAD=libdepot.so with DEPOT_CONF=memory_limit=... (in a memory
 * cgroup with memory_limit=cgroup: the kernel's OOM killer must not act
 * first). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS 65536
#define BLOCK ((size_t)1 << 20)

static void *blocks[MAX_BLOCKS];

static size_t rss_bytes(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0) close(fd);
  if (r <= 0) return 0;
  buf[r] = 0;
  const char *s = strchr(buf, ' ');
  return s ? strtoull(s + 1, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

static int fail(const char *what) {
  printf("FAIL %s\n", what);
  return 1;
}

int main(void) {
  size_t n = 0;
  while (n < MAX_BLOCKS) {
    errno = 0;
    void *p = malloc(BLOCK);
    if (!p) {
      if (errno != ENOMEM) return fail("malloc failed without ENOMEM");
      break;
    }
    memset(p, (int)(n & 0xFF), BLOCK);
    blocks[n++] = p;
  }
  if (n == MAX_BLOCKS) return fail("no limit reached");
  size_t rss_at_limit = rss_bytes();
  void *q;
  errno = 0;
  if (calloc(1, BLOCK) != NULL || errno != ENOMEM) return fail("calloc at the limit");
  if (posix_memalign(&q, 4096, BLOCK) != ENOMEM) return fail("posix_memalign at the limit");
  errno = 0;
  if (realloc(blocks[0], 64 * BLOCK) != NULL || errno != ENOMEM)
    return fail("realloc at the limit");
  errno = 0;
  if (aligned_alloc(65536, 8 * BLOCK) != NULL || errno != ENOMEM)
    return fail("aligned_alloc at the limit");
  for (size_t i = 0; i < n; i++) {
    const unsigned char *b = blocks[i];
    for (size_t j = 0; j < BLOCK; j += 4096)
      if (b[j] != (unsigned char)(i & 0xFF)) return fail("a live block changed");
  }
  for (size_t i = 0; i < n; i += 2) free(blocks[i]);
  void *again = malloc(BLOCK);
  if (!again) return fail("no recovery after frees");
  memset(again, 1, BLOCK);
  char hits[32] = "?", held[32] = "?", limit[32] = "?";
  int (*get)(const char *, char *, size_t) =
      (int (*)(const char *, char *, size_t))dlsym(RTLD_DEFAULT, "DepotMem_GetOption");
  if (get) {
    get("stats.memory_limit_hits", hits, sizeof hits);
    get("stats.held_bytes", held, sizeof held);
    get("stats.memory_limit_bytes", limit, sizeof limit);
  }
  /* What the process holds at the limit: Depot's heap plus the program
   * and its libraries (a few MiB). */
  if (limit[0] != '?' && rss_at_limit > strtoull(limit, NULL, 10) + ((size_t)16 << 20))
    return fail("resident memory beyond the limit");
  printf("PASS depot ENOMEM after %zu MiB; limit %s bytes, resident at the limit %zu "
         "bytes, held %s bytes, hits %s\n", n, limit, rss_at_limit, held, hits);
  return 0;
}
