/* fork_threads.c: a multithreaded parent forks (without exec) while its
 * threads allocate and free; every child must allocate and free at once and
 * exit cleanly.  A child that hangs is killed by its alarm. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static void *churn(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void *keep[64] = {0};
  while (!atomic_load(&stop)) {
    seed = seed * 1103515245u + 12345u;
    unsigned k = seed % 64;
    free(keep[k]);
    keep[k] = malloc(1 + (seed >> 8) % (seed % 7 == 0 ? 200000 : 2000));
    if (keep[k]) memset(keep[k], 1, 1);
  }
  for (int k = 0; k < 64; k++) free(keep[k]);
  return NULL;
}

int main(void) {
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, (void *)(i + 7));
  int bad = 0;
  for (int i = 0; i < 60; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(10);
      void *v[1000];
      for (int j = 0; j < 1000; j++) {
        v[j] = malloc((size_t)(j * 37) % 5000 + 1);
        if (!v[j]) _exit(3);
        memset(v[j], j, (size_t)(j * 37) % 5000 + 1);
      }
      for (int j = 0; j < 1000; j++) free(v[j]);
      void *big = malloc(8 << 20);
      free(big);
      _exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      fprintf(stderr, "child %d failed (status %d)\n", i, status);
      bad++;
    }
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  printf("%s %s\n", bad ? "FAIL" : "PASS",
         dlsym(RTLD_DEFAULT, "DepotMem_Stats") ? "depot" : "libc");
  return bad ? 1 : 0;
}
