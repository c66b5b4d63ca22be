/* last_thread_exit: the program's main thread ends with pthread_exit after
 * its other threads have ended, while Depot's background purger runs
 * (background_purge=1 and freed memory waiting for the purge delay).  A
 * process ends when its last thread does: the purger must not keep it
 * alive.  Prints "ending" and exits 0 through glibc; a hang is the bug.
 *   last_thread_exit [slow]
 * slow: the main thread's exit takes half a second after Depot's own
 * thread destructor has run (a destructor of the program's, as a loaded
 * machine can stretch any exit): the purger, told of the exit, still sees
 * the thread listed for a while.
 * nofd: no file descriptor can be opened when the main thread exits (its
 * soft RLIMIT_NOFILE is lowered to 0), so the purger cannot read /proc to
 * see that no thread is left.
 * With HOLD_THREADS=1 in the environment, every thread this program did not
 * start itself (Depot's purger, which is started before main) runs only a
 * second after it was created, so after every thread of the program has
 * exited: a loaded machine can hold a new thread back that long.  Depot's
 * call to pthread_create binds to this program's (the executable's symbols
 * come first), which holds the thread and calls the C library's. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void *work(void *arg) {
  (void)arg;
  void *keep[256];
  for (int round = 0; round < 8; round++) {
    for (int i = 0; i < 256; i++) {
      keep[i] = malloc(64 + (size_t)(i * 131) % 40000);
      if (keep[i]) memset(keep[i], 1, 64);
    }
    for (int i = 0; i < 256; i++) free(keep[i]);
  }
  return NULL;
}

/* The threads held: a slot each (no malloc or free in the held thread,
 * whose first call into Depot would otherwise be this program's). */
typedef struct {
  void *(*fn)(void *);
  void *arg;
} held_t;
static held_t held[4];
static int nheld;

static void *held_start(void *p) {
  held_t *h = p;
  struct timespec second = {1, 0};
  nanosleep(&second, NULL);
  return h->fn(h->arg);
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr,
                   void *(*fn)(void *), void *arg) {
  static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
                     void *);
  if (!real)
    real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
                    void *))dlsym(RTLD_NEXT, "pthread_create");
  const char *hold = getenv("HOLD_THREADS");
  if (!hold || strcmp(hold, "1") != 0 || fn == work)
    return real(t, attr, fn, arg);
  /* Depot starts one purger; this program's own threads are not held. */
  if (nheld == 4) return EAGAIN;
  held_t *h = &held[nheld++];
  h->fn = fn;
  h->arg = arg;
  return real(t, attr, held_start, h);
}

static void slow_exit(void *arg) {
  (void)arg;
  struct timespec half = {0, 500 * 1000 * 1000};
  nanosleep(&half, NULL);
}

int main(int argc, char **argv) {
  pthread_t t;
  for (int k = 0; k < 2; k++) {
    if (pthread_create(&t, NULL, work, NULL) != 0) return 2;
    pthread_join(t, NULL);
  }
  if (argc > 1 && strcmp(argv[1], "slow") == 0) {
    /* Created after Depot's key (made at its start-up, before main), so
     * its destructor runs after Depot's: glibc runs them in key order. */
    pthread_key_t key;
    if (pthread_key_create(&key, slow_exit) != 0 ||
        pthread_setspecific(key, (void *)1) != 0)
      return 3;
  }
  printf("ending\n");
  fflush(stdout);
  if (argc > 1 && strcmp(argv[1], "nofd") == 0) {
    /* pthread_exit loads libgcc_s for its unwinder if nothing has: load it
     * now, while a descriptor is left. */
    if (!dlopen("libgcc_s.so.1", RTLD_NOW)) return 6;
    /* A limit of 0: no open() succeeds, whatever descriptors are open
     * (Depot's purger may hold two for a moment). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 4;
    rl.rlim_cur = 0;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 5;
  }
  pthread_exit(NULL);
}
