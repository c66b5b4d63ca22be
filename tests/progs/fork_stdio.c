/* fork_stdio.c: fork() while other threads use stdio: two threads read
 * 50,000-byte lines with getline() (which allocates while it holds the
 * stream's lock), one calls fflush(NULL) (which holds the
 * list of streams while it takes each stream's lock), and the main thread
 * forks in a loop; each child allocates and exits.  An allocator whose
 * fork handler holds its locks while fork() waits for the list lock hangs
 * here; the alarm turns the hang into a failure.
 *   fork_stdio [seconds]   (default 3) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_BYTES 50000

static atomic_int stop;
static char path[64];

static void *reader(void *arg) {
  (void)arg;
  FILE *f = fopen(path, "r");
  if (!f) {
    perror("fopen");
    exit(2);
  }
  while (!atomic_load(&stop)) {
    rewind(f);
    for (int i = 0; i < 4; i++) {
      char *line = NULL; /* a fresh buffer: getline grows it by realloc */
      size_t cap = 0;
      if (getline(&line, &cap, f) != LINE_BYTES + 1) {
        fprintf(stderr, "short line\n");
        exit(2);
      }
      free(line);
    }
  }
  fclose(f);
  return NULL;
}

static void *flusher(void *arg) {
  (void)arg;
  /* A pause between flushes: a tight loop on stdio's list lock starved
   * fork (which takes it) for seconds on a loaded machine. */
  while (!atomic_load(&stop)) {
    fflush(NULL);
    usleep(100);
  }
  return NULL;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 3;
  alarm((unsigned)seconds + 30); /* a hang ends as SIGALRM */
  snprintf(path, sizeof path, "/tmp/depot_fork_stdio_%d", (int)getpid());
  FILE *w = fopen(path, "w");
  if (!w) {
    perror("fopen");
    return 2;
  }
  char *line = malloc(LINE_BYTES + 1);
  memset(line, 'x', LINE_BYTES);
  line[LINE_BYTES] = '\n';
  for (int i = 0; i < 4; i++) fwrite(line, 1, LINE_BYTES + 1, w);
  fclose(w);
  free(line);

  pthread_t t[3];
  pthread_create(&t[0], NULL, reader, NULL);
  pthread_create(&t[1], NULL, reader, NULL);
  pthread_create(&t[2], NULL, flusher, NULL);
  int forks = 0, bad = 0;
  for (double end = now() + seconds; now() < end; forks++) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(10);
      void *p = malloc(100), *q = malloc(LINE_BYTES);
      free(p);
      free(q);
      _exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      fprintf(stderr, "child %d failed\n", forks);
      bad++;
    }
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  unlink(path);
  printf("%s %s forks=%d\n", bad ? "FAIL" : "PASS",
         dlsym(RTLD_DEFAULT, "DepotMem_Stats") ? "depot" : "libc", forks);
  return bad ? 1 : 0;
}
