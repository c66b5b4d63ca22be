/* last_thread_exit: the program's main thread ends with pthread_exit after
 * its other threads have ended, while Depot's background purger runs
 * (background_purge=1 and freed memory waiting for the purge delay).  A
 * process ends when its last thread does: the purger must not keep it
 * alive.  Prints "ending" and exits 0 through glibc; a hang is the bug.
 *   last_thread_exit [slow]
 * slow: the main thread's exit takes half a second after Depot's own
 * thread destructor has run (a destructor of the program's, as a loaded
 * machine can stretch any exit): the purger, told of the exit, still sees
 * the thread listed for a while. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
  pthread_exit(NULL);
}
