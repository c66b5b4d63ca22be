/* heap_bugs: one heap bug per mode, the kind Depot's bug-finding modes
 * must report (README "Finding bugs in your program"), and with "ok" after
 * the mode its correct counterpart, which must run clean.
 *   heap_bugs MODE [ok]
 * Modes: overflow, underflow, double_free, foreign, interior, wrong_family,
 * use_after_free, realloc_overflow, aligned_overflow, remote_overflow,
 * realloc_after_free, realloc_after_free_large,
 * remote_use_after_free (the remote_ modes free blocks another thread
 * allocated, after enough such frees that the thread's outbox is in use:
 * run with a small quarantine), remote_double_free (a remote free made
 * twice in a row), remote_double_free_later (freed again after another
 * remote free, seen at the next one: alloc/tcache.h, remote_pend),
 * cross_thread_double_free (freed by the thread that allocated it, then
 * by another thread: a remote free of a block waiting in its owner's bin),
 * cross_thread_double_free_back (the other order: freed remotely, then
 * freed by its owner while it waits in the other thread's outbox).
 * Prints "clean" when it reaches its end.  Run preloaded (libdepot.so) or
 * linked (//:depot_malloc, exporting its symbols with -rdynamic). */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wuse-after-free" /* on purpose */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opaque to the compiler, so it cannot see (and warn about, or remove) the
 * bugs. */
static void *volatile sink;
static void *launder(void *p) {
  sink = p;
  return sink;
}

/* Churn enough blocks that a quarantined block leaves the quarantine. */
static void churn(void) {
  for (int i = 0; i < 20000; i++)
    free(launder(malloc(200 + (size_t)(i % 7) * 100)));
}

/* Blocks of one size allocated by another thread: frees of them are remote
 * frees (tests the outbox, alloc/tcache.h). */
#define REMOTE_N 4000
static void *remote[REMOTE_N + 1];
static size_t remote_size;
static void *remote_alloc(void *arg) {
  (void)arg;
  for (int i = 0; i <= REMOTE_N; i++) remote[i] = malloc(remote_size);
  return NULL;
}
/* Allocates REMOTE_N + 1 blocks of size in another thread and frees all but
 * the last here (more than the quarantine holds, so that some leave it and
 * go to the outbox); returns the last. */
static char *remote_blocks(size_t size) {
  pthread_t t;
  remote_size = size;
  if (pthread_create(&t, NULL, remote_alloc, NULL) != 0 ||
      pthread_join(t, NULL) != 0)
    exit(3);
  for (int i = 0; i < REMOTE_N; i++) free(launder(remote[i]));
  return launder(remote[REMOTE_N]);
}

/* Three blocks of size allocated by another thread (a class nothing else
 * uses here, so their outbox bucket starts empty). */
static void *trio[3];
static size_t trio_size;
static void *trio_alloc(void *arg) {
  (void)arg;
  for (int i = 0; i < 3; i++) trio[i] = malloc(trio_size);
  return NULL;
}
static void remote_trio(size_t size) {
  pthread_t t;
  trio_size = size;
  if (pthread_create(&t, NULL, trio_alloc, NULL) != 0 ||
      pthread_join(t, NULL) != 0)
    exit(3);
}

/* cross_thread_double_free(_back): two blocks of main's (112 and 3008
 * bytes: classes no other mode of this run uses), and a thread that frees
 * them remotely: the first free leaves the block pending, the second puts
 * it into the outbox (alloc/tcache.h, remote_pend).  The thread then waits
 * until main has done its part, so that nothing posts its outbox first. */
static void *cross[2];
static pthread_barrier_t cross_freed, cross_done;
static void *cross_free(void *arg) {
  (void)arg;
  free(launder(cross[0]));
  free(launder(cross[1]));
  pthread_barrier_wait(&cross_freed);
  pthread_barrier_wait(&cross_done);
  return NULL;
}
static void cross_thread(int owner_first, int ok) {
  pthread_t t;
  cross[0] = launder(malloc(112));
  cross[1] = launder(malloc(3008));
  void *again = cross[0];
  if (owner_first && !ok) {
    /* main's free puts it into main's bin; the thread's is the second */
    free(launder(cross[0]));
  }
  if (owner_first && ok) cross[0] = launder(malloc(112)); /* a live one */
  if (pthread_barrier_init(&cross_freed, NULL, 2) != 0 ||
      pthread_barrier_init(&cross_done, NULL, 2) != 0 ||
      pthread_create(&t, NULL, cross_free, NULL) != 0)
    exit(3);
  pthread_barrier_wait(&cross_freed);
  /* Back: main frees the block that waits in the thread's outbox. */
  if (!owner_first && !ok) free(launder(again));
  pthread_barrier_wait(&cross_done);
  if (pthread_join(t, NULL) != 0) exit(3);
  if (owner_first && ok) free(launder(again));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: heap_bugs MODE [ok]\n");
    return 2;
  }
  const char *m = argv[1];
  int ok = argc > 2 && strcmp(argv[2], "ok") == 0;
  if (strcmp(m, "overflow") == 0) {
    char *p = launder(malloc(32));
    memset(p, 'a', ok ? 32 : 33); /* one byte past the end */
    free(launder(p)); /* laundered: the compiler must not drop the memset */
  } else if (strcmp(m, "overflow_after_set") == 0) {
    /* Guarded sampling started almost off (guard_sample=1000000000) and
     * turned to every allocation at run time; a class no start-up code
     * used, so that the allocation misses the thread cache. */
    int (*set)(const char *, const char *) = (int (*)(
        const char *, const char *))dlsym(RTLD_DEFAULT, "DepotMem_SetOption");
    if (!set || set("guard_sample", "1") != 0) {
      fprintf(stderr, "heap_bugs: cannot set guard_sample at run time\n");
      return 3;
    }
    char *p = launder(malloc(3008));
    memset(p, 'a', ok ? 3008 : 3009);
    free(launder(p));
  } else if (strcmp(m, "underflow") == 0) {
    char *p = launder(malloc(32));
    char *q = launder(p - (ok ? 0 : 1)); /* one byte before the start */
    *q = 'b';
    free(launder(p));
  } else if (strcmp(m, "double_free") == 0) {
    void *p = launder(malloc(40));
    free(p);
    if (!ok) free(launder(p));
  } else if (strcmp(m, "realloc_after_free") == 0 ||
             strcmp(m, "realloc_after_free_large") == 0) {
    size_t n = strcmp(m, "realloc_after_free") == 0 ? 40 : 100000;
    void *p = launder(malloc(n));
    if (!ok) free(p);
    p = realloc(launder(p), n - 8); /* in place, were p live */
    free(p);
  } else if (strcmp(m, "foreign") == 0) {
    static char not_heap[64] __attribute__((aligned(16)));
    void *p = launder(ok ? malloc(64) : not_heap);
    free(p);
  } else if (strcmp(m, "interior") == 0) {
    char *p = launder(malloc(64));
    free(launder(p + (ok ? 0 : 16)));
  } else if (strcmp(m, "wrong_family") == 0) {
    /* A malloc block given to DepotMem_Free (found at run time, so the
     * program needs no Depot header or library of its own). */
    void (*depot_free_fn)(void *) =
        (void (*)(void *))dlsym(RTLD_DEFAULT, "DepotMem_Free");
    void (*raw_free_fn)(void *) =
        (void (*)(void *))dlsym(RTLD_DEFAULT, "DepotMem_RawFree");
    if (!depot_free_fn || !raw_free_fn) {
      fprintf(stderr, "heap_bugs: Depot's API not found\n");
      return 3;
    }
    void *p = launder(malloc(48));
    (ok ? raw_free_fn : depot_free_fn)(p);
  } else if (strcmp(m, "use_after_free") == 0) {
    char *p = launder(malloc(48));
    free(p);
    if (!ok) ((char *)launder(p))[10] = 'x'; /* a write to a freed block */
    churn();
  } else if (strcmp(m, "realloc_overflow") == 0) {
    char *p = launder(malloc(32));
    memset(p, 'c', ok ? 32 : 40);
    p = realloc(p, 100);
    free(p);
  } else if (strcmp(m, "aligned_overflow") == 0) {
    void *v;
    if (posix_memalign(&v, 64, 100) != 0) return 3;
    char *p = launder(v);
    memset(p, 'd', ok ? 100 : 101);
    free(launder(p));
  } else if (strcmp(m, "remote_overflow") == 0) {
    char *p = remote_blocks(48);
    memset(p, 'e', ok ? 48 : 49);
    free(launder(p));
  } else if (strcmp(m, "remote_use_after_free") == 0) {
    char *p = remote_blocks(48);
    free(p);
    if (!ok) ((char *)launder(p))[12] = 'y';
    churn();
  } else if (strcmp(m, "remote_double_free") == 0) {
    char *p = remote_blocks(48);
    free(p);
    if (!ok) free(launder(p));
  } else if (strcmp(m, "remote_double_free_later") == 0) {
    remote_trio(112);
    free(launder(trio[0]));
    free(launder(trio[1]));
    if (!ok) free(launder(trio[0]));
    free(launder(trio[2]));
  } else if (strcmp(m, "cross_thread_double_free") == 0) {
    cross_thread(1, ok);
  } else if (strcmp(m, "cross_thread_double_free_back") == 0) {
    cross_thread(0, ok);
  } else {
    fprintf(stderr, "heap_bugs: unknown mode %s\n", m);
    return 2;
  }
  printf("clean\n");
  return 0;
}
