// libdepot.so as a drop-in malloc: programs run with it preloaded (and, as a
// control, without), a fork-heavy program, memory returned to the OS, a
// late dlopen, and the thread life cycle of the static library.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tests/subprocess.h"

namespace {

using depot_test::Result;
using depot_test::Runfile;
using depot_test::Sh;

std::string Preload() { return "env LD_PRELOAD=" + Runfile("libdepot.so") + " "; }

class Program : public ::testing::TestWithParam<const char *> {};

TEST_P(Program, PassesOnTheCLibraryAndOnDepot) {
  std::string prog = Runfile(std::string("tests/progs/") + GetParam());
  Result control = Sh(prog);
  EXPECT_EQ(control.status, 0) << control.output;
  EXPECT_NE(control.output.find("PASS libc"), std::string::npos) << control.output;
  Result depot = Sh(Preload() + prog);
  EXPECT_EQ(depot.status, 0) << depot.output;
  EXPECT_NE(depot.output.find("PASS depot"), std::string::npos) << depot.output;
}

INSTANTIATE_TEST_SUITE_P(Preloaded, Program,
                         ::testing::Values("malloc_semantics", "cxx_containers",
                                           "memalign_heavy", "fork_threads"));

TEST(Override, TrimReturnsAGibibyteToTheOs) {
  Result r = Sh(Preload() + Runfile("tests/progs/trim_rss") + " 1024");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS depot"), std::string::npos) << r.output;
  std::printf("%s", r.output.c_str());  // the RSS figures, for the log
}

// Resident memory of trim_rss in its wait mode (no malloc_trim): 256 MiB
// in small blocks, all freed, then each thread sleeps `wait_ms` and makes
// one arena call.  Fills start, after_free and after_wait in MiB.
void RunWithoutTrim(const std::string &conf, int wait_ms, size_t *start,
                    size_t *after_free, size_t *after_wait) {
  Result r = Sh("env DEPOT_CONF=" + conf + " " + Preload() +
                Runfile("tests/progs/trim_rss") + " 256 wait " +
                std::to_string(wait_ms));
  ASSERT_EQ(r.status, 0) << r.output;
  size_t at = r.output.find("depot rss start=");
  ASSERT_NE(at, std::string::npos) << r.output;
  ASSERT_EQ(std::sscanf(r.output.c_str() + at,
                        "depot rss start=%zu MiB, after free=%zu MiB, "
                        "after wait=%zu MiB",
                        start, after_free, after_wait),
            3)
      << r.output;
  std::printf("%s: %s", conf.c_str(), r.output.c_str());
}

TEST(Override, PurgeDelayReturnsMemoryWithoutTrim) {
  // Freed pages stay resident for the delay, then go back once an arena
  // is next used: most of what was freed, though nothing calls malloc_trim
  // (blocks still cached by thread caches and central pools keep theirs).
  // The delay is long enough that even a slow build (--config=debug walks
  // an arena on every span it hands out or takes back) frees everything
  // before it falls due (2 s was only twice what a debug build took on a
  // loaded machine).
  size_t start, after_free, after_wait;
  RunWithoutTrim("purge_delay_ms=5000", 5800, &start, &after_free, &after_wait);
  if (HasFatalFailure()) return;
  ASSERT_GE(after_free, start + 128) << "memory went back before the delay";
  EXPECT_LE(after_wait - start, (after_free - start) / 4)
      << "less than 3/4 of the freed memory went back after the delay";
}

TEST(Override, LongPurgeDelayKeepsMemoryWithoutTrim) {
  // The control: the same run with a delay longer than the wait returns
  // nothing, so the test above measures the delay and not something else.
  size_t start, after_free, after_wait;
  RunWithoutTrim("purge_delay_ms=600000", 5800, &start, &after_free,
                 &after_wait);
  if (HasFatalFailure()) return;
  ASSERT_GE(after_free, start + 128);
  EXPECT_GE(after_wait, after_free - (after_free - start) / 8)
      << "memory went back long before the purge delay";
}

TEST(Override, IdleProcessGivesMemoryBackWithoutBeingCalled) {
  // 512 MiB in small and large blocks over 4 threads, all freed, then the
  // process sleeps: the background purger brings resident memory below 5%
  // of the peak within purge_delay_ms + 1 s.
  Result r = Sh(Preload() + Runfile("tests/progs/idle_rss") + " 512 1000");
  EXPECT_EQ(r.status, 0) << r.output;
  std::printf("%s", r.output.c_str());
  // The same with a shorter delay set by the configuration.
  r = Sh("env DEPOT_CONF=purge_delay_ms=300 " + Preload() +
         Runfile("tests/progs/idle_rss") + " 256 300");
  EXPECT_EQ(r.status, 0) << r.output;
  // A forked child of a process with a purger gets one of its own.
  r = Sh(Preload() + Runfile("tests/progs/idle_rss") + " 256 1000 fork");
  EXPECT_EQ(r.status, 0) << r.output;
  // And without the purger the memory stays: the control.
  r = Sh("env DEPOT_CONF=background_purge=0 " + Preload() +
         Runfile("tests/progs/idle_rss") + " 128 300");
  EXPECT_EQ(r.status, 1) << r.output;
}

TEST(Override, AnswersGlibcsQuestionsAndPrintsStatisticsOnASignal) {
  Result r = Sh("env DEPOT_CONF=stats_signal=SIGUSR2 " + Preload() +
                Runfile("tests/progs/glibc_questions"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS depot"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Depot memory statistics"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("background purger: "), std::string::npos) << r.output;
}

TEST(Override, NoWorkerGetsABlockOnALineAnotherThreadWasGiven) {
  // Passive false sharing, counted deterministically (the scratch
  // pattern): a block freed by a thread other than its allocator goes home
  // to its owner's heap, never into the freeing thread's cache, so each
  // worker's own block comes from its own spans.  Several sizes, as the
  // line check depends on how many blocks share a line.
  for (const char *size : {"8", "32", "64", "100"}) {
    Result r = Sh(Preload() + Runfile("tests/progs/line_sharing") + " " + size);
    EXPECT_EQ(r.status, 0) << size << ": " << r.output;
    EXPECT_NE(r.output.find("shared=0 of 4"), std::string::npos)
        << size << ": " << r.output;
  }
}

TEST(Override, HardLimitEveryFamilyFailsWithEnomem) {
  Result r = Sh("env DEPOT_CONF=memory_limit=128m " + Preload() +
                Runfile("tests/progs/limit_fill"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS depot ENOMEM"), std::string::npos) << r.output;
  std::printf("%s", r.output.c_str());
}

TEST(Override, PurgerDoesNotOutliveTheLastThread) {
  // The main thread ends with pthread_exit while the background purger
  // runs; the process must end as it would without Depot (a hang is killed
  // after 20 s: status 137).
  struct Case {
    const char *env, *arg, *what;
  } cases[] = {
      {"", "", "a plain exit"},
      // The main thread's exit takes half a second after Depot's destructor
      // (as a loaded machine can make any exit take): the purger, told of
      // the exit, looks again later.
      {"", "slow", "a slow exit"},
      // The purger starts running only after every thread of the program
      // has exited (the program holds the threads it did not start for a
      // second).  Before the purger took its first exit count at its
      // creation, it took those exits for old ones and the process never
      // ended (seen once under the full suite's load).
      {"HOLD_THREADS=1 ", "", "a purger held back"},
      // No file descriptor is left to read /proc with: the purger falls
      // back on the thread caches, none of which is live.
      {"", "nofd", "no descriptor left"},
  };
  for (const Case &c : cases) {
    Result r = Sh(std::string("timeout -s KILL 20 env ") + c.env +
                  "DEPOT_CONF=background_purge=1 " + Preload() +
                  Runfile("tests/progs/last_thread_exit") + " " + c.arg);
    EXPECT_EQ(r.status, 0) << c.what
                           << ": the process did not end (137: killed after "
                              "20 s)\n"
                           << r.output;
    EXPECT_NE(r.output.find("ending"), std::string::npos)
        << c.what << ": " << r.output;
  }
}

TEST(Override, LateDlopen) {
  Result r = Sh(Runfile("tests/progs/dlopen_late") + " " + Runfile("libdepot.so"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS"), std::string::npos) << r.output;
}

// fork() while two threads read long lines with getline() (allocating
// under a stream's lock) and one calls fflush(NULL) (holding the list of
// streams): the fork handlers must not hold Depot's locks while fork()
// waits for the list lock.  A hang ends by the program's alarm.
TEST(Override, ForkWhileThreadsUseStdio) {
  for (int run = 0; run < 3; run++) {
    Result r = Sh("timeout -s KILL 60 " + Preload() +
                  Runfile("tests/progs/fork_stdio") + " 3");
    ASSERT_EQ(r.status, 0) << "run " << run << " (142: hung until SIGALRM)\n"
                           << r.output;
    EXPECT_NE(r.output.find("PASS depot"), std::string::npos) << r.output;
  }
}

// A single-threaded program forks from a signal handler, every
// millisecond, while its main loop is inside malloc, realloc or free; with
// no thread cache, most of those calls hold one of Depot's locks.
TEST(Override, ForkFromSignalHandlerInterruptingMalloc) {
  Result r = Sh("timeout -s KILL 60 env DEPOT_CONF=tcache_max_bytes=0 " +
                Preload() + Runfile("tests/progs/fork_signal") + " 2");
  EXPECT_EQ(r.status, 0) << "(142: hung until SIGALRM)\n" << r.output;
  EXPECT_NE(r.output.find("PASS depot"), std::string::npos) << r.output;
  r = Sh("timeout -s KILL 60 " + Preload() + Runfile("tests/progs/fork_signal") +
         " 1");
  EXPECT_EQ(r.status, 0) << r.output;
}

// RLIMIT_AS lowered after start-up to 200 MiB above what the process uses:
// a thread starts, a library loads, a huge block comes back, and blocks of
// 1 MiB and 4000 bytes stop at the limit, having used most of it.
TEST(Override, AddressSpaceLimitSetAfterStartUp) {
  std::string prog = Runfile("tests/progs/rlimit_as");
  Result control = Sh(prog);
  EXPECT_EQ(control.status, 0) << control.output;
  Result r = Sh("timeout -s KILL 120 " + Preload() + prog);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS depot"), std::string::npos) << r.output;
  std::printf("%s", r.output.c_str());  // the counts, for the log
}

// An oversized request gets what the kernel's overcommit policy gives any
// mapping.  The policy is machine-wide: the test runs under the mode in
// force, and sets the other modes (restoring the first) only when
// DEPOT_TEST_SET_OVERCOMMIT=1 says that it may change it for every process
// of the machine for a moment, and /proc/sys lets it.
class Overcommit : public ::testing::TestWithParam<int> {};

int ReadOvercommit() {
  std::ifstream f("/proc/sys/vm/overcommit_memory");
  int mode = -1;
  f >> mode;
  return f ? mode : -1;
}

bool WriteOvercommit(int mode) {
  std::ofstream f("/proc/sys/vm/overcommit_memory");
  f << mode << "\n";
  f.close();
  return bool(f) && ReadOvercommit() == mode;
}

TEST_P(Overcommit, OversizedRequestFollowsThePolicy) {
  const int mode = GetParam(), was = ReadOvercommit();
  ASSERT_GE(was, 0) << "no /proc/sys/vm/overcommit_memory";
  if (mode != was) {
    const char *allowed = getenv("DEPOT_TEST_SET_OVERCOMMIT");
    if (!allowed || std::string(allowed) != "1")
      GTEST_SKIP() << "vm.overcommit_memory is " << was << "; mode " << mode
                   << " needs DEPOT_TEST_SET_OVERCOMMIT=1 (a machine-wide change)";
    if (!WriteOvercommit(mode))
      GTEST_SKIP() << "cannot set vm.overcommit_memory=" << mode << " here";
  }
  std::string prog = Runfile("tests/progs/oversized");
  Result control = Sh(prog);
  Result depot = Sh(Preload() + prog);
  if (mode != was) WriteOvercommit(was);
  EXPECT_EQ(control.status, 0) << control.output;
  EXPECT_EQ(depot.status, 0) << depot.output;
  EXPECT_NE(depot.output.find("PASS depot mode=" + std::to_string(mode)),
            std::string::npos)
      << depot.output;
}

INSTANTIATE_TEST_SUITE_P(Modes, Overcommit, ::testing::Values(0, 1, 2));

TEST(Override, ThreadLifeCycleLeavesNothingInUse) {
  Result r = Sh(Runfile("tests/progs/lifecycle"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PASS in_use=0"), std::string::npos) << r.output;
}

}  // namespace
