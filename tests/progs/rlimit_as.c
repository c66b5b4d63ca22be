/* rlimit_as.c: an address-space limit (RLIMIT_AS, ulimit -v) lowered after
 * start-up, as a program, a test harness or a container runtime does: the
 * limit is set HEADROOM_MIB above the address space in use after the first
 * malloc.  Under it a thread must start, a library must load, a huge block
 * must come back, and blocks of every size must stop (NULL, ENOMEM) before
 * they hand out more than the headroom, yet use most of it.
 *   rlimit_as   (prints PASS or FAIL, then the counts) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)
#define HEADROOM_MIB 200

static int bad;
#define EXPECT(cond, ...)                                \
  do {                                                   \
    if (!(cond)) {                                       \
      fprintf(stderr, "FAILED: %s: ", #cond);            \
      fprintf(stderr, __VA_ARGS__);                      \
      fputc('\n', stderr);                               \
      bad = 1;                                           \
    }                                                    \
  } while (0)

/* Address space in use now, from /proc/self/statm (pages). */
static size_t vm_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f) {
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
  }
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void *thread_main(void *arg) {
  (void)arg;
  void *small[100];
  for (int i = 0; i < 100; i++) small[i] = malloc(100);
  void *huge = malloc(8 * MIB);
  int ok = huge != NULL;
  for (int i = 0; i < 100; i++) ok &= small[i] != NULL, free(small[i]);
  free(huge);
  return ok ? (void *)1 : NULL;
}

/* Allocates blocks of size until NULL (or cap blocks): returns the count
 * and frees them. */
static size_t fill(size_t size, size_t cap) {
  void **v = calloc(cap, sizeof *v);
  size_t n = 0;
  errno = 0;
  while (n < cap && (v[n] = malloc(size)) != NULL) n++;
  if (n < cap) EXPECT(errno == ENOMEM, "errno %d after %zu blocks of %zu", errno, n, size);
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
  return n;
}

int main(void) {
  free(malloc(1));
  size_t start = vm_bytes();
  struct rlimit rl = {start + HEADROOM_MIB * MIB, start + HEADROOM_MIB * MIB};
  if (setrlimit(RLIMIT_AS, &rl) != 0) {
    perror("setrlimit");
    return 2;
  }
  printf("address space at the limit's setting: %zu MiB; limit %zu MiB\n",
         start / MIB, (size_t)rl.rlim_cur / MIB);

  pthread_t t;
  int err = pthread_create(&t, NULL, thread_main, NULL);
  EXPECT(err == 0, "pthread_create: %s", strerror(err));
  if (err == 0) {
    void *ok = NULL;
    pthread_join(t, &ok);
    EXPECT(ok != NULL, "the thread's blocks");
  }
  void *lib = dlopen("libresolv.so.2", RTLD_NOW);
  EXPECT(lib != NULL, "dlopen: %s", dlerror());
  void *huge = malloc(32 * MIB);
  EXPECT(huge != NULL, "a 32 MiB block");
  free(huge);

  /* Blocks may use most of the headroom (the thread's stack and the
   * library took some), never more. */
  size_t one_mib = fill(MIB, 4 * HEADROOM_MIB);
  EXPECT(one_mib <= HEADROOM_MIB, "%zu blocks of 1 MiB", one_mib);
  EXPECT(one_mib >= HEADROOM_MIB / 2, "only %zu blocks of 1 MiB", one_mib);
  size_t small = fill(4000, 4 * HEADROOM_MIB * 256);
  size_t small_mib = small * 4000 / MIB;
  printf("1 MiB blocks: %zu; 4000-byte blocks: %zu (%zu MiB)\n", one_mib, small,
         small_mib);
  EXPECT(small_mib <= HEADROOM_MIB, "%zu MiB of small blocks", small_mib);
  EXPECT(small_mib >= HEADROOM_MIB / 2, "only %zu MiB of small blocks", small_mib);
  /* Everything freed: allocation works again. */
  void *again = malloc(MIB);
  EXPECT(again != NULL, "a block after the frees");
  free(again);
  printf("%s %s\n", bad ? "FAIL" : "PASS",
         dlsym(RTLD_DEFAULT, "DepotMem_Stats") ? "depot" : "libc");
  return bad;
}
