/* glibc_questions.c: what programs ask glibc about its heap, answered by
 * Depot: mallinfo2 and mallinfo see a block of 10 MiB come and go,
 * malloc_info writes glibc's XML, mallopt maps M_MMAP_THRESHOLD and
 * answers 0 for what has no equivalent; with DEPOT_CONF=stats_signal=SIGUSR2
 * the signal prints the statistics.  Prints PASS depot. */
#define _GNU_SOURCE
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what) {
  printf("FAIL %s\n", what);
  return 1;
}

/* Raises SIGUSR2 with stderr on a pipe and reads until the report's last
 * section ("heaps") has come or 10 s have passed: the reporter is another
 * thread, so a fixed sleep would race a loaded machine.  What was read is
 * copied to stdout.  Returns whether the report came whole. */
static int report_on_signal(void) {
  int fds[2];
  if (pipe(fds) != 0) return 0;
  int saved = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
  close(fds[1]);
  raise(SIGUSR2);
  static char buf[1 << 16];
  size_t len = 0;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (strstr(buf, "\nheaps\n")) break;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long left_ms = 10000 - ((now.tv_sec - start.tv_sec) * 1000 +
                            (now.tv_nsec - start.tv_nsec) / 1000000);
    struct pollfd pfd = {fds[0], POLLIN, 0};
    if (left_ms <= 0 || poll(&pfd, 1, (int)left_ms) <= 0) break;
    ssize_t n = read(fds[0], buf + len, sizeof buf - 1 - len);
    if (n <= 0) break;
    len += (size_t)n;
    buf[len] = 0;
  }
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fds[0]);
  fwrite(buf, 1, len, stdout);
  return strstr(buf, "\nheaps\n") != NULL;
}

int main(void) {
  struct mallinfo2 before = mallinfo2();
  char *p = malloc((size_t)10 << 20);
  memset(p, 1, (size_t)10 << 20);
  struct mallinfo2 during = mallinfo2();
  if (during.uordblks + during.hblkhd < before.uordblks + before.hblkhd + ((size_t)10 << 20))
    return fail("mallinfo2 does not see the block");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  /* The old interface, deprecated in glibc 2.33, is what older programs
   * call: it must answer too. */
  struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
  if (old.hblkhd <= 0 && old.uordblks <= 0) return fail("mallinfo is empty");
  free(p);
  struct mallinfo2 after = mallinfo2();
  if (after.uordblks + after.hblkhd >= during.uordblks + during.hblkhd)
    return fail("mallinfo2 does not see the free");
  char *xml = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&xml, &len);
  if (malloc_info(0, f) != 0) return fail("malloc_info");
  fclose(f);
  if (strncmp(xml, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", 41) != 0 ||
      !strstr(xml, "<system type=\"current\" size=\"") || !strstr(xml, "</malloc>\n"))
    return fail("malloc_info's XML");
  free(xml);
  if (malloc_info(1, stdout) != -1) return fail("malloc_info(1) accepted");
  if (mallopt(M_MMAP_THRESHOLD, 1 << 20) != 1) return fail("mallopt(M_MMAP_THRESHOLD)");
  if (mallopt(M_MMAP_THRESHOLD, 1 << 30) != 0) return fail("mallopt out of range");
  if (mallopt(M_ARENA_MAX, 1) != 0) return fail("mallopt(M_ARENA_MAX)");
  if (getenv("DEPOT_CONF") && strstr(getenv("DEPOT_CONF"), "stats_signal") &&
      !report_on_signal())
    return fail("no statistics within 10 s of the signal");
  printf("PASS depot\n");
  return 0;
}
