/* idle_rss.c: threads allocate 512 MiB (or argv[1] MiB) in small and large
 * blocks, free it all and then block; the process sleeps without calling
 * the allocator.  Prints resident memory every 100 ms and exits 0 if it
 * falls below 5% of the peak within purge_delay_ms (argv[2], default 1000)
 * + 1 s, 1 otherwise.  With "fork" as argv[3] the parent first gets a
 * purger of its own (a thread that allocates and frees), then forks, and
 * the child runs the test: the child must get a working purger too.  Run
 * under LD_PRELOAD=libdepot.so. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4

static size_t per_thread;
static pthread_barrier_t done;
static pthread_mutex_t never = PTHREAD_MUTEX_INITIALIZER;

/* Resident bytes, without the allocator (no stdio). */
static size_t rss_bytes(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0) close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *s = strchr(buf, ' ');
  return s ? strtoull(s + 1, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg) {
  unsigned seed = (unsigned)(size_t)arg;
  size_t cap = per_thread / 512 + 1024, count = 0, bytes = 0;
  void **v = malloc(cap * sizeof *v);
  while (bytes < per_thread && count < cap) {
    /* Half the bytes in small blocks, half in large ones (64..512 KiB). */
    size_t s = (count & 1) ? ((size_t)64 << 10) << (rand_r(&seed) % 4)
                           : 16 + rand_r(&seed) % 2000;
    v[count] = malloc(s);
    memset(v[count], 0x5A, s);
    bytes += s;
    count++;
  }
  for (size_t i = 0; i < count; i++) free(v[i]);
  free(v);
  pthread_barrier_wait(&done);
  pthread_mutex_lock(&never); /* idle: blocked for good, cache and all */
  return NULL;
}

static void *churn(void *arg) {
  for (int i = 0; i < 64; i++) free(malloc((size_t)256 << 10));
  return arg;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 512;
  double delay = (argc > 2 ? atof(argv[2]) : 1000) / 1000.0;
  if (argc > 3 && strcmp(argv[3], "fork") == 0) {
    pthread_t c;
    pthread_create(&c, NULL, churn, NULL);
    pthread_join(c, NULL);
    pid_t pid = fork();
    if (pid > 0) {
      int st = 0;
      waitpid(pid, &st, 0);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
    }
  }
  per_thread = (mib << 20) / THREADS;
  pthread_barrier_init(&done, NULL, THREADS + 1);
  pthread_mutex_lock(&never);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(size_t)(i + 1));
  pthread_barrier_wait(&done);
  double t0 = now_s();
  size_t peak = rss_bytes(), rss = peak;
  char line[128];
  int ok = 0;
  double when = 0;
  /* From here on: no allocator call. */
  while (now_s() - t0 < delay + 3) {
    rss = rss_bytes();
    if (rss > peak) peak = rss;
    int n = snprintf(line, sizeof line, "t=%.1fs rss=%zu MiB\n", now_s() - t0, rss >> 20);
    if (write(1, line, (size_t)n) < 0) return 2;
    if (!ok && rss * 20 < peak) ok = 1, when = now_s() - t0;
    usleep(100000);
  }
  int n = snprintf(line, sizeof line, "peak=%zu MiB below 5%% after %.1fs (limit %.1fs): %s\n",
                   peak >> 20, when, delay + 1, ok && when <= delay + 1 ? "PASS" : "FAIL");
  if (write(1, line, (size_t)n) < 0) return 2;
  _exit(ok && when <= delay + 1 ? 0 : 1);
}
