/* prof.c: heap profiling's public side: DepotMem_DumpProfile and its
 * siblings, the signal that writes a profile (prof_signal), the profiles
 * at exit.  The sampling, the tables and the writer are the core's
 * (alloc/prof.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/config.h"
#include "alloc/log.h"
#include "alloc/prof.h"
#include "runtime/runtime.h"

static void on_signal(int signo) {
  (void)signo;
  depot_prof_dump_from_signal();
}

static void at_exit(void) { depot_prof_at_exit(); }

void depot_prof_runtime_start(void) {
  if (!depot_prof_on()) return;
  if (depot_options.prof_final || depot_options.prof_peak ||
      depot_options.prof_leak)
    atexit(at_exit);
  int signo = (int)depot_config_live(DEPOT_CONF_prof_signal);
  if (signo > 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, NULL) != 0)
      depot_say("depot: prof: cannot catch signal %d (prof_signal=%s)", signo,
                depot_options.prof_signal);
  }
}

int DepotMem_DumpProfile(const char *path) {
  depot_runtime_init();
  return depot_prof_dump(path, "user");
}

int DepotMem_SetProfileActive(int active) {
  depot_runtime_init();
  if (!depot_prof_on()) return -1;
  int was = (int)depot_config_live(DEPOT_CONF_prof_active);
  if (depot_config_set(DEPOT_CONF_prof_active, active ? "1" : "0", NULL, 0))
    return -1;
  return was;
}

void DepotMem_ResetProfile(void) {
  depot_runtime_init();
  depot_prof_reset();
}
