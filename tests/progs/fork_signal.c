/* fork_signal.c: a single-threaded program whose signal handler forks
 * while the main loop is inside malloc, realloc or free (glibc's
 * tst-mallocfork and tst-mallocfork2): a timer raises SIGUSR1 every
 * millisecond, the handler forks, the child exits at once.  glibc takes no
 * malloc lock at fork in a single-threaded process; an allocator whose fork
 * handler waits for a lock that the interrupted frame holds hangs here (the
 * alarm turns that into a failure).  Run with DEPOT_CONF=tcache_max_bytes=0
 * so that most calls take a lock.
 *   fork_signal [seconds]   (default 2) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t forks, failed;
/* The main loop's operations, and their count at the last fork.  The
 * handler forks only after the loop made one more: a fork and its wait can
 * take longer than the timer's millisecond on a loaded machine, and the
 * signal that fell due meanwhile then runs the handler again at once, so
 * that the loop never ran to its end (a live lock the alarm took for a
 * hang). */
static volatile sig_atomic_t ops, ops_at_fork = -1;

static void on_signal(int sig) {
  (void)sig;
  if (ops == ops_at_fork) return;
  ops_at_fork = ops;
  int saved = errno;
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
    failed = 1;
  forks = forks + 1;
  errno = saved;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 2;
  alarm((unsigned)seconds + 30); /* a hang ends as SIGALRM */
  free(malloc(1));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGUSR1;
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) {
    perror("timer_create");
    return 2;
  }
  struct itimerspec its = {{0, 1000000}, {0, 1000000}};
  timer_settime(timer, 0, &its, NULL);
  /* Small, large and huge blocks: pools, arenas and the huge table. */
  void *keep[32] = {0};
  unsigned seed = 1;
  ops = 0;
  for (double end = now() + seconds; now() < end; ops++) {
    seed = seed * 1103515245u + 12345u;
    unsigned k = (seed >> 16) % 32, kind = (seed >> 8) % 16;
    size_t size = kind < 10 ? 1 + (seed >> 20) % 2000
                  : kind < 15 ? 40000 + (seed >> 12) % 500000
                              : (size_t)3 << 20;
    if (keep[k] && kind == 3) {
      void *q = realloc(keep[k], size);
      if (q) keep[k] = q;
    } else {
      free(keep[k]);
      keep[k] = malloc(size);
      if (!keep[k]) return 3;
    }
    memset(keep[k], 1, 16);
  }
  memset(&its, 0, sizeof its);
  timer_settime(timer, 0, &its, NULL);
  for (int k = 0; k < 32; k++) free(keep[k]);
  int ok = !failed && forks >= 100;
  printf("%s %s forks=%d ops=%d\n", ok ? "PASS" : "FAIL",
         dlsym(RTLD_DEFAULT, "DepotMem_Stats") ? "depot" : "libc", (int)forks,
         ops);
  return ok ? 0 : 1;
}
