/* last_thread_exit: the program's main thread ends with pthread_exit after
 * its other threads have ended, while Depot's background purger runs
 * (background_purge=1 and freed memory waiting for the purge delay).  A
 * process ends when its last thread does: the purger must not keep it
 * alive.  Prints "ending" and exits 0 through glibc; a hang is the bug. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void) {
  pthread_t t;
  for (int k = 0; k < 2; k++) {
    if (pthread_create(&t, NULL, work, NULL) != 0) return 2;
    pthread_join(t, NULL);
  }
  printf("ending\n");
  fflush(stdout);
  pthread_exit(NULL);
}
