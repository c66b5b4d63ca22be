/* run_check.c: depot-run's handshake, in libdepot.so only.
 *
 * depot-run (tools/depot_run.c) starts a program with libdepot.so preloaded
 * and the write end of a pipe named by DEPOT_RUN_FD.  When libdepot.so is
 * loaded, this constructor asks the malloc the process actually uses for a
 * block and writes one byte to that pipe: 'y' if the block is Depot's, 'n'
 * if another allocator answered (the program defines its own malloc, which
 * the dynamic loader prefers to a preloaded one).  On 'n' the process exits
 * with status 126 before main unless DEPOT_RUN_FORCE is set.  If the loader
 * never loads libdepot.so (a static program, a setuid one), nothing is
 * written and depot-run sees the pipe close.  Without DEPOT_RUN_FD this does
 * nothing. */
#define _POSIX_C_SOURCE 200809L /* unsetenv */
#include <stdlib.h>
#include <unistd.h>

#include "alloc/alloc_api.h"
#include "alloc/common.h"
#include "depot/depot.h"

__attribute__((constructor)) static void depot_run_handshake(void) {
  const char *text = getenv("DEPOT_RUN_FD");
  if (!text) return;
  char *end;
  long fd = strtol(text, &end, 10);
  unsetenv("DEPOT_RUN_FD"); /* not for the programs this one starts */
  if (*end || end == text || fd < 3 || fd > 1 << 20) return;
  /* Called through pointers to the interposable symbols, so the program's
   * own malloc answers if it has one. */
  void *(*volatile process_malloc)(size_t) = malloc;
  void (*volatile process_free)(void *) = free;
  void *p = process_malloc(64);
  int ours = p && depot_domain_of(p) == DEPOT_DOMAIN_RAW;
  process_free(p);
  char verdict = ours ? 'y' : 'n';
  ssize_t ignored = write((int)fd, &verdict, 1);
  (void)ignored;
  close((int)fd);
  if (!ours && !getenv("DEPOT_RUN_FORCE")) _exit(126);
}
